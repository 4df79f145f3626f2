/**
 * Cloud storage: content-addressed blobs on disk (`<data>/blobs/ab/abcdef…`,
 * named by their SHA-256) and who holds them in the database. An upload is
 * resumable: bytes go to a per-account partial file under `incoming/`, a
 * cut connection keeps what arrived, and the next request carries on from
 * the offset the cloud reports. Only when every byte is there and the
 * checksum matches is the blob renamed into place (after an fsync), so the
 * cloud never holds a partial or corrupt object (S3).
 *
 * A migration's batch (M2) stores its small blobs, each received whole and
 * checked, in one pack file (`<data>/blobs/packs/`, one file created and
 * synced per batch instead of one per blob: creating a file cost more CPU
 * than all else the destination does for a blob); the database says which
 * pack holds a blob and where. A pack is deleted once no blob in it is held,
 * or by a sweep an hour after it was written when no blob points into it (a
 * batch stopped between its pack and its transaction).
 *
 * A blob is kept while some account holds a reference to it (`ref` /
 * `unref`, called in the transaction that stores or removes the item that
 * points at it); quota is the items' business, see accounts.ts. Once the
 * last reference goes (an owner's delete, a purge), the next sweep deletes
 * its file (`eraseDeleted`, run after each deletion commits); bytes never
 * referenced yet get the grace hour first.
 *
 * Blobs are stored once for every account, but a phone gets no other
 * account's blob by naming its hash (D1, S1, B1): to a phone whose account
 * does not hold it, a stored blob is not there (`ownState`) until the phone
 * sends its bytes and they hash right (`append` with `prove`; the console's
 * uploads for the account count too); only then may an item of its account
 * point at it (`mayClaim`). Otherwise a hash and a size would have said
 * whether the cloud holds a file and, registered as a drive file, sync item
 * or backup, fetched its bytes. That proof is kept in the database, so it
 * outlives a restart of the cloud, until the transaction that commits the
 * account's reference drops it, or UPLOAD_IDLE_MS after the bytes came.
 *
 * A partial upload counts against its account's quota (A1) until it is
 * finished or, after UPLOAD_IDLE_MS with no new bytes, removed (`expireIdle`,
 * run by upload-expiry.ts on the cloud's clock): the database keeps when each
 * one last had new bytes, and for as long again that it was removed, so a
 * resume from the old offset is told to start again.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  close as closeCb,
  createReadStream,
  createWriteStream,
  fsync as fsyncCb,
  mkdirSync,
  open as openCb,
  write as writeCb,
  writev as writevCb,
  writeFile as writeFileCb,
  type ReadStream,
} from 'node:fs'
import { once } from 'node:events'
import { finished, pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import type { Clock } from '../../common/clock.js'
import { FakephoneError } from '../../common/errors.js'
import { sha256File } from '../../common/hash-file.js'
import { storageFailure } from '../../common/storage-errors.js'
import type { Logger } from '../../common/log.js'
import { type Db, one, pluck, truncateWal } from '../db.js'

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex')

/** Largest single blob, bytes (a photo, a recording, a backup package, a drive file). */
export const MAX_BLOB_BYTES = 512 * 1024 * 1024

/** A blob just uploaded has this long to be referenced by the item it is for before a sweep may take it. */
const ORPHAN_GRACE_MS = 3_600_000

/**
 * A1, S3: a partial upload with no new bytes for this long (24 h on the cloud's clock) is removed and its quota freed; a
 * phone resumes within it, or starts again from the first byte after it.
 */
export const UPLOAD_IDLE_MS = 86_400_000
const UPLOAD_IDLE_HOURS = UPLOAD_IDLE_MS / 3_600_000

/** A partial upload `expireIdle` removed. */
export interface ExpiredUpload {
  account: string
  sha256: string
  /** What its partial file held. */
  bytes: number
}

export type BlobErrorCode = 'CHECKSUM_MISMATCH' | 'BAD_OFFSET' | 'TOO_LARGE' | 'BUSY' | 'NOT_FOUND'

export class BlobError extends FakephoneError {
  declare readonly code: BlobErrorCode
  constructor(code: BlobErrorCode, message: string) {
    super(code, message)
  }
}

export interface UploadState {
  sha256: string
  size: number
  /** True once the whole blob is stored and verified. */
  stored: boolean
  /** Bytes the cloud already has: where the next request carries on. */
  offset: number
}

/**
 * A blob received whole in a batch (M2) and checked, not yet durable: `commitMany` stores it. Either its bytes, to go
 * into the batch's pack, or its partial file, being written.
 */
export type ReceivedBlob =
  | { sha256: string; size: number; bytes: Buffer }
  | {
      sha256: string
      size: number
      partial: string
      /** Settles once its partial file is written. */
      written: Promise<void>
    }

/** Where a stored blob's bytes are: its own file (offset 0) or a pack, from `offset`. */
export interface BlobFile {
  size: number
  path: string
  offset: number
  packed: boolean
}

/**
 * A blob of at most this many bytes is gathered in memory by a batch upload (M2): into the batch's pack when it arrived
 * whole, else written in one go.
 */
export const PACK_MAX = 64 * 1024

interface BlobRow {
  size: number
  pack: string | null
  offset: number | null
}

export class BlobStore {
  private readonly root: string
  private readonly incoming: string
  private readonly packs: string
  /** Partial files being written now (settled when the write ends), so two requests never append to one at once. */
  private readonly busy = new Map<string, Promise<void>>()
  /** Blobs whose last reference of an account was dropped since the last sweep: see `unref`. */
  private readonly released = new Set<string>()
  /** Bumped whenever blobs are stored (see `sizes`). */
  private stores = 0
  /** Told when an unfinished upload or a proof falls due at the latest, as new bytes arrive (upload-expiry.ts arms its timer). */
  onIdleDue: ((at: number) => void) | undefined
  private readonly sql

  constructor(
    dataDir: string,
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.root = join(dataDir, 'blobs')
    this.incoming = join(this.root, 'incoming')
    this.packs = join(this.root, 'packs')
    mkdirSync(this.incoming, { recursive: true })
    mkdirSync(this.packs, { recursive: true })
    this.sql = {
      get: pluck<[sha256: string], number>(db, 'SELECT size FROM blobs WHERE sha256 = ?'),
      insert: db.prepare<[sha256: string, size: number, createdAt: number, pack: string | null, offset: number | null]>(
        'INSERT OR IGNORE INTO blobs (sha256, size, created_at, pack, pack_offset) VALUES (?, ?, ?, ?, ?)',
      ),
      locate: db.prepare<[sha256: string], BlobRow>('SELECT size, pack, pack_offset AS offset FROM blobs WHERE sha256 = ?'),
      packUsed: pluck<[pack: string], number>(db, 'SELECT 1 FROM blobs WHERE pack = ? LIMIT 1'),
      ref: db.prepare<[account: string, sha256: string]>(
        'INSERT INTO blob_refs (account, sha256, refs) VALUES (?, ?, 1) ON CONFLICT (account, sha256) DO UPDATE SET refs = refs + 1',
      ),
      unref: db.prepare<[account: string, sha256: string]>(
        'UPDATE blob_refs SET refs = refs - 1 WHERE account = ? AND sha256 = ? AND refs > 1',
      ),
      dropRef: db.prepare<[account: string, sha256: string]>('DELETE FROM blob_refs WHERE account = ? AND sha256 = ? AND refs = 1'),
      holds: pluck<[account: string, sha256: string], number>(db, 'SELECT refs FROM blob_refs WHERE account = ? AND sha256 = ?'),
      // A blob nobody holds: once the grace hour is over, or at once when its last reference was dropped (`released`, a
      // JSON array) and no phone has sent its bytes since (a proof: an item of that phone's account may be on its way).
      orphans: db.prepare<[createdBefore: number, released: string], { sha256: string; pack: string | null }>(
        `SELECT sha256, pack FROM blobs b
         WHERE (created_at <= ? OR (sha256 IN (SELECT value FROM json_each(?))
                                    AND NOT EXISTS (SELECT 1 FROM blob_proofs p WHERE p.sha256 = b.sha256)))
           AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = b.sha256) LIMIT 500`,
      ),
      held: db.prepare<[account: string, sha256: string], BlobRow>(
        `SELECT b.size, b.pack, b.pack_offset AS offset FROM blob_refs r JOIN blobs b ON b.sha256 = r.sha256
         WHERE r.account = ? AND r.sha256 = ?`,
      ),
      deleteBlob: db.prepare<[sha256: string]>('DELETE FROM blobs WHERE sha256 = ?'),
      claimable: pluck<[sha256: string, account: string, account: string], number>(
        db,
        `SELECT b.size FROM blobs b WHERE b.sha256 = ? AND (
           EXISTS (SELECT 1 FROM blob_refs r WHERE r.account = ? AND r.sha256 = b.sha256)
           OR EXISTS (SELECT 1 FROM blob_proofs p WHERE p.sha256 = b.sha256 AND p.account = ?))`,
      ),
      prove: db.prepare<[sha256: string, account: string, at: number]>(
        'INSERT INTO blob_proofs (sha256, account, proved_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT (sha256, account) DO UPDATE SET proved_at = excluded.proved_at',
      ),
      dropProof: db.prepare<[sha256: string, account: string]>('DELETE FROM blob_proofs WHERE sha256 = ? AND account = ?'),
      dropProofs: db.prepare<[sha256: string]>('DELETE FROM blob_proofs WHERE sha256 = ?'),
      oldProofs: db.prepare<[provedBefore: number]>('DELETE FROM blob_proofs WHERE proved_at <= ?'),
      proofsNext: pluck<[], number | null>(db, 'SELECT MIN(proved_at) FROM blob_proofs'),
      touch: db.prepare<[account: string, sha256: string, at: number]>(
        'INSERT INTO blob_uploads (account, sha256, touched_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT (account, sha256) DO UPDATE SET touched_at = excluded.touched_at, expired_at = NULL',
      ),
      adopt: db.prepare<[account: string, sha256: string, at: number]>(
        'INSERT OR IGNORE INTO blob_uploads (account, sha256, touched_at) VALUES (?, ?, ?)',
      ),
      forget: db.prepare<[account: string, sha256: string]>('DELETE FROM blob_uploads WHERE account = ? AND sha256 = ?'),
      expiredAt: pluck<[account: string, sha256: string], number>(
        db,
        'SELECT expired_at FROM blob_uploads WHERE account = ? AND sha256 = ? AND expired_at IS NOT NULL',
      ),
      uploads: db.prepare<[], { account: string; sha256: string; touchedAt: number; expiredAt: number | null }>(
        'SELECT account, sha256, touched_at AS touchedAt, expired_at AS expiredAt FROM blob_uploads',
      ),
      expired: db.prepare<[at: number, account: string, sha256: string]>(
        'UPDATE blob_uploads SET expired_at = ? WHERE account = ? AND sha256 = ?',
      ),
      uploadsNext: pluck<[], number | null>(db, 'SELECT MIN(COALESCE(expired_at, touched_at)) FROM blob_uploads'),
    }
  }

  /** Size of a stored blob, or undefined. */
  size(sha256: string): number | undefined {
    return this.sql.get.get(sha256)
  }

  /**
   * M2's state of many blobs: the size of each one stored (or undefined), in one read transaction (see `held`), and
   * `asOf` for `state` to know whether any blob was stored since.
   */
  sizes(sha256s: readonly string[]): { sizes: (number | undefined)[]; asOf: number } {
    return { sizes: this.db.transaction(() => sha256s.map((sha256) => this.sql.get.get(sha256)))(), asOf: this.stores }
  }

  /** True when the blob is stored and `account` may point an item at it: it holds it, or it sent its bytes (D1, S1, B1). */
  mayClaim(account: string, sha256: string): boolean {
    return this.claimableSize(account, sha256) !== undefined
  }

  /** The blob's size when `account` may point an item at it (see mayClaim); undefined when it may not, or none is stored. */
  claimableSize(account: string, sha256: string): number | undefined {
    return this.sql.claimable.get(sha256, account, account)
  }

  /**
   * `account` sent the bytes of the stored blob `sha256` (a phone's upload, or the console's for that account): kept
   * until a reference of its account is committed, or UPLOAD_IDLE_MS.
   */
  proved(account: string, sha256: string): void {
    const now = this.clock.now()
    this.sql.prove.run(sha256, account, now)
    this.onIdleDue?.(now + UPLOAD_IDLE_MS)
  }

  /**
   * Where a phone's upload of `sha256` stands: as `state`, except that a blob `account` may not claim is not stored as
   * far as it is told, so it sends the bytes (D1, S1, B1).
   */
  async ownState(account: string, sha256: string, size: number): Promise<UploadState> {
    if (this.size(sha256) === undefined || this.mayClaim(account, sha256)) return this.state(account, sha256, size)
    await this.busy.get(`${account}\u0000${sha256}`)
    return { sha256, size, stored: false, offset: await this.partialSize(account, sha256) }
  }

  /** True when `account` holds a reference to the blob (and so may read it). */
  holds(account: string, sha256: string): boolean {
    return this.sql.holds.get(account, sha256) !== undefined
  }

  /**
   * M2's batch read: where the bytes of each stored blob `account` holds are (one query for both), or undefined; in one
   * read transaction, not SQLite's shared-lock calls (fcntl) around each query.
   */
  held(account: string, sha256s: readonly string[]): (BlobFile | undefined)[] {
    return this.db.transaction(() =>
      sha256s.map((sha256) => {
        const row = this.sql.held.get(account, sha256)
        return row && this.fileOf(sha256, row)
      }),
    )()
  }

  /**
   * Where an upload of `sha256` by `account` stands; once a write of it still going (a cut connection being noticed) has
   * ended. M2's state of many blobs passes its listing `partials` and asks only about blobs `sizes` found not stored,
   * with its `asOf`: whether one is stored is asked again only when some blob was stored since, not in a second query
   * (with its own locking) per blob.
   */
  async state(account: string, sha256: string, size: number, partials?: ReadonlySet<string>, asOf?: number): Promise<UploadState> {
    await this.busy.get(`${account}\u0000${sha256}`)
    if (asOf !== this.stores && this.size(sha256) !== undefined) return { sha256, size, stored: true, offset: size }
    // M2's state of many blobs: one listing says which have a partial file (0 for the others is safe: a batch starts over).
    const offset = partials === undefined || partials.has(sha256) ? await this.partialSize(account, sha256) : 0
    return { sha256, size, stored: false, offset }
  }

  /** The blobs `account` has a partial upload of (M2: one directory listing instead of a stat per blob). */
  async partials(account: string): Promise<Set<string>> {
    const prefix = `${Buffer.from(account).toString('hex')}-`
    const names = await readdir(this.incoming)
    return new Set(names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length, -'.part'.length)))
  }

  /**
   * Appends `body` at `offset` to the account's partial upload of `sha256`.
   * A body cut short keeps what arrived. When the last byte is in, the
   * checksum is verified: a match stores the blob, a mismatch discards the
   * partial file and throws CHECKSUM_MISMATCH.
   */
  async append(account: string, sha256: string, size: number, offset: number, body: Readable, prove = false): Promise<UploadState> {
    if (size > MAX_BLOB_BYTES) throw new BlobError('TOO_LARGE', `a blob may be at most ${MAX_BLOB_BYTES} bytes`)
    // A phone (`prove`) whose account may not claim a stored blob sends its bytes all the same: they prove it has them.
    if (this.size(sha256) !== undefined && (!prove || this.mayClaim(account, sha256))) {
      body.resume()
      return { sha256, size, stored: true, offset: size }
    }
    const release = this.claim(account, sha256)
    const partial = this.partialPath(account, sha256)
    try {
      const have = await this.partialSize(account, sha256)
      if (offset !== have) throw this.badOffset(account, sha256, have)
      let received = have
      let tooLong = false
      // Bytes from the start are hashed as they arrive, so the commit need not read the file back (M2's bench: every blob twice).
      const hash = have === 0 ? createHash('sha256') : undefined
      body.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received > size) tooLong = true
        hash?.update(chunk)
      })
      let failure: Error | undefined
      try {
        await pipeline(body, createWriteStream(partial, { flags: 'a' }))
      } catch (err) {
        failure = err as Error
      }
      // What stays for a resume is removed a day after its last new bytes (upload-expiry.ts): new ones start the day again.
      if (received > have && (failure !== undefined || received < size)) this.touch(account, sha256)
      if (failure !== undefined) {
        // A full or failing disk: what reached it is kept to resume from, and the caller is told why (507, router.ts).
        if (storageFailure(failure)) throw failure
        // A cut connection: keep what reached the disk, the client resumes from there.
        this.log.info(
          { account, sha256, offset: await this.partialSize(account, sha256), err: failure.message },
          'upload cut short; kept for resume',
        )
        return { sha256, size, stored: false, offset: await this.partialSize(account, sha256) }
      }
      if (tooLong) {
        await rm(partial, { force: true })
        this.forget(account, sha256)
        throw new BlobError('CHECKSUM_MISMATCH', `more than the announced ${size} bytes arrived; the partial upload was discarded`)
      }
      // Every byte that arrived is on disk (the pipeline ended well): no stat to learn how many.
      const now = received
      if (now < size) return { sha256, size, stored: false, offset: now }
      try {
        await this.commit(partial, sha256, size, hash?.digest('hex'))
      } finally {
        // Stored, or discarded as corrupt: no partial file is left; one a failing disk kept is found by `expireIdle`.
        this.forget(account, sha256)
      }
      this.proved(account, sha256)
      return { sha256, size, stored: true, offset: size }
    } finally {
      release()
    }
  }

  /**
   * M2's batch upload: takes the blob's upload for the batch (released by the caller once the batch is committed), so
   * `state` waits for the batch and no other request appends to it at once.
   */
  claim(account: string, sha256: string): () => void {
    const key = `${account}\u0000${sha256}`
    if (this.busy.has(key)) throw new BlobError('BUSY', 'an upload of this blob is already in progress')
    let settle!: () => void
    this.busy.set(key, new Promise<void>((resolve) => (settle = resolve)))
    return () => {
      this.busy.delete(key)
      settle()
    }
  }

  /**
   * M2's batch upload of one blob (claimed by the caller): `body` (its bytes from `offset`, exactly), hashed as it
   * arrives. A blob of 1 to PACK_MAX bytes sent from its first byte is kept in memory for the batch's pack (a partial
   * file of it from an earlier attempt, in the listing `partials`, goes); any other goes to the account's partial
   * file (from offset 0 started over), still being written when this answers (one of up to PACK_MAX bytes in one go,
   * not awaited, so a batch's files are written side by side). `commitMany` makes them durable. A body that breaks
   * off keeps what arrived for a resume (and throws); bytes that do not hash right are discarded (CHECKSUM_MISMATCH).
   */
  async receive(
    account: string,
    sha256: string,
    size: number,
    offset: number,
    body: AsyncIterable<Buffer>,
    partials: Promise<ReadonlySet<string>>,
  ): Promise<ReceivedBlob> {
    const have = offset === 0 ? 0 : await this.partialSize(account, sha256)
    if (offset !== have) throw this.badOffset(account, sha256, have)
    const hash = offset === 0 ? createHash('sha256') : undefined
    const flags = offset === 0 ? 'w' : 'a'
    const whole = size - offset <= PACK_MAX
    // Named only when a partial file is written or removed: a blob that arrives whole for the pack needs none.
    const partial = (): string => this.partialPath(account, sha256)
    const chunks: Buffer[] = []
    // 1 MiB buffered, not 16 KiB: a large blob's 64 KiB chunks go to the disk gathered, not one threadpool write each.
    const out = whole ? undefined : createWriteStream(partial(), { flags, highWaterMark: 1024 * 1024 })
    let received = offset
    try {
      for await (const chunk of body) {
        hash?.update(chunk)
        received += chunk.length
        if (out === undefined) chunks.push(chunk)
        else if (!out.write(chunk)) await once(out, 'drain')
      }
    } catch (err) {
      if (out === undefined) await writeFileAsync(partial(), Buffer.concat(chunks), { flag: flags })
      this.touch(account, sha256)
      this.log.info({ account, sha256, offset: received, err: (err as Error).message }, 'upload cut short; kept for resume')
      throw err
    } finally {
      if (out !== undefined) await finished(out.end())
    }
    const hashed = hash?.digest('hex')
    if (offset === 0 && whole && size > 0) {
      if ((await partials).has(sha256)) await rm(partial(), { force: true })
      if (hashed !== sha256) throw mismatch(hashed as string, sha256)
      return { sha256, size, bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) }
    }
    const file = partial()
    // A small blob's file is written and synced through one descriptor (open, write, fsync, close), beside the next blobs'.
    const written = out === undefined ? writeDurably(file, Buffer.concat(chunks), flags) : syncPath(file, 'r+')
    // Hashed as they arrived and right: the write goes on beside the next blobs'. Else the file decides (and goes if wrong).
    if (hashed !== sha256) {
      await written
      await this.check(file, sha256, hashed)
    }
    return { partial: file, sha256, size, written }
  }

  /**
   * M2: stores the blobs a batch received, durably at once, before any is said stored: the small ones written to one
   * new pack file, synced with its directory; the others' files synced (as `receive` wrote them), renamed, each
   * directory synced once; then one transaction. A pack none of whose blobs was new (each stored meanwhile by another
   * request) goes again.
   */
  async commitMany(received: readonly ReceivedBlob[], account?: string): Promise<void> {
    const packed = received.filter((r) => 'bytes' in r)
    const loose = received.filter((r) => 'partial' in r)
    // Named by the cloud's time, so a sweep knows a pack no blob points into as a stray once it is old enough.
    const pack = packed.length > 0 ? `${this.clock.now()}-${randomBytes(12).toString('hex')}.pack` : undefined
    const offsets: number[] = []
    if (pack !== undefined) {
      let at = 0
      for (const r of packed) {
        offsets.push(at)
        at += r.size
      }
      // The blobs' buffers as they are, one gathered write (writev), not copied into one buffer first.
      await writeDurably(
        join(this.packs, pack),
        packed.map((r) => r.bytes),
        'wx',
      )
    }
    await Promise.all(loose.map((r) => r.written))
    const dirs = new Set(loose.map((r) => join(this.root, r.sha256.slice(0, 2))))
    if (pack !== undefined) dirs.add(this.packs)
    await Promise.all([...dirs].map((dir) => mkdir(dir, { recursive: true })))
    await Promise.all(loose.map((r) => rename(r.partial, this.blobPath(r.sha256))))
    await Promise.all([...dirs].map((dir) => syncPath(dir, 'r')))
    const now = this.clock.now()
    const added = this.db.transaction(() => {
      loose.forEach((r) => this.sql.insert.run(r.sha256, r.size, now, null, null))
      if (account !== undefined)
        for (const r of received) {
          // Sent for `account`: its phones may point items at them (mayClaim). A partial file is a blob now, not left to expire.
          this.sql.prove.run(r.sha256, account, now)
          if ('partial' in r) this.sql.forget.run(account, r.sha256)
        }
      return packed.reduce((n, r, i) => n + this.sql.insert.run(r.sha256, r.size, now, pack as string, offsets[i] as number).changes, 0)
    })()
    this.stores++
    if (account !== undefined && received.length > 0) this.onIdleDue?.(now + UPLOAD_IDLE_MS)
    if (pack !== undefined && added === 0) await rm(join(this.packs, pack), { force: true })
  }

  /** Stores a blob the cloud made itself (a backup assembled on the server, a console upload) in one go. */
  async put(bytes: Buffer): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    if (this.size(sha256) !== undefined) return sha256
    const tmp = join(this.incoming, `local-${sha256}.part`)
    try {
      await writeFileAsync(tmp, bytes)
    } catch (err) {
      // A full disk: none of a part-written file is worth keeping (the next attempt writes it whole).
      await rm(tmp, { force: true })
      throw err
    }
    await this.commit(tmp, sha256, bytes.length, sha256)
    return sha256
  }

  read(sha256: string): ReadStream {
    const file = this.locate(sha256)
    if (file === undefined) throw new BlobError('NOT_FOUND', `blob ${sha256} is not stored`)
    // A packed blob is never empty (receive): its last byte is at offset + size - 1.
    return file.packed ? createReadStream(file.path, { start: file.offset, end: file.offset + file.size - 1 }) : createReadStream(file.path)
  }

  /** Where a stored blob's bytes are, or undefined. */
  locate(sha256: string): BlobFile | undefined {
    const row = this.sql.locate.get(sha256)
    return row && this.fileOf(sha256, row)
  }

  /** Takes a reference for `account`; call inside the transaction that stores the item. */
  ref(account: string, sha256: string): void {
    if (this.size(sha256) === undefined) throw new BlobError('NOT_FOUND', `blob ${sha256} has not been uploaded`)
    this.sql.ref.run(account, sha256)
    // Held from now on: the proof is not needed any more. Dropped in the caller's transaction, so only once the reference
    // is committed: a transaction rolled back (a full database) leaves the account its proof, and the same registration
    // can be tried again.
    this.sql.dropProof.run(sha256, account)
  }

  /**
   * Drops one reference of `account`; a blob nobody holds is deleted by `sweep`, at the next one when this was the
   * account's last reference (the grace hour is for bytes never referenced yet, not for bytes an owner deleted).
   */
  unref(account: string, sha256: string): void {
    if (this.sql.unref.run(account, sha256).changes === 0 && this.sql.dropRef.run(account, sha256).changes > 0) this.released.add(sha256)
  }

  /** Deletes blobs nobody holds any more; returns how many went. */
  async sweep(): Promise<number> {
    await this.dropStrayPacks()
    let removed = 0
    for (;;) {
      const orphans = this.sql.orphans.all(this.clock.now() - ORPHAN_GRACE_MS, JSON.stringify([...this.released]))
      orphans.forEach((o) => this.released.delete(o.sha256))
      if (orphans.length === 0) {
        // What is left of `released` was asked about just now and is held again (or proved): not the sweep's any more.
        this.released.clear()
        return removed
      }
      // Rows go in one synchronous transaction, so nothing can take a reference in between; files after.
      this.db.transaction(() =>
        orphans.forEach((o) => {
          this.sql.dropProofs.run(o.sha256)
          this.sql.deleteBlob.run(o.sha256)
        }),
      )()
      const packs = new Set<string>()
      for (const o of orphans)
        if (o.pack === null) await rm(this.blobPath(o.sha256), { force: true })
        else packs.add(o.pack)
      // A pack goes with the last blob in it (the space of the others that went before stays taken until then).
      for (const pack of packs) if (this.sql.packUsed.get(pack) === undefined) await rm(join(this.packs, pack), { force: true })
      removed += orphans.length
    }
  }

  /**
   * After a deletion is committed (an owner's, or a rule's): the blobs nobody holds leave the disk, and so do the WAL's
   * older copies of the deleted rows (`truncateWal`). Never rejects, for a caller whose own change is done: a failing
   * disk is logged, and the next one takes what this one left. Resolves to how many blobs went.
   */
  async eraseDeleted(): Promise<number> {
    try {
      const removed = await this.sweep()
      const truncated = truncateWal(this.db)
      this.log.debug({ removed, walTruncated: truncated }, 'deleted data erased from disk')
      return removed
    } catch (err) {
      this.log.warn({ err }, 'deleted data could not be erased from disk; the next deletion erases it')
      return 0
    }
  }

  /**
   * Deletes the packs no blob points into that were written over the grace hour ago: those of a batch the cloud was
   * stopped in between writing its pack and its transaction (the blobs of such a batch are sent again).
   */
  private async dropStrayPacks(): Promise<void> {
    const before = this.clock.now() - ORPHAN_GRACE_MS
    for (const name of await readdir(this.packs))
      if (Number(name.split('-')[0]) <= before && this.sql.packUsed.get(name) === undefined)
        await rm(join(this.packs, name), { force: true })
  }

  /** Stores the partial file as the blob once its bytes hash to `sha256` (`hashed`: what they hashed to as they were written). */
  private async commit(partial: string, sha256: string, size: number, hashed?: string): Promise<void> {
    await this.check(partial, sha256, hashed)
    // Stored already (for another account, or by a concurrent upload): these bytes only proved they match it.
    if (this.size(sha256) !== undefined) return rm(partial, { force: true })
    await syncPath(partial, 'r+')
    const dir = join(this.root, sha256.slice(0, 2))
    mkdirSync(dir, { recursive: true })
    await rename(partial, this.blobPath(sha256))
    this.sql.insert.run(sha256, size, this.clock.now(), null, null)
    this.stores++
  }

  /** Throws CHECKSUM_MISMATCH (the partial file discarded) unless the partial file's bytes hash to `sha256`. */
  private async check(partial: string, sha256: string, hashed: string | undefined): Promise<void> {
    const actual = hashed ?? (await sha256File(partial))
    if (actual !== sha256) {
      await rm(partial, { force: true })
      throw mismatch(actual, sha256)
    }
  }

  private fileOf(sha256: string, row: BlobRow): BlobFile {
    const { size, pack, offset } = row
    return pack === null
      ? { size, path: this.blobPath(sha256), offset: 0, packed: false }
      : { size, path: join(this.packs, pack), offset: offset as number, packed: true }
  }

  private blobPath(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256)
  }

  /** New bytes of `account`'s partial upload of `sha256` arrived: it is removed UPLOAD_IDLE_MS after this unless more do. */
  private touch(account: string, sha256: string): void {
    const now = this.clock.now()
    this.sql.touch.run(account, sha256, now)
    this.onIdleDue?.(now + UPLOAD_IDLE_MS)
  }

  /** The partial upload became a blob or was discarded. */
  private forget(account: string, sha256: string): void {
    this.sql.forget.run(account, sha256)
  }

  /** A resume from an offset the cloud does not hold: from where it stands, or from the start when it was removed idle. */
  private badOffset(account: string, sha256: string, have: number): BlobError {
    const expiredAt = have === 0 ? this.sql.expiredAt.get(account, sha256) : undefined
    return new BlobError(
      'BAD_OFFSET',
      expiredAt === undefined
        ? `the cloud has ${have} bytes of this blob; send from offset ${have}`
        : `the partial upload of this blob was removed at ${new Date(expiredAt).toISOString()} after ` +
            `${UPLOAD_IDLE_HOURS} h without new bytes; start again from offset 0`,
    )
  }

  /** When `expireIdle` next has something to do, or null: an idle upload or a record of a removed one falls due. */
  nextIdleDue(): number | null {
    const times = [one(this.sql.uploadsNext), one(this.sql.proofsNext)].filter((at) => at !== null)
    return times.length === 0 ? null : Math.min(...times) + UPLOAD_IDLE_MS
  }

  /**
   * A1, S3: removes the partial uploads that had no new bytes for UPLOAD_IDLE_MS by `now` (their quota is free again)
   * and returns them. Synchronous, so no request starts appending to one in between; one being written now is busy, not
   * idle. A partial file the database does not know (written before it kept track, or left by a failing disk) is taken
   * in as of now; a record whose file is gone is dropped, as is that of a removal older than UPLOAD_IDLE_MS. Proofs of
   * bytes (mayClaim) older than UPLOAD_IDLE_MS go too: a phone registers its item within a day of its upload.
   */
  expireIdle(now: number): ExpiredUpload[] {
    const idleBefore = now - UPLOAD_IDLE_MS
    const files = new Set(readdirSync(this.incoming).filter((n) => PARTIAL_NAME.test(n)))
    const removed: ExpiredUpload[] = []
    this.db.transaction(() => {
      for (const u of this.sql.uploads.all()) {
        const name = this.partialName(u.account, u.sha256)
        const kept = files.delete(name)
        // Being written now, or begun again after a removal (a batch's file, written before it is touched): idle from now.
        if (this.busy.has(`${u.account}\u0000${u.sha256}`) || (kept && u.expiredAt !== null)) this.sql.touch.run(u.account, u.sha256, now)
        else if (!kept) {
          if (u.expiredAt === null || u.expiredAt <= idleBefore) this.forget(u.account, u.sha256)
        } else if (u.touchedAt <= idleBefore) {
          const path = join(this.incoming, name)
          removed.push({ account: u.account, sha256: u.sha256, bytes: statSync(path).size })
          rmSync(path, { force: true })
          this.sql.expired.run(now, u.account, u.sha256)
        }
      }
      for (const name of files) {
        const [hex, sha256] = name.slice(0, -'.part'.length).split('-') as [string, string]
        this.sql.adopt.run(Buffer.from(hex, 'hex').toString(), sha256, now)
      }
      const proofs = this.sql.oldProofs.run(idleBefore).changes
      if (proofs > 0) this.log.info({ proofs }, 'proofs of uploaded bytes no item claimed within a day dropped')
    })()
    return removed
  }

  private partialName(account: string, sha256: string): string {
    return `${Buffer.from(account).toString('hex')}-${sha256}.part`
  }

  private partialPath(account: string, sha256: string): string {
    return join(this.incoming, this.partialName(account, sha256))
  }

  /**
   * A1: the bytes `account`'s unfinished uploads hold on disk, but for `sha256`'s: what a phone's new upload must find
   * room for besides its own size, so uploads never finished cannot fill the cloud's disk past the quota.
   */
  async pendingBytes(account: string, sha256?: string): Promise<number> {
    let total = 0
    for (const other of await this.partials(account)) if (other !== sha256) total += await this.partialSize(account, other)
    return total
  }

  private async partialSize(account: string, sha256: string): Promise<number> {
    try {
      return (await stat(this.partialPath(account, sha256))).size
    } catch {
      return 0
    }
  }
}

/** An account's partial upload's file name: the account in hex, the blob's SHA-256 (not a `local-` file of `put`). */
const PARTIAL_NAME = /^[0-9a-f]+-[0-9a-f]{64}\.part$/

const mismatch = (actual: string, sha256: string): BlobError =>
  new BlobError('CHECKSUM_MISMATCH', `the bytes received hash to ${actual}, not ${sha256}; the partial upload was discarded, send it again`)

const openAsync = promisify(openCb)
const fsyncAsync = promisify(fsyncCb)
const closeAsync = promisify(closeCb)
const writeFileAsync = promisify(writeFileCb)
const writeAsync = promisify(writeCb)
const writevAsync = promisify(writevCb)

/**
 * Writes `bytes` (one buffer, or a pack's blobs one after another) to a file (flags 'w', 'wx' or 'a') and syncs it
 * before closing it: four calls (M2's batch of small blobs, a pack).
 */
async function writeDurably(path: string, bytes: Buffer | Buffer[], flags: string): Promise<void> {
  const fd = await openAsync(path, flags)
  try {
    // libuv's writev writes every buffer (a short write carries on from where it stopped, IOV_MAX at a time) or fails.
    if (Array.isArray(bytes)) await writevAsync(fd, bytes)
    else for (let at = 0; at < bytes.length;) at += (await writeAsync(fd, bytes, at, bytes.length - at)).bytesWritten
    await fsyncAsync(fd)
  } finally {
    await closeAsync(fd)
  }
}

/** Opens, syncs and closes a file or directory (node:fs's callbacks: a batch syncs hundreds at once, FileHandles cost more). */
async function syncPath(path: string, flags: string): Promise<void> {
  const fd = await openAsync(path, flags)
  try {
    await fsyncAsync(fd)
  } finally {
    await closeAsync(fd)
  }
}
