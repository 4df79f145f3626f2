/**
 * D2: the phone's drive sync switch and what it already uploaded, kept in
 * `<data>/drive.json` apart from the phone's other settings. The switch
 * only stops the phone syncing its Drive folder; it deletes nothing.
 */
import { join } from 'node:path'
import { z } from 'zod'
import { JsonFile } from '../../common/json-file.js'

export const DriveSettingsSchema = z.strictObject({
  /** Files put in `<data>/sdcard/Drive/` are uploaded while this is on. */
  sync: z.boolean(),
  /** Path under the Drive folder → SHA-256 of the bytes last uploaded from it. */
  synced: z.record(z.string(), z.string()),
})
export type DriveSettings = z.infer<typeof DriveSettingsSchema>

export const DEFAULT_DRIVE_SETTINGS: DriveSettings = { sync: true, synced: {} }

/** After a wipe drive sync is off, as every sync category is: a wiped phone sends none of its owner's files up. */
export const AFTER_WIPE_DRIVE_SETTINGS: DriveSettings = { sync: false, synced: {} }

export function driveSettingsFile(dataDir: string): JsonFile<DriveSettings> {
  return new JsonFile(join(dataDir, 'drive.json'), DriveSettingsSchema)
}

/** The phone's local drive folder, synced to the cloud while drive sync is on. */
export const driveFolder = (dataDir: string): string => join(dataDir, 'sdcard', 'Drive')
