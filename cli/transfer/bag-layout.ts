/**
 * Where each record of an account goes in its bag (M3), and how an import
 * reads them back; docs/EXPORT.md describes the same layout for other
 * programs. Paths are relative to the bag's `data/` directory:
 *
 *   account.json                            the account (tier, quota, dates) and its devices
 *   <category>/<id>                         a synced item's bytes: photos (JPEG with EXIF), contacts (vCard), notes, recordings (WAV)
 *   <category>/<id>.meta.json               its sidecar: every field the cloud keeps of it
 *   recycle-bin/<category>/<id>[.meta.json] the same for recycle-bin entries (with purgeAt and daysLeft)
 *   drive/files/<folder>/<name>             drive files, in their folders; drive/files.json lists them
 *   backups/<id>.package                    backup packages; backups/backups.json lists them
 *   devices/<device>/locations.gpx|.geojson location history
 *   devices/<device>/commands.json          remote commands with their signed receipts
 *   devices/<device>/notifications.json     notifications sent to the device
 *   cloud-log.json                          what the cloud's rules did to the account's data
 */
import { z } from 'zod'
import { DriveFileSchema, type DriveFile } from '../../common/cloud/drive-api.js'
import { SyncCategorySchema } from '../../common/cloud/sync-api.js'
import {
  AccountRecordSchema,
  BackupRecordSchema,
  CommandRecordSchema,
  DeviceRecordSchema,
  ItemRecordSchema,
  NotificationRecordSchema,
  type BackupRecord,
  type ItemRecord,
} from '../../common/cloud/transfer-api.js'

export const EXPORT_FORMAT = 'fakephone-account-export/1'
export const SIDECAR = '.meta.json'

export const AccountFileSchema = z.strictObject({
  format: z.literal(EXPORT_FORMAT),
  exportedAt: z.number().int(),
  /** The cloud it came from (the console API's URL), or `phone:<id>` for a phone's own export. */
  source: z.string(),
  account: AccountRecordSchema,
  devices: z.array(DeviceRecordSchema),
})
export type AccountFile = z.infer<typeof AccountFileSchema>

export const DriveListFileSchema = z.array(DriveFileSchema.extend({ path: z.string() }))
export const BackupListFileSchema = z.array(BackupRecordSchema.extend({ path: z.string() }))
export const CommandsFileSchema = z.array(CommandRecordSchema)
export const NotificationsFileSchema = z.array(NotificationRecordSchema)

export const itemPath = (i: Pick<ItemRecord, 'category' | 'id' | 'deletedAt'>): string =>
  `${i.deletedAt === null ? '' : 'recycle-bin/'}${i.category}/${i.id}`
export const drivePath = (f: Pick<DriveFile, 'folder' | 'name'>): string => `drive/files${f.folder === '/' ? '' : f.folder}/${f.name}`
export const backupPath = (b: Pick<BackupRecord, 'id'>): string => `backups/${b.id}.package`
export const devicePath = (device: string, file: string): string => `devices/${device}/${file}`

const SIDECAR_PATH = new RegExp(`^data/(?:recycle-bin/)?(${SyncCategorySchema.options.join('|')})/([^/]+)\\.meta\\.json$`)

/** True when a bag path (with `data/`) is an item's sidecar. */
export const isSidecar = (path: string): boolean => SIDECAR_PATH.test(path)

export { ItemRecordSchema }
