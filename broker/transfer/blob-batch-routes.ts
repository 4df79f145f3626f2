/**
 * M2: the batch blob routes of the console API (shapes and framing in
 * common/cloud/blob-batch.ts): where many uploads stand in one query, many
 * blobs in one streamed upload, many blobs read back in one streamed answer.
 * An upload batch hashes each blob as it arrives and refuses each one on
 * its own (over quota before a byte of it is stored, a checksum mismatch
 * discarded, a resume from the wrong offset); the blobs that arrived whole
 * are made durable together: their files synced, renamed, each directory
 * synced once, one SQLite transaction. A batch that breaks off (a cut
 * connection) keeps the partial file of the blob it was in for a resume and
 * still commits the blobs before it; a malformed one is refused (400) after
 * the same, a larger one (413) too.
 *
 * The batch read is the one route a transfer grant opens (the source's side
 * of a pull, blob-pull-routes.ts), for the grant's account only.
 *
 * Verification (M2's verify-after-import) re-reads blobs from the cloud's own
 * disk, packs and files alike, hashes them and reads a photo's EXIF from its
 * first 256 KiB, and answers in JSON: the bytes do not cross HTTP again.
 */
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, type ReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import {
  BatchFramingError,
  BlobReadRequestSchema,
  BlobStateRequestSchema,
  BlobVerifyRequestSchema,
  MAX_BATCH_BYTES,
  MAX_BATCH_PARTS,
  partHeader,
  readParts,
  type BlobOutcome,
  type BlobVerdict,
} from '../../common/cloud/blob-batch.js'
import { FakephoneError } from '../../common/errors.js'
import { storageFailure } from '../../common/storage-errors.js'
import { readPhotoMeta } from '../../common/photo-meta.js'
import { assertRoom, type AccountView } from '../cloud/accounts.js'
import { MAX_BLOB_BYTES, PACK_MAX, type BlobFile, type BlobStore, type ReceivedBlob } from '../cloud/blob-store.js'
import { HttpError, type HttpRouter, type RouteContext } from '../http/router.js'
import type { TransferDeps } from './deps.js'
import { quoted } from '../../common/terminal-text.js'

/** A blob read whole into memory when at most this large, or packed (readLarge streams a file of its own from its start). */
const READ_WHOLE = PACK_MAX

/**
 * Reads small blobs for a batch read synchronously: each async call is a round trip through the threadpool costing more
 * CPU than the read itself, and this is at most 64 KiB from a local file (M2's bench: 2.6 s instead of 4.1 s to
 * migrate and verify 1,300 blobs). The last file opened stays open, so the blobs of one pack are read through one
 * descriptor.
 */
class SmallReader {
  private path: string | undefined
  private fd: number | undefined

  /**
   * Reads a small blob's bytes into `into` at `at`; answers false when its file cannot be read or no longer has the
   * size it was stored with: one read (no stat, its size is known) of a byte more than its size from its own file (so
   * `into` has room for size + 1 bytes from `at`), of its size from a pack.
   */
  readInto(file: BlobFile, into: Buffer, at: number): boolean {
    try {
      if (this.path !== file.path) {
        this.close()
        this.fd = openSync(file.path, 'r')
        this.path = file.path
      }
      const want = file.packed ? file.size : file.size + 1
      return readSync(this.fd as number, into, at, want, file.offset) === file.size
    } catch {
      return false
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
    this.path = undefined
  }
}

/**
 * Bytes of part headers and small blobs a batch read gathers into one buffer before it goes out: the blobs are read
 * straight into it, not each into a buffer of its own then copied beside its header, and the answer is a write per
 * GATHER bytes, not two per blob (M2's bench). Derived from READ_WHOLE, so an empty buffer always has room for any
 * blob read whole, its header and the byte more read from a file of its own (256 KiB today).
 */
const GATHER = 4 * READ_WHOLE

/** A large stored blob's bytes as a stream, or undefined as for readSmall. */
async function readLarge(path: string, size: number): Promise<ReadStream | undefined> {
  try {
    const fh = await open(path)
    if ((await fh.stat()).size === size) return fh.createReadStream({ highWaterMark: 1024 * 1024 })
    await fh.close()
    return undefined
  } catch {
    return undefined
  }
}

/** A photo's EXIF is in its first segments: verification reads it from this much of the blob. */
const EXIF_HEAD = 256 * 1024

/** Bytes verification reads and hashes synchronously (small blobs) before it lets the event loop run. */
const VERIFY_TURN = 1024 * 1024

/**
 * M2's verification of one blob from the cloud's disk: what its bytes hash to and, when `exif`, what its first
 * EXIF_HEAD bytes say; or why it cannot be read. A small blob is read synchronously through `small` into `into`
 * (READ_WHOLE + 1 bytes), a large one streamed.
 */
async function verifyOne(
  sha256: string,
  file: BlobFile | undefined,
  exif: boolean,
  small: SmallReader,
  into: Buffer,
): Promise<BlobVerdict> {
  if (file === undefined) return { sha256, code: 'NOT_FOUND', error: 'this account holds no such blob' }
  const unreadable: BlobVerdict = { sha256, code: 'UNREADABLE', error: 'its file is gone or not the size it was stored with' }
  const hash = createHash('sha256')
  let head: Buffer
  if (file.packed || file.size <= READ_WHOLE) {
    if (!small.readInto(file, into, 0)) return unreadable
    head = into.subarray(0, file.size)
    hash.update(head)
  } else {
    const stream = await readLarge(file.path, file.size)
    if (stream === undefined) return unreadable
    const kept: Buffer[] = []
    let keptBytes = 0
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk)
      if (exif && keptBytes < EXIF_HEAD) {
        kept.push(chunk)
        keptBytes += chunk.length
      }
    }
    head = Buffer.concat(kept)
  }
  const hashed = hash.digest('hex')
  if (!exif) return { sha256, hashed, meta: null }
  const { takenAt, lat, lon, camera } = await readPhotoMeta(head.subarray(0, EXIF_HEAD))
  return { sha256, hashed, meta: { takenAt, lat, lon, camera } }
}

/** What a batch stored: each blob's outcome in order, the blobs made durable, and what broke the batch off if anything did. */
export interface StoredBatch {
  out: BlobOutcome[]
  stored: string[]
  broken?: Error
}

/** An expected refusal of one blob (quota, checksum, offset...) is its outcome; anything else fails the batch. */
function refusal(sha256: string, err: unknown): BlobOutcome {
  if (!(err instanceof FakephoneError) || err instanceof BatchFramingError) throw err
  return { sha256, code: err.code, error: err.message }
}

/**
 * Stores the framed blobs of `body` (a batch upload's body, or the source's answer a pull passes through `Relay`) for
 * account `a`, each with the rules of a single upload: one already stored is stored, one over quota refused before a
 * byte is kept, each hashed as it arrives, a resume only from the offset kept. What arrived whole before a break (a cut
 * connection, a malformed part) is made durable all the same; the blob in transit keeps its partial file for a resume.
 */
export async function storeBatch(blobs: BlobStore, a: AccountView, body: AsyncIterable<Buffer>): Promise<StoredBatch> {
  const id = a.id
  const out: BlobOutcome[] = []
  // Which blobs have a partial file from an earlier attempt: one listing for the batch, not a call per blob. Not
  // awaited here: the body is read from the start (a connection cut meanwhile must not take bytes that had arrived).
  const partials = blobs.partials(id)
  // Awaited by the first small blob, if any: a failed listing fails that blob, and is not an unhandled rejection here.
  /* c8 ignore next -- listing the store's own incoming directory fails only when it is taken from under the cloud */
  partials.catch(() => undefined)
  const received: ReceivedBlob[] = []
  const releases: (() => void)[] = []
  let broken: Error | undefined
  try {
    for await (const part of readParts(body, MAX_BATCH_BYTES, MAX_BLOB_BYTES)) {
      if (part.kind !== 'blob') throw new BatchFramingError('BAD_REQUEST', 'an upload batch carries blob parts only')
      if (out.length === MAX_BATCH_PARTS) throw new BatchFramingError('BAD_REQUEST', `a batch holds at most ${MAX_BATCH_PARTS} blobs`)
      const { sha256, size, offset } = part
      try {
        if (blobs.size(sha256) !== undefined) {
          out.push({ sha256, stored: true, offset: size })
          continue
        }
        assertRoom(a, size, 'this upload')
        releases.push(blobs.claim(id, sha256))
        received.push(await blobs.receive(id, sha256, size, offset, part.body, partials))
        out.push({ sha256, stored: true, offset: size })
      } catch (err) {
        out.push(refusal(sha256, err))
      }
    }
  } catch (err) {
    broken = err as Error
  }
  // Cut or malformed too: what arrived whole before it is kept all the same (its checksum held), and its phones may
  // point items at them (blob-store.ts, mayClaim).
  await blobs.commitMany(received, id).finally(() => releases.forEach((r) => r()))
  // A full or failing disk is the cloud's: 507 with the reason (router.ts), not the batch's framing.
  if (broken !== undefined && storageFailure(broken)) throw broken
  return { out, stored: received.map((r) => r.sha256), broken }
}

export function addBlobBatchRoutes(router: HttpRouter, deps: TransferDeps): void {
  const { accounts, blobs } = deps.cloud
  const CONSOLE = ['console'] as const
  const account = (ctx: RouteContext): AccountView => accounts.need(ctx.params.account as string)

  router.add('POST', '/api/accounts/:account/blobs/state', CONSOLE, async (ctx) => {
    const a = account(ctx)
    const id = a.id
    const req = await ctx.json(BlobStateRequestSchema, { what: 'blob state query' })
    const out: BlobOutcome[] = []
    const partials = await blobs.partials(id)
    // Which are stored already: one read transaction, not a query (and SQLite's locking) per blob.
    const { sizes, asOf } = blobs.sizes(req.blobs.map((b) => b.sha256))
    for (const [i, { sha256, size }] of req.blobs.entries())
      try {
        if (sizes[i] !== undefined) {
          out.push({ sha256, stored: true, offset: size })
          continue
        }
        assertRoom(a, size, 'this upload')
        const { stored, offset } = await blobs.state(id, sha256, size, partials, asOf)
        out.push({ sha256, stored, offset })
      } catch (err) {
        out.push(refusal(sha256, err))
      }
    return { status: 200, body: { blobs: out } }
  })

  router.add('POST', '/api/accounts/:account/blobs/batch', CONSOLE, async (ctx) => {
    // Read once for the whole batch: its blobs are charged when their records are stored, not here.
    const a = account(ctx)
    if (Number(ctx.req.headers['content-length']) > MAX_BATCH_BYTES)
      throw new HttpError(413, 'TOO_LARGE', `a batch may be at most ${MAX_BATCH_BYTES} bytes`)
    const { out, stored, broken } = await storeBatch(blobs, a, ctx.req)
    if (broken === undefined) return { status: 200, body: { blobs: out } }
    const tooLarge = (broken as FakephoneError).code === 'TOO_LARGE'
    throw new HttpError(tooLarge ? 413 : 400, tooLarge ? 'TOO_LARGE' : 'BAD_REQUEST', broken.message, { stored })
  })

  // M2: another cloud pulling with a transfer grant may read too, the blobs of the account the grant is for only.
  router.add('POST', '/api/accounts/:account/blobs/read', ['console', 'grant'], async (ctx) => {
    const { id } = account(ctx)
    const { principal } = ctx
    if (principal.kind === 'grant' && principal.account !== id)
      throw new HttpError(403, 'FORBIDDEN', `this transfer grant is for another account, not ${quoted(id)}`)
    const { sha256: list } = await ctx.json(BlobReadRequestSchema, { what: 'blob read' })
    const files = blobs.held(id, list)
    async function* parts(): AsyncGenerator<Buffer> {
      const small = new SmallReader()
      let out = Buffer.allocUnsafe(GATHER)
      let at = 0
      /** What was gathered goes out unless `room` bytes are left after it (Infinity: whatever there is). */
      function* flush(room: number): Generator<Buffer> {
        if (at === 0 || out.length - at >= room) return
        yield out.subarray(0, at)
        out = Buffer.allocUnsafe(GATHER)
        at = 0
      }
      function* gone(sha256: string): Generator<Buffer> {
        const header = partHeader('gone', sha256, 0, 0)
        yield* flush(header.length)
        at += header.copy(out, at)
      }
      try {
        for (const [i, sha256] of list.entries()) {
          const file = files[i]
          if (file === undefined) yield* gone(sha256)
          else if (file.packed || file.size <= READ_WHOLE) {
            // The header, then the bytes read straight after it; for a blob that cannot be read, a `gone` header instead.
            const header = partHeader('blob', sha256, file.size, 0)
            yield* flush(header.length + file.size + 1)
            header.copy(out, at)
            if (small.readInto(file, out, at + header.length)) at += header.length + file.size
            else yield* gone(sha256)
          } else {
            const stream = await readLarge(file.path, file.size)
            if (stream === undefined) yield* gone(sha256)
            else {
              yield* flush(Infinity)
              yield partHeader('blob', sha256, file.size, 0)
              yield* stream
            }
          }
        }
        yield* flush(Infinity)
      } finally {
        small.close()
      }
    }
    return { status: 200, stream: Readable.from(parts(), { objectMode: false }), headers: { 'content-type': 'application/octet-stream' } }
  })

  router.add('POST', '/api/accounts/:account/blobs/verify', CONSOLE, async (ctx) => {
    const { id } = account(ctx)
    const { blobs: list } = await ctx.json(BlobVerifyRequestSchema, { what: 'blob verification' })
    const files = blobs.held(
      id,
      list.map((b) => b.sha256),
    )
    const small = new SmallReader()
    const into = Buffer.allocUnsafe(READ_WHOLE + 1)
    const out: BlobVerdict[] = []
    let since = 0
    try {
      for (const [i, { sha256, exif }] of list.entries()) {
        const file = files[i]
        out.push(await verifyOne(sha256, file, exif, small, into))
        // Small blobs are read and hashed synchronously: other requests (phones' heartbeats) get a turn every MiB or so.
        since += file?.size ?? 0
        if (since >= VERIFY_TURN) {
          since = 0
          await turn()
        }
      }
    } finally {
      small.close()
    }
    return { status: 200, body: { blobs: out } }
  })
}
