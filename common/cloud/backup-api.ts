/**
 * Cloud backup's contract (B1-B4), used by the phone and the cloud alike and
 * documented in docs/CONTRACT.md ("Cloud backup"): the package format, its
 * manifest, the plan the cloud sends on `fp/v1/<device>/plan`, and the HTTP
 * bodies of the device and console routes (the console reads its answers with
 * these schemas too).
 */
import { z } from 'zod'

export const BACKUP_PATH = '/cloud/v1/backups'
export const PACKAGE_FORMAT = 'fakephone-backup/1'

/** B1: the five parts of a backup, in package order. */
export const PART_NAMES = ['settings', 'apps', 'launcher', 'wifi', 'appData'] as const
export const PartNameSchema = z.enum(PART_NAMES)
export type PartName = z.infer<typeof PartNameSchema>

/** A path under the phone's data directory: relative, no `..`, no empty segment. */
export const DataPathSchema = z
  .string()
  .min(1)
  .max(300)
  .refine(
    (p) => !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'),
    'a relative path inside the data directory',
  )

export const PackageFileSchema = z.strictObject({ path: DataPathSchema, base64: z.base64() })
export type PackageFile = z.infer<typeof PackageFileSchema>

/** One part: the files it holds, plus what restore applies besides files (settings: the PIN; empty for the others). */
export const PackagePartSchema = z.strictObject({
  files: z.array(PackageFileSchema),
  /** How many things the part holds: settings keys, apps, home-screen icons, networks, app-data files. */
  count: z.number().int().nonnegative(),
  values: z.record(z.string(), z.string()),
})
export type PackagePart = z.infer<typeof PackagePartSchema>

/** The package: one JSON file, uploaded as one blob. */
export const BackupPackageSchema = z.strictObject({
  format: z.literal(PACKAGE_FORMAT),
  device: z.string().min(1),
  createdAt: z.number().int().nonnegative(),
  parts: z.strictObject(Object.fromEntries(PART_NAMES.map((n) => [n, PackagePartSchema])) as Record<PartName, typeof PackagePartSchema>),
})
export type BackupPackage = z.infer<typeof BackupPackageSchema>

export const ManifestPartSchema = z.strictObject({
  name: PartNameSchema,
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  count: z.number().int().nonnegative(),
})

/** What the cloud keeps and shows of a package without opening it. */
export const ManifestSchema = z.strictObject({
  format: z.literal(PACKAGE_FORMAT),
  device: z.string().min(1),
  createdAt: z.number().int().nonnegative(),
  /** Bytes of the package blob. */
  size: z.number().int().nonnegative(),
  parts: z.array(ManifestPartSchema).length(PART_NAMES.length),
})
export type Manifest = z.infer<typeof ManifestSchema>

/** B1: a plan the cloud sends a phone (topic `plan`): make a backup now. */
export const BackupPlanSchema = z.strictObject({
  id: z.uuid(),
  device: z.string().min(1),
  plannedAt: z.number().int().nonnegative(),
})
export type BackupPlan = z.infer<typeof BackupPlanSchema>

/** POST /cloud/v1/backups: register an uploaded package. */
export const RegisterBackupSchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  manifest: ManifestSchema,
  /** The plan this answers; absent for a backup the user started. */
  planId: z.uuid().optional(),
})
export type RegisterBackup = z.infer<typeof RegisterBackupSchema>

/** POST /cloud/v1/backups/plans/:id/failed */
export const PlanFailedSchema = z.strictObject({ reason: z.string().min(1).max(500) })

export const BackupViewSchema = z.strictObject({
  id: z.string(),
  account: z.string(),
  device: z.string(),
  sha256: z.string(),
  size: z.number().int().nonnegative(),
  createdAt: z.number().int().nonnegative(),
  planId: z.string().nullable(),
  manifest: ManifestSchema,
})
export type BackupView = z.infer<typeof BackupViewSchema>

/**
 * B3: an account's backups are `active` while its cloud service is on or was
 * off less than 72 h; `read-only` from then (viewed, downloaded, restored
 * from; never deleted, changed or added to); `cleaning` once the gradual
 * clean-up has started.
 */
export const BackupStateSchema = z.enum(['active', 'read-only', 'cleaning'])
export type BackupState = z.infer<typeof BackupStateSchema>

export const RetentionViewSchema = z.strictObject({
  state: BackupStateSchema,
  serviceOffAt: z.number().nullable(),
  readOnlyAt: z.number().nullable(),
  cleaningFrom: z.number().nullable(),
  nextBatchAt: z.number().nullable(),
})
export type RetentionView = z.infer<typeof RetentionViewSchema>

export const BackupListSchema = z.strictObject({ now: z.number(), retention: RetentionViewSchema, backups: z.array(BackupViewSchema) })
export const BackupOneSchema = z.strictObject({ now: z.number(), retention: RetentionViewSchema, backup: BackupViewSchema })
export const BackupDeletedSchema = z.strictObject({
  now: z.number(),
  deleted: z.number().int().nonnegative(),
  releasedBytes: z.number().int().nonnegative(),
})

export const PlanStateSchema = z.enum(['pending', 'sent', 'done', 'failed', 'dropped'])
export type PlanState = z.infer<typeof PlanStateSchema>
export const PlanViewSchema = z.strictObject({
  id: z.string(),
  device: z.string(),
  plannedAt: z.number(),
  state: PlanStateSchema,
  reason: z.string().nullable(),
  backupId: z.string().nullable(),
  updatedAt: z.number(),
})
export type PlanView = z.infer<typeof PlanViewSchema>

/**
 * B2, B3: `GET /api/accounts/<id>/backups`, the console's view of an account's backups: their state with its dates, when
 * the schedule plans the next one (null while it plans none, and then why not), the backups and the recent plans. The broker's answer is
 * this schema's type. (The console's one backup is BackupOneSchema, a deletion BackupDeletedSchema.)
 */
/**
 * B2, A3, M1: why the schedule plans no backup for an account (the console shows it in place of the next plan's time):
 * one of three fixed wordings, or the retirement's closed uploads with the date they closed.
 */
export const NoPlanBecauseSchema = z.union([
  z.enum([
    'the cloud service of the account is off (B2)',
    'the account is frozen (A3)',
    'no phone of the account has cloud backup and the cloud service on (B2)',
  ]),
  z.templateLiteral(['the fakephone cloud is retiring: sync stopped and new uploads are refused since ', z.string(), ' (M1)']),
])
export type NoPlanBecause = z.infer<typeof NoPlanBecauseSchema>

export const ConsoleBackupListSchema = z.object({
  now: z.number(),
  account: z.string(),
  retention: RetentionViewSchema,
  nextPlanAt: z.number().nullable(),
  /** Why nextPlanAt is null (the service off, the account frozen, no phone with backup and the service on); null when a plan comes. */
  noPlanBecause: NoPlanBecauseSchema.nullable(),
  backups: z.array(BackupViewSchema),
  plans: z.array(PlanViewSchema),
})
export type ConsoleBackupList = z.infer<typeof ConsoleBackupListSchema>
