/**
 * What a fleet run counts: every heartbeat, command and notification, from
 * the phones' side (sent, acknowledged) and the console's (issued, answered,
 * shown), with latency samples for percentiles. The report reconciles them.
 */

/** Latency samples, kept up to a bound (a uniform reservoir beyond it), for percentiles. */
export class Samples {
  private readonly values: number[] = []
  private seen = 0

  constructor(
    private readonly bound = 100_000,
    private readonly random: () => number = Math.random,
  ) {}

  add(v: number): void {
    this.seen++
    if (this.values.length < this.bound) this.values.push(v)
    else {
      const k = Math.floor(this.random() * this.seen)
      if (k < this.bound) this.values[k] = v
    }
  }

  /** p50, p90, p99 and max, rounded to 0.1 ms; zeros without samples. */
  percentiles(): { count: number; p50: number; p90: number; p99: number; max: number } {
    const sorted = [...this.values].sort((a, b) => a - b)
    const at = (q: number): number => {
      if (sorted.length === 0) return 0
      return Math.round((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number) * 10) / 10
    }
    return { count: this.seen, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) }
  }
}

export class Tally {
  readonly heartbeats = { sent: 0, acked: 0, duplicateAcks: 0 }
  /** Per device: the heartbeat seqs sent and acknowledged in this run. */
  readonly sentSeqs = new Map<string, Set<number>>()
  readonly ackedSeqs = new Map<string, Set<number>>()
  readonly heartbeatAck = new Samples()
  readonly commands = { issued: 0, refused: 0, received: 0, answered: 0, failedByScenario: 0, ignoredByScenario: 0 }
  readonly commandAnswer = new Samples()
  readonly notifications = { issued: 0, shown: 0, duplicates: 0 }
  readonly notificationDelay = new Samples()
  readonly phones = { started: 0, stopped: 0, outages: 0, switches: 0, switchesRefused: 0, startFailures: 0 }

  heartbeatSent(device: string, seq: number): void {
    this.heartbeats.sent++
    setOf(this.sentSeqs, device).add(seq)
    setOf(this.ackedSeqs, device)
  }

  heartbeatAcked(device: string, seq: number, ms: number): void {
    const acked = setOf(this.ackedSeqs, device)
    if (acked.has(seq)) {
      this.heartbeats.duplicateAcks++
      return
    }
    acked.add(seq)
    this.heartbeats.acked++
    this.heartbeatAck.add(ms)
  }
}

function setOf(map: Map<string, Set<number>>, key: string): Set<number> {
  let set = map.get(key)
  if (!set) map.set(key, (set = new Set()))
  return set
}
