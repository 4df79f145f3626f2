/**
 * A place as a person types it: `LAT,LON` in degrees and `HOST:PORT`, for the agent's `location` setting
 * (agent/config.ts) and the CLI's options (cli/options.ts). A module of its own with nothing to load: every
 * `fakephone` command loads cli/options.ts, and agent/config.ts brings the agent's config schema, its cloud client and
 * push channel with it (~100 ms of CPU a command, M2's cold start of `console migrate`).
 */
import type { Point } from './location.js'

/** `LAT,LON` in degrees, or null. */
export function parseLatLon(text: string): Point | null {
  const [lat, lon, extra] = text.split(',').map((part) => (part.trim() === '' ? NaN : Number(part)))
  if (extra !== undefined || lat === undefined || lon === undefined || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) return null
  return { lat, lon }
}

/** `HOST:PORT` (or `[v6]:PORT`), or null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text)
  const port = Number(m?.[3])
  if (!m || port < 1 || port > 65535) return null
  return { host: (m[1] ?? m[2]) as string, port }
}
