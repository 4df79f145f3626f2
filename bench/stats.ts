/**
 * Latency samples and the figures drawn from them. Samples go into a
 * preallocated Float64Array sized from the scenario's own bounds, so
 * recording is allocation-free and memory is capped; samples past the
 * capacity are counted, not kept.
 */
export interface LatencySummary {
  count: number
  /** Milliseconds; null when there were no samples. */
  p50: number | null
  p99: number | null
  max: number | null
}

export class LatencyRecorder {
  private readonly samples: Float64Array
  private size = 0
  /** Samples that arrived after the recorder was full. */
  dropped = 0

  constructor(capacity: number) {
    this.samples = new Float64Array(Math.max(1, capacity))
  }

  get count(): number {
    return this.size + this.dropped
  }

  record(ms: number): void {
    if (this.size < this.samples.length) this.samples[this.size++] = ms
    else this.dropped++
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.size).sort()
    return { count: this.count, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: quantile(sorted, 1) }
  }
}

/** Nearest-rank quantile of an ascending array. */
function quantile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1] as number
}

export { LoopDelay } from '../common/loop-delay.js'

/** Highest resident set size seen by `sample()` calls, bytes. */
export class PeakRss {
  peak = process.memoryUsage.rss()

  sample(): void {
    const now = process.memoryUsage.rss()
    if (now > this.peak) this.peak = now
  }
}

export const MB = 1024 * 1024
