/**
 * M2: blobs between two clouds in batches (the routes in
 * common/cloud/blob-batch.ts): a few requests carry a thousand blobs, each
 * batch's answer from the source's batch read passed on as it arrives into
 * the destination's batch upload, so the bytes in flight are a few stream
 * buffers whatever the account's size. The two framings are the same for a
 * blob sent from its first byte, so the console does not take the answer
 * apart into parts and frame them again: it checks each part's header as it
 * passes and passes the bytes on as they came (`Relay`). Each blob keeps
 * the per-item rules of a single upload (cli/transfer/account-import.ts):
 * the destination's refusal (over quota) is that blob's; a checksum
 * mismatch or a cut connection is retried from the offset the destination
 * kept, at most BLOB_ATTEMPTS times, each failed attempt (and the one that
 * then stored it) told to `fault`; a cut batch counts an attempt only for
 * the blob that was in transit (the first of it the destination does not
 * hold). Verification has the destination re-read and hash its blobs itself
 * (`verifyBlobs`).
 */
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import {
  BlobOutcomesSchema,
  MAX_BATCH_PARTS,
  partHeader,
  VerifyReplySchema,
  type BlobOutcome,
  type BlobVerdict,
} from '../../common/cloud/blob-batch.js'
import { FakephoneError } from '../../common/errors.js'
import type { ConsoleClient } from '../console-client.js'

/** Bytes a batch carries before the next one starts (a larger blob goes alone); two batches go at once. */
export const BATCH_BYTES = 8 * 1024 * 1024
const BATCHES_AT_ONCE = 2

const enc = encodeURIComponent

/**
 * The blobs `sha256s` (at most MAX_BATCH_PARTS) that `account` holds on the cloud behind `api`, in that order: the
 * batch read's answer, framed (common/cloud/blob-batch.ts; `gone` for one it cannot give), as it arrives.
 */
export async function readBlobs(api: ConsoleClient, account: string, sha256s: readonly string[]): Promise<Readable> {
  const body = Buffer.from(JSON.stringify({ sha256: sha256s }))
  return api.stream('POST', `/api/accounts/${enc(account)}/blobs/read`, body, 'application/json')
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
 * by its SHA-256. The bytes stay on the cloud. `checked` hears each blob once its request is answered (progress).
 */
export async function verifyBlobs(
  api: ConsoleClient,
  account: string,
  blobs: readonly VerifyBlob[],
  checked: (blob: VerifyBlob) => void,
): Promise<Map<string, BlobVerdict>> {
  const out = new Map<string, BlobVerdict>()
  for (const batch of batches(blobs, VERIFY_BYTES)) {
    const body = { blobs: batch.map(({ sha256, exif }) => ({ sha256, exif })) }
    const reply = await api.read(VerifyReplySchema, 'POST', `/api/accounts/${enc(account)}/blobs/verify`, body)
    // One verdict per blob asked, in that order: a blob left out must not pass for one that was checked.
    if (reply.blobs.length !== batch.length || reply.blobs.some((v, i) => v.sha256 !== batch[i]?.sha256))
      throw new FakephoneError('BAD_REPLY', `the cloud's verification does not answer for the ${batch.length} blobs asked, in order`)
    for (const verdict of reply.blobs) out.set(verdict.sha256, verdict)
    batch.forEach(checked)
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

/** A blob of a batch being sent: from its byte `from` on (the destination holds the ones before). */
export interface Sending extends BatchBlob {
  from: number
}

interface Pending extends Sending {
  attempts: number
  faults: string[]
}

async function outcomes(api: ConsoleClient, base: string, blobs: readonly BatchBlob[]): Promise<BlobOutcome[]> {
  const out: BlobOutcome[] = []
  for (let i = 0; i < blobs.length; i += MAX_BATCH_PARTS) {
    const list = blobs.slice(i, i + MAX_BATCH_PARTS).map(({ sha256, size }) => ({ sha256, size }))
    out.push(...(await api.read(BlobOutcomesSchema, 'POST', `${base}/blobs/state`, { blobs: list })).blobs)
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

/** Ends a part header, as in HTTP. */
const END = Buffer.from('\r\n\r\n')
/** Longest part header the source may send (the cloud's own limit). */
const MAX_HEADER = 256

/**
 * The upload body of a batch (`batch`, in order) from the source's batch read answer, piped in: each chunk passed on
 * as it came (M2: parsing the answer into parts and framing each again, async generators and copies per chunk, was
 * 15 % of the console's main thread in a migration's profile, 3 % as a pipe). The header of every part is checked as
 * it passes: a part that is not the blob expected (`gone`, another blob or size, or an offset) is told to `gone` and
 * the body breaks off there with an error, as it does when the answer ends before the batch's last byte. A blob the
 * destination has part of already is sent from there: its header says its offset, its bytes before it are left out.
 */
export class Relay<B extends Sending = Sending> extends Transform {
  /** The part whose header comes next, or whose bytes are passing. */
  private next = 0
  /** Bytes of the passing part still to come... */
  private left = 0
  /** ...of which the first `skip` are left out. */
  private skip = 0
  /** The start of a header the last chunk ended in. */
  private carry: Buffer | undefined

  constructor(
    private readonly batch: readonly B[],
    private readonly gone: (b: B) => void,
  ) {
    super()
  }

  /** The upload body's length: each blob's header and its bytes from its offset. */
  get length(): number {
    return this.batch.reduce((n, b) => n + header(b).length + b.size - b.from, 0)
  }

  override _transform(data: Buffer, _: BufferEncoding, done: TransformCallback): void {
    const chunk = this.carry === undefined ? data : Buffer.concat([this.carry, data])
    this.carry = undefined
    /** `chunk` from `kept` on goes out as it is. */
    let kept = 0
    const pass = (end: number): void => {
      if (end > kept) this.push(kept === 0 && end === chunk.length ? chunk : chunk.subarray(kept, end))
    }
    let at = 0
    while (at < chunk.length)
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - at)
        const skip = Math.min(this.skip, n)
        if (skip > 0) {
          pass(at)
          kept = at + skip
          this.skip -= skip
        }
        at += n
        this.left -= n
      } else {
        const end = chunk.indexOf(END, at)
        if (end < 0 && chunk.length - at <= MAX_HEADER) {
          pass(at)
          this.carry = chunk.subarray(at)
          return done()
        }
        const blob = this.batch[this.next]
        if (blob === undefined) return done(new Error(`the source answered past the ${this.batch.length} blobs asked`))
        if (end < 0 || chunk.toString('latin1', at, end) !== `blob ${blob.sha256} ${blob.size} 0`) {
          this.gone(blob)
          return done(new Error(`the source cannot read blob ${blob.sha256}`))
        }
        this.next++
        this.left = blob.size
        this.skip = blob.from
        if (blob.from > 0) {
          pass(at)
          this.push(header(blob))
          kept = end + END.length
        }
        at = end + END.length
      }
    pass(chunk.length)
    done()
  }

  override _flush(done: TransformCallback): void {
    const unfinished = this.left > 0 ? this.batch[this.next - 1] : this.batch[this.next]
    if (unfinished !== undefined) done(new Error(`the source's answer ended before the end of blob ${unfinished.sha256}`))
    else done(this.carry === undefined ? null : new Error(`the source answered past the ${this.batch.length} blobs asked`))
  }
}

const header = (b: Sending): Buffer => partHeader('blob', b.sha256, b.size, b.from)

/**
 * Copies `blobs` to `account` on the cloud behind `dest`, reading them with
 * `read` (M2: the source cloud's batch read), in batches; stops between
 * batches once `signal` is aborted (and throws the abort).
 */
export async function uploadInBatches(
  dest: ConsoleClient,
  account: string,
  blobs: readonly BatchBlob[],
  read: (sha256s: string[]) => Promise<Readable>,
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
    let relay: Relay<Pending> | undefined
    let reply: BlobOutcome[]
    try {
      const answer = await read(batch.map((b) => b.sha256))
      relay = new Relay(batch, (b) => (gone = b))
      // An answer cut or refused (or the upload cut) ends the other too: the source's connection is not left waiting.
      const body = { stream: pipeline(answer, relay, () => undefined), length: relay.length }
      reply = (await dest.readAfterBytes(BlobOutcomesSchema, 'POST', `${base}/blobs/batch`, body, 'application/octet-stream')).blobs
    } catch (err) {
      relay?.destroy()
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
