/**
 * The data channel's HTTP contract for blobs (documented in docs/CONTRACT.md,
 * "Cloud data over HTTP"): what the phone and the cloud exchange to upload
 * a blob resumably and to read it back. Feature contracts (sync, backup,
 * drive) sit next to this file.
 */
import { z } from 'zod'

export const BLOB_PATH = '/cloud/v1/blobs'

export const UploadStateSchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** True once the whole blob is stored and its checksum verified. */
  stored: z.boolean(),
  /** Bytes the cloud already has: the next PUT starts here. */
  offset: z.number().int().nonnegative(),
})
export type UploadStateBody = z.infer<typeof UploadStateSchema>

/**
 * Every error the cloud's HTTP entry points answer with; other fields an error carries pass unread. A3: `FROZEN` says
 * when the cloud cleared the account's data (ms on the cloud's clock), as the change feed's `clearedAt` does once the
 * account is back; optional, a cloud older than it does not send it.
 */
export const CloudErrorSchema = z.object({ error: z.string(), code: z.string(), clearedAt: z.number().int().nullable().optional() })
