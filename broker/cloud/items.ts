/**
 * The items app data sync keeps in the cloud (S1-S4, R1-R3): per account and
 * category, the phone's stable file id, the blob holding its bytes, its
 * metadata, who changed it last and, once deleted, when it went to the
 * recycle bin. Every change takes the next number of the account's change
 * counter, so a phone pulls what others changed from a cursor (S1).
 *
 * - A1: a new item or a new version is charged against the quota in the
 *   transaction that stores it; over quota nothing is touched. A replaced
 *   or purged version gives its bytes back. Items in the bin still count.
 * - S2: nothing here is keyed on the phone's switches: sync off on a phone
 *   leaves every item where it is.
 * - R1: `delete` moves an item to the bin, `restore` brings it back.
 * - R3: `purge` removes a bin entry for good: the row, the reference to its
 *   blob (swept from disk by the caller) and its quota.
 */
import { EventEmitter } from 'node:events'
import type { CloudItem, PutItem, SyncCategory } from '../../common/cloud/sync-api.js'
import { FakephoneError } from '../../common/errors.js'
import { one, pluck } from '../db.js'
import type { CloudParts } from './cloud-data.js'

export class SyncError extends FakephoneError {
  constructor(code: 'NOT_FOUND' | 'CONFLICT' | 'BAD_REQUEST', message: string) {
    super(code, message)
  }
}

interface Row {
  account: string
  category: SyncCategory
  id: string
  sha256: string
  size: number
  meta: string
  modified_at: number
  seq: number
  changed_by: string
  deleted_at: number | null
  /** R2: when the owner was told this bin entry's purge is near; null until then. */
  bin_noticed_at: number | null
}

export interface Totals {
  count: number
  bytes: number
}

interface ItemsEvents {
  /** Something entered or left an account's recycle bin. */
  bin: [account: string]
}

const toItem = (r: Row): CloudItem => ({
  category: r.category,
  id: r.id,
  sha256: r.sha256,
  size: r.size,
  meta: JSON.parse(r.meta) as CloudItem['meta'],
  modifiedAt: r.modified_at,
  seq: r.seq,
  changedBy: r.changed_by,
  deletedAt: r.deleted_at,
})

const label = (category: string, id: string): string => `${category}/${id}`

/** R2: how the account's recycle bin runs now: its window, how long before a purge the owner is told, how far a notice looks. */
export interface BinRule {
  account: string
  binMs: number
  noticeMs: number
  aheadMs: number
}

/**
 * R2: the owner was told of this entry's purge under the window it has now: a notice sent before the window grew (a
 * membership that began since) does not count, and the owner is told again.
 */
const TOLD = 'bin_noticed_at IS NOT NULL AND bin_noticed_at >= deleted_at + @binMs - @aheadMs'

export class SyncItems extends EventEmitter<ItemsEvents> {
  private readonly sql

  constructor(private readonly parts: CloudParts) {
    super()
    const { db } = parts
    this.sql = {
      get: db.prepare<[account: string, category: string, id: string], Row>(
        'SELECT * FROM sync_items WHERE account = ? AND category = ? AND id = ?',
      ),
      nextSeq: pluck<[account: string], number>(
        db,
        'INSERT INTO sync_counters (account, seq) VALUES (?, 1) ON CONFLICT (account) DO UPDATE SET seq = seq + 1 RETURNING seq',
      ),
      upsert: db.prepare<
        [
          {
            account: string
            category: SyncCategory
            id: string
            sha256: string
            size: number
            meta: string
            modifiedAt: number
            seq: number
            by: string
          },
        ],
        Row
      >(
        `INSERT INTO sync_items (account, category, id, sha256, size, meta, modified_at, seq, changed_by, deleted_at)
         VALUES (@account, @category, @id, @sha256, @size, @meta, @modifiedAt, @seq, @by, NULL)
         ON CONFLICT (account, category, id) DO UPDATE SET sha256 = @sha256, size = @size, meta = @meta,
           modified_at = @modifiedAt, seq = @seq, changed_by = @by, deleted_at = NULL, bin_noticed_at = NULL
         RETURNING *`,
      ),
      setDeleted: db.prepare<[deletedAt: number | null, seq: number, by: string, account: string, category: SyncCategory, id: string], Row>(
        'UPDATE sync_items SET deleted_at = ?, bin_noticed_at = NULL, seq = ?, changed_by = ? WHERE account = ? AND category = ? AND ' +
          'id = ? RETURNING *',
      ),
      remove: db.prepare<[account: string, category: SyncCategory, id: string]>(
        'DELETE FROM sync_items WHERE account = ? AND category = ? AND id = ?',
      ),
      changes: db.prepare<[account: string, category: SyncCategory, since: number, limit: number], Row>(
        'SELECT * FROM sync_items WHERE account = ? AND category = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      live: db.prepare<[account: string], Row>('SELECT * FROM sync_items WHERE account = ? AND deleted_at IS NULL ORDER BY category, id'),
      liveIn: db.prepare<[account: string, category: SyncCategory], Row>(
        'SELECT * FROM sync_items WHERE account = ? AND category = ? AND deleted_at IS NULL ORDER BY id',
      ),
      totals: db.prepare<[account: string], { category: SyncCategory; count: number; bytes: number }>(
        'SELECT category, COUNT(*) AS count, SUM(size) AS bytes FROM sync_items WHERE account = ? AND deleted_at IS NULL GROUP BY category',
      ),
      bin: db.prepare<[account: string], Row>(
        'SELECT * FROM sync_items WHERE account = ? AND deleted_at IS NOT NULL ORDER BY deleted_at, category, id',
      ),
      binPurgeAts: db.prepare<[BinRule], Row & { purge_at: number }>(
        `SELECT *, CASE WHEN ${TOLD} THEN MAX(deleted_at + @binMs, bin_noticed_at + @noticeMs) ELSE deleted_at + @binMs END
           AS purge_at
         FROM sync_items WHERE account = @account AND deleted_at IS NOT NULL ORDER BY deleted_at, category, id`,
      ),
      binAccounts: db.prepare<[], string>('SELECT DISTINCT account FROM sync_items WHERE deleted_at IS NOT NULL').pluck(),
      binUntold: pluck<[BinRule], number | null>(
        db,
        `SELECT MIN(deleted_at) FROM sync_items WHERE account = @account AND deleted_at IS NOT NULL AND NOT (${TOLD})`,
      ),
      binToldDue: pluck<[BinRule], number | null>(
        db,
        `SELECT MIN(MAX(deleted_at + @binMs, bin_noticed_at + @noticeMs)) FROM sync_items
         WHERE account = @account AND deleted_at IS NOT NULL AND ${TOLD}`,
      ),
      markTold: db.prepare<[BinRule & { now: number; deletedBy: number }], Row>(
        `UPDATE sync_items SET bin_noticed_at = @now
         WHERE account = @account AND deleted_at IS NOT NULL AND deleted_at <= @deletedBy AND NOT (${TOLD}) RETURNING *`,
      ),
      binDue: db.prepare<[BinRule & { now: number }], Row>(
        `SELECT * FROM sync_items WHERE account = @account AND deleted_at IS NOT NULL AND deleted_at + @binMs <= @now
           AND ${TOLD} AND bin_noticed_at + @noticeMs <= @now ORDER BY deleted_at`,
      ),
      all: db.prepare<[account: string], Row>('SELECT * FROM sync_items WHERE account = ?'),
      clear: db.prepare<[account: string]>('DELETE FROM sync_items WHERE account = ?'),
    }
  }

  /**
   * Stores an item (or a new version) whose blob is uploaded. A1: the new
   * bytes are charged, the replaced version's given back, in one
   * transaction; over quota it throws and nothing changes. Putting an item
   * that is in the bin brings it back as the new version.
   */
  put(account: string, by: string, category: SyncCategory, id: string, req: PutItem): CloudItem {
    const stored = this.parts.blobs.size(req.sha256)
    if (stored === undefined)
      throw new SyncError('CONFLICT', `upload the bytes of ${label(category, id)} first: blob ${req.sha256} is not in the cloud`)
    if (stored !== req.size)
      throw new SyncError('BAD_REQUEST', `${label(category, id)} says ${req.size} bytes but blob ${req.sha256} has ${stored}`)
    const meta = JSON.stringify(req.meta)
    let fromBin = false
    const item = this.parts.db.transaction(() => {
      const old = this.row(account, category, id)
      fromBin = old !== undefined && old.deleted_at !== null
      if (old && old.deleted_at === null && old.sha256 === req.sha256 && old.meta === meta && old.modified_at === req.modifiedAt) return old
      if (old?.sha256 !== req.sha256) {
        if (old) this.drop(old)
        this.parts.accounts.charge(account, req.size, `${label(category, id)} (${req.size} bytes)`)
        this.parts.blobs.ref(account, req.sha256)
      }
      return one(this.sql.upsert, {
        account,
        category,
        id,
        sha256: req.sha256,
        size: req.size,
        meta,
        modifiedAt: req.modifiedAt,
        seq: this.nextSeq(account),
        by,
      })
    })()
    this.parts.accounts.touch(account, 'sync')
    if (fromBin) this.emit('bin', account)
    return toItem(item)
  }

  /** R1: moves a live item to the recycle bin; NOT_FOUND when there is none. */
  delete(account: string, by: string, category: SyncCategory, id: string): CloudItem {
    const item = this.parts.db.transaction(() => {
      const row = this.row(account, category, id)
      if (!row || row.deleted_at !== null) throw new SyncError('NOT_FOUND', `${label(category, id)} is not in the cloud (already deleted?)`)
      return one(this.sql.setDeleted, this.parts.clock.now(), this.nextSeq(account), by, account, category, id)
    })()
    this.parts.accounts.touch(account, 'delete')
    this.emit('bin', account)
    return toItem(item)
  }

  /** R1: brings a bin entry back; its phones pull it again. */
  restore(account: string, by: string, category: SyncCategory, id: string): CloudItem {
    const item = this.parts.db.transaction(() => {
      this.binRow(account, category, id)
      return one(this.sql.setDeleted, null, this.nextSeq(account), by, account, category, id)
    })()
    this.parts.accounts.touch(account, 'sync')
    this.emit('bin', account)
    return toItem(item)
  }

  /** R2, R3: removes a bin entry for good (row, blob reference, quota). The caller sweeps the blob store. */
  purge(account: string, category: SyncCategory, id: string): CloudItem {
    const row = this.parts.db.transaction(() => {
      const found = this.binRow(account, category, id)
      this.drop(found)
      this.sql.remove.run(account, category, id)
      return found
    })()
    this.emit('bin', account)
    return toItem(row)
  }

  /** S1: the changes of one category after `since`, oldest first. */
  changes(account: string, category: SyncCategory, since: number, limit: number): { changes: CloudItem[]; cursor: number; more: boolean } {
    const rows = this.sql.changes.all(account, category, since, limit + 1)
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { changes: page.map(toItem), cursor: last ? last.seq : since, more: rows.length > limit }
  }

  /** S2: the live items (of one category, or all) and the count and bytes per category. */
  live(account: string, category?: SyncCategory): { items: CloudItem[]; totals: Partial<Record<SyncCategory, Totals>> } {
    const rows = category === undefined ? this.sql.live.all(account) : this.sql.liveIn.all(account, category)
    const totals: Partial<Record<SyncCategory, Totals>> = {}
    for (const t of this.sql.totals.all(account)) totals[t.category] = { count: t.count, bytes: t.bytes }
    return { items: rows.map(toItem), totals }
  }

  /** R1: the account's bin entries, oldest deletion first. */
  bin(account: string): CloudItem[] {
    return this.sql.bin.all(account).map(toItem)
  }

  /** R1, R2: the account's bin entries, oldest deletion first, each with when it is purged (told of or not yet). */
  binPurgeAts(rule: BinRule): { item: CloudItem; purgeAt: number }[] {
    return this.sql.binPurgeAts.all(rule).map((row) => ({ item: toItem(row), purgeAt: row.purge_at }))
  }

  /** R2: the accounts with bin entries. */
  binAccounts(): string[] {
    return this.sql.binAccounts.all()
  }

  /** R2: the account's oldest deletion whose purge the owner was not told of (under the account's window now), if any. */
  binUntold(rule: BinRule): number | null {
    return this.sql.binUntold.get(rule) ?? null
  }

  /** R2: when the first entry the owner was told of is due: its window's end, a notice's delay after the notice at the earliest. */
  binToldDue(rule: BinRule): number | null {
    return this.sql.binToldDue.get(rule) ?? null
  }

  /** R2: marks the entries deleted at or before `deletedBy` that the owner was not told of as told at `now`; returns them. */
  binMarkTold(rule: BinRule, deletedBy: number, now: number): CloudItem[] {
    return this.sql.markTold.all({ ...rule, deletedBy, now }).map(toItem)
  }

  /** R2: the bin entries due at `now`: the window ended, and the owner was told at least a notice's delay before. */
  binDue(rule: BinRule, now: number): CloudItem[] {
    return this.sql.binDue.all({ ...rule, now }).map(toItem)
  }

  /** A3: removes every item of a frozen account (inside the freeze's transaction); returns how many. */
  clear(account: string): number {
    const rows = this.sql.all.all(account)
    for (const row of rows) this.drop(row)
    this.sql.clear.run(account)
    this.emit('bin', account)
    return rows.length
  }

  private row(account: string, category: string, id: string): Row | undefined {
    return this.sql.get.get(account, category, id)
  }

  private binRow(account: string, category: SyncCategory, id: string): Row {
    const row = this.row(account, category, id)
    if (!row || row.deleted_at === null) throw new SyncError('NOT_FOUND', `${label(category, id)} is not in recently deleted`)
    return row
  }

  /** Gives back a version's quota and its blob reference. */
  private drop(row: Row): void {
    this.parts.blobs.unref(row.account, row.sha256)
    this.parts.accounts.release(row.account, row.size)
  }

  private nextSeq(account: string): number {
    return one(this.sql.nextSeq, account)
  }
}
