/**
 * The phone's own switches and counters, persisted in `<data>/settings.json`
 * so that they survive a restart like a real phone's settings do.
 */
import { z } from 'zod'
import { NetworkSchema } from '../common/contract.js'
import { JsonFile } from '../common/json-file.js'
import { join } from 'node:path'

export const SettingsSchema = z.strictObject({
  /** The whole vendor cloud service (X1). */
  cloudService: z.boolean(),
  /** Find Device (F1, F3). */
  findDevice: z.boolean(),
  /** What the phone is connected through. */
  network: NetworkSchema,
  /** Next heartbeat sequence number. */
  nextSeq: z.number().int().nonnegative(),
})
export type Settings = z.infer<typeof SettingsSchema>

export const DEFAULT_SETTINGS: Settings = { cloudService: true, findDevice: true, network: 'wifi', nextSeq: 0 }

export function settingsFile(dataDir: string): JsonFile<Settings> {
  return new JsonFile(join(dataDir, 'settings.json'), SettingsSchema)
}
