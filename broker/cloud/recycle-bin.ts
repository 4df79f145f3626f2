/**
 * The recycle bin, "recently deleted" (R1-R3), on the one clock:
 * - R1: each entry shows how many days it has left; an entry can be restored.
 * - R2: an entry stays the account's window -- 30 days free, 180 premium --
 *   read from the account when the rule runs, so a membership that ends
 *   (A2) shortens the window of what is already in the bin; then it is
 *   purged, the purge recorded in the cloud log. The owner is told once,
 *   a day before, on every phone of the account.
 * - R3: deleting an entry from the bin removes it for good: the row, the
 *   account's reference to the blob and, once nobody holds it, the blob's
 *   file on disk. No admin path brings it back.
 */
import type { BinView, CloudItem, SyncCategory } from '../../common/cloud/sync-api.js'
import type { Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import { type Db, pluck } from '../db.js'
import type { Accounts } from './accounts.js'
import type { BlobStore } from './blob-store.js'
import type { CloudParts } from './cloud-data.js'
import type { CloudLog } from './cloud-log.js'
import { DueTimer } from '../due-timer.js'
import type { SyncItems } from './items.js'
import { plural } from '../../common/plural.js'

const DAY = 86_400_000
/** R2: the owner hears of a purge this long before it. */
export const PURGE_NOTICE_MS = DAY
/** A purge's log line names this many entries at most. */
const SHOWN = 10

const date = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

export class RecycleBin {
  private readonly timer: DueTimer
  private readonly accounts: Accounts
  private readonly blobs: BlobStore
  private readonly clock: Clock
  private readonly cloudLog: CloudLog
  private readonly log: Logger
  private readonly db: Db
  private readonly sql
  /** The blob sweeps started by purges, so a caller (or a test) can wait for the disk to catch up. */
  private sweeping: Promise<void> = Promise.resolve()
  private readonly onBin = (): void => this.timer.reschedule()

  constructor(
    parts: CloudParts,
    private readonly items: SyncItems,
  ) {
    this.accounts = parts.accounts
    this.blobs = parts.blobs
    this.clock = parts.clock
    this.cloudLog = parts.cloudLog
    this.log = parts.log.child({ component: 'recycle-bin' })
    const db = (this.db = parts.db)
    this.sql = {
      noticed: pluck<[account: string], number>(db, 'SELECT noticed_until FROM bin_notices WHERE account = ?'),
      setNoticed: db.prepare<[account: string, noticedUntil: number]>(
        'INSERT INTO bin_notices (account, noticed_until) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET noticed_until = ' +
          'excluded.noticed_until',
      ),
    }
    this.timer = new DueTimer(
      parts.clock,
      () => this.nextDue(),
      (now) => this.run(now),
      this.log,
      'bin-purge',
    )
  }

  start(): void {
    this.items.on('bin', this.onBin)
    this.accounts.on('membership', this.onBin)
    this.timer.start()
  }

  stop(): void {
    this.timer.stop()
    this.items.off('bin', this.onBin)
    this.accounts.off('membership', this.onBin)
  }

  /** R1: the account's bin with the days each entry has left. */
  view(account: string): BinView {
    const { binMs } = this.accounts.need(account)
    const now = this.clock.now()
    const entries = this.items.bin(account).map((item) => {
      const purgeAt = (item.deletedAt as number) + binMs
      return {
        category: item.category,
        id: item.id,
        size: item.size,
        deletedAt: item.deletedAt as number,
        purgeAt,
        daysLeft: Math.max(0, Math.ceil((purgeAt - now) / DAY)),
      }
    })
    return { now, account, windowDays: Math.round(binMs / DAY), entries }
  }

  /** R3: deletes a bin entry for good and waits until its blob is off the disk (when nobody else holds it). */
  async deleteForever(account: string, category: SyncCategory, id: string): Promise<CloudItem> {
    const item = this.items.purge(account, category, id)
    this.accounts.touch(account, 'delete')
    this.cloudLog.record(account, 'bin-delete-forever', `${category}/${id} deleted from recently deleted by its owner: gone for good`, 1)
    await this.sweep()
    return item
  }

  /** Resolves once every sweep started so far is done. */
  idle(): Promise<void> {
    return this.sweeping
  }

  /** Per account with bin entries: when its oldest entry is purged, and how far ahead the owner was told. */
  private schedule(): { account: string; purgeAt: number; noticedUntil: number | null }[] {
    return this.items.binOldest().map(({ account, oldest }) => ({
      account,
      purgeAt: oldest + this.accounts.need(account).binMs,
      noticedUntil: this.sql.noticed.get(account) ?? null,
    }))
  }

  private nextDue(): number | null {
    let next: number | null = null
    for (const { purgeAt, noticedUntil } of this.schedule()) {
      const due = noticedUntil !== null && purgeAt <= noticedUntil ? purgeAt : purgeAt - PURGE_NOTICE_MS
      next = next === null ? due : Math.min(next, due)
    }
    return next
  }

  private run(now: number): void {
    for (const { account, purgeAt, noticedUntil } of this.schedule()) {
      if (purgeAt - PURGE_NOTICE_MS > now) continue
      const { binMs } = this.accounts.need(account)
      if (noticedUntil === null || purgeAt > noticedUntil) this.notice(account, binMs, now)
      if (purgeAt <= now) this.purgeDue(account, binMs, now)
    }
  }

  /** R2: one notice for everything purged within the next day. */
  private notice(account: string, binMs: number, now: number): void {
    const until = now + PURGE_NOTICE_MS
    const soon = this.items.binDue(account, until - binMs)
    this.sql.setNoticed.run(account, until)
    this.cloudLog.notify(
      account,
      'bin-purge-notice',
      'Recently deleted items will be removed',
      `${plural(soon.length, 'item')} in recently deleted will be permanently deleted by ${date(until)} (kept ` +
        `${Math.round(binMs / DAY)} days). Restore ${soon.length === 1 ? 'it' : 'them'} from the console before then to keep ` +
        `${soon.length === 1 ? 'it' : 'them'}.`,
    )
  }

  private purgeDue(account: string, binMs: number, now: number): void {
    const due = this.items.binDue(account, now - binMs)
    this.db.transaction(() => {
      for (const item of due) this.items.purge(account, item.category, item.id)
    })()
    const names =
      due
        .slice(0, SHOWN)
        .map((i) => `${i.category}/${i.id}`)
        .join(', ') + (due.length > SHOWN ? ` and ${due.length - SHOWN} more` : '')
    this.cloudLog.record(
      account,
      'bin-purge',
      `${plural(due.length, 'item')} purged from recently deleted after ${Math.round(binMs / DAY)} days: ${names}`,
      due.length,
    )
    void this.sweep()
  }

  private sweep(): Promise<void> {
    this.sweeping = this.sweeping
      .then(() => this.blobs.sweep())
      .then(
        (removed) => this.log.debug({ removed }, 'swept blobs nobody holds'),
        /* c8 ignore next -- a failing disk; the next sweep tries again */
        (err: unknown) => this.log.error({ err }, 'could not sweep blobs'),
      )
    return this.sweeping
  }
}
