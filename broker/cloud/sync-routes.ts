/**
 * App data sync and the recycle bin over HTTP (S1-S4, R1-R3); the schemas
 * are in common/cloud/sync-api.ts.
 *
 * The phone (device credentials; the cloud service must be on, X1):
 *   GET    /cloud/v1/sync/:category/changes?since=N&limit=M  what changed after cursor N (S1: another phone pulls it), and
 *                                                             when the account's data was last cleared (A3's freeze)
 *   PUT    /cloud/v1/sync/:category/:id                      an item's metadata, after its blob is uploaded (A1: quota)
 *   DELETE /cloud/v1/sync/:category/:id                      a delete made on the phone: to the recycle bin (R1)
 * The console (its token):
 *   GET    /api/accounts/:account/items[?category=c]         what the cloud keeps, with counts and bytes (S2)
 *   DELETE /api/accounts/:account/items/:category/:id        delete a cloud item: to the bin (R1)
 *   GET    /api/accounts/:account/bin                         "recently deleted", days left per entry (R1)
 *   POST   /api/accounts/:account/bin/:category/:id/restore  restore an entry (R1)
 *   DELETE /api/accounts/:account/bin/:category/:id          delete it for good (R3)
 */
import { ItemIdSchema, PutItemSchema, SyncCategorySchema, type SyncCategory } from '../../common/cloud/sync-api.js'
import type { CloudParts } from './cloud-data.js'
import { HttpError, intParam, type RouteContext } from '../http/router.js'
import { servedDevice } from './served-device.js'
import type { SyncItems } from './items.js'
import type { RecycleBin } from './recycle-bin.js'
import { quoted } from '../../common/terminal-text.js'

const MAX_PAGE = 1000

function category(value: string | null | undefined): SyncCategory {
  const parsed = SyncCategorySchema.safeParse(value)
  if (!parsed.success)
    throw new HttpError(400, 'BAD_REQUEST', `unknown category ${quoted(String(value))}: use ${SyncCategorySchema.options.join(', ')}`)
  return parsed.data
}

/** The category and item id of a path, checked. */
function itemOf(ctx: RouteContext): { category: SyncCategory; id: string } {
  const id = ItemIdSchema.safeParse(ctx.params.id)
  if (!id.success) throw new HttpError(400, 'BAD_REQUEST', `bad item id ${quoted(ctx.params.id as string)}: ${id.error.issues[0]?.message}`)
  return { category: category(ctx.params.category), id: id.data }
}

export function addSyncRoutes(parts: CloudParts, items: SyncItems, bin: RecycleBin): void {
  const { router, accounts, clock } = parts
  const account = (ctx: RouteContext): string => accounts.need(ctx.params.account as string).id

  router.add('GET', '/cloud/v1/sync/:category/changes', ['device'], (ctx) => {
    const me = servedDevice(accounts, ctx)
    const since = intParam(ctx.url, 'since', 0, 0, Number.MAX_SAFE_INTEGER)
    const limit = intParam(ctx.url, 'limit', 200, 1, MAX_PAGE)
    // A3: with when the account's data was last cleared, so a phone that takes its items for in the cloud learns they are not.
    const changes = items.changes(me.account, category(ctx.params.category), since, limit)
    return { status: 200, body: { ...changes, clearedAt: me.clearedAt } }
  })
  router.add('PUT', '/cloud/v1/sync/:category/:id', ['device'], async (ctx) => {
    const me = servedDevice(accounts, ctx)
    const { category, id } = itemOf(ctx)
    const req = await ctx.json(PutItemSchema)
    // Only a blob this account holds or sent the bytes of: a hash alone gets no other account's file (blob-store.ts).
    if (!parts.blobs.mayClaim(me.account, req.sha256))
      throw new HttpError(409, 'CONFLICT', `upload the bytes of ${category}/${id} first: blob ${req.sha256} is not in the cloud`)
    return { status: 200, body: { item: items.put(me.account, me.deviceId, category, id, req) } }
  })
  router.add('DELETE', '/cloud/v1/sync/:category/:id', ['device'], (ctx) => {
    const me = servedDevice(accounts, ctx)
    const { category, id } = itemOf(ctx)
    return { status: 200, body: { item: items.delete(me.account, me.deviceId, category, id) } }
  })

  router.add('GET', '/api/accounts/:account/items', ['console'], (ctx) => {
    const a = account(ctx)
    const only = ctx.url.searchParams.get('category')
    const { items: list, totals } = items.live(a, only === null ? undefined : category(only))
    const all = Object.fromEntries(SyncCategorySchema.options.map((c) => [c, totals[c] ?? { count: 0, bytes: 0 }]))
    return { status: 200, body: { now: clock.now(), account: a, totals: all, items: list } }
  })
  router.add('DELETE', '/api/accounts/:account/items/:category/:id', ['console'], (ctx) => {
    const { category, id } = itemOf(ctx)
    return { status: 200, body: { item: items.delete(account(ctx), 'console', category, id) } }
  })
  router.add('GET', '/api/accounts/:account/bin', ['console'], (ctx) => ({ status: 200, body: bin.view(account(ctx)) }))
  router.add('POST', '/api/accounts/:account/bin/:category/:id/restore', ['console'], (ctx) => {
    const { category, id } = itemOf(ctx)
    return { status: 200, body: { item: items.restore(account(ctx), 'console', category, id) } }
  })
  router.add('DELETE', '/api/accounts/:account/bin/:category/:id', ['console'], async (ctx) => {
    const { category, id } = itemOf(ctx)
    const gone = await bin.deleteForever(account(ctx), category, id)
    return { status: 200, body: { purged: { category: gone.category, id: gone.id, size: gone.size } } }
  })
}
