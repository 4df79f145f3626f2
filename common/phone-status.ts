/**
 * What a phone's control socket answers for `fakephone phone … status` (agent/control.ts): the phone's switches, its
 * heartbeats (F1), lock and lost mode (F2), the resident framework (X1-X3), app data sync (S1-S4), cloud backup
 * (B1-B4), where its cloud moved (M2) and its location source (F1). The agent writes it and the CLI reads it through
 * this schema, so a reply that is not a status -- an agent of another version, a socket answered by something else --
 * is refused with one line instead of rendered as `undefined` or a TypeError stack. Parts a newer agent adds are
 * dropped (the objects are not strict); a part an older agent lacks is refused, except `home` and `location`, which
 * agents before them leave out (read as null). The files the agent keeps share three of these schemas: the shown
 * notifications (push-inbox.json), the sync switches (sync-switches.json) and the cloud home (cloud-home.json).
 */
import { z } from 'zod'
import { CloudEndpointsSchema } from './cloud/cloud-move.js'
import { HeartbeatSchema, LocationStatusSchema, NetworkSchema } from './contract.js'
import { PushNotificationSchema } from './push-protocol.js'

const count = z.number().int().nonnegative()
/** A time on the phone's clock, ms. */
const time = z.number().nonnegative()

/** A phone's data channel (common/mqtt's MqttLink): the one list of its states, the type derived from it. */
export const LinkStateSchema = z.enum(['connecting', 'connected', 'waiting', 'off', 'stopped'])
/** X1: the push channel (agent/push-channel): a link's states, and `blocked` while its network permission is revoked. */
export const PushStateSchema = z.enum([...LinkStateSchema.options, 'blocked'])

/**
 * F1, X1: a channel (the data channel, the push channel) while it waits to retry: since when it has failed (the phone's
 * clock, ms) and the last failure's words (null: the far end closed the connection without one).
 */
export const ChannelWaitingSchema = z.object({ since: time, why: z.string().nullable() })
export type ChannelWaiting = z.infer<typeof ChannelWaitingSchema>

/** X3: a notification the phone showed. */
export const ShownNotificationSchema = PushNotificationSchema.extend({
  shownAt: z.number().int().nonnegative(),
  /** shownAt - createdAt: how late it arrived. */
  delayMs: z.number().int().nonnegative(),
})
export type ShownNotification = z.infer<typeof ShownNotificationSchema>

/** S1, S3: the phone's sync switches. */
export const SyncSwitchesSchema = z.strictObject({
  /** S1: the app-data-sync list. */
  categories: z.strictObject({ photos: z.boolean(), contacts: z.boolean(), notes: z.boolean(), recordings: z.boolean() }),
  /** S3: the gallery app's auto-backup. */
  galleryBackup: z.boolean(),
  /** S3: the album switch on the cloud-service page. */
  albumSync: z.boolean(),
})
export type SyncSwitchValues = z.infer<typeof SyncSwitchesSchema>

/** M2: where the phone's cloud is once its account migrated. */
export const CloudHomeSchema = z.strictObject({
  to: CloudEndpointsSchema,
  /** The account at the new cloud. */
  account: z.string(),
  /** When the old cloud sent the notice, ms. */
  movedAt: z.number().int(),
  /** The cloud the phone left. */
  from: z.strictObject({ mqtt: z.string(), push: z.string().optional(), cloud: z.string().optional() }),
})
export type CloudHome = z.infer<typeof CloudHomeSchema>

/** X1-X3: the resident framework's part. */
export const FrameworkStatusSchema = z.object({
  pushChannel: PushStateSchema,
  /** X1: only while the push channel waits to retry (as `dataChannelWaiting`); absent from older phones. */
  pushChannelWaiting: ChannelWaitingSchema.optional(),
  networkPermission: z.boolean(),
  logsOverMobile: z.boolean(),
  notifications: z.object({
    shown: count,
    duplicatesSuppressed: count,
    recent: z.array(ShownNotificationSchema),
    /** M1, M2: what the phone knows of its cloud service's end; null while the cloud said nothing of it. */
    service: z.object({ state: z.enum(['retiring', 'gone', 'moved']), title: z.string(), body: z.string(), at: time }).nullable(),
  }),
  logs: z.object({
    waiting: count,
    uploaded: count,
    notCollected: count,
    lastUploadAt: time.nullable(),
    deferred: z.string().nullable(),
  }),
})

const CategorySyncStatusSchema = z.object({
  sync: z.boolean(),
  uploads: z.boolean(),
  local: count,
  inCloud: count,
  pending: count,
  lastSync: time.nullable(),
  lastError: z.string().nullable(),
})

/** A3: when the cloud last cleared the account's data (null: never) and whether it is frozen, as the phone was told. */
const CloudClearingSchema = z.object({ clearedAt: time.nullable(), frozen: z.boolean() })

/** S1-S4: app data sync, per category. */
export const SyncStatusSchema = z.object({
  switches: SyncSwitchesSchema,
  running: z.boolean(),
  categories: z.object({
    photos: CategorySyncStatusSchema,
    contacts: CategorySyncStatusSchema,
    notes: CategorySyncStatusSchema,
    recordings: CategorySyncStatusSchema,
  }),
  /** A3: absent from older phones. */
  cloud: CloudClearingSchema.optional(),
  /** A1: when the pass retrying items the cloud had no room for runs (null: none waits); absent from older phones. */
  retryAt: time.nullable().optional(),
})

/** B1-B4: the cloud-backup switch and the last backup. */
export const BackupStatusSchema = z.object({
  on: z.boolean(),
  running: z.boolean(),
  lastBackupAt: time.nullable(),
  lastBackupId: z.string().nullable(),
  lastError: z.string().nullable(),
  plansRefused: count,
  /** A3: absent from older phones and from a phone without sync. */
  cloud: CloudClearingSchema.optional(),
})

/** The whole status, as the control socket answers it. */
export const PhoneStatusSchema = z.object({
  id: z.string(),
  dataChannel: LinkStateSchema,
  /** Only while the broker refuses the device's id or secret; absent from older phones. */
  dataChannelRefused: z.literal(true).optional(),
  /** Only while the data channel waits to retry (ChannelWaitingSchema); absent from older phones. */
  dataChannelWaiting: ChannelWaitingSchema.optional(),
  cloudService: z.boolean(),
  findDevice: z.boolean(),
  network: NetworkSchema,
  heartbeatsSent: count,
  lastHeartbeat: HeartbeatSchema.nullable(),
  lock: z.object({ message: z.string(), phone: z.string() }).nullable(),
  lostMode: z.boolean(),
  ringingUntil: time.nullable(),
  framework: FrameworkStatusSchema,
  sync: SyncStatusSchema.nullable(),
  backup: BackupStatusSchema,
  home: CloudHomeSchema.nullish(),
  location: LocationStatusSchema.nullish(),
})
export type PhoneStatus = z.infer<typeof PhoneStatusSchema>
