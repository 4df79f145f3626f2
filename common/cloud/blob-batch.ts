/**
 * M2's batch blob routes on the console API: many blobs in one request,
 * streamed, so a migration of 1,000 small photos is a few requests and a
 * few fsyncs at the destination, not four requests and an fsync each.
 * Shared by the cloud (broker/transfer/blob-batch-routes.ts) and the
 * migrating console (cli/transfer/blob-batch.ts):
 *
 *   POST /api/accounts/:account/blobs/state  {blobs: [{sha256, size}]}  where each upload stands, or why it is refused
 *   POST /api/accounts/:account/blobs/batch  framed parts (below)        each blob stored, or why not (BatchReply)
 *   POST /api/accounts/:account/blobs/read   {sha256: [...]}             the blobs the account holds, framed
 *   POST /api/accounts/:account/blobs/verify {blobs: [{sha256, exif}]}   what each blob's bytes on the cloud's disk hash
 *                                                                        to, and a photo's EXIF (VerifyReply, JSON)
 *   POST /api/accounts/:account/transfer-grants  {}                     a transfer grant (TransferGrant): the source's
 *                                                                        batch read of this account, for a minute
 *   DELETE /api/accounts/:account/transfer-grants/:id                    the grant revoked
 *   POST /api/accounts/:account/blobs/pull   {from, blobs: [{sha256, size, offset}]}  the destination reads the blobs
 *                                                                        from the source cloud itself with a grant and
 *                                                                        stores them as a batch upload would (BatchReply)
 *
 * The framing: each part is a header line `blob SHA256 SIZE OFFSET`, a blank
 * line (`\r\n\r\n` ends the header, as in HTTP), then the blob's bytes from
 * OFFSET to SIZE (an upload resumes where the cloud's partial copy ends).
 * `gone SHA256 0 0` in a read is a blob the cloud cannot give (not the
 * account's, or its file unreadable). Parts follow each other to the end of
 * the body.
 */
import { z } from 'zod'
import { FakephoneError } from '../errors.js'

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex')

/** Most parts (blobs) in one batch request or state query. */
export const MAX_BATCH_PARTS = 1000
/** Largest batch body, bytes: one blob of the largest size a cloud stores (512 MiB) with room for the headers. */
export const MAX_BATCH_BYTES = 513 * 1024 * 1024
/** Longest part header, bytes. */
const MAX_HEADER = 256
const END = Buffer.from('\r\n\r\n')

export const BlobStateRequestSchema = z.strictObject({
  blobs: z.array(z.strictObject({ sha256: Sha256, size: z.number().int().nonnegative() })).max(MAX_BATCH_PARTS),
})
export const BlobReadRequestSchema = z.strictObject({ sha256: z.array(Sha256).max(MAX_BATCH_PARTS) })

/** M2's verification at the destination: blobs to re-read from the cloud's own disk and hash; `exif` for a photo's EXIF too. */
export const BlobVerifyRequestSchema = z.strictObject({
  blobs: z.array(z.strictObject({ sha256: Sha256, exif: z.boolean() })).max(MAX_BATCH_PARTS),
})
export type BlobVerifyRequest = z.infer<typeof BlobVerifyRequestSchema>

/**
 * M2's pull: where the destination reads the blobs (the source's console API address, http or https; the account
 * there; a transfer grant the source issued for it, never a console token) and which, each from `offset` on (the
 * bytes before it the destination holds already from an earlier attempt).
 */
export const BlobPullRequestSchema = z.strictObject({
  from: z.strictObject({ url: z.string().max(2048), account: z.string().min(1).max(200), grant: z.string().min(1).max(200) }),
  blobs: z
    .array(z.strictObject({ sha256: Sha256, size: z.number().int().nonnegative(), offset: z.number().int().nonnegative() }))
    .max(MAX_BATCH_PARTS),
})
export type BlobPullRequest = z.infer<typeof BlobPullRequestSchema>

/** A pull the destination could not finish: why (SOURCE_UNREACHABLE, SOURCE_REFUSED, SOURCE_CUT, SOURCE_GONE with its blob). */
export const PullRefusalSchema = z.object({ error: z.string(), code: z.string(), sha256: Sha256.optional() })

/** A transfer grant as issued: the token is seen only here (the source keeps its SHA-256); `expiresAt` on its clock. */
export const TransferGrantSchema = z.strictObject({
  id: z.string(),
  account: z.string(),
  token: z.string(),
  expiresAt: z.number().int(),
})
export type TransferGrant = z.infer<typeof TransferGrantSchema>

/** The EXIF fields verification compares (common/photo-meta.ts reads them), each null when the photo does not say. */
export const VerifiedMetaSchema = z.strictObject({
  takenAt: z.number().nullable(),
  lat: z.number().nullable(),
  lon: z.number().nullable(),
  camera: z.string().nullable(),
})
export type VerifiedMeta = z.infer<typeof VerifiedMetaSchema>

/**
 * One blob's verification, in the order asked: what its bytes read from the cloud's disk hash to (`hashed`, not the
 * hash it was stored under) and, when asked, its EXIF (else null); or why its bytes cannot be read (NOT_FOUND: the
 * account does not hold it; UNREADABLE: its file is gone or not the size stored).
 */
export const BlobVerdictSchema = z.union([
  z.strictObject({ sha256: Sha256, hashed: Sha256, meta: VerifiedMetaSchema.nullable() }),
  z.strictObject({ sha256: Sha256, code: z.enum(['NOT_FOUND', 'UNREADABLE']), error: z.string() }),
])
export type BlobVerdict = z.infer<typeof BlobVerdictSchema>
export const VerifyReplySchema = z.strictObject({ blobs: z.array(BlobVerdictSchema) })

/** One blob's answer: where its upload stands, or the reason the cloud refuses it (over quota, a checksum mismatch...). */
export const BlobOutcomeSchema = z.union([
  z.strictObject({ sha256: Sha256, stored: z.boolean(), offset: z.number().int().nonnegative() }),
  z.strictObject({ sha256: Sha256, code: z.string(), error: z.string() }),
])
export type BlobOutcome = z.infer<typeof BlobOutcomeSchema>
export const BlobOutcomesSchema = z.strictObject({ blobs: z.array(BlobOutcomeSchema) })

export type PartKind = 'blob' | 'gone'

export interface PartHeader {
  kind: PartKind
  sha256: string
  size: number
  offset: number
}

export interface Part extends PartHeader {
  /** The part's bytes (SIZE - OFFSET of them), read as they arrive; what is not read is skipped. */
  body: AsyncIterable<Buffer>
}

/** A batch body that is not what the framing says: cut inside a part, a bad header, too large. */
export class BatchFramingError extends FakephoneError {
  declare readonly code: 'BAD_REQUEST' | 'TOO_LARGE' | 'CUT'
  constructor(code: 'BAD_REQUEST' | 'TOO_LARGE' | 'CUT', message: string) {
    super(code, message)
  }
}

export function partHeader(kind: PartKind, sha256: string, size: number, offset: number): Buffer {
  return Buffer.from(`${kind} ${sha256} ${size} ${offset}\r\n\r\n`, 'latin1')
}

function parseHeader(line: string, maxSize: number): PartHeader {
  const m = /^(blob|gone) ([0-9a-f]{64}) (\d{1,12}) (\d{1,12})$/.exec(line)
  const size = Number(m?.[3])
  const offset = Number(m?.[4])
  if (m === null) throw new BatchFramingError('BAD_REQUEST', `a part header is "blob SHA256 SIZE OFFSET", not ${JSON.stringify(line)}`)
  if (size > maxSize) throw new BatchFramingError('TOO_LARGE', `blob ${m[2]}: a blob may be at most ${maxSize} bytes`)
  if (offset > size) throw new BatchFramingError('BAD_REQUEST', `blob ${m[2]}: offset ${offset} is past its size ${size}`)
  return { kind: m[1] as PartKind, sha256: m[2] as string, size, offset }
}

/**
 * Reads the parts of a framed body as they arrive; each part's body must be
 * read (or left: it is skipped) before the next part comes. Throws a
 * BatchFramingError for a body past `maxBytes`, a malformed header, or one
 * that ends inside a part (a cut connection).
 */
export async function* readParts(source: AsyncIterable<Buffer>, maxBytes: number, maxBlob: number): AsyncGenerator<Part> {
  const it = source[Symbol.asyncIterator]()
  let buf: Buffer = Buffer.alloc(0)
  let total = 0
  /** Bytes of the current part not read yet. */
  let left = 0
  const more = async (): Promise<boolean> => {
    const next = await it.next()
    if (next.done === true) return false
    const chunk = next.value
    total += chunk.length
    if (total > maxBytes) throw new BatchFramingError('TOO_LARGE', `a batch may be at most ${maxBytes} bytes`)
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    return true
  }
  const chunk = async (): Promise<Buffer | undefined> => {
    if (left === 0) return undefined
    if (buf.length === 0 && !(await more())) throw new BatchFramingError('CUT', `the batch ended ${left} bytes before the end of a part`)
    const piece = buf.subarray(0, left)
    buf = buf.subarray(piece.length)
    left -= piece.length
    return piece
  }
  try {
    yield* frames()
  } finally {
    // Left before its end (the reader stopped): the stream goes too.
    await it.return?.()
  }
  async function* frames(): AsyncGenerator<Part> {
    for (;;) {
      let end = buf.indexOf(END)
      while (end < 0) {
        if (buf.length > MAX_HEADER) throw new BatchFramingError('BAD_REQUEST', `a part header is at most ${MAX_HEADER} bytes`)
        if (!(await more())) {
          if (buf.length === 0) return
          throw new BatchFramingError('CUT', 'the batch ended inside a part header')
        }
        end = buf.indexOf(END)
      }
      const header = parseHeader(buf.subarray(0, end).toString('latin1'), maxBlob)
      buf = buf.subarray(end + END.length)
      left = header.kind === 'blob' ? header.size - header.offset : 0
      const body = async function* (): AsyncGenerator<Buffer> {
        for (let piece = await chunk(); piece !== undefined; piece = await chunk()) yield piece
      }
      yield { ...header, body: body() }
      while ((await chunk()) !== undefined);
    }
  }
}
