/**
 * The console API's contract (F1-F3, X1-X3): the requests the console sends
 * and the answers the cloud gives on `/api/devices/...` and `/api/commands/...`,
 * shared by the broker that serves them and the CLI that calls them: the
 * answers are zod schemas whose types the broker builds, so the two cannot
 * drift, and the console reads each answer through its schema. View objects
 * are not strict (a newer cloud may add a field, an older console leaves it);
 * what they carry from the MQTT wire (heartbeats, signed commands and
 * receipts, notifications, behaviour events) is checked with the wire's own
 * strict schemas (common/contract.ts, common/push-protocol.ts). The
 * cloud data's own routes (accounts, sync, backups, drive) have theirs in
 * common/cloud/. Every refusal is an {@link ApiErrorBody} with a status that
 * says what kind it is (400 malformed, 401 credentials, 404, 405, 409, 413 too large).
 */
import { z } from 'zod'
import {
  AccountNameSchema,
  BehaviourEventSchema,
  CommandArgsSchemas,
  CommandSchema,
  CommandStateSchema,
  HeartbeatSchema,
  ResultSchema,
  type CommandType,
} from './contract.js'
import { CloudEndpointsSchema } from './cloud/cloud-move.js'
import { NotificationKindSchema, PushNotificationSchema } from './push-protocol.js'

const time = z.number().int()
const count = z.number().int().nonnegative()

/** Every refusal, on every HTTP API of the broker; some add fields (a refused command adds `command`). */
export interface ApiErrorBody {
  error: string
  code: string
}

/**
 * M2: where a device went when its account migrated: the cloud it was told to follow to (`to`, its HTTP URL), the
 * account there, when it was told, and whether it took the `cloud-moved` notice (`notice`: queued while the phone is
 * away, delivered once it acknowledged it -- then it follows, at `deliveredAt` -- or expired when it never came back).
 */
const MovedToSchema = z.strictObject({
  to: CloudEndpointsSchema.shape.cloud,
  account: AccountNameSchema,
  at: z.number().int().nonnegative(),
})
export const DeviceMovedSchema = z.discriminatedUnion('notice', [
  MovedToSchema.extend({ notice: z.literal('delivered'), deliveredAt: z.number().int().nonnegative() }),
  MovedToSchema.extend({ notice: z.enum(['queued', 'expired']), deliveredAt: z.null() }),
])
export type DeviceMoved = z.infer<typeof DeviceMovedSchema>

/** F2: lost mode on (with what the lock screen shows) or off, since `at` (when the device signed its receipt). */
export const LostModeStateSchema = z.object({
  on: z.boolean(),
  message: z.string().nullable(),
  phone: z.string().nullable(),
  at: time,
})
export type LostModeState = z.infer<typeof LostModeStateSchema>

/** F1: a heartbeat as the cloud received it. */
export const LocationRowSchema = HeartbeatSchema.extend({ receivedAt: time })
export type LocationRow = z.infer<typeof LocationRowSchema>

/**
 * The last PUBLISH the broker refused from a device, and why: MQTT 3.1.1 closes the connection with no reason the device
 * can read, so whoever writes its client reads the reason here. Kept in the broker's memory since it started.
 */
export const RefusedPublishSchema = z.object({ at: time, topic: z.string(), reason: z.string() })
export type RefusedPublish = z.infer<typeof RefusedPublishSchema>

/** A device as the console sees it (F1). */
export const DeviceViewSchema = z.object({
  id: z.string(),
  account: z.string(),
  online: z.boolean(),
  presenceAt: time.nullable(),
  cloudService: z.boolean().nullable(),
  findDevice: z.boolean().nullable(),
  /** Set when Find Device or the cloud service was switched off: the map position is offline from then on. */
  locationOffAt: time.nullable(),
  /** F2: lost mode as the device's last succeeded lost-mode command left it (null: never switched from the console). */
  lostMode: LostModeStateSchema.nullable(),
  last: LocationRowSchema.nullable(),
  /** M2: set once this cloud told the device to follow its account's migration to another cloud (null: never told). */
  moved: DeviceMovedSchema.nullable(),
  /** The last publish the broker refused from it since the broker started (null: none); absent from older brokers. */
  refused: RefusedPublishSchema.nullable().optional(),
})
export type DeviceView = z.infer<typeof DeviceViewSchema>

const { locate, ring, lock, wipe } = CommandArgsSchemas

/** A remote command and where it stands (F2). */
export const CommandViewSchema = z.object({
  id: z.string(),
  device: z.string(),
  type: z.enum(Object.keys(CommandArgsSchemas) as [CommandType, ...CommandType[]]),
  args: z.union([locate, ring, lock, CommandArgsSchemas['lost-mode'], wipe]),
  state: CommandStateSchema,
  reason: z.string().nullable(),
  data: ResultSchema.shape.data.nullable(),
  /** The device's signed receipt of the final state, for the owner to verify. */
  receipt: ResultSchema.nullable(),
  command: CommandSchema,
  createdAt: time,
  updatedAt: time,
  expiresAt: time,
  sentAt: time.nullable(),
})
export type CommandView = z.infer<typeof CommandViewSchema>

export const NotificationStateSchema = z.enum(['queued', 'delivered', 'expired'])
export type NotificationState = z.infer<typeof NotificationStateSchema>

export const NotificationRecordSchema = PushNotificationSchema.extend({
  deviceId: z.string(),
  state: NotificationStateSchema,
  /** How many times it went out on a push connection. */
  sends: count,
  deliveredAt: time.nullable(),
  /** deliveredAt - createdAt, once delivered. */
  delayMs: z.number().nullable(),
  expiredAt: time.nullable(),
})
export type NotificationRecord = z.infer<typeof NotificationRecordSchema>

/** A behaviour-log event as the cloud received it (X2). */
export const ReceivedEventSchema = BehaviourEventSchema.extend({ receivedAt: time })
export type ReceivedEvent = z.infer<typeof ReceivedEventSchema>

export const LogSummarySchema = z.object({ events: count, lastReceivedAt: time.nullable() })
export type LogSummary = z.infer<typeof LogSummarySchema>

export const PushPresenceSchema = z.object({
  connected: z.boolean(),
  /** When it connected, or when it last disconnected; null when it never connected since the broker started. */
  since: time.nullable(),
})
export type PushPresence = z.infer<typeof PushPresenceSchema>

/** A notification's longest time to live, ms. */
const MAX_NOTIFICATION_TTL_MS = 90 * 86_400_000

/** POST /api/devices/:id/notifications (X3). */
export const NotifyRequestSchema = z.strictObject({
  kind: NotificationKindSchema.default('message'),
  title: PushNotificationSchema.shape.title,
  body: PushNotificationSchema.shape.body.default(''),
  /** Time to live, ms (default four weeks). */
  ttlMs: z.number().int().positive().max(MAX_NOTIFICATION_TTL_MS).optional(),
})
export type NotifyRequest = z.infer<typeof NotifyRequestSchema>

/** GET /api/devices/:id/channels (X1). */
export const ChannelsViewSchema = z.object({
  now: time,
  device: z.string(),
  /** The MQTT data channel (sync, upload, heartbeats): up only while the phone's cloud service is on (X1). */
  data: z.object({ online: z.boolean(), cloudService: z.boolean().nullable(), since: time.nullable() }),
  /** The push channel (notifications). */
  push: PushPresenceSchema,
  notifications: z.object({ queued: count, delivered: count, expired: count }),
  logs: LogSummarySchema,
})
export type ChannelsView = z.infer<typeof ChannelsViewSchema>

/** GET /api/devices */
export const DevicesReplySchema = z.object({ now: time, devices: z.array(DeviceViewSchema) })
export type DevicesReply = z.infer<typeof DevicesReplySchema>
/** GET /api/devices/:id */
export const DeviceReplySchema = z.object({ now: time, device: DeviceViewSchema })
export type DeviceReply = z.infer<typeof DeviceReplySchema>
/** GET /api/devices/:id/history?limit=N */
export const HistoryReplySchema = z.object({ now: time, device: z.string(), history: z.array(LocationRowSchema) })
export type HistoryReply = z.infer<typeof HistoryReplySchema>
/** GET /api/devices/:id/commands */
export const CommandsReplySchema = z.object({ now: time, commands: z.array(CommandViewSchema) })
export type CommandsReply = z.infer<typeof CommandsReplySchema>
/** The most devices one page of GET /api/commands/latest answers (its default). */
export const MAX_LATEST_COMMANDS_PAGE = 1000

/** A device's newest command and the newest of its commands GET /api/devices/:id/commands lists that is a locate that succeeded. */
export const LatestCommandsSchema = z.object({
  device: z.string(),
  newest: CommandViewSchema,
  /** null: none among those; the newest itself when it is one. */
  locate: CommandViewSchema.nullable(),
})
export type LatestCommands = z.infer<typeof LatestCommandsSchema>
/**
 * GET /api/commands/latest?after=ID&limit=N (F2): the devices that have commands, by id after `after` (from the first
 * without it), at most `limit` (1 to MAX_LATEST_COMMANDS_PAGE, that by default); `next` is the `after` of the next page,
 * null on the last one.
 */
export const LatestCommandsReplySchema = z.object({ now: time, latest: z.array(LatestCommandsSchema), next: z.string().nullable() })
export type LatestCommandsReply = z.infer<typeof LatestCommandsReplySchema>
/** The longest `?wait=MS` of GET /api/commands/:cid and POST /api/devices/:id/commands, ms; a console that waits longer asks again. */
export const MAX_COMMAND_WAIT_MS = 60_000

/**
 * GET /api/commands/:cid?wait=MS, and POST /api/devices/:id/commands?wait=MS (201: created, whatever its state; without
 * `wait`, or with 0, the command as submitted): the command once final, or as it stands when the wait ran out.
 */
export const CommandReplySchema = z.object({ now: time, command: CommandViewSchema })
export type CommandReply = z.infer<typeof CommandReplySchema>
/** POST /api/commands/:cid/cancel */
export const CommandChangeReplySchema = z.object({ command: CommandViewSchema })
export type CommandChangeReply = z.infer<typeof CommandChangeReplySchema>
/** GET /api/devices/:id/notifications?limit=N */
export const NotificationsReplySchema = z.object({ now: time, device: z.string(), notifications: z.array(NotificationRecordSchema) })
export type NotificationsReply = z.infer<typeof NotificationsReplySchema>
/** POST /api/devices/:id/notifications (201) */
export const NotifyReplySchema = z.object({ now: time, notification: NotificationRecordSchema })
export type NotifyReply = z.infer<typeof NotifyReplySchema>
/** GET /api/devices/:id/logs?limit=N */
export const LogsReplySchema = z.object({ now: time, device: z.string(), total: count, events: z.array(ReceivedEventSchema) })
export type LogsReply = z.infer<typeof LogsReplySchema>
