/**
 * One timer for a rule that acts on rows falling due (the recycle bin's
 * 30/180 days, backups' 72 h, the drive's 7 days, A3's year): it sleeps on
 * the one clock until the earliest due time the rule reports, runs the rule,
 * and sleeps again. Advancing a manual or simulated clock across several
 * due times runs the rule once per due time, in order. Every timer of the
 * broker that waits for "the next due row" is one of these (the cloud's
 * rules, command expiry, notification expiry): a rule that throws is
 * logged and tried again later, never fatal. Each run is said on the
 * DUE_TIMER_RUNS diagnostics channel (with the timer's clock, so the broker
 * whose clock it is counts it for /metrics: broker/metrics.ts); with nobody
 * subscribed that costs one check.
 */
import { channel } from 'node:diagnostics_channel'
import type { Clock, Timer } from '../common/clock.js'
import type { Logger } from '../common/log.js'

const RETRY_MS = 60_000

/** A due timer's run, as DUE_TIMER_RUNS says it. */
export interface DueTimerRun {
  clock: Clock
  name: string
  failed: boolean
}

/** The diagnostics channel every due timer's runs are said on (node:diagnostics_channel). */
export const DUE_TIMER_RUNS = channel('fakephone:due-timer-runs')

export class DueTimer {
  private timer: Timer | null = null
  private armedFor: number | null = null
  private running = false
  /** True while the rule runs: changes it makes need no look-ahead of their own, since it looks once when done. */
  private firing = false
  /** After a failure, not before this time: a rule that keeps failing must not spin. */
  private notBefore = 0

  constructor(
    private readonly clock: Clock,
    /** The earliest time something falls due, or null for nothing. */
    private readonly nextDue: () => number | null,
    /** Acts on everything due at or before `now`. */
    private readonly run: (now: number) => void,
    private readonly log: Logger,
    readonly name: string,
    /** Wake at least this often to look again (rows another process added), ms; never by default. */
    private readonly maxSleepMs = Infinity,
  ) {}

  start(): void {
    this.running = true
    this.reschedule()
  }

  /** Starts and runs the rule once at once, synchronously: for what fell due while the broker was down. */
  startNow(): void {
    this.running = true
    this.fire()
  }

  stop(): void {
    this.running = false
    this.timer?.cancel()
    this.timer = null
    this.armedFor = null
  }

  /** Call after any change that may move the earliest due time. */
  reschedule(): void {
    if (!this.running || this.firing) return
    const next = this.nextDue()
    const wake = this.maxSleepMs === Infinity ? null : this.clock.now() + this.maxSleepMs
    const due = next === null ? wake : Math.max(Math.min(next, wake ?? next), this.notBefore)
    if (due === this.armedFor && this.timer) return
    this.timer?.cancel()
    this.armedFor = due
    this.timer = due === null ? null : this.clock.after(due - this.clock.now(), () => this.fire())
  }

  /**
   * A change made something fall due at `at` at the latest and moved nothing else earlier (A3's touch: one account's
   * year starts again): arms for `at` when that is earlier than the timer is armed for, without asking `nextDue`. A
   * wake that finds nothing due just looks again. Constant time, where reschedule()'s look-up may scan the table:
   * for changes made once per connection at a fleet's connect ramp.
   */
  dueBy(at: number): void {
    if (!this.running || this.firing) return
    const due = Math.max(at, this.notBefore)
    if (this.timer && (this.armedFor as number) <= due) return
    this.timer?.cancel()
    this.armedFor = due
    this.timer = this.clock.after(due - this.clock.now(), () => this.fire())
  }

  private fire(): void {
    this.timer = null
    this.armedFor = null
    const now = this.clock.now()
    this.firing = true
    let failed = false
    try {
      this.run(now)
      this.notBefore = 0
    } catch (err) {
      failed = true
      this.notBefore = now + RETRY_MS
      // A failing rule must not stop the others; it runs again at its next due time.
      this.log.error({ err, rule: this.name }, 'a cloud rule failed')
    } finally {
      this.firing = false
    }
    if (DUE_TIMER_RUNS.hasSubscribers) DUE_TIMER_RUNS.publish({ clock: this.clock, name: this.name, failed } satisfies DueTimerRun)
    this.reschedule()
  }
}
