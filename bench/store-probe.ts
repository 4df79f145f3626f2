/**
 * Publish→stored latency, traced per heartbeat. The store's 'stored' event
 * carries only a count, but the store writes heartbeats in exactly the
 * order `recordHeartbeat` queued them and each batch takes the whole queue.
 * So the probe keeps a shadow queue of the seqs the broker handed to
 * `recordHeartbeat` (by wrapping that one method on this one instance; the
 * broker's code is unchanged) and, on each 'stored'(n), takes the first n:
 * those are the heartbeats now on disk.
 */
import type { StateStore } from '../broker/devices/state-store.js'
import { LatencyRecorder, type LatencySummary } from './stats.js'

export class StoreProbe {
  /** performance.now() at publish, by heartbeat seq. */
  private readonly sentAt = new Map<number, number>()
  private queued: number[] = []
  private head = 0
  private readonly latency: LatencyRecorder
  stored = 0
  lastStoredAt = 0
  /** Stored heartbeats this probe was not told about (e.g. sent before it was attached). */
  untraced = 0

  constructor(
    private readonly store: StateStore,
    capacity: number,
  ) {
    this.latency = new LatencyRecorder(capacity)
  }

  /** Starts tracing; returns the function that undoes it. */
  attach(): () => void {
    const store = this.store
    const original = store.recordHeartbeat
    store.recordHeartbeat = (deviceId, hb, receivedAt) => {
      this.queued.push(hb.seq)
      original.call(store, deviceId, hb, receivedAt)
    }
    const onStored = (n: number): void => this.onStored(n)
    store.on('stored', onStored)
    return () => {
      store.recordHeartbeat = original
      store.off('stored', onStored)
    }
  }

  /** The load generator reports each send here. */
  sent(seq: number, at: number): void {
    this.sentAt.set(seq, at)
  }

  summary(): LatencySummary {
    return this.latency.summary()
  }

  private onStored(n: number): void {
    const now = performance.now()
    this.stored += n
    this.lastStoredAt = now
    const end = Math.min(this.queued.length, this.head + n)
    this.untraced += n - (end - this.head)
    for (; this.head < end; this.head++) this.take(this.queued[this.head] as number, now)
    if (this.head > 65_536) this.compact()
  }

  private take(seq: number, now: number): void {
    const at = this.sentAt.get(seq)
    if (at === undefined) {
      this.untraced++
      return
    }
    this.sentAt.delete(seq)
    this.latency.record(now - at)
  }

  private compact(): void {
    this.queued = this.queued.slice(this.head)
    this.head = 0
  }
}
