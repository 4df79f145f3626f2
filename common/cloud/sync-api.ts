/**
 * The HTTP contract of app data sync and the recycle bin (S1-S4, R1-R3),
 * used by the phone (agent/sync/) and the cloud (broker/cloud/sync-routes.ts)
 * alike; documented in docs/CONTRACT.md, "Sync and the recycle bin".
 *
 * A phone uploads an item's bytes as a blob (blob-api.ts) and then puts its
 * metadata; it pulls what other phones changed from a per-category change
 * feed, read from a cursor; a delete moves the item to the recycle bin.
 * The feed also says when the account's data was last cleared (A3), so a
 * phone whose account was frozen learns its items are gone from the cloud.
 */
import { z } from 'zod'

export const SYNC_PATH = '/cloud/v1/sync'

export const SyncCategorySchema = z.enum(['photos', 'contacts', 'notes', 'recordings'])
export type SyncCategory = z.infer<typeof SyncCategorySchema>

/** An item's id: the phone's file name, e.g. `IMG_20260101_120000_001.jpg` or `<uuid>.vcf`. */
export const ItemIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a file name of letters, digits, ".", "_" and "-"')

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/)
const MetaSchema = z.record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.null()]))

/** PUT /cloud/v1/sync/:category/:id -- the metadata of an item whose blob is uploaded. */
export const PutItemSchema = z.strictObject({
  sha256: Sha256,
  size: z.number().int().nonnegative(),
  meta: MetaSchema,
  modifiedAt: z.number().int().nonnegative(),
})
export type PutItem = z.infer<typeof PutItemSchema>

/** One item as the cloud holds it. */
export const CloudItemSchema = z.strictObject({
  category: SyncCategorySchema,
  id: z.string(),
  sha256: Sha256,
  size: z.number().int().nonnegative(),
  meta: MetaSchema,
  modifiedAt: z.number().int(),
  /** Where this change sits in the account's change feed. */
  seq: z.number().int().positive(),
  /** The device (or "console") that changed it last. */
  changedBy: z.string(),
  /** When it went to the recycle bin; null while it is live. */
  deletedAt: z.number().int().nullable(),
})
export type CloudItem = z.infer<typeof CloudItemSchema>

export const ItemReplySchema = z.strictObject({ item: CloudItemSchema })

/** GET /cloud/v1/sync/:category/changes?since=N&limit=M -- changes after cursor N, oldest first. */
export const ChangesSchema = z.strictObject({
  changes: z.array(CloudItemSchema),
  /** Pass as `since` next time. */
  cursor: z.number().int().nonnegative(),
  /** True when more changes wait after this page. */
  more: z.boolean(),
  /**
   * A3: when the cloud last cleared the account's data (a freeze after a year without activity), ms on the cloud's
   * clock; null if never. A phone that last saw another value forgets which of its items the cloud held and uploads
   * them again from its files. Optional: a cloud older than the field does not send it (the phone then learns nothing).
   */
  clearedAt: z.number().int().nonnegative().nullable().optional(),
})
export type Changes = z.infer<typeof ChangesSchema>

export const CategoryTotalsSchema = z.strictObject({ count: z.number().int(), bytes: z.number().int() })

/** GET /api/accounts/:account/items[?category=c] -- the console's view of what the cloud keeps (S2). */
export const ItemsViewSchema = z.strictObject({
  now: z.number().int(),
  account: z.string(),
  totals: z.record(SyncCategorySchema, CategoryTotalsSchema),
  items: z.array(CloudItemSchema),
})
export type ItemsView = z.infer<typeof ItemsViewSchema>

export const BinEntrySchema = z.strictObject({
  category: SyncCategorySchema,
  id: z.string(),
  size: z.number().int(),
  deletedAt: z.number().int(),
  /** When R2 purges it, at the account's current window. */
  purgeAt: z.number().int(),
  /** R1: whole days left, rounded up. */
  daysLeft: z.number().int().nonnegative(),
})
export type BinEntry = z.infer<typeof BinEntrySchema>

/** GET /api/accounts/:account/bin -- "recently deleted" (R1). */
export const BinViewSchema = z.strictObject({
  now: z.number().int(),
  account: z.string(),
  /** R2: the window, days: 30 free, 180 premium. */
  windowDays: z.number().int(),
  entries: z.array(BinEntrySchema),
})
export type BinView = z.infer<typeof BinViewSchema>

/** DELETE /api/accounts/:account/bin/:category/:id -- R3: gone for good. */
export const PurgedSchema = z.strictObject({
  purged: z.strictObject({ category: SyncCategorySchema, id: z.string(), size: z.number().int() }),
})
