/**
 * What `console clock advance` did, in the terms a user can look up: the
 * entries the cloud's rules wrote to the cloud log on the way (A1-A3, B3,
 * D4, R2, M1: every rule that acts on an account's data says so there),
 * and the commands (F2) and notifications (X3) that expired or were queued
 * meanwhile. The clock's own count of timers that fell due is no such
 * measure: the rules also wake to look again (a day at most apart, for rows
 * another process added) and a cron schedule fires when nothing is planned,
 * so an empty cloud counted 28 timers in 7 days with nothing done.
 */
import type { AdvanceEffects } from '../../common/cloud/clock-api.js'
import type { Db } from '../db.js'
import { pluck } from '../db.js'

/** What fell due and did something between `from` and `now` of an advance; its schema is the console's (common/cloud/clock-api.ts). */
export type { AdvanceEffects }

export class AdvanceWatch {
  private readonly sql

  constructor(db: Db) {
    this.sql = {
      lastSeq: pluck<[], number>(db, 'SELECT COALESCE(MAX(seq), 0) FROM cloud_log'),
      log: db.prepare<[seq: number], { rule: string; entries: number }>(
        'SELECT rule, COUNT(*) AS entries FROM cloud_log WHERE seq > ? GROUP BY rule ORDER BY MIN(seq)',
      ),
      accounts: pluck<[seq: number], string>(db, 'SELECT DISTINCT account FROM cloud_log WHERE seq > ? ORDER BY account'),
      commandsExpired: pluck<[from: number, to: number], number>(
        db,
        "SELECT COUNT(*) FROM commands WHERE state = 'expired' AND updated_at > ? AND updated_at <= ?",
      ),
      notificationsQueued: pluck<[from: number, to: number], number>(
        db,
        'SELECT COUNT(*) FROM notifications WHERE created_at > ? AND created_at <= ?',
      ),
      notificationsExpired: pluck<[from: number, to: number], number>(
        db,
        "SELECT COUNT(*) FROM notifications WHERE state = 'expired' AND expired_at > ? AND expired_at <= ?",
      ),
    }
  }

  /** Runs `advance` (the clock's jump, from `from`, on the cloud's time) and says what it did; `now()` is read after it. */
  async around(from: number, advance: () => Promise<void>, now: () => number): Promise<AdvanceEffects> {
    const seq = this.sql.lastSeq.get() as number
    await advance()
    const to = now()
    return {
      log: this.sql.log.all(seq),
      accounts: this.sql.accounts.all(seq),
      commandsExpired: this.sql.commandsExpired.get(from, to) as number,
      notificationsQueued: this.sql.notificationsQueued.get(from, to) as number,
      notificationsExpired: this.sql.notificationsExpired.get(from, to) as number,
    }
  }
}
