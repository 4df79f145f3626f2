/**
 * What the cloud's rules did to an account's data, kept for the owner and
 * the console: every purge, every clean-up batch, every freeze is a row
 * here and a line in the broker's log. `notify` also tells the owner, on
 * every phone of the account over the push channel (X1), before a rule
 * destroys cloud data; `tell` after one did (A3's freeze), its entry the record.
 */
import type { CloudLogEntry } from '../../common/cloud/account-api.js'
import type { Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import type { Db } from '../db.js'
import type { NotificationQueue } from '../framework/notification-queue.js'
import type { NotificationKind } from '../../common/push-protocol.js'

/** One line of the cloud log; its schema is the console client's (common/cloud/account-api.ts). */
export type { CloudLogEntry } from '../../common/cloud/account-api.js'

/** Notices live as long as the longest rule they announce, so a phone that is away a while still gets them. */
const NOTICE_TTL_MS = 90 * 86_400_000

export class CloudLog {
  private readonly sql

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly push: NotificationQueue,
    /** Hears the account of every entry: what a rule did changed the account's data (account-changes.ts). */
    private readonly changed: (account: string) => void,
  ) {
    this.sql = {
      insert: db.prepare<[string, number, string, string, number]>(
        'INSERT INTO cloud_log (account, at, rule, message, count) VALUES (?, ?, ?, ?, ?)',
      ),
      list: db.prepare<[string, number], CloudLogEntry>(
        'SELECT seq, account, at, rule, message, count FROM cloud_log WHERE account = ? ORDER BY seq DESC LIMIT ?',
      ),
      devices: db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE account = ? ORDER BY id'),
    }
  }

  /** Writes one entry and the same line to the broker's log. */
  record(account: string, rule: string, message: string, count = 0): void {
    this.sql.insert.run(account, this.clock.now(), rule, message, count)
    this.log.info({ account, rule, count }, message)
    this.changed(account)
  }

  /** Tells the owner on every phone of the account (push, kind "cloud" unless said) and records it. */
  notify(account: string, rule: string, title: string, body: string, kind: NotificationKind = 'cloud'): void {
    this.tell(account, title, body, kind)
    this.record(account, rule, `notice sent: ${title}`)
  }

  /** Tells the owner on every phone of the account (push, kind "cloud" unless said), where an entry of its own records it. */
  tell(account: string, title: string, body: string, kind: NotificationKind = 'cloud'): void {
    for (const { id: deviceId } of this.sql.devices.all(account)) {
      this.push.enqueue(deviceId, { kind, title, body, ttlMs: NOTICE_TTL_MS })
    }
  }

  /** Newest first. */
  list(account: string, limit: number): CloudLogEntry[] {
    return this.sql.list.all(account, limit)
  }
}
