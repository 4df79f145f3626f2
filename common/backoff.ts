/**
 * Capped exponential backoff with full jitter, for every reconnect loop
 * (mqtt.js on its own retries every second forever).
 */
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
