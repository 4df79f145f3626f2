/**
 * The cloud drive's files and share links (D1, D2): one row per file, by
 * account, folder and name, pointing at a blob. Storing a file takes a blob
 * reference and charges the account's quota in one transaction (A1: over
 * quota nothing is stored and nothing stored is touched); removing one drops
 * the reference and gives the quota back. Every store or delete is cloud
 * activity (A3). Share links are random tokens kept only as their hash.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { DriveFile } from '../../common/cloud/drive-api.js'
import { type Db, one, pluck } from '../db.js'
import type { CloudParts } from './cloud-data.js'
import { HttpError } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'

interface FileRow {
  id: string
  account: string
  folder: string
  name: string
  sha256: string
  size: number
  created_at: number
  updated_at: number
  uploaded_by: string
}

export interface NewFile {
  folder: string
  name: string
  sha256: string
  size: number
  /** A device id, `console` or `sdk:<app>`. */
  uploadedBy: string
}

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex')

const view = (r: FileRow): DriveFile => ({
  id: r.id,
  name: r.name,
  folder: r.folder,
  sha256: r.sha256,
  size: r.size,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  uploadedBy: r.uploaded_by,
})

export class DriveStore {
  private readonly db: Db
  private readonly sql

  constructor(private readonly parts: CloudParts) {
    const { db } = parts
    this.db = db
    this.sql = {
      list: db.prepare<[account: string], FileRow>('SELECT * FROM drive_files WHERE account = ? ORDER BY folder, name'),
      get: db.prepare<[account: string, id: string], FileRow>('SELECT * FROM drive_files WHERE account = ? AND id = ?'),
      byName: db.prepare<[account: string, folder: string, name: string], FileRow>(
        'SELECT * FROM drive_files WHERE account = ? AND folder = ? AND name = ?',
      ),
      insert: db.prepare<
        [
          id: string,
          account: string,
          folder: string,
          name: string,
          sha256: string,
          size: number,
          createdAt: number,
          updatedAt: number,
          uploadedBy: string,
        ]
      >(
        'INSERT INTO drive_files (id, account, folder, name, sha256, size, created_at, updated_at, uploaded_by) VALUES (?, ?, ?, ' +
          '?, ?, ?, ?, ?, ?)',
      ),
      replace: db.prepare<[sha256: string, size: number, updatedAt: number, uploadedBy: string, id: string]>(
        'UPDATE drive_files SET sha256 = ?, size = ?, updated_at = ?, uploaded_by = ? WHERE id = ?',
      ),
      delete: db.prepare<[id: string]>('DELETE FROM drive_files WHERE id = ?'),
      oldest: db.prepare<[account: string, limit: number], FileRow>(
        'SELECT * FROM drive_files WHERE account = ? ORDER BY created_at, id LIMIT ?',
      ),
      count: pluck<[account: string], number>(db, 'SELECT COUNT(*) FROM drive_files WHERE account = ?'),
      share: db.prepare<[tokenHash: string, fileId: string, createdAt: number]>(
        'INSERT INTO drive_shares (token_hash, file_id, created_at) VALUES (?, ?, ?)',
      ),
      shared: db.prepare<[tokenHash: string], FileRow>(
        'SELECT f.* FROM drive_shares s JOIN drive_files f ON f.id = s.file_id WHERE s.token_hash = ?',
      ),
      unshare: db.prepare<[tokenHash: string, account: string]>(
        'DELETE FROM drive_shares WHERE token_hash = ? AND file_id IN (SELECT id FROM drive_files WHERE account = ?)',
      ),
    }
  }

  list(account: string): DriveFile[] {
    return this.sql.list.all(account).map(view)
  }

  count(account: string): number {
    return one(this.sql.count, account)
  }

  /** The file, or a 404 that names it. */
  need(account: string, id: string): DriveFile {
    const row = this.sql.get.get(account, id)
    if (!row) throw new HttpError(404, 'NOT_FOUND', `drive file ${quoted(id)} is not in account ${quoted(account)}`)
    return view(row)
  }

  /**
   * Stores a file whose blob is uploaded; a file of the same name in the same
   * folder is replaced (its old bytes released). A1: throws QUOTA_EXCEEDED
   * with nothing changed when the new bytes do not fit.
   */
  put(account: string, file: NewFile): DriveFile {
    const { accounts, blobs, clock } = this.parts
    const now = clock.now()
    let replaced = false
    const id = this.db.transaction(() => {
      const old = this.sql.byName.get(account, file.folder, file.name)
      accounts.charge(account, file.size - (old?.size ?? 0), `drive file ${quoted(file.name)}`)
      blobs.ref(account, file.sha256)
      if (!old) {
        const fresh = randomUUID()
        this.sql.insert.run(fresh, account, file.folder, file.name, file.sha256, file.size, now, now, file.uploadedBy)
        return fresh
      }
      blobs.unref(account, old.sha256)
      replaced = true
      this.sql.replace.run(file.sha256, file.size, now, file.uploadedBy, old.id)
      return old.id
    })()
    // A file replaced: the old version's bytes leave the disk unless another file or account holds them.
    if (replaced) void blobs.eraseDeleted()
    accounts.touch(account, 'drive')
    return this.need(account, id)
  }

  /**
   * Deletes one file (the owner's choice); its share links go with it, and its bytes leave the disk before this
   * resolves, unless another file or account holds the same bytes.
   */
  async delete(account: string, id: string): Promise<DriveFile> {
    const file = this.need(account, id)
    this.db.transaction(() => this.remove(account, file))()
    this.parts.accounts.touch(account, 'delete')
    await this.parts.blobs.eraseDeleted()
    return file
  }

  /** D4, A3: deletes up to `limit` of the account's files, oldest first; call inside a transaction. Returns how many went. */
  removeOldest(account: string, limit: number): number {
    const rows = this.sql.oldest.all(account, limit)
    for (const row of rows) this.remove(account, view(row))
    return rows.length
  }

  /**
   * A new share link's token for the file. The prefix keeps it from starting
   * with "-" (1 in 64 bare base64url tokens do), which a command line would
   * take for an option: `console drive unshare NAME TOKEN` must always work.
   */
  share(account: string, id: string): string {
    this.need(account, id)
    const token = `fps_${randomBytes(24).toString('base64url')}`
    this.sql.share.run(hashToken(token), id, this.parts.clock.now())
    return token
  }

  /** Revokes a share link of the account; a 404 when there is none. */
  unshare(account: string, token: string): void {
    if (this.sql.unshare.run(hashToken(token), account).changes === 0)
      throw new HttpError(404, 'NOT_FOUND', 'no such share link in this account (revoked already?)')
  }

  /** The account and file a share link points at. */
  shared(token: string): { account: string; file: DriveFile } | undefined {
    const row = this.sql.shared.get(hashToken(token))
    return row && { account: row.account, file: view(row) }
  }

  private remove(account: string, file: DriveFile): void {
    this.sql.delete.run(file.id)
    this.parts.blobs.unref(account, file.sha256)
    this.parts.accounts.release(account, file.size)
  }
}
