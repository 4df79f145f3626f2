/**
 * The recycle bin, "recently deleted" (R1-R3), on the one clock:
 * - R1: each entry shows how many days it has left; an entry can be restored.
 * - R2: an entry stays the account's window -- 30 days free, 180 premium --
 *   read from the account when the rule runs, so a membership that ends
 *   (A2) shortens the window of what is already in the bin; then it is
 *   purged, the purge recorded in the cloud log. The owner is told on every
 *   phone of the account a day before, in one notice for what goes within
 *   the day after that; an entry never goes sooner than a day after the
 *   notice that named it (so a window a membership's end shortened at once
 *   ends a day after its notice, not at the notice).
 * - R3: deleting an entry from the bin removes it for good: the row, the
 *   account's reference to the blob and, once nobody holds it, the blob's
 *   file on disk. No admin path brings it back.
 */
import type { BinView, CloudItem, SyncCategory } from '../../common/cloud/sync-api.js'
import type { Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import type { Db } from '../db.js'
import type { Accounts } from './accounts.js'
import type { BlobStore } from './blob-store.js'
import type { CloudParts } from './cloud-data.js'
import type { CloudLog } from './cloud-log.js'
import { DueTimer } from '../due-timer.js'
import type { BinRule, SyncItems } from './items.js'
import { plural } from '../../common/plural.js'
import { utcDate } from '../../common/format-time.js'

const DAY = 86_400_000
/** R2: the owner hears of a purge this long before it, at least. */
const PURGE_NOTICE_MS = DAY
/** R2: a notice names every entry whose window ends this soon: what goes within a day of the first shares its notice. */
const NOTICE_AHEAD_MS = 2 * DAY
/** A purge's log line names this many entries at most. */
const SHOWN = 10

export class RecycleBin {
  private readonly timer: DueTimer
  private readonly accounts: Accounts
  private readonly blobs: BlobStore
  private readonly clock: Clock
  private readonly cloudLog: CloudLog
  private readonly log: Logger
  private readonly db: Db
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
    this.db = parts.db
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
    const rule = this.rule(account)
    const now = this.clock.now()
    const entries = this.items.binPurgeAts(rule).map(({ item, purgeAt }) => ({
      category: item.category,
      id: item.id,
      size: item.size,
      deletedAt: item.deletedAt as number,
      purgeAt,
      daysLeft: Math.max(0, Math.ceil((purgeAt - now) / DAY)),
    }))
    return { now, account, windowDays: Math.round(rule.binMs / DAY), entries }
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

  private rule(account: string): BinRule {
    return { account, binMs: this.accounts.need(account).binMs, noticeMs: PURGE_NOTICE_MS, aheadMs: NOTICE_AHEAD_MS }
  }

  private rules(): BinRule[] {
    return this.items.binAccounts().map((account) => this.rule(account))
  }

  private nextDue(): number | null {
    let next: number | null = null
    for (const rule of this.rules()) {
      const untold = this.items.binUntold(rule)
      const notice = untold === null ? null : untold + rule.binMs - PURGE_NOTICE_MS
      for (const due of [this.items.binToldDue(rule), notice]) if (due !== null && (next === null || due < next)) next = due
    }
    return next
  }

  private run(now: number): void {
    for (const rule of this.rules()) {
      const untold = this.items.binUntold(rule)
      if (untold !== null && untold + rule.binMs - PURGE_NOTICE_MS <= now) this.notice(rule, now)
      this.purgeDue(rule, now)
    }
  }

  /**
   * R2: one notice for every entry not told of yet whose window ends within two days; each goes at its window's end,
   * and no sooner than a day after this notice (a window that a membership's end shortened at once, A2).
   */
  private notice(rule: BinRule, now: number): void {
    const told = this.items.binMarkTold(rule, now + NOTICE_AHEAD_MS - rule.binMs, now)
    const purgeAts = told.map((item) => Math.max((item.deletedAt as number) + rule.binMs, now + PURGE_NOTICE_MS))
    const first = Math.min(...purgeAts)
    const last = Math.max(...purgeAts)
    const when = first === last ? `on ${utcDate(first)}` : `from ${utcDate(first)} to ${utcDate(last)}`
    const them = told.length === 1 ? 'it' : 'them'
    this.cloudLog.notify(
      rule.account,
      'bin-purge-notice',
      'Recently deleted items will be removed',
      `${plural(told.length, 'item')} in recently deleted will be permanently deleted ${when} (kept ` +
        `${Math.round(rule.binMs / DAY)} days). Restore ${them} from the console before then to keep ${them}.`,
    )
  }

  private purgeDue({ account, binMs, ...rule }: BinRule, now: number): void {
    const due = this.items.binDue({ account, binMs, ...rule }, now)
    if (due.length === 0) return
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
    this.sweeping = this.sweeping.then(async () => {
      await this.blobs.eraseDeleted()
    })
    return this.sweeping
  }
}
