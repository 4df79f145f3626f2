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
 * One reconnect loop's retries on the injected clock: at most one retry
 * waiting at a time, each after the next backoff delay, until `reset()`
 * (a connection succeeded) starts the delays over.
 */
export class Retry {
  private attempt = 0
  private timer: Timer | null = null
  /** Delay chosen for the retry now waiting, ms (for status displays and tests). */
  lastDelayMs = 0

  constructor(
    private readonly clock: Clock,
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Retries made since the last success. */
  get attempts(): number {
    return this.attempt
  }

  /** Runs `fn` after the next delay, unless a retry is already waiting (then that one stands). */
  schedule(fn: () => void): void {
    if (this.timer) return
    this.lastDelayMs = backoffDelay(this.attempt++, this.opts, this.random)
    this.timer = this.clock.after(this.lastDelayMs, () => {
      this.timer = null
      fn()
    })
  }

  cancel(): void {
    this.timer?.cancel()
    this.timer = null
  }

  /** A connection succeeded: the next failure starts from the shortest delay again. */
  reset(): void {
    this.attempt = 0
  }
}
