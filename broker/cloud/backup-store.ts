/**
 * The stored backup packages (B1, B4, B3's clean-up): one row per package,
 * pointing at its blob. Storing one takes a blob reference and charges the
 * quota in one transaction (A1: over quota nothing is stored); removing one
 * drops the reference and gives the quota back in one transaction, and a
 * sweep then deletes blobs nobody holds any more.
 */
import { randomUUID } from 'node:crypto'
import type { BackupView, Manifest } from '../../common/cloud/backup-api.js'
import { one, pluck } from '../db.js'
import type { CloudParts } from './cloud-data.js'

interface Row {
  id: string
  account: string
  device_id: string
  sha256: string
  size: number
  manifest: string
  plan_id: string | null
  created_at: number
}

const toView = (r: Row): BackupView => ({
  id: r.id,
  account: r.account,
  device: r.device_id,
  sha256: r.sha256,
  size: r.size,
  createdAt: r.created_at,
  planId: r.plan_id,
  manifest: JSON.parse(r.manifest) as Manifest,
})

export class BackupStore {
  private readonly sql

  /** `parts.log` is the backup feature's own logger. */
  constructor(private readonly parts: CloudParts) {
    const { db } = parts
    this.sql = {
      insert: db.prepare<
        [
          id: string,
          account: string,
          deviceId: string,
          sha256: string,
          size: number,
          manifest: string,
          planId: string | null,
          createdAt: number,
        ],
        Row
      >(
        `INSERT INTO backups (id, account, device_id, sha256, size, manifest, plan_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING *`,
      ),
      get: db.prepare<[id: string], Row>('SELECT * FROM backups WHERE id = ?'),
      ofAccount: db.prepare<[account: string], Row>('SELECT * FROM backups WHERE account = ? ORDER BY created_at DESC, rowid DESC'),
      ofDevice: db.prepare<[account: string, deviceId: string], Row>(
        'SELECT * FROM backups WHERE account = ? AND device_id = ? ORDER BY created_at DESC, rowid DESC',
      ),
      oldest: db.prepare<[account: string, limit: number], Row>(
        'SELECT * FROM backups WHERE account = ? ORDER BY created_at, rowid LIMIT ?',
      ),
      count: pluck<[account: string], number>(db, 'SELECT COUNT(*) FROM backups WHERE account = ?'),
      delete: db.prepare<[id: string]>('DELETE FROM backups WHERE id = ?'),
    }
  }

  /**
   * A1: stores a package already uploaded as blob `sha256`: takes the blob,
   * charges the quota, writes the row; `also` runs in the same transaction.
   * Over quota it throws and nothing is stored.
   */
  add(
    account: string,
    deviceId: string,
    sha256: string,
    manifest: Manifest,
    planId: string | null,
    also: (id: string) => void,
  ): BackupView {
    const id = randomUUID()
    const row = this.parts.db.transaction(() => {
      this.parts.blobs.ref(account, sha256)
      this.parts.accounts.charge(account, manifest.size, 'this backup')
      const stored = one(
        this.sql.insert,
        id,
        account,
        deviceId,
        sha256,
        manifest.size,
        JSON.stringify(manifest),
        planId,
        this.parts.clock.now(),
      )
      also(id)
      return stored
    })()
    return toView(row)
  }

  get(id: string): BackupView | undefined {
    const row = this.sql.get.get(id)
    return row && toView(row)
  }

  /** Newest first; only `deviceId`'s when given. */
  list(account: string, deviceId?: string): BackupView[] {
    const rows = deviceId === undefined ? this.sql.ofAccount.all(account) : this.sql.ofDevice.all(account, deviceId)
    return rows.map(toView)
  }

  count(account: string): number {
    return one(this.sql.count, account)
  }

  /** The account's `limit` oldest packages. */
  oldest(account: string, limit: number): BackupView[] {
    return this.sql.oldest.all(account, limit).map(toView)
  }

  /** Removes packages for good: blob references dropped, quota given back; returns the bytes released. */
  remove(backups: readonly BackupView[]): number {
    let released = 0
    this.parts.db.transaction(() => {
      for (const b of backups) {
        if (this.sql.delete.run(b.id).changes === 0) continue
        this.parts.blobs.unref(b.account, b.sha256)
        this.parts.accounts.release(b.account, b.size)
        released += b.size
      }
    })()
    return released
  }

  /** Deletes the blobs nobody holds any more (B4: at once), and the deleted rows' older copies in the WAL. */
  sweep(): Promise<number> {
    return this.parts.blobs.eraseDeleted()
  }

  /** Deletes the blobs nobody holds any more, after the current transaction has committed. */
  sweepSoon(): void {
    setImmediate(() => void this.parts.blobs.eraseDeleted())
  }
}
