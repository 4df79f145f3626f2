/**
 * What a fleet run counts: every heartbeat, command and notification, from
 * the phones' side (sent, acknowledged) and the console's (issued, answered,
 * shown), with latency histograms for percentiles. The report reconciles them.
 */
import { LatencyHistogram } from './histogram.js'
import { SeqSet } from './seq-set.js'

export class Tally {
  readonly heartbeats = { sent: 0, acked: 0, duplicateAcks: 0 }
  /** Per device: the heartbeat seqs sent and acknowledged in this run (as ranges: a phone's seqs follow one another). */
  readonly sentSeqs = new Map<string, SeqSet>()
  readonly ackedSeqs = new Map<string, SeqSet>()
  readonly heartbeatAck = new LatencyHistogram()
  /**
   * `unsent`: issued, but the console API did not take it (an error other than a refusal): lost. `answered`: the phones'
   * own count, this run's commands they answered as planned (the receipt each journaled, F2), whatever the console knows.
   */
  readonly commands = { issued: 0, refused: 0, received: 0, answered: 0, failedByScenario: 0, ignoredByScenario: 0, unsent: 0 }
  readonly commandAnswer = new LatencyHistogram()
  readonly notifications = { issued: 0, shown: 0, duplicates: 0 }
  readonly notificationDelay = new LatencyHistogram()
  /** `restarts`: starts of a phone back from an outage (also in `started`). */
  readonly phones = { started: 0, restarts: 0, stopped: 0, outages: 0, switches: 0, switchesRefused: 0, startFailures: 0 }
  /**
   * The syncing phones' transfers (fleet/transfers.ts): items seeded and uploaded (acknowledged by the cloud, each item
   * once), failed attempts, backups made and failed.
   */
  readonly transfers = { seeded: 0, uploaded: 0, failed: 0, backupsMade: 0, backupsFailed: 0 }
  /** Failed transfer attempts by the cloud's error code. */
  readonly transferFailures = new Map<string, number>()
  /** Per device: its account and the items (`category/id`) whose upload the cloud acknowledged, for the report to look up. */
  readonly uploadedItems = new Map<string, { account: string; items: Set<string> }>()

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

  /** An item's upload acknowledged; false when it was counted already (uploaded again). */
  itemUploaded(device: string, account: string, item: string): boolean {
    let mine = this.uploadedItems.get(device)
    if (!mine) this.uploadedItems.set(device, (mine = { account, items: new Set() }))
    if (mine.items.has(item)) return false
    mine.items.add(item)
    this.transfers.uploaded++
    return true
  }

  transferFailed(code: string): void {
    this.transfers.failed++
    this.transferFailures.set(code, (this.transferFailures.get(code) ?? 0) + 1)
  }
}

function setOf(map: Map<string, SeqSet>, key: string): SeqSet {
  let set = map.get(key)
  if (!set) map.set(key, (set = new SeqSet()))
  return set
}
