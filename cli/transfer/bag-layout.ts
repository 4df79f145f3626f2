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
 *   drive/other/<id>                        a drive file whose folder and name cannot be a path in the bag (drivePaths)
 *   backups/<id>.package                    backup packages; backups/backups.json lists them
 *   devices/<device>/locations.gpx|.geojson location history
 *   devices/<device>/commands.json          remote commands with their signed receipts
 *   devices/<device>/notifications.json     notifications sent to the device
 *   cloud-log.json                          what the cloud's rules did to the account's data
 */
import { z } from 'zod'
import { DriveFileSchema, type DriveFile } from '../../common/cloud/drive-api.js'
import { SyncCategorySchema } from '../../common/cloud/sync-api.js'
import { unsafePath } from '../../common/bagit/paths.js'
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
/** Where a drive file whose folder and name cannot be its path in the bag is kept instead (see drivePaths). */
const driveOtherPath = (f: Pick<DriveFile, 'id'>): string => `drive/other/${f.id}`

/** The longest name a file system takes for one folder level, bytes. */
const MAX_NAME_BYTES = 255

/**
 * Each drive file's path in the bag, by its id: drivePath, unless that cannot be a file of the bag, when it is
 * driveOtherPath: a `\` in its folder or name (no BagIt path holds one), a level of it over 255 bytes (no file system
 * takes it), or the folder another file is in (a file `/Docs` beside `/Docs/a.txt`). Whoever can write to the drive --
 * a phone, an SDK app, the web -- names its files, and one such name stopped the whole account's export (M3). files.json
 * keeps each file's folder and name as the drive has them, beside its path, so an import puts it back where it was.
 */
export function drivePaths(files: readonly Pick<DriveFile, 'id' | 'folder' | 'name'>[]): Map<string, string> {
  const wanted = files.map((f) => ({ f, path: drivePath(f) }))
  const folders = new Set<string>()
  for (const { path } of wanted) {
    const levels = path.split('/')
    for (let i = 1; i < levels.length; i++) folders.add(levels.slice(0, i).join('/'))
  }
  const fits = (path: string): boolean =>
    unsafePath(path) === null && !folders.has(path) && path.split('/').every((level) => Buffer.byteLength(level) <= MAX_NAME_BYTES)
  return new Map(wanted.map(({ f, path }) => [f.id, fits(path) ? path : driveOtherPath(f)]))
}
export const backupPath = (b: Pick<BackupRecord, 'id'>): string => `backups/${b.id}.package`
export const devicePath = (device: string, file: string): string => `devices/${device}/${file}`

const SIDECAR_PATH = new RegExp(`^data/(?:recycle-bin/)?(${SyncCategorySchema.options.join('|')})/([^/]+)\\.meta\\.json$`)

/** True when a bag path (with `data/`) is an item's sidecar. */
export const isSidecar = (path: string): boolean => SIDECAR_PATH.test(path)

export { ItemRecordSchema }
