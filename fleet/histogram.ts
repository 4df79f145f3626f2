/**
 * Latency percentiles that merge exactly: a log-bucketed histogram (each
 * bucket 1 % wider than the one below, from 1 µs up), stored in the report,
 * so shard and worker reports join into one whose percentiles are the ones a
 * single run with every sample would have reported. A percentile is the upper
 * edge of the bucket it falls in, so it is within 1 % above the exact sample
 * (and never above the exact maximum, which is kept as it is). Memory is a
 * few hundred buckets however many samples come.
 */

/** Values at or below this (ms) share bucket 0. */
const FLOOR_MS = 0.001
/** Each bucket's upper edge is this factor above the one below. */
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)

/** A histogram as the report stores it: `[bucket, count]` pairs in bucket order, the sample count and the exact maximum. */
export interface HistogramData {
  count: number
  max: number
  buckets: [number, number][]
}

export interface Percentiles {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
}

const bucketOf = (ms: number): number => (ms <= FLOOR_MS ? 0 : Math.ceil(Math.log(ms / FLOOR_MS) / LOG_GROWTH))
const upperEdge = (bucket: number): number => FLOOR_MS * GROWTH ** bucket
const tenth = (ms: number): number => Math.round(ms * 10) / 10

export class LatencyHistogram {
  private readonly counts = new Map<number, number>()
  private seen = 0
  private highest = 0

  add(ms: number): void {
    const b = bucketOf(ms)
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1)
    this.seen++
    this.highest = Math.max(this.highest, ms)
  }

  /** Adds every sample of `data` (another run's histogram). */
  merge(data: HistogramData): this {
    for (const [b, n] of data.buckets) this.counts.set(b, (this.counts.get(b) ?? 0) + n)
    this.seen += data.count
    this.highest = Math.max(this.highest, data.max)
    return this
  }

  /** p50, p90, p99 (nearest rank) and max, rounded to 0.1 ms; zeros without samples. */
  percentiles(): Percentiles {
    const buckets = this.toJSON().buckets
    const at = (q: number): number => {
      let rank = Math.max(1, Math.ceil(q * this.seen))
      for (const [b, n] of buckets) {
        rank -= n
        if (rank <= 0) return tenth(Math.min(upperEdge(b), this.highest))
      }
      return 0
    }
    return { count: this.seen, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: tenth(this.highest) }
  }

  toJSON(): HistogramData {
    return { count: this.seen, max: this.highest, buckets: [...this.counts].sort((a, b) => a[0] - b[0]) }
  }
}
