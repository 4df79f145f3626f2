/**
 * The console API's contract (F1-F3, X1-X3): the requests the console sends
 * and the answers the cloud gives on `/api/devices/...` and `/api/commands/...`,
 * shared by the broker that serves them and the CLI that calls them. The
 * cloud data's own routes (accounts, sync, backups, drive) have theirs in
 * common/cloud/. Every refusal is an {@link ApiErrorBody} with a status that
 * says what kind it is (400 malformed, 401 credentials, 404, 405, 409, 413 too large).
 */
import { z } from 'zod'
import { AccountNameSchema, type BehaviourEvent, type Command, type CommandState, type Heartbeat, type Result } from './contract.js'
import { CloudEndpointsSchema } from './cloud/cloud-move.js'
import { NotificationKindSchema, PushNotificationSchema, type PushNotification } from './push-protocol.js'

/** Every refusal, on every HTTP API of the broker; some add fields (a refused command adds `command`). */
export interface ApiErrorBody {
  error: string
  code: string
}

/** A device as the console sees it (F1). */
export interface DeviceView {
  id: string
  account: string
  online: boolean
  presenceAt: number | null
  cloudService: boolean | null
  findDevice: boolean | null
  /** Set when Find Device or the cloud service was switched off: the map position is offline from then on. */
  locationOffAt: number | null
  /** F2: lost mode as the device's last succeeded lost-mode command left it (null: never switched from the console). */
  lostMode: LostModeState | null
  last: (Heartbeat & { receivedAt: number }) | null
  /** M2: set once this cloud told the device to follow its account's migration to another cloud (null: never told). */
  moved: DeviceMoved | null
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
export interface LostModeState {
  on: boolean
  message: string | null
  phone: string | null
  at: number
}

export interface LocationRow extends Heartbeat {
  receivedAt: number
}

/** A remote command and where it stands (F2). */
export interface CommandView {
  id: string
  device: string
  type: Command['type']
  args: Command['args']
  state: CommandState
  reason: string | null
  data: Result['data'] | null
  /** The device's signed receipt of the final state, for the owner to verify. */
  receipt: Result | null
  command: Command
  createdAt: number
  updatedAt: number
  expiresAt: number
  sentAt: number | null
}

export type NotificationState = 'queued' | 'delivered' | 'expired'

export interface NotificationRecord extends PushNotification {
  deviceId: string
  state: NotificationState
  /** How many times it went out on a push connection. */
  sends: number
  deliveredAt: number | null
  /** deliveredAt - createdAt, once delivered. */
  delayMs: number | null
  expiredAt: number | null
}

/** A behaviour-log event as the cloud received it (X2). */
export interface ReceivedEvent extends BehaviourEvent {
  receivedAt: number
}

export interface LogSummary {
  events: number
  lastReceivedAt: number | null
}

export interface PushPresence {
  connected: boolean
  /** When it connected, or when it last disconnected; null when it never connected since the broker started. */
  since: number | null
}

/** A notification's longest time to live, ms. */
export const MAX_NOTIFICATION_TTL_MS = 90 * 86_400_000

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
export interface ChannelsView {
  now: number
  device: string
  /** The MQTT data channel (sync, upload, heartbeats): up only while the phone's cloud service is on (X1). */
  data: { online: boolean; cloudService: boolean | null; since: number | null }
  /** The push channel (notifications). */
  push: PushPresence
  notifications: Record<NotificationState, number>
  logs: LogSummary
}

/** GET /api/devices */
export interface DevicesReply {
  now: number
  devices: DeviceView[]
}
/** GET /api/devices/:id */
export interface DeviceReply {
  now: number
  device: DeviceView
}
/** GET /api/devices/:id/history?limit=N */
export interface HistoryReply {
  now: number
  device: string
  history: LocationRow[]
}
/** GET /api/devices/:id/commands */
export interface CommandsReply {
  now: number
  commands: CommandView[]
}
/** The most devices one page of GET /api/commands/latest answers (its default). */
export const MAX_LATEST_COMMANDS_PAGE = 1000

/** A device's newest command and the newest of its commands GET /api/devices/:id/commands lists that is a locate that succeeded. */
export interface LatestCommands {
  device: string
  newest: CommandView
  /** null: none among those; the newest itself when it is one. */
  locate: CommandView | null
}
/**
 * GET /api/commands/latest?after=ID&limit=N (F2): the devices that have commands, by id after `after` (from the first
 * without it), at most `limit` (1 to MAX_LATEST_COMMANDS_PAGE, that by default); `next` is the `after` of the next page,
 * null on the last one.
 */
export interface LatestCommandsReply {
  now: number
  latest: LatestCommands[]
  next: string | null
}
/** The longest `?wait=MS` of GET /api/commands/:cid and POST /api/devices/:id/commands, ms; a console that waits longer asks again. */
export const MAX_COMMAND_WAIT_MS = 60_000

/**
 * GET /api/commands/:cid?wait=MS, and POST /api/devices/:id/commands?wait=MS (201: created, whatever its state; without
 * `wait`, or with 0, the command as submitted): the command once final, or as it stands when the wait ran out.
 */
export interface CommandReply {
  now: number
  command: CommandView
}
/** POST /api/commands/:cid/cancel */
export interface CommandChangeReply {
  command: CommandView
}
/** GET /api/devices/:id/notifications?limit=N */
export interface NotificationsReply {
  now: number
  device: string
  notifications: NotificationRecord[]
}
/** POST /api/devices/:id/notifications (201) */
export interface NotifyReply {
  now: number
  notification: NotificationRecord
}
/** GET /api/devices/:id/logs?limit=N */
export interface LogsReply {
  now: number
  device: string
  total: number
  events: ReceivedEvent[]
}
