/**
 * The event loop's delay while something runs: the fleet's report (issue 12)
 * and the benchmarks read it the same way. Node's histogram records the whole
 * time between its timer's firings, so the sampling interval is taken off: an
 * idle loop reads about 0 ms, not 10.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'

/** Sampling interval of the event-loop delay monitor, ms. */
const LOOP_RESOLUTION_MS = 10

export class LoopDelay {
  private readonly histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })

  start(): this {
    this.histogram.reset()
    this.histogram.enable()
    return this
  }

  /** Stops sampling; the p99 and max delay in ms. */
  stop(): { p99: number; max: number } {
    this.histogram.disable()
    const excess = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS)
    return { p99: excess(this.histogram.percentile(99)), max: excess(this.histogram.max) }
  }
}
