/**
 * The agent's config file (`fakephone agent --config FILE`): one fake phone.
 * The device secret is never a setting: it comes from `secretFile`, or from
 * the systemd credential `secretCredential` ($CREDENTIALS_DIRECTORY/NAME).
 * Where the phone is comes from one `location` setting:
 *   `route`               the built-in walk (default)
 *   `gpx:FILE`            the track of a GPX file, walked at `speed`
 *   `fixed:LAT,LON`       one point
 *   `gpsd` / `gpsd:HOST:PORT`  a real receiver through gpsd (127.0.0.1:2947)
 */
import { z } from 'zod'
import { DurationSchema, LogLevelSchema, MQTT_SCHEMES, MQTT_SCHEMES_TEXT, type ConfigSpec } from '../common/config.js'
import { DeviceIdSchema } from '../common/contract.js'
import { privateKeyFileRefusal } from '../common/signing.js'
import { cloudUrlOf } from './cloud-client.js'
import type { Point } from './location.js'
import { parseHostPort, parseLatLon } from './place-text.js'
import { defaultPushUrl } from './push-channel.js'
import { quoted } from '../common/terminal-text.js'

export type LocationSpec =
  { kind: 'route' } | { kind: 'gpx'; file: string } | { kind: 'fixed'; point: Point } | { kind: 'gpsd'; host: string; port: number }

const GPSD_DEFAULT = { host: '127.0.0.1', port: 2947 }

/** Parses a `location` setting; throws with what is wrong. */
export function parseLocation(text: string): LocationSpec {
  const colon = text.indexOf(':')
  const kind = colon < 0 ? text : text.slice(0, colon)
  const rest = colon < 0 ? null : text.slice(colon + 1)
  if (kind === 'route' && rest === null) return { kind }
  if (kind === 'gpx' && rest) return { kind, file: rest }
  if (kind === 'fixed' && rest !== null) {
    const point = parseLatLon(rest)
    if (!point) throw new Error(`${quoted(rest)} is not LAT,LON in degrees, e.g. fixed:55.9486,-3.1999`)
    return { kind, point }
  }
  if (kind === 'gpsd') {
    if (rest === null) return { kind, ...GPSD_DEFAULT }
    const at = parseHostPort(rest)
    if (!at) throw new Error(`${quoted(rest)} is not HOST:PORT, e.g. gpsd:127.0.0.1:2947`)
    return { kind, ...at }
  }
  throw new Error(`${quoted(text)} is not a location: use route, gpx:FILE, fixed:LAT,LON, gpsd or gpsd:HOST:PORT`)
}

export const LocationSchema = z.string().transform((text, ctx): LocationSpec => {
  try {
    return parseLocation(text)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

/** A check that a text is a URL with one of `protocols` and a host (a bad port or bracket fails to parse). */
const urlOf =
  (protocols: readonly string[]) =>
  (text: string): boolean =>
    URL.canParse(text) && protocols.includes(new URL(text).protocol) && new URL(text).hostname !== ''

/**
 * A ws:// URL must name the path the broker serves it on: with none (`ws://HOST:PORT`) the broker turns the upgrade
 * down without a reason, and the phone retried for ever, logging "mqtt disconnected, retrying" and nothing else.
 */
const withPath =
  (path: string) =>
  (text: string, ctx: z.RefinementCtx): void => {
    const url = URL.canParse(text) ? new URL(text) : undefined // a URL that does not parse is refused above
    if (url?.protocol.startsWith('ws') && url.pathname === '/')
      ctx.addIssue({ code: 'custom', message: `a ${url.protocol}// URL needs the path the broker serves it on: ${url.origin}${path}` })
  }

export const AgentConfigSchema = z.strictObject({
  /** As registered with `fakephone device add`. */
  id: DeviceIdSchema,
  broker: z
    .string()
    .refine(urlOf(MQTT_SCHEMES), `expected a broker URL: mqtt://HOST:PORT or ws://HOST:PORT/mqtt (${MQTT_SCHEMES_TEXT})`)
    .superRefine(withPath('/mqtt'))
    .default('mqtt://127.0.0.1:1883'),
  /** The push channel (X1), ws://HOST:PORT/push; by default the broker's origin when it is a ws:// URL, else none (see channelUrls). */
  push: z
    .string()
    .refine(urlOf(['ws:', 'wss:']), 'expected a push URL: ws://HOST:PORT/push')
    .superRefine(withPath('/push'))
    .optional(),
  /** The cloud's HTTP side for sync, backup and drive transfers, http://HOST:PORT; by default the push URL's host and port, else none. */
  cloud: z
    .string()
    .refine(urlOf(['http:', 'https:']), 'expected a cloud URL: http://HOST:PORT')
    .optional(),
  /** Settings, control socket. */
  dataDir: z.string().min(1).default('./phone'),
  /** A file holding the device secret; when absent, the systemd credential below. */
  secretFile: z.string().min(1).optional(),
  /** Name of the systemd credential (LoadCredential=NAME:FILE) holding the secret. */
  secretCredential: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'a credential name: letters, digits, "_", "." and "-"')
    .default('device-secret'),
  /**
   * The owner's public key file (from `fakephone device add`); without it the phone refuses every remote command (F2).
   * The owner's private key is refused: a phone must never hold what signs its wipe command.
   */
  ownerKey: z
    .string()
    .min(1)
    .superRefine((file, ctx) => {
      const refusal = privateKeyFileRefusal(file)
      if (refusal) ctx.addIssue({ code: 'custom', message: refusal })
    })
    .optional(),
  location: LocationSchema.prefault('route'),
  /** Walking speed along a route or GPX track, m/s. */
  speed: z.number().positive().max(1000).default(1.4),
  /** A gpsd fix older than this is no fix. */
  gpsdMaxAge: DurationSchema.default(10_000),
  /** Mean time between heartbeats. */
  interval: DurationSchema.pipe(z.number().min(1, 'the interval must be at least 1ms')).default(30_000),
  /** Each interval varies by ± this fraction. */
  jitter: z.number().min(0).lt(1).default(0.1),
  logLevel: LogLevelSchema.default('info'),
})
export type AgentConfig = z.output<typeof AgentConfigSchema>

export const AGENT_CONFIG: ConfigSpec<typeof AgentConfigSchema> = { kind: 'agent', schema: AgentConfigSchema }

/** Why a phone on an mqtt:// broker URL has no push channel, and what to give: the log and the terminal say it alike. */
export const NO_PUSH_WHY =
  'an mqtt:// broker URL does not say where the cloud listens; give --push ws://HOST:PORT/push or a ws://HOST:PORT/mqtt broker'

/**
 * Where the phone's push channel and cloud transfers go. Given URLs win; else
 * both follow the broker URL: ws://HOST:PORT/mqtt gives ws://HOST:PORT/push
 * and http://HOST:PORT (one origin for everything). An mqtt:// broker URL
 * says nothing about the cloud's HTTP port, so without `push` the phone runs
 * with no push channel and no cloud transfers -- never a guessed fixed port.
 * The cloud URL defaults to the push URL's origin.
 */
export function channelUrls(c: Pick<AgentConfig, 'broker' | 'push' | 'cloud'>): { pushUrl?: string; cloudUrl?: string } {
  const pushUrl = c.push ?? defaultPushUrl(c.broker)
  const cloudUrl = c.cloud ?? (pushUrl === undefined ? undefined : cloudUrlOf(pushUrl))
  return { pushUrl, cloudUrl }
}
