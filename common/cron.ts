/**
 * Cron schedules on the one clock (B1's backup schedule and any other
 * periodic rule). node-cron parses and matches the expression; the clock,
 * not node-cron's own wall-clock timers, decides when it fires, so simulated
 * time and tests move cron schedules like every other rule. A jump of such a
 * clock fires it at every match on the way, in order (the cloud runs through
 * the jump); on wall-clock time a run missed while the process slept fires
 * once, late, and the next is found from then. What runs missed during a
 * jump mean to whoever answers them is the caller's rule: the backup plans
 * hand a phone only the newest one (broker/cloud/backup-plans.ts, B1).
 */
import cron, { type ScheduledTask } from 'node-cron'
import type { Clock, Timer } from './clock.js'
import { FakephoneError } from './errors.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
/** A time zone's offset is trusted to change at most once within this span (real changes are months apart). */
const SPAN = 7 * DAY
/** A schedule must fire at least once a year (a yearly backup does; 29 February does not). */
const HORIZON_MS = 366 * DAY

export class CronError extends FakephoneError {
  constructor(message: string) {
    super('BAD_CRON', message)
  }
}

/** Checks `expression` (five fields: minute hour day-of-month month day-of-week); throws a CronError saying which field is wrong. */
export function checkCron(expression: string): void {
  const fields = expression.trim().split(/\s+/)
  if (fields.length !== 5)
    throw new CronError(`cron expression "${expression}" must have five fields: minute hour day-of-month month day-of-week`)
  const result = cron.validateDetailed(expression)
  if (!result.valid) throw new CronError(`cron expression "${expression}": ${result.errors.map((e) => e.message).join('; ')}`)
}

/**
 * Fires `fn` at every minute `expression` matches, in `timezone`, on `clock`.
 *
 * The next run is found field by field, not minute by minute: within a stretch
 * where the zone's UTC offset stays the same, wall-clock time is the instant plus
 * that offset, so the first matching wall-clock minute (months, days, hours and
 * minutes skipped by field) gives the instant. Where the offset changes (summer
 * time), the change is found by bisection and the search goes on from there, so
 * a wall time that a change skips never fires and one it repeats fires at each
 * occurrence -- the same answers as testing every minute with node-cron's matcher.
 * node-cron's own next-match walker is not used: across a change it skips an hour.
 */
export class CronSchedule {
  /** node-cron's matcher in UTC, asked about wall-clock times written as UTC: does this day match? */
  private readonly wall: ScheduledTask
  private readonly minutes: readonly number[]
  private readonly hours: readonly number[]
  private readonly months: ReadonlySet<number>
  /** Days of the month and of the week when both fields are plain numbers (no L, W or #), else null. */
  private readonly plainDays: { ofMonth: ReadonlySet<number>; ofWeek: ReadonlySet<number> } | null
  private readonly zone: Intl.DateTimeFormat
  private timer: Timer | null = null

  constructor(
    readonly expression: string,
    private readonly clock: Clock,
    private readonly fn: (at: number) => void,
    readonly timezone = 'UTC',
  ) {
    checkCron(expression)
    const fields = cron.parse(expression)
    this.minutes = [...fields.minute].sort((a, b) => a - b)
    this.hours = [...fields.hour].sort((a, b) => a - b)
    this.months = new Set(fields.month)
    const numbers = (values: (number | string)[]): number[] | null =>
      values.every((v) => typeof v === 'number') ? (values as number[]) : null
    const ofMonth = numbers(fields.dayOfMonth)
    const ofWeek = numbers(fields.dayOfWeek)
    // Sunday may be written 7; 0 is what a date's day of the week says.
    this.plainDays = ofMonth && ofWeek ? { ofMonth: new Set(ofMonth), ofWeek: new Set(ofWeek.map((d) => d % 7)) } : null
    // The task is never started, so its function never runs: node-cron only matches dates here.
    /* c8 ignore next */
    this.wall = cron.createTask(expression, () => {}, { timezone: 'UTC' })
    this.zone = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
  }

  /** The first matching minute strictly after `from`, ms since the epoch. */
  nextAfter(from: number): number {
    const limit = from + HORIZON_MS
    let t = Math.floor(from / MINUTE) * MINUTE + MINUTE
    while (t <= limit) {
      const offset = this.offset(t)
      const wall = this.nextWallMinute(t + offset, t + offset + SPAN)
      const end = wall === null ? t + SPAN : wall - offset
      if (this.offset(end) !== offset) {
        // The offset changes before `end`: go on from the change with the new offset.
        t = this.firstChange(t, end, offset)
        continue
      }
      if (wall !== null) {
        if (end > limit) break
        return end
      }
      t = end + MINUTE
    }
    throw new CronError(`cron expression "${this.expression}" does not fire within a year; a schedule must fire at least once a year`)
  }

  /** Wall-clock time minus UTC at instant `at`, in ms. */
  private offset(at: number): number {
    const p: Record<string, number> = {}
    for (const part of this.zone.formatToParts(at)) if (part.type !== 'literal') p[part.type] = Number(part.value)
    return Date.UTC(p.year as number, (p.month as number) - 1, p.day, p.hour, p.minute, p.second) - Math.floor(at / 1000) * 1000
  }

  /** The first minute in [lo, hi] whose offset is not `offset`, given that lo's is and hi's is not. */
  private firstChange(lo: number, hi: number, offset: number): number {
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE
      if (this.offset(mid) === offset) lo = mid
      else hi = mid
    }
    return hi
  }

  /** The first wall-clock minute in [from, until] (both wall-clock times written as UTC) the expression matches, or null. */
  private nextWallMinute(from: number, until: number): number | null {
    const firstHour = this.hours[0] as number
    const firstMinute = this.minutes[0] as number
    for (let day = Math.floor(from / DAY) * DAY; day <= until; day += DAY) {
      const date = new Date(day)
      if (!this.months.has(date.getUTCMonth() + 1)) continue
      // A cheap first refusal (node-cron asks both fields: day of month and day of week), then node-cron decides.
      if (this.plainDays && !(this.plainDays.ofMonth.has(date.getUTCDate()) && this.plainDays.ofWeek.has(date.getUTCDay()))) continue
      // Minute and hour fields are matched below; this asks node-cron whether the day itself matches.
      if (!this.wall.match(new Date(day + firstHour * HOUR + firstMinute * MINUTE))) continue
      for (const hour of this.hours) {
        for (const minute of this.minutes) {
          const at = day + hour * HOUR + minute * MINUTE
          if (at >= from) return at <= until ? at : null
        }
      }
    }
    return null
  }

  start(): void {
    if (this.timer) return
    this.arm()
  }

  stop(): void {
    this.timer?.cancel()
    this.timer = null
  }

  get running(): boolean {
    return this.timer !== null
  }

  private arm(): void {
    const now = this.clock.now()
    const at = this.nextAfter(now)
    this.timer = this.clock.after(at - now, () => {
      this.arm()
      this.fn(at)
    })
  }
}
