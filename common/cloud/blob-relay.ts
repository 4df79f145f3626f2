/**
 * M2: a source cloud's batch read answer (common/cloud/blob-batch.ts) turned
 * into a batch upload's body as it passes (`Relay`): the two framings are the
 * same for a blob sent from its first byte, so the bytes pass on as they came
 * and only each part's header is checked. Used where the bytes go from one
 * cloud to another: the migrating console when it relays
 * (cli/transfer/blob-batch.ts) and the destination cloud when it pulls from
 * the source itself (broker/transfer/blob-pull-routes.ts).
 */
import { Transform, type TransformCallback } from 'node:stream'
import { partHeader } from './blob-batch.js'

/** A blob of a batch: from its byte `from` on (the destination holds the ones before). */
export interface Sending {
  sha256: string
  size: number
  from: number
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
