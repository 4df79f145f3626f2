/**
 * The backup screen of the phone's local control (B1-B4): what
 * `fakephone phone backup ...` asks a running agent to do.
 */
import { z } from 'zod'
import type { PhoneBackup } from './phone-backup.js'

export const BackupRequestSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('status') }),
  z.strictObject({ action: z.literal('switch'), on: z.boolean(), deleteData: z.boolean() }),
  z.strictObject({ action: z.literal('now') }),
  z.strictObject({ action: z.literal('list') }),
  z.strictObject({ action: z.literal('restore'), id: z.string().min(1).max(100).optional() }),
])
export type BackupRequest = z.infer<typeof BackupRequestSchema>

/** Runs one backup request; what it returns goes back to the client as `result`. */
export async function runBackupRequest(backup: PhoneBackup, req: BackupRequest): Promise<unknown> {
  switch (req.action) {
    case 'status':
      return backup.status()
    case 'switch':
      return { deleted: await backup.setSwitch(req.on, req.deleteData), status: backup.status() }
    case 'now':
      return backup.backupNow()
    case 'list':
      return backup.list()
    case 'restore':
      return backup.restore(req.id)
  }
}
