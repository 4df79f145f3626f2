/**
 * The drive's control-socket requests (D1-D3): what `fakephone phone drive ...`
 * asks the running agent to do, and what it answers. Paths are absolute
 * (the CLI resolves them), since the agent runs in another directory.
 */
import { z } from 'zod'
import type { PhoneDrive } from './phone-drive.js'

export const DRIVE_CONTROL_REQUESTS = [
  z.strictObject({ op: z.literal('drive-list') }),
  z.strictObject({ op: z.literal('drive-upload'), path: z.string().min(1), folder: z.string().optional() }),
  z.strictObject({ op: z.literal('drive-download'), id: z.string().min(1), dest: z.string().min(1) }),
  z.strictObject({ op: z.literal('drive-share'), id: z.string().min(1) }),
  /** D2: switch drive sync on or off; without `on`, sync the Drive folder now. */
  z.strictObject({ op: z.literal('drive-sync'), on: z.boolean().optional() }),
] as const
export type DriveControlRequest = z.infer<(typeof DRIVE_CONTROL_REQUESTS)[number]>

/** Runs one drive request; the answer goes back as the reply's `result`. */
export async function handleDriveControl(drive: PhoneDrive, req: DriveControlRequest): Promise<unknown> {
  switch (req.op) {
    case 'drive-list':
      return drive.list()
    case 'drive-upload':
      return { file: await drive.upload(req.path, req.folder) }
    case 'drive-download':
      return { file: await drive.download(req.id, req.dest), dest: req.dest }
    case 'drive-share':
      return drive.share(req.id)
    case 'drive-sync': {
      const report = req.on === undefined ? await drive.sync() : await drive.setSync(req.on)
      return { sync: drive.syncOn, ...report }
    }
  }
}
