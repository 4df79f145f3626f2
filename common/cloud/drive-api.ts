/**
 * The cloud drive's HTTP contract (D1-D5), shared by the phone, the cloud and
 * the console, and the shape a third-party app sees through the drive SDK
 * (documented in docs/CONTRACT.md, "The cloud drive over HTTP").
 */
import { z } from 'zod'

export const DRIVE_DEVICE_PATH = '/cloud/v1/drive'
export const DRIVE_SDK_PATH = '/sdk/v1/files'
export const SHARE_PATH = '/share'

/** A folder path: `/` or `/a/b`, no empty, `.` or `..` segments. */
export const FolderSchema = z
  .string()
  .max(1024)
  .regex(/^\/(?:[^/\u0000]+(?:\/[^/\u0000]+)*)?$/, 'a folder path such as / or /Documents/2026')
  .refine((f) => !f.split('/').some((s) => s === '.' || s === '..'), 'a folder path may not hold . or ..')

/** A file name: one path segment. */
export const FileNameSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^/\u0000]+$/, 'a file name without /')
  .refine((n) => n !== '.' && n !== '..', 'a file name may not be . or ..')

export const DriveFileSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  folder: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  /** Who uploaded it: a device id, `console`, or `sdk:<app>`. */
  uploadedBy: z.string(),
})
export type DriveFile = z.infer<typeof DriveFileSchema>

export const DriveListSchema = z.strictObject({ files: z.array(DriveFileSchema) })

/** The phone registers a blob it uploaded (resumably, /cloud/v1/blobs) as a drive file. */
export const DriveRegisterSchema = z.strictObject({
  name: FileNameSchema,
  folder: FolderSchema.default('/'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
})
export type DriveRegister = z.input<typeof DriveRegisterSchema>

export const DriveFileReplySchema = z.strictObject({ file: DriveFileSchema })

/** A share link: anyone with `url` downloads the file, until revoked or while the service is off. */
export const DriveShareSchema = z.strictObject({ fileId: z.string(), token: z.string(), url: z.string() })

/** An SDK token for one app of one account; `token` is shown once and stored only as a hash. */
export const DriveTokenSchema = z.strictObject({
  id: z.string(),
  account: z.string(),
  app: z.string(),
  createdAt: z.number().int(),
  token: z.string(),
})

/** A share link or an SDK token revoked (`DELETE .../drive/shares/:token`, `DELETE .../drive/tokens/:id`). */
export const DriveRevokedSchema = z.strictObject({ revoked: z.literal(true) })
export type DriveRevoked = z.infer<typeof DriveRevokedSchema>

export const DriveTokenRequestSchema = z.strictObject({ app: z.string().min(1).max(100) })

/** D5: the SDK file picker's answer while the cloud service is off: no files, and a failure. */
export const SdkFailedListSchema = z.strictObject({ files: z.tuple([]), error: z.string(), code: z.string() })
