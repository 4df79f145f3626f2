/**
 * F1: a device's location history as a track file the owner can take away:
 * GPX 1.1 (one track, one segment, a point per fix with its time) and GeoJSON
 * (one LineString feature, the fix times beside it in `properties.times`).
 * `history` comes newest first, as the console API answers; the files run
 * oldest first, as tracks do.
 */
import type { LocationRow } from '../../common/console-api.js'

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
const iso = (ms: number): string => new Date(ms).toISOString()

export function toGpx(device: string, history: readonly LocationRow[]): string {
  const points = [...history]
    .reverse()
    .map((r) => `      <trkpt lat="${r.lat}" lon="${r.lon}"><time>${iso(r.at)}</time><hdop>${r.accuracy}</hdop></trkpt>`)
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<gpx version="1.1" creator="fakephone" xmlns="http://www.topografix.com/GPX/1/1">',
    `  <trk><name>${xml(device)}</name>`,
    '    <trkseg>',
    ...points,
    '    </trkseg>',
    '  </trk>',
    '</gpx>',
    '',
  ].join('\n')
}

export function toGeoJson(device: string, history: readonly LocationRow[]): object {
  const rows = [...history].reverse()
  return {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        properties: {
          device,
          times: rows.map((r) => iso(r.at)),
          accuracy: rows.map((r) => r.accuracy),
          battery: rows.map((r) => r.battery),
        },
        geometry: { type: 'LineString', coordinates: rows.map((r) => [r.lon, r.lat]) },
      },
    ],
  }
}
