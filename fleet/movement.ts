/**
 * Seeded movement for fleet phones, each a LocationSource the agent reads on
 * its clock: a random walk around a centre (a new heading every step, turned
 * back towards the centre at the edge), a shared GPX track walked with a
 * per-phone offset and starting point, or a point near a centre. Each draws
 * from its phone's own stream, so the same seed gives the same routes.
 */
import type { RouteSource, Fix, LocationSource, Point } from '../agent/location.js'
import type { Rng } from './prng.js'

const M_PER_DEG_LAT = 111_320
const mPerDegLon = (lat: number): number => M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180)

/** `p` moved `north` and `east` metres. */
export function shift(p: Point, north: number, east: number): Point {
  return { lat: p.lat + north / M_PER_DEG_LAT, lon: p.lon + east / mPerDegLon(p.lat) }
}

/** A uniformly drawn point within `radiusM` of `centre`. */
export function near(centre: Point, radiusM: number, rng: Rng): Point {
  const r = radiusM * Math.sqrt(rng.next())
  const a = rng.between(0, 2 * Math.PI)
  return shift(centre, r * Math.cos(a), r * Math.sin(a))
}

export interface WalkOptions {
  centre: Point
  radiusM: number
  speedMps: number
  stepMs: number
  startAt: number
}

/**
 * A random walk, a pure function of time for times that only move forward
 * (as a clock's do): steps are drawn lazily, one stream per phone, and only
 * the current step is kept. A question about an earlier time than the
 * current step is answered with the step's start.
 */
export class RandomWalk implements LocationSource {
  private step = 0
  private from: Point
  private to: Point

  constructor(
    private readonly opts: WalkOptions,
    private readonly rng: Rng,
  ) {
    this.from = near(opts.centre, opts.radiusM, rng)
    this.to = this.nextPoint(this.from)
  }

  fix(at: number): Fix {
    const { stepMs, startAt, speedMps } = this.opts
    const k = Math.floor(Math.max(0, at - startAt) / stepMs)
    while (this.step < k) {
      this.from = this.to
      this.to = this.nextPoint(this.from)
      this.step++
    }
    const f = Math.min(1, Math.max(0, (at - startAt - this.step * stepMs) / stepMs))
    return {
      lat: this.from.lat + (this.to.lat - this.from.lat) * f,
      lon: this.from.lon + (this.to.lon - this.from.lon) * f,
      accuracy: 8,
      speed: speedMps,
    }
  }

  private nextPoint(p: Point): Point {
    const { centre, radiusM, speedMps, stepMs } = this.opts
    const len = (speedMps * stepMs) / 1000
    let heading = this.rng.between(0, 2 * Math.PI)
    const north = (p.lat - centre.lat) * M_PER_DEG_LAT
    const east = (p.lon - centre.lon) * mPerDegLon(centre.lat)
    // Past the edge the walker turns back: the heading points at the centre, give or take a quarter turn.
    if (Math.hypot(north, east) + len > radiusM) heading = Math.atan2(-east, -north) + (heading / (2 * Math.PI) - 0.5) * (Math.PI / 2)
    return shift(p, len * Math.cos(heading), len * Math.sin(heading))
  }
}

/** A shared track, walked by this phone `phaseMs` ahead of the others and shifted by a fixed offset. */
export class OffsetTrack implements LocationSource {
  constructor(
    private readonly track: RouteSource,
    private readonly phaseMs: number,
    private readonly north: number,
    private readonly east: number,
  ) {}

  fix(at: number): Fix {
    const base = this.track.fix(at + this.phaseMs)
    return { ...base, ...shift(base, this.north, this.east) }
  }
}
