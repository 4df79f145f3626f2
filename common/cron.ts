/**
 * Cron schedules on the one clock (B1's backup schedule and any other
 * periodic rule). node-cron parses and matches the expression; the clock,
 * not node-cron's own wall-clock timers, decides when it fires, so simulated
 * time and tests move cron schedules like every other rule.
 */
import cron, { type ScheduledTask } from 'node-cron'
import type { Clock, Timer } from './clock.js'
import { FakephoneError } from './errors.js'

const MINUTE = 60_000
/** A schedule must fire at least once a year (a yearly backup does; 29 February does not). */
const HORIZON_MS = 366 * 86_400_000

export class CronError extends FakephoneError {
  constructor(message: string) {
    super('BAD_CRON', message)
  }
}

/** Checks `expression` (five fields: minute hour day-of-month month day-of-week); throws a CronError saying which field is wrong. */
export function checkCron(expression: string): void {
  const fields = expression.trim().split(/\s+/)
  if (fields.length !== 5) throw new CronError(`cron expression "${expression}" must have five fields: minute hour day-of-month month day-of-week`)
  const result = cron.validateDetailed(expression)
  if (!result.valid) throw new CronError(`cron expression "${expression}": ${result.errors.map((e) => e.message).join('; ')}`)
}

/** Fires `fn` at every minute `expression` matches, in `timezone`, on `clock`. */
export class CronSchedule {
  // A task that is never started: only its matcher is used.
  private readonly matcher: ScheduledTask
  private timer: Timer | null = null

  constructor(
    readonly expression: string,
    private readonly clock: Clock,
    private readonly fn: (at: number) => void,
    readonly timezone = 'UTC',
  ) {
    checkCron(expression)
    // The task is never started, so its function never runs: node-cron only matches dates here.
    /* c8 ignore next */
    this.matcher = cron.createTask(expression, () => {}, { timezone })
  }

  /** The first matching minute strictly after `from`, ms since the epoch. */
  nextAfter(from: number): number {
    for (let at = Math.floor(from / MINUTE) * MINUTE + MINUTE; at <= from + HORIZON_MS; at += MINUTE) {
      if (this.matcher.match(new Date(at))) return at
    }
    throw new CronError(`cron expression "${this.expression}" does not fire within a year; a schedule must fire at least once a year`)
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
