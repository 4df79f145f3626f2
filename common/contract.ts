/**
 * The MQTT topic and payload contract between fake phones and the cloud
 * (documented for people in docs/CONTRACT.md). Every payload that crosses a
 * boundary is checked here with a zod schema; nothing else parses payloads.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { BackupPlanSchema } from './cloud/backup-api.js'
import { compileCheck, type Check } from './fast-check.js'

export const TOPIC_ROOT = 'fp/v1'

/** Device ids are topic-safe by construction: no `/`, `+`, `#`, `$` or dots. */
export const DeviceIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'device id: 1-63 of a-z, 0-9 and "-", not starting with "-"')
export type DeviceId = z.infer<typeof DeviceIdSchema>

/** The account-name rule (docs/CONTRACT.md, "Account names"), in the words every refusal uses. */
export const ACCOUNT_NAME_RULE = 'account name: 1-64 of a-z, 0-9, ".", "_", "-" and "@", not starting with "." or "-"'

/**
 * An owner account's name, checked wherever a name enters to make an account (`device add`, `fleet provision`, an import,
 * a migration): it becomes a file name in the owner keys folder, an OwnTracks topic level and a URL path segment, so it
 * holds no `/`, no MQTT wildcard, no space or control character, and is never `.`, `..` or hidden. Lower case only: two
 * names that differ only in case would share a keys file on a file system that ignores case.
 */
export const AccountNameSchema = z.string().regex(/^[a-z0-9_@][a-z0-9._@-]{0,63}$/, ACCOUNT_NAME_RULE)

/** Longest encoded name kept whole by accountSegment; a longer one is hashed (a file name has 255 bytes at most). */
const MAX_ENCODED = 120

/**
 * The account's name as one file name, topic level or path segment: a name the rule accepts as it is; a name an account
 * was given before the rule (a database may still hold one) as `~` and its UTF-8 bytes with every byte but a-z, 0-9,
 * "_", "-" and "@" %-escaped, or, when that is longer than 120 characters, `~~` and the SHA-256 of the name in hex. A
 * name the rule accepts never holds `~` or `%`, so no two names share a segment.
 */
export function accountSegment(account: string): string {
  if (decodeValue(AccountNameSchema, account).ok) return account
  let encoded = '~'
  for (const byte of Buffer.from(account, 'utf8')) {
    const c = String.fromCharCode(byte)
    encoded += /[a-z0-9_@-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return encoded.length <= MAX_ENCODED ? encoded : `~~${createHash('sha256').update(account).digest('hex')}`
}

/** The last instant a JavaScript Date holds, ms since the epoch (ECMA-262 21.4.1.1: ±8.64e15 ms, year 275760). */
export const MAX_TIME_MS = 8.64e15

/**
 * A time in a message, ms since the epoch: a whole number from 0 to MAX_TIME_MS. A device may send any number; one past
 * what a Date holds could be stored but never shown (toISOString throws RangeError), so a single heartbeat stamped so
 * stopped its account's export (the GPX and GeoJSON of its history) and broke its history on the web console's page.
 */
export const TimeSchema = z.number().int().nonnegative().max(MAX_TIME_MS)

export const NetworkSchema = z.enum(['wifi', 'mobile', 'none'])
export type Network = z.infer<typeof NetworkSchema>

/** F1: one location fix plus the phone's vital signs. */
export const HeartbeatSchema = z.strictObject({
  /** Increases by one per heartbeat over the agent's lifetime (persisted). */
  seq: z.number().int().nonnegative(),
  /** When the fix was taken, ms since the epoch, on the agent's clock. */
  at: TimeSchema,
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
  /** Radius of the 68% confidence circle, metres. */
  accuracy: z.number().nonnegative().max(100_000),
  /** Ground speed, metres per second. */
  speed: z.number().nonnegative().max(1_000),
  /** Battery charge, percent (fakephone agents send an integer; any number in range is accepted). */
  battery: z.number().min(0).max(100),
  charging: z.boolean(),
  network: NetworkSchema,
})
export type Heartbeat = z.infer<typeof HeartbeatSchema>

/** Retained; the agent's last will publishes `{"state":"offline"}`. */
export const PresenceSchema = z.strictObject({
  state: z.enum(['online', 'offline']),
  at: TimeSchema.optional(),
})
export type Presence = z.infer<typeof PresenceSchema>

/** Retained; the phone's own switches as the user set them on the device. */
export const StatusSchema = z.strictObject({
  cloudService: z.boolean(),
  findDevice: z.boolean(),
  /** B2: the phone's cloud-backup switch (absent from phones that have none). */
  backup: z.boolean().optional(),
  at: TimeSchema,
})
export type Status = z.infer<typeof StatusSchema>

/**
 * F1: where a phone's position comes from and whether it has one, as its
 * control socket answers `phone status` (the agent's own view, never sent to
 * the cloud): a route (the built-in one, or a GPX track) walked at a speed, a
 * fixed point, or gpsd with its connection and its last fix.
 */
export const LocationStatusSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('route'),
    /** The GPX file walked; null: the built-in demo route. */
    gpx: z.string().nullable(),
    /** m/s */
    speed: z.number().positive(),
  }),
  z.strictObject({ kind: z.literal('fixed'), lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) }),
  z.strictObject({
    kind: z.literal('gpsd'),
    host: z.string(),
    port: z.number().int().min(1).max(65_535),
    /** watching: connected; waiting: disconnected, retry number `attempt` is due in `retryInMs`. */
    state: z.enum(['connecting', 'watching', 'waiting', 'stopped']),
    /** 0 unless waiting. */
    retryInMs: z.number().nonnegative(),
    attempt: z.number().int().nonnegative(),
    /** gpsd said the receiver lost its fix (mode 0 or 1) and has not had one since. */
    lost: z.boolean(),
    /** The last fix: its age on the phone's clock and its accuracy (m); null before the first. */
    fix: z.strictObject({ ageMs: z.number(), accuracy: z.number().nonnegative() }).nullable(),
    /** A fix older than this is no fix: no heartbeat is sent. */
    maxAgeMs: z.number().nonnegative(),
  }),
])
export type LocationStatus = z.infer<typeof LocationStatusSchema>

const Text = (max: number) => z.string().min(1).max(max)

/** F2: what each remote command carries. */
export const CommandArgsSchemas = {
  locate: z.strictObject({}),
  ring: z.strictObject({ seconds: z.number().int().min(1).max(600) }),
  lock: z.strictObject({ message: Text(200), phone: Text(40) }),
  'lost-mode': z.union([
    z.strictObject({ on: z.literal(true), message: Text(200), phone: Text(40) }),
    z.strictObject({ on: z.literal(false) }),
  ]),
  wipe: z.strictObject({
    /** Also erase external storage (the "sdcard" area). */
    eraseSdcard: z.boolean(),
    /** Keep the Find Device pairing (factory-reset protection) after the wipe. */
    keepFindDevice: z.boolean(),
  }),
}
export type CommandType = keyof typeof CommandArgsSchemas
export const COMMAND_TYPES = Object.keys(CommandArgsSchemas) as CommandType[]
export type CommandArgs<T extends CommandType> = z.infer<(typeof CommandArgsSchemas)[T]>

const commandFields = {
  /** A UUID chosen by the console. */
  id: z.uuid(),
  device: DeviceIdSchema,
  issuedAt: TimeSchema,
  expiresAt: TimeSchema,
  /** Increases with every command the owner issues to this device; a device never runs one at or below the last it saw. */
  seq: z.number().int().positive(),
}
function commandOf<T extends CommandType>(type: T) {
  return z.strictObject({ ...commandFields, type: z.literal(type), args: CommandArgsSchemas[type] })
}

function signedCommandOf<T extends CommandType>(type: T) {
  return commandOf(type).extend({ sig: z.base64() })
}

/** F2: a remote command, signed by the owner's Ed25519 key over every other field (see common/signing.ts). */
export const CommandSchema = z.discriminatedUnion('type', [
  signedCommandOf('locate'),
  signedCommandOf('ring'),
  signedCommandOf('lock'),
  signedCommandOf('lost-mode'),
  signedCommandOf('wipe'),
])
export type Command = z.infer<typeof CommandSchema>
export type UnsignedCommand = Command extends infer C ? (C extends Command ? Omit<C, 'sig'> : never) : never

export const CommandStateSchema = z.enum(['queued', 'delivered', 'executing', 'succeeded', 'failed', 'rejected', 'expired', 'cancelled'])
export type CommandState = z.infer<typeof CommandStateSchema>
export const FINAL_STATES: ReadonlySet<CommandState> = new Set(['succeeded', 'failed', 'rejected', 'expired', 'cancelled'])

/** F2: the device's receipt for one step of a command, signed with the device's own key. */
export const UnsignedResultSchema = z.strictObject({
  command: z.uuid(),
  device: DeviceIdSchema,
  state: z.enum(['delivered', 'executing', 'succeeded', 'failed', 'rejected']),
  at: TimeSchema,
  /** Why it failed or was rejected, in words. */
  reason: z.string().max(500).optional(),
  /**
   * What the command produced: a position for locate (its fix's `at`, a time as every time here is, bounded like them:
   * the web console shows it as a date), counts for wipe.
   */
  data: z
    .object({ at: TimeSchema.optional() })
    .catchall(z.union([z.number(), z.string(), z.boolean()]))
    .optional(),
})
export type UnsignedResult = z.infer<typeof UnsignedResultSchema>
export const ResultSchema = UnsignedResultSchema.extend({ sig: z.base64() })
export type Result = z.infer<typeof ResultSchema>
/** X2: one user-behaviour event the phone's framework recorded while the cloud service was on. */
export const BehaviourEventSchema = z.strictObject({
  /** Increases per recorded event over the phone's life, never back (CloudTime's logSeq); the cloud stores each `(device, seq)` once. */
  seq: z.number().int().nonnegative(),
  at: TimeSchema,
  type: z.enum(['app-opened', 'screen-on', 'screen-off', 'setting-changed']),
  /** The app opened, or the setting and its new value. */
  detail: z.string().max(200),
})
export type BehaviourEvent = z.infer<typeof BehaviourEventSchema>

/** X2: a batch of behaviour events, oldest first; only ever sent while the cloud service is on. */
export const LogBatchSchema = z.strictObject({
  events: z.array(BehaviourEventSchema).min(1).max(500),
})
export type LogBatch = z.infer<typeof LogBatchSchema>

/**
 * The cloud's clock, sent to a phone when it subscribes and after every jump
 * of simulated time: the phone stamps with the cloud's time from then on.
 */
export const CloudTimeSchema = z.strictObject({
  /** The cloud's time when it sent this, ms since the epoch. */
  now: TimeSchema,
  /**
   * F1, in the answer to the phone's subscription only (absent after a jump): the highest heartbeat seq the cloud
   * holds of the device (null: none). The phone numbers its heartbeats past it, and sends none on this connection
   * before it has heard it: a phone whose settings came back from an old backup never reuses a seq.
   */
  heartbeatSeq: z.number().int().nonnegative().nullable().optional(),
  /**
   * X2, in the answer to the phone's subscription only: the highest behaviour-log seq the cloud holds of the device
   * (null: none). The phone numbers its events past it and uploads none on this connection before it has heard it: a
   * phone whose behaviour log came back from an older copy never reuses a seq.
   */
  logSeq: z.number().int().nonnegative().nullable().optional(),
})
export type CloudTime = z.infer<typeof CloudTimeSchema>

/**
 * M1: the broker cleared what it retains of the phone (its presence and status: its account was purged, the phone
 * stays registered), sent to a phone connected then, after the clearing: the phone says both again, in its own words.
 */
export const RetainedClearedSchema = z.strictObject({
  /** The cloud's time of the clearing. */
  at: TimeSchema,
})
export type RetainedCleared = z.infer<typeof RetainedClearedSchema>

export type Direction = 'device→cloud' | 'cloud→device'

function topic<S extends z.ZodType>(direction: Direction, qos: 0 | 1, retain: boolean, schema: S) {
  return { direction, qos, retain, schema }
}

/** Every topic, keyed by its last level, with direction, QoS, retain and schema. */
export const TOPICS = {
  heartbeat: topic('device→cloud', 1, false, HeartbeatSchema),
  presence: topic('device→cloud', 1, true, PresenceSchema),
  status: topic('device→cloud', 1, true, StatusSchema),
  cmd: topic('cloud→device', 1, false, CommandSchema),
  result: topic('device→cloud', 1, false, ResultSchema),
  logs: topic('device→cloud', 1, false, LogBatchSchema),
  /** B1: the cloud's backup plan for the phone. */
  plan: topic('cloud→device', 1, false, BackupPlanSchema),
  /** The cloud's time (one clock for the whole system). */
  time: topic('cloud→device', 1, false, CloudTimeSchema),
  /** M1: the broker cleared the phone's retained presence and status. */
  cleared: topic('cloud→device', 1, false, RetainedClearedSchema),
}

/**
 * The cloud's word to the console that an account's data changed (items, recycle bin, backups, drive, quota, retention,
 * the service's retirement): `fp/v1/accounts/<account segment>/changed`, with the segment `*` for every account at once
 * (the cloud clock moved, `clock` true; the retirement plan changed). Three levels under fp/v1/, so no
 * device topic (fp/v1/<device>/<kind>) is ever one of these: a device may neither subscribe to nor publish them (its ACL
 * admits its own two-level topics only); only the console, the owner of every account, hears them. The broker gathers
 * an account's changes for a moment and says them once.
 */
export const AccountChangedSchema = z.strictObject({
  /** The account, by its name; null: every account. */
  account: z.string().nullable(),
  /** The cloud clock moved: everything that counts time (days left, retention, phases) moved with it. */
  clock: z.boolean(),
})
export type AccountChanged = z.infer<typeof AccountChangedSchema>

/** The console's subscription to every account's changes. */
export const ACCOUNT_CHANGES_FILTER = `${TOPIC_ROOT}/accounts/+/changed`

/** Where the change of `account` (null: every account) is said. `*` is no account's segment (accountSegment). */
export function accountChangedTopic(account: string | null): string {
  return `${TOPIC_ROOT}/accounts/${account === null ? '*' : accountSegment(account)}/changed`
}

/** True for a topic accountChangedTopic makes. */
export function isAccountChangedTopic(topic: string): boolean {
  return /^fp\/v1\/accounts\/[^/+#]+\/changed$/.test(topic)
}

/**
 * The cloud's word to the console that a command's state changed (F2): submitted (queued, or rejected at once), cancelled,
 * expired, or a step its device reported (delivered, executing, a final state): `fp/v1/commands/<device>/changed`. A
 * command queued for a phone that is offline, or cancelled before it was sent, goes out on no device topic: this is how
 * a console watching the broker (the web console's live feed) learns of it. Only ids and the state: no arguments, no
 * envelope, no receipt (the console reads those from the console API). Like the account changes, three levels under
 * fp/v1/, so no device topic is ever one of these and a device may neither subscribe to nor publish them; said only
 * while a console listens.
 */
export const CommandChangedSchema = z.strictObject({
  device: DeviceIdSchema,
  /** The command's id. */
  command: z.uuid(),
  state: CommandStateSchema,
})
export type CommandChanged = z.infer<typeof CommandChangedSchema>

/** The console's subscription to every device's command changes. */
export const COMMAND_CHANGES_FILTER = `${TOPIC_ROOT}/commands/+/changed`

/** Where a change of one of `device`'s commands is said (a device id is always one topic level, DeviceIdSchema). */
export function commandChangedTopic(device: DeviceId): string {
  return `${TOPIC_ROOT}/commands/${device}/changed`
}

/** True for a topic commandChangedTopic makes. */
export function isCommandChangedTopic(topic: string): boolean {
  return /^fp\/v1\/commands\/[^/+#]+\/changed$/.test(topic)
}

export type TopicKind = keyof typeof TOPICS
/** The kinds a device publishes (direction device→cloud); a test keeps this in step with TOPICS. */
export type DeviceKind = 'heartbeat' | 'presence' | 'status' | 'result' | 'logs'
export type PayloadOf<K extends TopicKind> = z.infer<(typeof TOPICS)[K]['schema']>

/** Topic kinds a device may publish on under its own id. */
export const DEVICE_PUBLISH_KINDS: ReadonlySet<string> = new Set(
  (Object.keys(TOPICS) as TopicKind[]).filter((k) => TOPICS[k].direction === 'device→cloud'),
)

export function topicFor(deviceId: DeviceId, kind: TopicKind): string {
  return `${TOPIC_ROOT}/${deviceId}/${kind}`
}

/** Splits `fp/v1/<device>/<kind>`; anything else (including wildcards) is null. */
export function parseTopic(topic: string): { deviceId: string; kind: string } | null {
  const m = /^fp\/v1\/([^/+#]+)\/([^/+#]+)$/.exec(topic)
  return m ? { deviceId: m[1] as string, kind: m[2] as string } : null
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

/** Each schema's compiled check (common/fast-check.ts), or null where zod alone checks it; built on first use. */
const fastChecks = new WeakMap<z.ZodType, Check | null>()

function fastCheck(schema: z.ZodType): Check | null {
  let check = fastChecks.get(schema)
  if (check === undefined) {
    check = compileCheck(schema) ?? null
    fastChecks.set(schema, check)
  }
  return check
}

/**
 * Parses a JSON payload and checks it against `schema`; never throws. A payload the schema's compiled check accepts is
 * returned as parsed (it is what zod would return); anything else goes through zod, which words the refusal.
 */
export function decodeJson<T>(schema: z.ZodType<T>, payload: Buffer | string): Decoded<T> {
  const data = parseJson(payload)
  return data === NOT_JSON ? notJson() : decodeValue(schema, data)
}

/** What parseJson answers for a payload that is not JSON (no JSON text parses to a symbol). */
const NOT_JSON: unique symbol = Symbol('not JSON')

/** The value of a JSON payload, or NOT_JSON; never throws. */
function parseJson(payload: Buffer | string): unknown {
  try {
    return JSON.parse(payload.toString()) as unknown
  } catch {
    return NOT_JSON
  }
}

const notJson = (): { ok: false; reason: string } => ({ ok: false, reason: 'payload is not valid JSON' })

/** Checks a value already parsed from JSON (a request body) against `schema`, as decodeJson does; never throws. */
export function decodeValue<T>(schema: z.ZodType<T>, data: unknown): Decoded<T> {
  if (fastCheck(schema)?.(data)) return { ok: true, value: data as T }
  const result = schema.safeParse(data)
  if (result.success) return { ok: true, value: result.data }
  return { ok: false, reason: z.prettifyError(result.error).replace(/\n+/g, '; ') }
}

/**
 * The decode of one topic kind's payloads, as decodePayload, with the schema's compiled check looked up on its first use
 * instead of on every call: for the payloads decoded on every message (issue 14: the heartbeat).
 */
export function payloadDecoder<K extends TopicKind>(kind: K): (payload: Buffer | string) => Decoded<PayloadOf<K>> {
  // As in decodePayload: a generic key loses the key-to-schema correlation.
  const schema = TOPICS[kind].schema as unknown as z.ZodType<PayloadOf<K>>
  let check: Check | null | undefined
  return (payload) => {
    const data = parseJson(payload)
    if (data === NOT_JSON) return notJson()
    if (check === undefined) check = fastCheck(schema)
    return check?.(data) ? { ok: true, value: data as PayloadOf<K> } : decodeValue(schema, data)
  }
}

/** Decodes the payload of a contract topic kind. */
export function decodePayload<K extends TopicKind>(kind: K, payload: Buffer | string): Decoded<PayloadOf<K>> {
  // Indexing TOPICS with a generic key loses the key-to-schema correlation that PayloadOf<K> restores.
  return decodeJson(TOPICS[kind].schema as unknown as z.ZodType<PayloadOf<K>>, payload)
}

/**
 * Serialises a payload after checking it, so a bug on our side never goes on the wire. The compiled check (as in
 * decodeJson) passes a sound value as it is; zod checks the rest and says what is wrong (issue 12: zod's parse of
 * every presence, status and heartbeat was a tenth of a fleet phone's connect).
 */
export function encodePayload<K extends TopicKind>(kind: K, value: PayloadOf<K>): string {
  // As in decodePayload: a generic key loses the key-to-schema correlation.
  return JSON.stringify(checked(TOPICS[kind].schema as unknown as z.ZodType<PayloadOf<K>>, value))
}

/** `value` when the schema's compiled check accepts it, else zod's parse of it (which throws, saying what is wrong). */
export function checked<T>(schema: z.ZodType<T>, value: T): T {
  const check = fastCheck(schema)
  return check !== null && check(value) ? value : schema.parse(value)
}
