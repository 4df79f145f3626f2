/**
 * M2: blobs between two clouds in batches (the routes in
 * common/cloud/blob-batch.ts): a few requests carry a thousand blobs. By
 * default the destination pulls each batch from the source's batch read
 * itself (broker/transfer/blob-pull-routes.ts), with a transfer grant the
 * source issues for that batch and this console revokes once the batch is
 * answered, so the bytes do not pass through the console and the console
 * token never leaves it. When the destination cannot reach the source (or
 * no pull is asked for) the console relays: the source's batch read answer
 * passed on as it arrives into the destination's batch upload, checking
 * each part's header as it passes (`Relay`, common/cloud/blob-relay.ts).
 * Each blob keeps the per-item rules of a single upload
 * (cli/transfer/account-import.ts) either way: the destination's refusal
 * (over quota) is that blob's; a checksum mismatch or a cut connection is
 * retried from the offset the destination kept, at most BLOB_ATTEMPTS
 * times, each failed attempt (and the one that then stored it) told to
 * `fault`; a cut batch counts an attempt only for the blob that was in
 * transit (the first of it the destination does not hold). Verification
 * has the destination re-read and hash its blobs itself (`verifyBlobs`).
 */
import { pipeline, type Readable } from 'node:stream'
import {
  BlobOutcomesSchema,
  MAX_BATCH_PARTS,
  PullRefusalSchema,
  type BlobPullRequest,
  VerifyReplySchema,
  type BlobOutcome,
  type BlobVerdict,
} from '../../common/cloud/blob-batch.js'
import { Relay, type Sending } from '../../common/cloud/blob-relay.js'
import { FakephoneError } from '../../common/errors.js'
import { parsedJson, type ConsoleClient } from '../console-client.js'

/** Bytes a batch carries before the next one starts (a larger blob goes alone); two batches go at once. */
const BATCH_BYTES = 8 * 1024 * 1024
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

/**
 * M2: where the destination pulls the blobs from, when it pulls them itself (the source's console API as the destination
 * reaches it, the account there, a grant for one batch), and who hears, once, that it cannot and this console relays.
 */
export interface PullFrom {
  url: string
  account: string
  /** A transfer grant of the source's for one batch; `revoke` once the batch is done. */
  grant(): Promise<{ token: string; revoke(): Promise<void> }>
  relaying(why: string): void
}

/** How a batch went: the destination's answer for each blob, a blob the source cannot give, a cut, or a source out of reach. */
type Sent = { reply: BlobOutcome[] } | { gone: string } | { cut: string } | { unreachable: string }

/**
 * Copies `blobs` to `account` on the cloud behind `dest` in batches: the destination pulls each batch from the source
 * itself when `pull` is given and it can reach the source, else this console relays what `read` (the source cloud's
 * batch read) answers; stops between batches once `signal` is aborted (and throws the abort).
 */
export async function uploadInBatches(
  dest: ConsoleClient,
  account: string,
  blobs: readonly BatchBlob[],
  read: (sha256s: string[]) => Promise<Readable>,
  events: BatchEvents,
  signal?: AbortSignal,
  attempts = 3,
  pull?: PullFrom,
): Promise<void> {
  await new BatchUpload(dest, account, read, events, attempts, pull).run(blobs, signal)
}

/** One uploadInBatches: rounds of batches until every blob is stored or refused. */
class BatchUpload {
  private readonly base: string
  /** The blobs stored or refused: settled, never sent again. */
  private readonly done = new Set<string>()
  /** Batches whose connection broke, with the reason: the first blob of it the destination lacks was in transit. */
  private cut: { batch: Pending[]; why: string }[] = []
  /** Pulling until the destination says it cannot reach the source; from then on this console relays. */
  private pulling: PullFrom | undefined

  constructor(
    private readonly dest: ConsoleClient,
    account: string,
    private readonly read: (sha256s: string[]) => Promise<Readable>,
    private readonly events: BatchEvents,
    private readonly attempts: number,
    pull: PullFrom | undefined,
  ) {
    this.base = `/api/accounts/${enc(account)}`
    this.pulling = pull
  }

  async run(blobs: readonly BatchBlob[], signal: AbortSignal | undefined): Promise<void> {
    let todo: Pending[] = blobs.map((b) => ({ ...b, attempts: 0, from: 0, faults: [] }))
    while (todo.length > 0) {
      signal?.throwIfAborted()
      const next = await this.nextRound(todo)
      const queue = batches(next)
      await Promise.all(
        Array.from({ length: BATCHES_AT_ONCE }, async () => {
          for (let batch = queue.shift(); batch !== undefined; batch = queue.shift()) {
            signal?.throwIfAborted()
            await this.send(batch)
          }
        }),
      )
      todo = next.filter((b) => !this.done.has(b.sha256))
    }
    // Aborted as the last batch ran: the caller goes no further either.
    signal?.throwIfAborted()
  }

  /**
   * Asks the destination what it holds of `todo`: a cut batch's blob in transit counts a fault, a blob stored or refused
   * there is settled, one out of attempts is refused; answers the rest, each to go again from the offset the destination kept.
   */
  private async nextRound(todo: Pending[]): Promise<Pending[]> {
    const states = new Map((await outcomes(this.dest, this.base, todo)).map((o) => [o.sha256, o]))
    for (const { batch, why } of this.cut) {
      const lost = batch.filter((b) => !this.done.has(b.sha256) && (states.get(b.sha256) as { stored?: boolean }).stored !== true)
      lost.slice(1).forEach((b) => b.attempts--)
      if (lost[0] !== undefined) this.fault(lost[0], why)
    }
    this.cut = []
    const next: Pending[] = []
    for (const b of todo) {
      const state = states.get(b.sha256) as BlobOutcome
      if ('error' in state) this.refuse(b.sha256, state.error)
      else if (state.stored) this.stored(b)
      else if (b.attempts >= this.attempts) this.refuse(b.sha256, `not stored after ${this.attempts} attempts: ${b.faults.join('; ')}`)
      else next.push(Object.assign(b, { attempts: b.attempts + 1, from: state.offset }))
    }
    return next
  }

  private fault(b: Pending, why: string): void {
    const said = `attempt ${b.attempts} from offset ${b.from}: ${why}`
    b.faults.push(said)
    this.events.fault(b.sha256, said)
  }

  private refuse(sha256: string, why: string): void {
    this.done.add(sha256)
    this.events.refused(sha256, why)
  }

  private stored(b: Pending): void {
    this.done.add(b.sha256)
    if (b.faults.length > 0) this.events.fault(b.sha256, `attempt ${b.attempts} from offset ${b.from}: stored`)
    this.events.stored(b.sha256, b.attempts > 0 ? b.size - b.from : 0)
  }

  /** Sends one batch, pulled or relayed, and settles what the destination answered for each of its blobs. */
  private async send(batch: Pending[]): Promise<void> {
    let sent = this.pulling === undefined ? await this.relayed(batch) : await this.pulled(batch, this.pulling)
    if ('unreachable' in sent) {
      // Said once, however many batches heard it.
      this.pulling?.relaying(sent.unreachable)
      this.pulling = undefined
      sent = await this.relayed(batch)
    }
    if ('gone' in sent) {
      // Not the destination's fault: that blob is refused, the others of the batch go again uncounted.
      this.refuse(sent.gone, 'the source cannot read it')
      batch.forEach((b) => b.attempts--)
      return
    }
    if ('cut' in sent) {
      // A cut connection (or an answer that is not one): the next round's query says what arrived.
      this.cut.push({ batch, why: sent.cut })
      return
    }
    const answered = new Map(sent.reply.map((o) => [o.sha256, o]))
    for (const b of batch) {
      const o = answered.get(b.sha256)
      /* c8 ignore next -- a fakephone cloud answers for every part of a batch it read to the end */
      if (o === undefined) this.fault(b, 'the cloud did not answer for it')
      else if ('error' in o) this.fault(b, o.error)
      else this.stored(b)
    }
  }

  /** The console relays: the source's answer passed on into the destination's batch upload. */
  private async relayed(batch: Pending[]): Promise<Exclude<Sent, { unreachable: string }>> {
    let gone: Pending | undefined
    let relay: Relay<Pending> | undefined
    try {
      const answer = await this.read(batch.map((b) => b.sha256))
      relay = new Relay(batch, (b) => (gone = b))
      // An answer cut or refused (or the upload cut) ends the other too: the source's connection is not left waiting.
      const body = { stream: pipeline(answer, relay, () => undefined), length: relay.length }
      return {
        reply: (await this.dest.readAfterBytes(BlobOutcomesSchema, 'POST', `${this.base}/blobs/batch`, body, 'application/octet-stream'))
          .blobs,
      }
    } catch (err) {
      relay?.destroy()
      return gone !== undefined ? { gone: gone.sha256 } : { cut: (err as Error).message }
    }
  }

  /** The destination pulls the batch from the source itself, with a grant of the source's for this batch alone. */
  private async pulled(batch: Pending[], from: PullFrom): Promise<Sent> {
    const { dest, base } = this
    try {
      const grant = await from.grant()
      const req = {
        from: { url: from.url, account: from.account, grant: grant.token },
        blobs: batch.map(({ sha256, size, from: offset }) => ({ sha256, size, offset })),
      } satisfies BlobPullRequest
      // Revoked once the destination answered, whatever it answered: the grant lives no longer than its batch.
      const answer = await dest
        .call('POST', `${base}/blobs/pull`, Buffer.from(JSON.stringify(req)), 'application/json')
        .finally(() => grant.revoke())
      if (answer.status === 200) return { reply: dest.answered(BlobOutcomesSchema, 'POST', `${base}/blobs/pull`, answer).blobs }
      const refusal = PullRefusalSchema.safeParse(parsedJson(answer.body))
      if (!refusal.success) throw dest.refusal(answer)
      if (refusal.data.code === 'SOURCE_UNREACHABLE') return { unreachable: refusal.data.error }
      // A destination without the pull route (a fakephone from before it) cannot pull either: this console relays.
      if (answer.status === 404 && refusal.data.code === 'NOT_FOUND')
        return { unreachable: `${dest.baseUrl} cannot pull (it has no ${base}/blobs/pull: an older fakephone?)` }
      // A SOURCE_GONE names the blob; any other refusal (the source's answer cut, the grant refused) is a cut batch.
      return refusal.data.code === 'SOURCE_GONE' ? { gone: refusal.data.sha256 as string } : { cut: refusal.data.error }
    } catch (err) {
      // The destination's connection cut (or an answer that is not one): the next round's query says what arrived.
      return { cut: (err as Error).message }
    }
  }
}
