/**
 * The push channel's wire protocol (X1, X3), documented for people in
 * docs/CONTRACT.md. The push channel is a WebSocket at `/push` on the
 * broker's HTTP port, apart from the MQTT data channel: JSON text frames,
 * each checked here with a zod schema on both sides. The device says hello
 * with its id and secret, the cloud sends notifications, the device
 * acknowledges each by id; keep-alive is WebSocket ping/pong.
 */
import { z } from 'zod'
import { DeviceIdSchema, checked, decodeJson, type Decoded } from './contract.js'

export const PUSH_PATH = '/push'
export const PUSH_PROTOCOL_VERSION = 1
/** Largest frame either side accepts, bytes. */
export const PUSH_MAX_FRAME_BYTES = 16 * 1024

/** Close codes in the private range 4000-4999 [RFC 6455 7.4.2]. */
export const PUSH_CLOSE = {
  /** A newer push connection of the same device took over. */
  REPLACED: 4000,
  /** Unknown device or wrong secret. */
  UNAUTHORIZED: 4001,
  /** No hello in time. */
  HELLO_TIMEOUT: 4002,
  /** Before the hello was accepted, a frame that is not a hello. */
  PROTOCOL_ERROR: 4003,
} as const

/**
 * `retirement`: a notice of the cloud service's end (M1); `service-gone`: the cloud service has shut down (M1); `cloud-moved`:
 * the account migrated, the phone follows (M2; its body is a signed CloudMove, common/cloud/cloud-move.ts).
 */
export const NotificationKindSchema = z.enum(['weather', 'system-update', 'message', 'cloud', 'retirement', 'service-gone', 'cloud-moved'])
export type NotificationKind = z.infer<typeof NotificationKindSchema>

/** One notification as the device receives it. Ids are UUIDs, so they never repeat, even across cloud databases. */
export const PushNotificationSchema = z.strictObject({
  id: z.uuid(),
  kind: NotificationKindSchema,
  title: z.string().min(1).max(120),
  body: z.string().max(2000),
  /** When the cloud queued it, ms since the epoch: the device shows how late it is from this. */
  createdAt: z.number().int().nonnegative(),
  /** After this the cloud no longer delivers it and marks it expired. */
  expiresAt: z.number().int().nonnegative(),
})
export type PushNotification = z.infer<typeof PushNotificationSchema>

/** Device → cloud. */
export const ClientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'),
    v: z.literal(PUSH_PROTOCOL_VERSION),
    device: DeviceIdSchema,
    secret: z.string().min(1).max(256),
  }),
  z.strictObject({ type: z.literal('ack'), id: z.uuid() }),
])
export type ClientFrame = z.infer<typeof ClientFrameSchema>

/** Cloud → device. */
export const ServerFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('welcome'), device: DeviceIdSchema, at: z.number().int().nonnegative() }),
  PushNotificationSchema.extend({ type: z.literal('notification') }),
  z.strictObject({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(500) }),
])
export type ServerFrame = z.infer<typeof ServerFrameSchema>

/** Checks a received frame; never throws. Binary frames are not part of the protocol. */
export function decodeFrame<T>(schema: z.ZodType<T>, data: Buffer | string, isBinary: boolean): Decoded<T> {
  if (isBinary) return { ok: false, reason: 'binary frames are not part of the protocol' }
  return decodeJson(schema, data)
}

/** Serialises a frame after checking it (its compiled check, else zod), so a bug on our side never goes on the wire. */
export function encodeFrame<T>(schema: z.ZodType<T>, frame: T): string {
  return JSON.stringify(checked(schema, frame))
}
