/**
 * B3: what happens to an account's backups after its cloud service is
 * turned off. They stay viewable; `readOnlyAfterMs` (72 h) after the
 * service went off they become read-only (viewed, downloaded and restored
 * from, never deleted, changed or added to) and the owner is told when the
 * clean-up will start; `cleanupDelayMs` after that they are removed
 * gradually, `batchSize` oldest first every `batchIntervalMs`, each batch in
 * the cloud log. The service turned back on before they are all gone makes
 * the rest active again. Both rules run on DueTimers, so moving the clock
 * runs them in order.
 */
import type { Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import type { RetentionView } from '../../common/cloud/backup-api.js'
import { type Db, one, pluck } from '../db.js'
import { FakephoneError } from '../../common/errors.js'
import type { BackupStore } from './backup-store.js'
import type { CloudLog } from './cloud-log.js'
import { DueTimer } from '../due-timer.js'
import { isAre, plural } from '../../common/plural.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

export interface RetentionRules {
  /** B3: the service off this long makes the backups read-only, ms (72 h). */
  readOnlyAfterMs: number
  /** Read-only this long before the clean-up starts, ms. */
  cleanupDelayMs: number
  /** Packages removed per batch. */
  batchSize: number
  /** Time between batches, ms. */
  batchIntervalMs: number
}

export const DEFAULT_RETENTION_RULES: RetentionRules = {
  readOnlyAfterMs: 72 * HOUR,
  cleanupDelayMs: 7 * DAY,
  batchSize: 10,
  batchIntervalMs: DAY,
}

interface Row {
  account: string
  off_at: number
  read_only_at: number | null
  cleaning_from: number | null
  next_batch_at: number | null
}

export class ReadOnlyError extends FakephoneError {
  constructor(message: string) {
    super('READ_ONLY', message)
  }
}

const day = (at: number): string => new Date(at).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'

export class BackupRetention {
  private readonly readOnlyTimer: DueTimer
  private readonly cleanupTimer: DueTimer
  private readonly sql

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly store: BackupStore,
    private readonly cloudLog: CloudLog,
    log: Logger,
    readonly rules: RetentionRules,
  ) {
    this.sql = {
      get: db.prepare<[account: string], Row>('SELECT * FROM backup_retention WHERE account = ?'),
      begin: db.prepare<[account: string, offAt: number]>('INSERT OR IGNORE INTO backup_retention (account, off_at) VALUES (?, ?)'),
      // Accounts whose service went off while the broker was down, or before backups existed.
      reconcileOff: db.prepare<[]>(
        'INSERT OR IGNORE INTO backup_retention (account, off_at) SELECT id, service_off_at FROM accounts WHERE service_off_at IS NOT NULL',
      ),
      reconcileOn: db.prepare<[]>('DELETE FROM backup_retention WHERE account IN (SELECT id FROM accounts WHERE service_off_at IS NULL)'),
      end: db.prepare<[account: string]>('DELETE FROM backup_retention WHERE account = ?'),
      nextReadOnly: pluck<[readOnlyAfter: number], number | null>(
        db,
        'SELECT MIN(off_at) + ? FROM backup_retention WHERE read_only_at IS NULL',
      ),
      dueReadOnly: db.prepare<[readOnlyAfter: number, now: number], Row>(
        'SELECT * FROM backup_retention WHERE read_only_at IS NULL AND off_at + ? <= ? ORDER BY off_at',
      ),
      readOnly: db.prepare<[readOnlyAt: number, cleaningFrom: number, nextBatchAt: number | null, account: string]>(
        'UPDATE backup_retention SET read_only_at = ?, cleaning_from = ?, next_batch_at = ? WHERE account = ?',
      ),
      nextBatch: pluck<[], number | null>(db, 'SELECT MIN(next_batch_at) FROM backup_retention'),
      dueBatch: db.prepare<[now: number], Row>('SELECT * FROM backup_retention WHERE next_batch_at <= ? ORDER BY next_batch_at'),
      setNextBatch: db.prepare<[nextBatchAt: number | null, account: string]>(
        'UPDATE backup_retention SET next_batch_at = ? WHERE account = ?',
      ),
    }
    this.readOnlyTimer = new DueTimer(
      clock,
      () => one(this.sql.nextReadOnly, rules.readOnlyAfterMs),
      (now) => this.makeReadOnly(now),
      log,
      'backup-read-only',
    )
    this.cleanupTimer = new DueTimer(
      clock,
      () => one(this.sql.nextBatch),
      (now) => this.cleanBatches(now),
      log,
      'backup-cleanup',
    )
  }

  start(): void {
    this.sql.reconcileOff.run()
    this.sql.reconcileOn.run()
    this.readOnlyTimer.start()
    this.cleanupTimer.start()
  }

  stop(): void {
    this.readOnlyTimer.stop()
    this.cleanupTimer.stop()
  }

  /** The account's last phone turned the cloud service off at `at`: the 72 h start. */
  serviceOff(account: string, at: number): void {
    this.sql.begin.run(account, at)
    this.readOnlyTimer.reschedule()
  }

  /** The service is back: whatever is left is active again. */
  serviceOn(account: string): void {
    const row = this.sql.get.get(account)
    if (!row) return
    this.sql.end.run(account)
    if (row.read_only_at !== null)
      this.cloudLog.record(
        account,
        'backup-active',
        'cloud service back on: the remaining backups are active again; the clean-up stopped',
        this.store.count(account),
      )
    this.readOnlyTimer.reschedule()
    this.cleanupTimer.reschedule()
  }

  view(account: string): RetentionView {
    const row = this.sql.get.get(account)
    if (!row) return { state: 'active', serviceOffAt: null, readOnlyAt: null, cleaningFrom: null, nextBatchAt: null }
    const now = this.clock.now()
    const state = row.cleaning_from !== null && row.cleaning_from <= now ? 'cleaning' : row.read_only_at !== null ? 'read-only' : 'active'
    return {
      state,
      serviceOffAt: row.off_at,
      readOnlyAt: row.read_only_at ?? row.off_at + this.rules.readOnlyAfterMs,
      cleaningFrom: row.cleaning_from ?? row.off_at + this.rules.readOnlyAfterMs + this.rules.cleanupDelayMs,
      nextBatchAt: row.next_batch_at,
    }
  }

  /** Throws READ_ONLY when the account's backups may no longer be changed. */
  assertWritable(account: string, what: string): void {
    const v = this.view(account)
    if (v.state !== 'active') {
      throw new ReadOnlyError(
        `cannot ${what}: the account's backups are read-only since ${day(v.readOnlyAt as number)} (the cloud service has been ` +
          `off since ${day(v.serviceOffAt as number)}); they can still be viewed, downloaded and restored from. Turn the cloud ` +
          `service back on to make them active again`,
      )
    }
  }

  private makeReadOnly(now: number): void {
    const { readOnlyAfterMs, cleanupDelayMs } = this.rules
    for (const row of this.sql.dueReadOnly.all(readOnlyAfterMs, now)) {
      const readOnlyAt = row.off_at + readOnlyAfterMs
      const cleaningFrom = readOnlyAt + cleanupDelayMs
      const count = this.store.count(row.account)
      this.sql.readOnly.run(readOnlyAt, cleaningFrom, count > 0 ? cleaningFrom : null, row.account)
      this.cloudLog.record(
        row.account,
        'backup-read-only',
        `cloud service off for 72 h: backups are read-only; clean-up starts ${day(cleaningFrom)}`,
        count,
      )
      if (count === 0) continue
      // Told before anything is destroyed.
      this.cloudLog.notify(
        row.account,
        'backup-cleanup-notice',
        'Your cloud backups will be removed',
        `The cloud service has been off since ${day(row.off_at)}. Your ${plural(count, 'backup')} ${isAre(count)} read-only now ` +
          `and will be removed gradually from ${day(cleaningFrom)}. Turn the cloud service back on to keep your backups.`,
      )
    }
    this.cleanupTimer.reschedule()
  }

  private cleanBatches(now: number): void {
    const { batchSize, batchIntervalMs } = this.rules
    for (const row of this.sql.dueBatch.all(now)) {
      const batch = this.store.oldest(row.account, batchSize)
      const released = this.store.remove(batch)
      const left = this.store.count(row.account)
      this.sql.setNextBatch.run(left > 0 ? (row.next_batch_at as number) + batchIntervalMs : null, row.account)
      this.cloudLog.record(
        row.account,
        'backup-cleanup',
        `cloud service off: removed ${plural(batch.length, 'backup')} (${released} bytes); ${left} left`,
        batch.length,
      )
    }
    this.store.sweepSoon()
  }
}
