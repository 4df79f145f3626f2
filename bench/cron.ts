/**
 * Cron look-ups (B1's backup schedule): how long `CronSchedule.nextAfter` takes
 * for frequent, daily, yearly and leap-day expressions in a zone with summer
 * time. The old minute-by-minute scan took seconds for a yearly expression;
 * the field-by-field lookup must stay under 5 ms for any expression.
 */
import { ManualClock } from '../common/clock.js'
import { CronSchedule } from '../common/cron.js'
import type { ScenarioContext } from './context.js'

export interface CronCase {
  expression: string
  timezone: string
  /** Wall time per lookup, ms. */
  meanMs: number
  maxMs: number
}

export interface CronResult {
  lookups: number
  cases: CronCase[]
}

const CASES: [string, string][] = [
  ['* * * * *', 'Europe/London'],
  ['0 3 * * *', 'Europe/London'],
  ['*/15 2-4 * * 1-5', 'America/New_York'],
  ['0 0 13 * 5', 'Australia/Lord_Howe'],
  ['0 0 1 1 *', 'Europe/London'],
  ['0 0 29 2 *', 'UTC'],
]

/** Each case looks up from `lookups` start times spread over 2026 (after a few warm-up calls). */
export async function runCron(ctx: ScenarioContext): Promise<CronResult> {
  const lookups = 200
  const start = Date.UTC(2026, 0, 1)
  const step = Math.floor((365 * 86_400_000) / lookups)
  const cases: CronCase[] = []
  for (const [expression, timezone] of CASES) {
    const schedule = new CronSchedule(expression, new ManualClock(start), () => {}, timezone)
    const lookup = (from: number): void => {
      try {
        schedule.nextAfter(from)
      } catch {
        // 29 February: from 1 March 2026 on, the next one is more than a year away; the refusal costs a full search and is measured too.
      }
    }
    for (let i = 0; i < 5; i++) lookup(start + i * step)
    let total = 0
    let max = 0
    for (let i = 0; i < lookups; i++) {
      const began = performance.now()
      lookup(start + i * step)
      const took = performance.now() - began
      total += took
      max = Math.max(max, took)
    }
    cases.push({ expression, timezone, meanMs: total / lookups, maxMs: max })
    ctx.progress(`cron: ${expression} (${timezone}) mean ${(total / lookups).toFixed(3)} ms, max ${max.toFixed(3)} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { lookups, cases }
}
