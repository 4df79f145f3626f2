/**
 * Capped exponential backoff with full jitter, for every reconnect loop
 * (mqtt.js on its own retries every second forever).
 */
import type { Clock, Timer } from './clock.js'

export interface BackoffOptions {
  /** First delay ceiling in ms. */
  baseMs: number
  /** Largest delay in ms. */
  capMs: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000 }

/** Delay before retry number `attempt` (0-based): uniform in [ceiling/2, ceiling]. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}

/**
 * One reconnect loop's timer: each `schedule` waits the next backoff delay on
 * the injected clock; `reset` after a success starts the delays over.
 */
export class RetryTimer {
  private attempt = 0
  private timer: Timer | null = null
  /** What the waiting retry runs (set with the timer, before anything reads it). */
  private waitingFn!: () => void
  /** Delay chosen for the retry now waiting, ms (for logs and tests). */
  lastDelayMs = 0

  constructor(
    private readonly clock: Clock,
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Number of retries since the last reset, this one included once scheduled. */
  get attempts(): number {
    return this.attempt
  }

  /** Whether a retry is waiting. */
  get pending(): boolean {
    return this.timer !== null
  }

  /** Runs `fn` after the next delay, unless a retry already waits; returns whether one was scheduled. */
  schedule(fn: () => void): boolean {
    if (this.timer) return false
    this.lastDelayMs = backoffDelay(this.attempt++, this.opts, this.random)
    this.waitingFn = fn
    this.timer = this.clock.after(this.lastDelayMs, () => {
      this.timer = null
      fn()
    })
    return true
  }

  /** Runs the waiting retry at once, its delay cut short (what it waited for came: a device's new secret); none waits, nothing. */
  runNow(): void {
    if (!this.timer) return
    this.cancel()
    this.waitingFn()
  }

  reset(): void {
    this.attempt = 0
  }

  cancel(): void {
    this.timer?.cancel()
    this.timer = null
  }
}
