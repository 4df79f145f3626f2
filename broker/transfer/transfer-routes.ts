/**
 * The account transfer on the console API (M3 export/import, M2 migration);
 * shapes in common/cloud/transfer-api.ts:
 *   GET  /api/accounts/:account/export                      every record of the account
 *   GET  /api/accounts/:account/blobs/:sha?size=N           where an upload of the blob stands: {stored, offset}
 *   PUT  /api/accounts/:account/blobs/:sha?size=N&offset=K  the bytes from K on; resumable, verified against the SHA-256
 *   GET  /api/accounts/:account/blobs/:sha/content          a blob the account holds
 *   POST /api/accounts/:account/blobs/{state,batch,read}  many blobs at once (M2, blob-batch-routes.ts)
 *   POST /api/accounts/:account/transfer-grants, .../blobs/pull  the destination pulls from the source (M2, blob-pull-routes.ts)
 *   POST /api/accounts/:account/import                      records to add; idempotent per source id (the name meets the rule)
 *   POST /api/accounts/:account/transferred                 the export or migration finished whole (M1's guarantee)
 *   .../device-verifiers, .../moved                          the phones follow a migration (M2, device-move.ts)
 * An upload that would not fit the account's quota is refused before a byte is stored (A1).
 */
import { ImportRequestSchema, MAX_IMPORT_BYTES, TransferredSchema } from '../../common/cloud/transfer-api.js'
import { AccountNameSchema, decodeValue } from '../../common/contract.js'
import { MAX_BLOB_BYTES, Sha256Schema } from '../cloud/blob-store.js'
import { HttpError, intParam, type HttpRouter, type RouteContext } from '../http/router.js'
import { AccountImporter } from './account-import.js'
import { AccountSnapshots } from './account-snapshot.js'
import { addBlobBatchRoutes } from './blob-batch-routes.js'
import { addBlobPullRoutes } from './blob-pull-routes.js'
import { addDeviceMoveRoutes } from './device-move.js'
import type { TransferDeps } from './deps.js'
import { quoted } from '../../common/terminal-text.js'

export function addTransferRoutes(router: HttpRouter, deps: TransferDeps): void {
  const { accounts, blobs } = deps.cloud
  const snapshots = new AccountSnapshots(deps)
  const importer = new AccountImporter(deps)
  const CONSOLE = ['console'] as const
  const target = (ctx: RouteContext): { account: string; sha: string } => {
    const account = accounts.need(ctx.params.account as string).id
    const sha = Sha256Schema.safeParse(ctx.params.sha)
    if (!sha.success) throw new HttpError(400, 'BAD_REQUEST', 'the blob name must be its SHA-256 in lower-case hex')
    return { account, sha: sha.data }
  }
  const upload = async (ctx: RouteContext, write: boolean) => {
    const { account, sha } = target(ctx)
    const size = intParam(ctx.url, 'size', -1, 0, MAX_BLOB_BYTES)
    if (blobs.size(sha) === undefined) accounts.assertFits(account, size, 'this upload')
    if (!write) return { status: 200, body: await blobs.state(account, sha, size) }
    const state = await blobs.append(account, sha, size, intParam(ctx.url, 'offset', 0, 0, size), ctx.req)
    return { status: state.stored ? 201 : 200, body: state }
  }

  router.add('GET', '/api/accounts/:account/export', CONSOLE, (ctx) => ({
    status: 200,
    body: snapshots.take(ctx.params.account as string),
  }))
  router.add('GET', '/api/accounts/:account/blobs/:sha', CONSOLE, (ctx) => upload(ctx, false))
  router.add('PUT', '/api/accounts/:account/blobs/:sha', CONSOLE, (ctx) => upload(ctx, true))
  router.add('GET', '/api/accounts/:account/blobs/:sha/content', CONSOLE, (ctx) => {
    const { account, sha } = target(ctx)
    if (!blobs.holds(account, sha)) throw new HttpError(404, 'NOT_FOUND', `blob ${sha} is not in account ${quoted(account)}`)
    return {
      status: 200,
      stream: blobs.read(sha),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blobs.size(sha)) },
    }
  })
  router.add('POST', '/api/accounts/:account/import', CONSOLE, async (ctx) => {
    // An import may make the account: its name meets the rule, also when an account made before the rule has it (account-names.ts).
    const account = decodeValue(AccountNameSchema, ctx.params.account)
    if (!account.ok) throw new HttpError(400, 'BAD_REQUEST', `an import goes into an account whose name meets the rule: ${account.reason}`)
    const req = await ctx.json(ImportRequestSchema, { maxBytes: MAX_IMPORT_BYTES, what: 'import' })
    return { status: 200, body: importer.run(account.value, req) }
  })
  router.add('POST', '/api/accounts/:account/transferred', CONSOLE, async (ctx) => {
    const { how, detail } = await ctx.json(TransferredSchema)
    return { status: 200, body: deps.cloud.retirement.markMigrated(ctx.params.account as string, how, undefined, detail) }
  })
  addBlobBatchRoutes(router, deps)
  addBlobPullRoutes(router, deps)
  addDeviceMoveRoutes(router, deps)
}
