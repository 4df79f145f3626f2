/**
 * The wait between retries of writes the storage refused (a full or failing
 * disk, common/storage-errors.ts): the first after `firstMs`, each further one
 * twice as long, up to `maxMs`, until the writes go through (`reset`). One
 * retry is scheduled at a time. It paces I/O, not a time rule, so it runs on
 * Node's timers, not on the injected clock. Used by the heartbeat batch and
 * statuses (F1, F3), command steps (F2) and behaviour logs (X2).
 */
export class RetryBackoff {
  /** The wait of the retry scheduled last, ms; 0 until a failure, and again after `reset`. */
  waitMs = 0
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {}

  /** Schedules `retry` after the next wait, unless a retry is already scheduled; returns the wait. */
  schedule(retry: () => void): number {
    if (this.timer) return this.waitMs
    this.waitMs = this.waitMs === 0 ? this.firstMs : Math.min(this.waitMs * 2, this.maxMs)
    this.timer = setTimeout(() => {
      this.timer = null
      retry()
    }, this.waitMs)
    return this.waitMs
  }

  /** The writes went through: a later failure starts from `firstMs` again. */
  reset(): void {
    this.waitMs = 0
  }

  /** Drops the scheduled retry (a stop). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}
