/**
 * M2 across devices: the shared contract of a phone following its account's
 * migration (docs/CONTRACT.md, "cloud-moved"). When `console migrate`
 * completed verified, the console copies each device's stored secret
 * verifier (never the secret) from the source cloud to the destination, so
 * the destination accepts the same device credentials, then asks the source
 * to tell each phone over the push channel: a notification of kind
 * `cloud-moved` whose body is a CloudMove (JSON). The phone checks it
 * against this schema and its signature, an HMAC-SHA256 keyed with the
 * device's secret verifier: only a cloud that holds the verifier of this
 * device -- the one it is registered with -- can make one, and the device
 * computes the verifier from its own secret.
 *
 *   GET  /api/accounts/:account/device-verifiers   the account's devices with their verifiers (console; source)
 *   PUT  /api/accounts/:account/device-verifiers   sets them on the account's devices here (console; destination)
 *   POST /api/accounts/:account/moved              tells every phone of a migrated account where its cloud is now (console; source)
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { MQTT_SCHEME_PATTERN } from '../config.js'
import { AccountNameSchema, DeviceIdSchema, decodeJson, type Decoded } from '../contract.js'
import { canonical } from '../signing.js'

export const CLOUD_MOVED = 'cloud-moved'

/** Where a phone's cloud is: its MQTT data channel, its push channel and its HTTP side. */
export const CloudEndpointsSchema = z.strictObject({
  mqtt: z.url({ protocol: MQTT_SCHEME_PATTERN }),
  push: z.url({ protocol: /^wss?$/ }),
  cloud: z.url({ protocol: /^https?$/ }),
})
export type CloudEndpoints = z.infer<typeof CloudEndpointsSchema>

export const CloudMoveSchema = z.strictObject({
  v: z.literal(1),
  /** The device it is for: a notice for another device is refused. */
  device: DeviceIdSchema,
  /** The account at the destination: made there by the migration, so its name meets the account-name rule. */
  account: AccountNameSchema,
  to: CloudEndpointsSchema,
  /** When the source cloud made it, ms. */
  at: z.number().int().nonnegative(),
  /** HMAC-SHA256 (base64) of the canonical JSON of the other fields, keyed with the device's secret verifier. */
  sig: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
})
export type CloudMove = z.infer<typeof CloudMoveSchema>

/** The verifier a cloud stores for a device secret: `sha256$` + base64 SHA-256 (broker/devices/registry.ts says why). */
export function secretVerifier(secret: string): string {
  return 'sha256$' + createHash('sha256').update(secret).digest('base64')
}

const mac = (payload: Omit<CloudMove, 'sig'>, verifier: string): Buffer =>
  createHmac('sha256', verifier).update(canonical(payload)).digest()

export function signMove(payload: Omit<CloudMove, 'sig'>, verifier: string): CloudMove {
  return CloudMoveSchema.parse({ ...payload, sig: mac(payload, verifier).toString('base64') })
}

/** The body of a `cloud-moved` notice, checked: JSON, the schema, for this device, signed with its verifier. Never throws. */
export function readMove(body: string, deviceId: string, secret: string): Decoded<CloudMove> {
  const decoded = decodeJson(CloudMoveSchema, body)
  if (!decoded.ok) return decoded
  const { sig, ...payload } = decoded.value
  if (payload.device !== deviceId) return { ok: false, reason: `it is for device ${payload.device}, not this one` }
  if (!timingSafeEqual(Buffer.from(sig, 'base64'), mac(payload, secretVerifier(secret))))
    return { ok: false, reason: 'its signature is not that of this device’s cloud' }
  return decoded
}

/**
 * The endpoints of a fakephone cloud from its HTTP URL: its one HTTP port
 * serves MQTT over WebSocket at /mqtt, the push channel at /push and the
 * cloud API -- the address the migration itself just reached.
 */
export function endpointsOf(cloudUrl: string): CloudEndpoints {
  const url = new URL(cloudUrl)
  const ws = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}`
  return { mqtt: `${ws}/mqtt`, push: `${ws}/push`, cloud: url.origin }
}

export const DeviceVerifiersSchema = z.strictObject({
  devices: z.array(
    z.strictObject({
      id: DeviceIdSchema,
      // An older fakephone's scrypt verifier has cost 1024; another cost from a source cloud would set what each login
      // attempt for the device costs here (16,384: ~47 ms of the thread pool that also writes blobs, for anyone who knows the id).
      verifier: z.string().regex(/^(sha256\$[A-Za-z0-9+/]{43}=|scrypt\$1024\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+)$/),
    }),
  ),
})
export type DeviceVerifiers = z.infer<typeof DeviceVerifiersSchema>

/** `account`: the account at the destination (CloudMove's). */
export const MovedRequestSchema = z.strictObject({ account: AccountNameSchema, to: CloudEndpointsSchema })
export type MovedRequest = z.infer<typeof MovedRequestSchema>

/** What the source answers: the devices it told. */
export const MovedReplySchema = z.strictObject({ devices: z.array(z.string()), to: CloudEndpointsSchema })
export type MovedReply = z.infer<typeof MovedReplySchema>
