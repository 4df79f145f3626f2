/**
 * X2: what the cloud received of each device's behaviour logs. A batch is
 * written in one transaction; `(device, seq)` is the key, so a batch sent
 * again after a lost acknowledgement is stored once.
 */
import type { LogSummary, ReceivedEvent } from '../common/console-api.js'
import type { BehaviourEvent } from '../common/contract.js'
import type { Db } from './db.js'


export type { LogSummary, ReceivedEvent }

export class BehaviourLogStore {
  private readonly sql
  private readonly insertBatch

  constructor(db: Db) {
    this.sql = {
      insert: db.prepare(
        `INSERT OR IGNORE INTO behaviour_logs (device_id, seq, at, type, detail, received_at)
         VALUES (@deviceId, @seq, @at, @type, @detail, @receivedAt)`,
      ),
      list: db.prepare(
        `SELECT seq, at, type, detail, received_at AS receivedAt FROM behaviour_logs
         WHERE device_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
      summary: db.prepare('SELECT COUNT(*) AS events, MAX(received_at) AS lastReceivedAt FROM behaviour_logs WHERE device_id = ?'),
    }
    this.insertBatch = db.transaction((deviceId: string, events: readonly BehaviourEvent[], receivedAt: number) => {
      let stored = 0
      for (const e of events) stored += this.sql.insert.run({ deviceId, ...e, receivedAt }).changes
      return stored
    })
  }

  /** Stores a batch; returns how many events were new. */
  record(deviceId: string, events: readonly BehaviourEvent[], receivedAt: number): number {
    return this.insertBatch(deviceId, events, receivedAt)
  }

  /** Newest first. */
  list(deviceId: string, limit: number): ReceivedEvent[] {
    return this.sql.list.all(deviceId, limit) as ReceivedEvent[]
  }

  summary(deviceId: string): LogSummary {
    return this.sql.summary.get(deviceId) as LogSummary
  }
}
