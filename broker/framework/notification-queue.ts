/**
 * X3: the push gateway's durable queue of notifications (SQLite, so a queue
 * survives a broker restart). Every notification has one of three states:
 *  - queued: waiting for its device (or sent and not yet acknowledged);
 *  - delivered: the device acknowledged it; its delay is delivery time minus creation time;
 *  - expired: its time-to-live ran out before the device took it. It is kept
 *    and shown as expired, never dropped silently.
 * Order is the order notifications were queued. Expiry is one DueTimer on
 * the injected clock, set for the earliest deadline of anything still
 * queued; a failure is logged and retried, never fatal.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Clock } from '../../common/clock.js'
import type { NotificationRecord, NotificationState } from '../../common/console-api.js'
import type { Logger } from '../../common/log.js'
import type { NotificationKind, PushNotification } from '../../common/push-protocol.js'
import { type Db, one, pluck } from '../db.js'
import { DueTimer } from '../due-timer.js'

export type { NotificationRecord, NotificationState }

export interface NewNotification {
  kind: NotificationKind
  title: string
  body: string
  /** Time to live, ms; DEFAULT_TTL_MS when absent. */
  ttlMs?: number
}

/** Four weeks, like the longest time-to-live of the big push services. */
export const DEFAULT_TTL_MS = 28 * 86_400_000

export type AckResult = { outcome: 'delivered'; record: NotificationRecord } | { outcome: 'already delivered' | 'unknown' }

interface QueueEvents {
  queued: [record: NotificationRecord]
  delivered: [record: NotificationRecord]
  expired: [records: NotificationRecord[]]
}

interface Row {
  id: string
  device_id: string
  kind: NotificationKind
  title: string
  body: string
  created_at: number
  expires_at: number
  state: NotificationState
  sends: number
  delivered_at: number | null
  expired_at: number | null
}

/** The named parameters of a new notification's row. */
interface NewRow {
  id: string
  deviceId: string
  kind: NotificationKind
  title: string
  body: string
  createdAt: number
  expiresAt: number
}

function toRecord(r: Row): NotificationRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    kind: r.kind,
    title: r.title,
    body: r.body,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    state: r.state,
    sends: r.sends,
    deliveredAt: r.delivered_at,
    delayMs: r.delivered_at === null ? null : r.delivered_at - r.created_at,
    expiredAt: r.expired_at,
  }
}

/** Just what a device receives. */
export function toNotification(r: NotificationRecord): PushNotification {
  return { id: r.id, kind: r.kind, title: r.title, body: r.body, createdAt: r.createdAt, expiresAt: r.expiresAt }
}

export class NotificationQueue extends EventEmitter<QueueEvents> {
  private readonly sql
  private readonly expiry: DueTimer

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    super()
    this.sql = {
      insert: db.prepare<[NewRow], Row>(
        `INSERT INTO notifications (id, device_id, kind, title, body, created_at, expires_at)
         VALUES (@id, @deviceId, @kind, @title, @body, @createdAt, @expiresAt) RETURNING *`,
      ),
      pending: db.prepare<[deviceId: string, now: number], Row>(
        `SELECT * FROM notifications WHERE device_id = ? AND state = 'queued' AND expires_at > ? ORDER BY seq`,
      ),
      sent: db.prepare<[id: string]>('UPDATE notifications SET sends = sends + 1 WHERE id = ?'),
      get: db.prepare<[id: string, deviceId: string], Row>('SELECT * FROM notifications WHERE id = ? AND device_id = ?'),
      deliver: db.prepare<[deliveredAt: number, id: string], Row>(
        `UPDATE notifications SET state = 'delivered', delivered_at = ? WHERE id = ? AND state != 'delivered' RETURNING *`,
      ),
      expire: db.prepare<[{ now: number }], Row>(
        `UPDATE notifications SET state = 'expired', expired_at = @now WHERE state = 'queued' AND expires_at <= @now RETURNING *`,
      ),
      nextDeadline: pluck<[], number | null>(db, `SELECT MIN(expires_at) FROM notifications WHERE state = 'queued'`),
      list: db.prepare<[deviceId: string, limit: number], Row>(
        'SELECT * FROM (SELECT * FROM notifications WHERE device_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
      ),
      counts: db.prepare<[deviceId: string], { state: NotificationState; n: number }>(
        'SELECT state, COUNT(*) AS n FROM notifications WHERE device_id = ? GROUP BY state',
      ),
    }
    this.expiry = new DueTimer(
      clock,
      () => one(this.sql.nextDeadline),
      (now) => this.expireDue(now),
      log,
      'notification-expiry',
    )
  }

  /** Expires what ran out while the broker was down and sets the expiry timer. */
  start(): void {
    this.expiry.startNow()
  }

  stop(): void {
    this.expiry.stop()
  }

  /** Queues a notification for a registered device. */
  enqueue(deviceId: string, n: NewNotification): NotificationRecord {
    const createdAt = this.clock.now()
    const row = one(this.sql.insert, {
      id: randomUUID(),
      deviceId,
      kind: n.kind,
      title: n.title,
      body: n.body,
      createdAt,
      expiresAt: createdAt + (n.ttlMs ?? DEFAULT_TTL_MS),
    })
    const record = toRecord(row)
    this.log.info({ deviceId, id: record.id, kind: record.kind }, 'notification queued')
    // A new deadline moves nothing else earlier: arm for it in constant time, not a look-up per notification (a year's
    // service notices for a fleet, queued during one `clock advance`, would each ask for the earliest deadline).
    this.expiry.dueBy(record.expiresAt)
    this.emit('queued', record)
    return record
  }

  /** What the device should still get, oldest first: queued and not past its time to live. */
  pending(deviceId: string): NotificationRecord[] {
    return this.sql.pending.all(deviceId, this.clock.now()).map(toRecord)
  }

  /** Counts one more send of `id`. */
  sent(id: string): void {
    this.sql.sent.run(id)
  }

  /**
   * The device acknowledged `id`. It becomes delivered -- even when its time
   * to live ran out between sending and the acknowledgement: the user did see it.
   */
  acknowledge(deviceId: string, id: string): AckResult {
    const existing = this.sql.get.get(id, deviceId)
    if (!existing) return { outcome: 'unknown' }
    const row = this.sql.deliver.get(this.clock.now(), id)
    if (!row) return { outcome: 'already delivered' }
    const record = toRecord(row)
    this.emit('delivered', record)
    return { outcome: 'delivered', record }
  }

  /** The newest `limit` notifications of a device, oldest first. */
  list(deviceId: string, limit: number): NotificationRecord[] {
    return this.sql.list.all(deviceId, limit).map(toRecord)
  }

  counts(deviceId: string): Record<NotificationState, number> {
    const counts = { queued: 0, delivered: 0, expired: 0 }
    for (const { state, n } of this.sql.counts.all(deviceId)) counts[state] = n
    return counts
  }

  private expireDue(now: number): void {
    const expired = this.sql.expire.all({ now }).map(toRecord)
    if (expired.length > 0) {
      this.log.info({ count: expired.length, ids: expired.map((r) => r.id) }, 'notifications expired before delivery')
      this.emit('expired', expired)
    }
  }
}
