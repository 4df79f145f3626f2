/**
 * Where the fake phone is. A location source answers "where am I at time t"
 * on the injected clock, so a route plays back at the speed time moves.
 * Sources: a route of waypoints walked at a set speed (looping), a GPX
 * track, or a fixed point.
 */
import { readFileSync } from 'node:fs'
import { formatAge } from '../common/clock.js'
import type { LocationStatus } from '../common/contract.js'

export interface Fix {
  lat: number
  lon: number
  /** metres */
  accuracy: number
  /** metres per second */
  speed: number
}

export interface LocationSource {
  /** The fix at time `at` (ms since epoch), or null when there is none (no GPS signal). */
  fix(at: number): Fix | null
  /** F1: where the position comes from and whether there is one, for `phone status`; a source without it says nothing. */
  describe?(at: number): LocationStatus
}

/**
 * F2: why a locate found no fix, as its owner reads it in the receipt: for gpsd, whether gpsd is not reachable, has no
 * fix (yet, or lost it) or only an old one, so the owner of a Pi with a GPS hat knows where to look.
 */
export function noFixReason(source: LocationStatus | undefined): string {
  if (source?.kind !== 'gpsd') return 'no location fix'
  const gpsd = `gpsd ${source.host}:${source.port}`
  if (source.state !== 'watching') return `no location fix: ${gpsd} is not connected (is gpsd running?)`
  if (source.fix === null) return `no location fix: ${gpsd} ${source.lost ? 'says the receiver lost its fix' : 'has no fix yet'}`
  return `no location fix: the last from ${gpsd} is ${formatAge(source.fix.ageMs)} old, older than ${formatAge(source.maxAgeMs)}`
}

export interface Point {
  lat: number
  lon: number
}

const EARTH_RADIUS_M = 6_371_000
const rad = (deg: number): number => (deg * Math.PI) / 180

/** Great-circle distance in metres. */
export function distanceM(a: Point, b: Point): number {
  const dLat = rad(b.lat - a.lat)
  const dLon = rad(b.lon - a.lon)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h))
}

export class FixedSource implements LocationSource {
  constructor(
    private readonly point: Point,
    private readonly accuracy = 10,
  ) {}

  fix(): Fix {
    return { ...this.point, accuracy: this.accuracy, speed: 0 }
  }

  describe(): LocationStatus {
    return { kind: 'fixed', ...this.point }
  }
}

/** Walks the waypoints in order at `speedMps`, then starts again from the first; position is interpolated. */
export class RouteSource implements LocationSource {
  private readonly legs: { from: Point; to: Point; startM: number; lengthM: number }[] = []
  private readonly totalM: number

  constructor(
    waypoints: readonly Point[],
    private readonly speedMps: number,
    private readonly startAt: number,
    private readonly accuracy = 8,
    /** The GPX file the waypoints came from, for `phone status`; null: the built-in route. */
    private readonly gpx: string | null = null,
  ) {
    if (waypoints.length < 2) throw new Error('a route needs at least two waypoints')
    if (!(speedMps > 0)) throw new Error('route speed must be above 0 m/s')
    let total = 0
    for (let i = 0; i < waypoints.length; i++) {
      const from = waypoints[i] as Point
      const to = waypoints[(i + 1) % waypoints.length] as Point
      const lengthM = distanceM(from, to)
      this.legs.push({ from, to, startM: total, lengthM })
      total += lengthM
    }
    if (total === 0) throw new Error('route waypoints are all the same point')
    this.totalM = total
  }

  fix(at: number): Fix {
    const travelled = (((at - this.startAt) / 1000) * this.speedMps) % this.totalM
    const along = travelled < 0 ? travelled + this.totalM : travelled
    // The last leg ends exactly at totalM and along < totalM, so a leg is always found; it has a length, or along would be below its start.
    const leg = this.legs.find((l) => along < l.startM + l.lengthM) as (typeof this.legs)[number]
    const f = (along - leg.startM) / leg.lengthM
    return {
      lat: leg.from.lat + (leg.to.lat - leg.from.lat) * f,
      lon: leg.from.lon + (leg.to.lon - leg.from.lon) * f,
      accuracy: this.accuracy,
      speed: this.speedMps,
    }
  }

  describe(): LocationStatus {
    return { kind: 'route', gpx: this.gpx, speed: this.speedMps }
  }
}

/** The built-in demo route: a loop around the Old Town of Edinburgh, walked at 1.4 m/s. */
export const DEMO_ROUTE: readonly Point[] = [
  { lat: 55.9486, lon: -3.1999 },
  { lat: 55.9496, lon: -3.1909 },
  { lat: 55.9508, lon: -3.1837 },
  { lat: 55.9527, lon: -3.1723 },
  { lat: 55.9502, lon: -3.1735 },
  { lat: 55.9469, lon: -3.1887 },
]

/**
 * Reads the track points (`trkpt`, else route points `rtept`) of a GPX file.
 * GPX puts coordinates in two attributes of one element, so attribute
 * matching is all the XML this needs.
 */
export function readGpx(path: string): Point[] {
  let xml: string
  try {
    xml = readFileSync(path, 'utf8')
  } catch (err) {
    // Node's words for a folder (EISDIR, from read) do not name the path, as its others (from open) do: then this does.
    if ((err as { path?: unknown }).path !== undefined) throw err
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err })
  }
  const points = (tag: string): Point[] =>
    [...xml.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'g'))].map((m) => {
      const attrs = m[1] as string
      const lat = Number(/\blat\s*=\s*["']([^"']+)["']/.exec(attrs)?.[1])
      const lon = Number(/\blon\s*=\s*["']([^"']+)["']/.exec(attrs)?.[1])
      if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        throw new Error(`${path}: a <${tag}> has no valid lat/lon: <${tag}${attrs}>`)
      }
      return { lat, lon }
    })
  const track = points('trkpt')
  const result = track.length > 0 ? track : points('rtept')
  if (result.length < 2) throw new Error(`${path}: a GPX file needs at least two <trkpt> or <rtept> points`)
  return result
}
