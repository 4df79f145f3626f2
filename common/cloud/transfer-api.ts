/**
 * The account transfer contract (M3 export/import, M2 migration): what the
 * console reads to export a whole account and sends to import one, on the
 * console API (bearer token). Shared by the cloud (broker/transfer/) and the
 * CLI (cli/transfer/); the bag layout built from it is in docs/EXPORT.md.
 *
 *   GET  /api/accounts/:account/export                 every record of the account (AccountSnapshot)
 *   GET  /api/accounts/:account/blobs/:sha?size=N      where an upload of a blob for the account stands
 *   PUT  /api/accounts/:account/blobs/:sha?size=N&offset=K  the blob's bytes from K on (resumable, checksummed)
 *   GET  /api/accounts/:account/blobs/:sha/content     a blob the account holds
 *   POST /api/accounts/:account/import                 records to add (ImportRequest), idempotent per source id
 */
import { z } from 'zod'
import { CommandStateSchema, DeviceIdSchema, HeartbeatSchema } from '../contract.js'
import { NotificationKindSchema } from '../push-protocol.js'
import { BackupViewSchema } from './backup-api.js'
import { DriveFileSchema, FileNameSchema, FolderSchema } from './drive-api.js'
import { CloudItemSchema, ItemIdSchema } from './sync-api.js'

/** The account itself: membership, quota, dates. */
export const AccountRecordSchema = z.strictObject({
  id: z.string(),
  tier: z.enum(['free', 'premium']),
  premiumUntil: z.number().int().nullable(),
  quotaBytes: z.number().int().nonnegative(),
  usedBytes: z.number().int().nonnegative(),
  createdAt: z.number().int(),
  lastActivityAt: z.number().int(),
  lastActivity: z.string(),
  frozenAt: z.number().int().nullable(),
  serviceOffAt: z.number().int().nullable(),
  /** R2: days an entry stays in the recycle bin. */
  binWindowDays: z.number().int().nonnegative(),
})
export type AccountRecord = z.infer<typeof AccountRecordSchema>

export const DeviceRecordSchema = z.strictObject({ id: z.string().min(1), createdAt: z.number().int() })
export type DeviceRecord = z.infer<typeof DeviceRecordSchema>

/** A synced item, live or in the recycle bin (then with when it will be purged and the days left). */
export const ItemRecordSchema = CloudItemSchema.extend({
  purgeAt: z.number().int().nullable(),
  daysLeft: z.number().int().nonnegative().nullable(),
})
export type ItemRecord = z.infer<typeof ItemRecordSchema>

export const BackupRecordSchema = BackupViewSchema.omit({ account: true })
export type BackupRecord = z.infer<typeof BackupRecordSchema>

export const LocationRecordSchema = HeartbeatSchema.extend({ device: z.string(), receivedAt: z.number().int() })
export type LocationRecord = z.infer<typeof LocationRecordSchema>

/** A remote command with the device's signed receipt (F2). */
export const CommandRecordSchema = z.strictObject({
  id: z.string().min(1),
  device: z.string(),
  type: z.string(),
  state: CommandStateSchema,
  reason: z.string().nullable(),
  /** What the command produced (a position for locate), or null. */
  data: z.record(z.string(), z.unknown()).nullable(),
  /** The device's signed receipt of the final state, or null. */
  receipt: z.record(z.string(), z.unknown()).nullable(),
  /** The signed command as sent. */
  command: z.record(z.string(), z.unknown()),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  expiresAt: z.number().int(),
  sentAt: z.number().int().nullable(),
})
export type CommandRecord = z.infer<typeof CommandRecordSchema>

export const NotificationRecordSchema = z.strictObject({
  id: z.string().min(1),
  deviceId: z.string(),
  kind: NotificationKindSchema,
  title: z.string(),
  body: z.string(),
  createdAt: z.number().int(),
  expiresAt: z.number().int(),
  state: z.enum(['queued', 'delivered', 'expired']),
  sends: z.number().int().nonnegative(),
  deliveredAt: z.number().int().nullable(),
  delayMs: z.number().int().nullable(),
  expiredAt: z.number().int().nullable(),
})
export type TransferNotification = z.infer<typeof NotificationRecordSchema>

export const CloudLogRecordSchema = z.strictObject({
  seq: z.number().int(),
  account: z.string(),
  at: z.number().int(),
  rule: z.string(),
  message: z.string(),
  count: z.number().int(),
})

/** GET /api/accounts/:account/export */
export const AccountSnapshotSchema = z.strictObject({
  now: z.number().int(),
  account: AccountRecordSchema,
  devices: z.array(DeviceRecordSchema),
  items: z.array(ItemRecordSchema),
  drive: z.array(DriveFileSchema),
  backups: z.array(BackupRecordSchema),
  locations: z.array(LocationRecordSchema),
  commands: z.array(CommandRecordSchema),
  notifications: z.array(NotificationRecordSchema),
  log: z.array(CloudLogRecordSchema),
})
export type AccountSnapshot = z.infer<typeof AccountSnapshotSchema>

/**
 * POST /api/accounts/:account/import: what to add; every list may be left out. The names a phone or the cloud use as
 * topic levels or file names are held to the rules they meet when made on the cloud (an import comes from a bag, an
 * untrusted file): device ids as `device add` takes them, sync item ids and drive names and folders as the data channel
 * takes them.
 */
export const ImportRequestSchema = z.strictObject({
  account: AccountRecordSchema.pick({ tier: true, premiumUntil: true, createdAt: true }).optional(),
  devices: z.array(DeviceRecordSchema.extend({ id: DeviceIdSchema })).default([]),
  items: z.array(ItemRecordSchema.extend({ id: ItemIdSchema })).default([]),
  drive: z.array(DriveFileSchema.extend({ name: FileNameSchema, folder: FolderSchema })).default([]),
  backups: z.array(BackupRecordSchema).default([]),
  locations: z.array(LocationRecordSchema).default([]),
  commands: z.array(CommandRecordSchema).default([]),
  notifications: z.array(NotificationRecordSchema).default([]),
})
export type ImportRequest = z.input<typeof ImportRequestSchema>
/** An import request with every list present. */
export type FullImportRequest = z.output<typeof ImportRequestSchema>

/**
 * POST /api/accounts/:account/transferred: the account's data left this cloud
 * whole (an export written to the end, a migration verified identical); M1
 * keeps such an account readable past its deadline and its data 30 days.
 */
export const TransferredSchema = z.strictObject({ how: z.enum(['export', 'migrate']), detail: z.string().max(500).default('') })
export type Transferred = z.input<typeof TransferredSchema>

const IMPORT_KINDS = ['account', 'device', 'item', 'drive', 'backup', 'locations', 'command', 'notification'] as const
export type ImportKind = (typeof IMPORT_KINDS)[number]

/** Each kind of record as a count says it (`1 drive file`, `2 location histories`): the words `console export` counts with. */
const KIND_WORDS: Record<ImportKind, [one: string, many: string]> = {
  account: ['account', 'accounts'],
  device: ['device', 'devices'],
  item: ['item', 'items'],
  drive: ['drive file', 'drive files'],
  backup: ['backup', 'backups'],
  locations: ['location history', 'location histories'],
  command: ['command', 'commands'],
  notification: ['notification', 'notifications'],
}

/**
 * M2, M3: records counted by kind, in the kinds' order and the export's words (`71 items, 1 drive file, 3 backups`), so an
 * import's or a migration's total is found again in the export's counts. Kinds with none are left out.
 */
export function countByKind(kinds: readonly string[]): string {
  return IMPORT_KINDS.map((kind): [ImportKind, number] => [kind, kinds.filter((k) => k === kind).length])
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${KIND_WORDS[kind][n === 1 ? 0 : 1]}`)
    .join(', ')
}

/** What became of one record: added now, there already (identical), or refused with the reason. */
export const ImportOutcomeSchema = z.strictObject({
  kind: z.enum(IMPORT_KINDS),
  id: z.string(),
  result: z.enum(['imported', 'present', 'failed']),
  error: z.string().optional(),
})
export type ImportOutcome = z.infer<typeof ImportOutcomeSchema>

export const ImportReplySchema = z.strictObject({
  now: z.number().int(),
  account: z.string(),
  imported: z.number().int(),
  present: z.number().int(),
  failed: z.number().int(),
  outcomes: z.array(ImportOutcomeSchema),
})
export type ImportReply = z.infer<typeof ImportReplySchema>

/** The largest import request body, bytes. */
export const MAX_IMPORT_BYTES = 256 * 1024 * 1024
