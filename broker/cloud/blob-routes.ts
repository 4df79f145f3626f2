/**
 * Resumable, checksummed uploads and downloads of blobs over the data channel
 * (device credentials):
 *   GET /cloud/v1/blobs/:sha?size=N           where an upload stands: {stored, offset}
 *   PUT /cloud/v1/blobs/:sha?size=N&offset=K  the bytes from offset K on; answers {stored, offset}
 *   GET /cloud/v1/blobs/:sha/content           the bytes, when the device's account holds the blob
 * An upload that would not fit the account's quota is refused before a byte
 * is stored (A1); the cloud service must be on (X1). A blob the cloud stores
 * for other accounts only is not stored as far as this device is told: it
 * sends the bytes, which prove it has them (D1, S1, B1; blob-store.ts).
 */
import { HttpError, intParam, type RouteContext } from '../http/router.js'
import { servedDevice } from './served-device.js'
import { MAX_BLOB_BYTES, Sha256Schema } from './blob-store.js'
import type { CloudParts } from './cloud-data.js'

function shaOf(ctx: RouteContext): string {
  const sha = Sha256Schema.safeParse(ctx.params.sha)
  if (!sha.success) throw new HttpError(400, 'BAD_REQUEST', 'the blob name must be its SHA-256 in lower-case hex')
  return sha.data
}

export function addBlobRoutes(parts: CloudParts): void {
  const { router, blobs, accounts } = parts
  const upload = async (ctx: RouteContext, write: boolean) => {
    const account = servedDevice(parts.accounts, ctx).account
    const sha = shaOf(ctx)
    const size = intParam(ctx.url, 'size', -1, 0, MAX_BLOB_BYTES)
    // A1: refused before a byte is stored, counting what the account's unfinished uploads hold: a phone that never
    // finishes its uploads does not fill the cloud's disk. A blob the account may claim takes no bytes.
    if (!blobs.mayClaim(account, sha)) accounts.assertFits(account, size + (await blobs.pendingBytes(account, sha)), 'this upload')
    // A blob stored for another account is not there for this one until it sends the bytes (blob-store.ts).
    if (!write) return { status: 200, body: await blobs.ownState(account, sha, size) }
    const offset = intParam(ctx.url, 'offset', 0, 0, size)
    const state = await blobs.append(account, sha, size, offset, ctx.req, true)
    return { status: state.stored ? 201 : 200, body: state }
  }
  router.add('GET', '/cloud/v1/blobs/:sha', ['device'], (ctx) => upload(ctx, false))
  router.add('PUT', '/cloud/v1/blobs/:sha', ['device'], (ctx) => upload(ctx, true))
  router.add('GET', '/cloud/v1/blobs/:sha/content', ['device'], (ctx) => {
    const account = servedDevice(parts.accounts, ctx).account
    const sha = shaOf(ctx)
    if (!blobs.holds(account, sha)) throw new HttpError(404, 'NOT_FOUND', `blob ${sha} is not in this account`)
    return {
      status: 200,
      stream: blobs.read(sha),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blobs.size(sha)) },
    }
  })
}
