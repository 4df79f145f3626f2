/**
 * M2: blobs between two clouds in batches (the routes in
 * common/cloud/blob-batch.ts): a few requests carry a thousand blobs, each
 * streamed from the source's batch read straight into the destination's
 * batch upload, so the bytes in flight are a few stream buffers whatever
 * the account's size. Each blob keeps the per-item rules of a single
 * upload (cli/transfer/account-import.ts): the destination's refusal (over
 * quota) is that blob's; a checksum mismatch or a cut connection is
 * retried from the offset the destination kept, at most BLOB_ATTEMPTS
 * times, each failed attempt (and the one that then stored it) told to
 * `fault`; a cut batch counts an attempt only for the blob that was in
 * transit (the first of it the destination does not hold). Verification
 * has the destination re-read and hash its blobs itself (`verifyBlobs`).
 */
import { Readable } from 'node:stream'
import {
  BlobOutcomesSchema,
  MAX_BATCH_PARTS,
  partHeader,
  readParts,
  VerifyReplySchema,
  type BlobOutcome,
  type BlobVerdict,
  type Part,
} from '../../common/cloud/blob-batch.js'
import { FakephoneError } from '../../common/errors.js'
import type { ConsoleClient } from '../console-client.js'

/** Bytes a batch carries before the next one starts (a larger blob goes alone); two batches go at once. */
export const BATCH_BYTES = 8 * 1024 * 1024
const BATCHES_AT_ONCE = 2
/** Bytes gathered into one write of a batch body. */
const GATHER = 64 * 1024

const enc = encodeURIComponent

/** The blobs `sha256s` that `account` holds on the cloud behind `api`, in that order, streamed (`gone` for one it cannot give). */
export async function* readBlobs(api: ConsoleClient, account: string, sha256s: readonly string[]): AsyncGenerator<Part> {
  for (let i = 0; i < sha256s.length; i += MAX_BATCH_PARTS) {
    const body = Buffer.from(JSON.stringify({ sha256: sha256s.slice(i, i + MAX_BATCH_PARTS) }))
    const res = await api.stream('POST', `/api/accounts/${enc(account)}/blobs/read`, body, 'application/json')
    yield* readParts(res, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  }
}

/** Bytes of blobs one verification request has the cloud re-read and hash (a larger blob goes alone). */
export const VERIFY_BYTES = 256 * 1024 * 1024

export interface VerifyBlob extends BatchBlob {
  /** A photo: its EXIF is read too. */
  exif: boolean
}

/**
 * M2's verification: the blobs `blobs` of `account` re-read from the disk of the cloud behind `api` and hashed there
 * (a photo's EXIF read there too), by requests of at most MAX_BATCH_PARTS blobs and VERIFY_BYTES; each blob's verdict,
 * by its SHA-256. The bytes stay on the cloud.
 */
export async function verifyBlobs(api: ConsoleClient, account: string, blobs: readonly VerifyBlob[]): Promise<Map<string, BlobVerdict>> {
  const out = new Map<string, BlobVerdict>()
  for (const batch of batches(blobs, VERIFY_BYTES)) {
    const body = { blobs: batch.map(({ sha256, exif }) => ({ sha256, exif })) }
    const reply = VerifyReplySchema.parse(await api.request(`/api/accounts/${enc(account)}/blobs/verify`, body))
    // One verdict per blob asked, in that order: a blob left out must not pass for one that was checked.
    if (reply.blobs.length !== batch.length || reply.blobs.some((v, i) => v.sha256 !== batch[i]?.sha256))
      throw new FakephoneError('BAD_REPLY', `the cloud's verification does not answer for the ${batch.length} blobs asked, in order`)
    for (const verdict of reply.blobs) out.set(verdict.sha256, verdict)
  }
  return out
}

export interface BatchBlob {
  sha256: string
  size: number
}

/** What becomes of each blob: stored (bytes sent, 0 when it was there already) or refused with the reason. */
export interface BatchEvents {
  stored(sha256: string, size: number): void
  refused(sha256: string, why: string): void
  fault(sha256: string, why: string): void
}

interface Pending extends BatchBlob {
  attempts: number
  from: number
  faults: string[]
}

async function outcomes(api: ConsoleClient, base: string, blobs: readonly BatchBlob[]): Promise<BlobOutcome[]> {
  const out: BlobOutcome[] = []
  for (let i = 0; i < blobs.length; i += MAX_BATCH_PARTS) {
    const list = blobs.slice(i, i + MAX_BATCH_PARTS).map(({ sha256, size }) => ({ sha256, size }))
    out.push(...BlobOutcomesSchema.parse(await api.request(`${base}/blobs/state`, { blobs: list })).blobs)
  }
  return out
}

/** Groups blobs into batches of at most `most` bytes (a larger blob alone) and MAX_BATCH_PARTS. */
function batches<T extends BatchBlob>(blobs: readonly T[], most = BATCH_BYTES): T[][] {
  const out: T[][] = []
  let bytes = Infinity
  for (const b of blobs) {
    const last = out[out.length - 1]
    if (last === undefined || bytes + b.size > most || last.length === MAX_BATCH_PARTS) {
      out.push([b])
      bytes = b.size
    } else {
      last.push(b)
      bytes += b.size
    }
  }
  return out
}

/**
 * The upload body of a batch: each blob's header and its bytes from `from`, as `read` streams them; its length in bytes.
 * A blob the source does not give is told to `gone`, and the body breaks off there.
 */
function framed(batch: readonly Pending[], read: AsyncIterable<Part>, gone: (b: Pending) => void): { stream: Readable; length: number } {
  const header = (b: Pending): Buffer => partHeader('blob', b.sha256, b.size, b.from)
  // Small pieces (headers, small blobs) go out gathered, a write of at least GATHER bytes each.
  let held: Buffer[] = []
  let heldBytes = 0
  function* send(piece: Buffer): Generator<Buffer> {
    if (piece.length >= GATHER && heldBytes === 0) {
      yield piece
      return
    }
    held.push(piece)
    heldBytes += piece.length
    if (heldBytes < GATHER) return
    yield Buffer.concat(held)
    held = []
    heldBytes = 0
  }
  async function* frames(): AsyncGenerator<Buffer> {
    let i = 0
    for await (const part of read) {
      const blob = batch[i++] as Pending
      if (part.kind === 'gone' || part.sha256 !== blob.sha256 || part.size !== blob.size) {
        gone(blob)
        throw new Error(`the source cannot read blob ${blob.sha256}`)
      }
      yield* send(header(blob))
      let skip = blob.from
      for await (const chunk of part.body) {
        if (skip < chunk.length) yield* send(skip > 0 ? chunk.subarray(skip) : chunk)
        skip = Math.max(0, skip - chunk.length)
      }
    }
    if (heldBytes > 0) yield Buffer.concat(held)
  }
  const length = batch.reduce((n, b) => n + header(b).length + b.size - b.from, 0)
  return { stream: Readable.from(frames(), { objectMode: false }), length }
}

/**
 * Copies `blobs` to `account` on the cloud behind `dest`, reading them with
 * `read` (M2: the source cloud's batch read), in batches; stops between
 * batches once `signal` is aborted (and throws the abort).
 */
export async function uploadInBatches(
  dest: ConsoleClient,
  account: string,
  blobs: readonly BatchBlob[],
  read: (sha256s: string[]) => AsyncIterable<Part>,
  events: BatchEvents,
  signal?: AbortSignal,
  attempts = 3,
): Promise<void> {
  const base = `/api/accounts/${enc(account)}`
  let todo: Pending[] = blobs.map((b) => ({ ...b, attempts: 0, from: 0, faults: [] }))
  const done = new Set<string>()
  /** Batches whose connection broke, with the reason: the first blob of it the destination lacks was in transit. */
  let cut: { batch: Pending[]; why: string }[] = []
  const fault = (b: Pending, why: string): void => {
    const said = `attempt ${b.attempts} from offset ${b.from}: ${why}`
    b.faults.push(said)
    events.fault(b.sha256, said)
  }
  const refuse = (b: Pending, why: string): void => {
    done.add(b.sha256)
    events.refused(b.sha256, why)
  }
  const stored = (b: Pending): void => {
    done.add(b.sha256)
    if (b.faults.length > 0) events.fault(b.sha256, `attempt ${b.attempts} from offset ${b.from}: stored`)
    events.stored(b.sha256, b.attempts > 0 ? b.size - b.from : 0)
  }
  const send = async (batch: Pending[]): Promise<void> => {
    let gone: Pending | undefined
    const body = framed(batch, read(batch.map((b) => b.sha256)), (b) => (gone = b))
    let reply: BlobOutcome[]
    try {
      const res = await dest.stream('POST', `${base}/blobs/batch`, body, 'application/octet-stream')
      reply = BlobOutcomesSchema.parse(JSON.parse((await readAll(res)).toString())).blobs
    } catch (err) {
      if (gone !== undefined) {
        // Not the destination's fault: that blob is refused, the others of the batch go again uncounted.
        refuse(gone, 'the source cannot read it')
        batch.forEach((b) => b.attempts--)
        return
      }
      // A cut connection (or an answer that is not one): the next round's query says what arrived.
      cut.push({ batch, why: (err as Error).message })
      return
    }
    const answered = new Map(reply.map((o) => [o.sha256, o]))
    for (const b of batch) {
      const o = answered.get(b.sha256)
      /* c8 ignore next -- a fakephone cloud answers for every part of a batch it read to the end */
      if (o === undefined) fault(b, 'the cloud did not answer for it')
      else if ('error' in o) fault(b, o.error)
      else stored(b)
    }
  }
  while (todo.length > 0) {
    signal?.throwIfAborted()
    const states = new Map((await outcomes(dest, base, todo)).map((o) => [o.sha256, o]))
    for (const { batch, why } of cut) {
      const lost = batch.filter((b) => !done.has(b.sha256) && (states.get(b.sha256) as { stored?: boolean }).stored !== true)
      lost.slice(1).forEach((b) => b.attempts--)
      if (lost[0] !== undefined) fault(lost[0], why)
    }
    cut = []
    const next: Pending[] = []
    for (const b of todo) {
      const state = states.get(b.sha256) as BlobOutcome
      if ('error' in state) refuse(b, state.error)
      else if (state.stored) stored(b)
      else if (b.attempts >= attempts) refuse(b, `not stored after ${attempts} attempts: ${b.faults.join('; ')}`)
      else next.push(Object.assign(b, { attempts: b.attempts + 1, from: state.offset }))
    }
    const queue = batches(next)
    await Promise.all(
      Array.from({ length: BATCHES_AT_ONCE }, async () => {
        for (let batch = queue.shift(); batch !== undefined; batch = queue.shift()) {
          signal?.throwIfAborted()
          await send(batch)
        }
      }),
    )
    todo = next.filter((b) => !done.has(b.sha256))
  }
  // Aborted as the last batch ran: the caller goes no further either.
  signal?.throwIfAborted()
}

/** A whole answer's bytes. */
async function readAll(res: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk)
  return Buffer.concat(chunks)
}
