/**
 * X2: what the cloud received of each device's behaviour logs. A batch is
 * written in one transaction; `(device, seq)` is the key, so a batch sent
 * again after a lost acknowledgement is stored once. A batch that fails on
 * an event is written again event by event: each bad event is reported and
 * the rest stored, never thrown at the ingest path. What the database cannot
 * take for its own state (full, failing: common/storage-errors.ts) is handed
 * back as `held`, for the caller to write again (framework-services.ts).
 */
import type { LogSummary, ReceivedEvent } from '../../common/console-api.js'
import type { BehaviourEvent } from '../../common/contract.js'
import { storageFailure } from '../../common/storage-errors.js'
import { type Db, one, pluck } from '../db.js'

export type { LogSummary, ReceivedEvent }

export interface RecordResult {
  /** Events that were new. */
  stored: number
  /** Events that could not be written, with why. */
  refused: { seq: number; reason: string }[]
  /** Events the database could not take now (full, failing), and why; null when none. */
  held: { events: readonly BehaviourEvent[]; reason: string } | null
}

export class BehaviourLogStore {
  private readonly sql
  private readonly insertBatch

  constructor(db: Db) {
    this.sql = {
      insert: db.prepare<[BehaviourEvent & { deviceId: string; receivedAt: number }]>(
        `INSERT OR IGNORE INTO behaviour_logs (device_id, seq, at, type, detail, received_at)
         VALUES (@deviceId, @seq, @at, @type, @detail, @receivedAt)`,
      ),
      list: db.prepare<[deviceId: string, limit: number], ReceivedEvent>(
        `SELECT seq, at, type, detail, received_at AS receivedAt FROM behaviour_logs
         WHERE device_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
      summary: db.prepare<[deviceId: string], LogSummary>(
        'SELECT COUNT(*) AS events, MAX(received_at) AS lastReceivedAt FROM behaviour_logs WHERE device_id = ?',
      ),
      lastSeq: pluck<[deviceId: string], number | null>(db, 'SELECT MAX(seq) FROM behaviour_logs WHERE device_id = ?'),
    }
    this.insertBatch = db.transaction((deviceId: string, events: readonly BehaviourEvent[], receivedAt: number) => {
      let stored = 0
      for (const e of events) stored += this.sql.insert.run({ deviceId, ...e, receivedAt }).changes
      return stored
    })
  }

  /**
   * Stores a batch in one transaction, or event by event when that fails on an event; a storage failure hands back
   * what is left as `held`.
   */
  record(deviceId: string, events: readonly BehaviourEvent[], receivedAt: number): RecordResult {
    try {
      return { stored: this.insertBatch(deviceId, events, receivedAt), refused: [], held: null }
    } catch (err) {
      const failure = storageFailure(err)
      if (failure) return { stored: 0, refused: [], held: { events, reason: failure } }
      const result: RecordResult = { stored: 0, refused: [], held: null }
      for (const [i, e] of events.entries()) {
        try {
          result.stored += this.sql.insert.run({ deviceId, ...e, receivedAt }).changes
        } catch (err) {
          const failure = storageFailure(err)
          if (failure) {
            result.held = { events: events.slice(i), reason: failure }
            break
          }
          result.refused.push({ seq: e.seq, reason: (err as Error).message })
        }
      }
      return result
    }
  }

  /** Newest first. */
  list(deviceId: string, limit: number): ReceivedEvent[] {
    return this.sql.list.all(deviceId, limit)
  }

  /** The highest seq stored of the device, null: none. */
  lastSeq(deviceId: string): number | null {
    return one(this.sql.lastSeq, deviceId)
  }

  summary(deviceId: string): LogSummary {
    return one(this.sql.summary, deviceId)
  }
}
