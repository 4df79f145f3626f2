/**
 * D4: once an account's cloud service is turned off, its drive files are
 * kept `keepMs` (7 days), then deleted in batches of `batchSize`, one batch
 * every `batchEveryMs`, without further notice. The owner is told once, at
 * the moment the service goes off, when that will happen (a notice before a
 * rule destroys data). Turned back on in time, nothing is deleted. Every
 * batch is written to the cloud log. A3's freeze clears the drive at once.
 */
import { formatAge, utcDate } from '../../common/clock.js'
import type { CloudParts } from './cloud-data.js'
import type { DriveStore } from './drive-store.js'
import { DueTimer } from '../due-timer.js'
import { one, pluck } from '../db.js'
import { isAre, plural } from '../../common/plural.js'

const DAY = 86_400_000

export interface DriveRules {
  /** D4: how long files stay after the service was turned off, ms. */
  keepMs: number
  /** D4: files deleted per batch. */
  batchSize: number
  /** D4: time between batches, ms. */
  batchEveryMs: number
}

export const DEFAULT_DRIVE_RULES: DriveRules = { keepMs: 7 * DAY, batchSize: 100, batchEveryMs: 3_600_000 }

export class DriveCleanup {
  private readonly timer: DueTimer
  private readonly sql

  constructor(
    private readonly parts: CloudParts,
    private readonly files: DriveStore,
    private readonly rules: DriveRules,
  ) {
    const { db, clock, log, accounts } = parts
    this.sql = {
      next: pluck<[], number | null>(db, 'SELECT MIN(next_at) FROM drive_cleanup'),
      due: pluck<[now: number], string>(db, 'SELECT account FROM drive_cleanup WHERE next_at <= ? ORDER BY next_at, account'),
      plan: db.prepare<[account: string, nextAt: number]>(
        'INSERT INTO drive_cleanup (account, next_at) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET next_at = excluded.next_at',
      ),
      cancel: db.prepare<[account: string]>('DELETE FROM drive_cleanup WHERE account = ?'),
    }
    this.timer = new DueTimer(
      clock,
      () => one(this.sql.next),
      (now) => this.runBatches(now),
      log,
      'drive-cleanup',
    )
    accounts.on('service-off', (account, at) => this.serviceOff(account, at))
    accounts.on('service-on', (account) => {
      this.sql.cancel.run(account)
      this.timer.reschedule()
    })
    accounts.onFreeze('drive files', (account) => {
      this.sql.cancel.run(account)
      return files.removeOldest(account, Number.MAX_SAFE_INTEGER)
    })
  }

  start(): void {
    this.timer.start()
  }

  stop(): void {
    this.timer.stop()
  }

  private serviceOff(account: string, at: number): void {
    const count = this.files.count(account)
    if (count === 0) return
    const deleteAt = at + this.rules.keepMs
    this.sql.plan.run(account, deleteAt)
    this.parts.cloudLog.notify(
      account,
      'drive-cleanup-notice',
      'Your cloud drive files will be deleted',
      `The cloud service was turned off. Your ${plural(count, 'drive file')} ${isAre(count)} kept until ` +
        `${utcDate(deleteAt)} and then deleted. Turn the cloud service back on before then to keep your files.`,
    )
    this.timer.reschedule()
  }

  private runBatches(now: number): void {
    const { db, cloudLog } = this.parts
    for (const account of this.sql.due.all(now)) {
      const removed = db.transaction(() => {
        const n = this.files.removeOldest(account, this.rules.batchSize)
        if (this.files.count(account) > 0) this.sql.plan.run(account, now + this.rules.batchEveryMs)
        else this.sql.cancel.run(account)
        return n
      })()
      cloudLog.record(
        account,
        'drive-cleanup',
        `kept ${formatAge(this.rules.keepMs)} after the cloud service was turned off: deleted ${plural(removed, 'drive file')}`,
        removed,
      )
    }
    this.sweep()
  }

  /** The bytes of deleted files leave the disk too, unless another item still holds them. */
  private sweep(): void {
    const { blobs, log } = this.parts
    void blobs.eraseDeleted().then((removed) => log.info({ removed }, 'drive clean-up: unreferenced blobs removed'))
  }
}
