/**
 * Location history in open formats (M3): GPX 1.1 (one track per device, a
 * point per fix with its time) for map tools, and GeoJSON (RFC 7946; a Point
 * feature per fix, every field of the fix in its properties) which the
 * import reads back field for field.
 */
import { z } from 'zod'
import { LocationRecordSchema, type LocationRecord } from '../../common/cloud/transfer-api.js'

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)

export function toGpx(device: string, fixes: readonly LocationRecord[]): string {
  const points = fixes
    .map((f) => `      <trkpt lat="${f.lat}" lon="${f.lon}"><time>${new Date(f.at).toISOString()}</time></trkpt>\n`)
    .join('')
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<gpx version="1.1" creator="fakephone" xmlns="http://www.topografix.com/GPX/1/1">\n' +
    `  <trk>\n    <name>${xml(device)}</name>\n    <trkseg>\n${points}    </trkseg>\n  </trk>\n</gpx>\n`
  )
}

export function toGeoJson(fixes: readonly LocationRecord[]): unknown {
  return {
    type: 'FeatureCollection',
    features: fixes.map(({ lat, lon, ...rest }) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [lon, lat] },
      properties: { time: new Date(rest.at).toISOString(), ...rest },
    })),
  }
}

const GeoJsonSchema = z.object({
  type: z.literal('FeatureCollection'),
  features: z.array(
    z.object({
      geometry: z.object({ type: z.literal('Point'), coordinates: z.tuple([z.number(), z.number()]) }),
      properties: z.record(z.string(), z.unknown()),
    }),
  ),
})

/** The fixes of a GeoJSON file written by toGeoJson; throws a zod error naming what does not fit. */
export function fromGeoJson(value: unknown): LocationRecord[] {
  return GeoJsonSchema.parse(value).features.map(({ geometry, properties: { time: _, ...p } }) =>
    LocationRecordSchema.parse({ ...p, lon: geometry.coordinates[0], lat: geometry.coordinates[1] }),
  )
}
