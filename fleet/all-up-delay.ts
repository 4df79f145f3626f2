/**
 * Issue 12's event-loop figure with every phone up: the fleet's delay p99
 * over the stretch when every phone of the process was connected at once,
 * apart from the whole run's (whose ramp, up and down, it leaves out). The
 * stretch opens at the first check that finds every phone connected and
 * closes at the first that finds one not, or when the plan ends; a run whose
 * phones were never all up at once (outages, staggered stops) has no figure.
 */
import { LoopDelay } from '../common/loop-delay.js'

export class AllUpLoopDelay {
  private loop: LoopDelay | null = null
  private closed = false
  private p99: number | null = null

  /** Called about once a second with the phones connected now and the process's target. */
  check(connected: number, target: number): void {
    if (this.closed) return
    if (!this.loop) {
      if (target > 0 && connected >= target) this.loop = new LoopDelay().start()
    } else if (connected < target) this.close()
  }

  /** Ends the stretch (if open); later checks open no other. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.loop) this.p99 = this.loop.stop().p99
    this.loop = null
  }

  /** The delay p99 in ms over the stretch, null when every phone was never up at once (or not yet closed). */
  get p99Ms(): number | null {
    return this.p99
  }
}
