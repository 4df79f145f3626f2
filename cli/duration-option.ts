/**
 * `--every 30s`, `--expires 1h`: a duration flag, and a duration written the way the flag reads it back, for the
 * defaults the help shows. A module apart from options.ts (whose account-name rule loads zod) because cli/main.ts,
 * which every command loads, needs both: `fakephone --help` and `--version` load no schema.
 */
import { InvalidArgumentError } from 'commander'
import { parseDuration } from '../common/clock.js'

export function duration(value: string): number {
  try {
    return parseDuration(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

const DURATION_UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
]

/** `ms` written the way `duration` reads it back: 86400000 is "1d", 90000 "1m30s", 0 "0ms". */
export function formatDuration(ms: number): string {
  let rest = ms
  let text = ''
  for (const [unit, size] of DURATION_UNITS) {
    const n = Math.floor(rest / size)
    rest -= n * size
    if (n > 0) text += `${n}${unit}`
  }
  return text || '0ms'
}
