/**
 * Daemon configuration in three layers, each overriding the one before: a
 * JSON file, environment variables, command-line flags. The merged result is
 * checked by one zod schema, and every problem is reported at once, named by
 * where its value came from (the file and key, the variable, or the flag).
 *
 * Environment names follow one rule from the schema's keys:
 * `FAKEPHONE_<KIND>_<KEY>`, camelCase split into words and nested keys joined
 * by `_`: `mqttPort` → `FAKEPHONE_BROKER_MQTT_PORT`, `rateLimit.perSecond` →
 * `FAKEPHONE_BROKER_RATE_LIMIT_PER_SECOND`. A value is text for a text setting;
 * for any other it is read as JSON when it parses (`1883`, `true`), else as text.
 */
import type { Stats } from 'node:fs'
import { readFile, readlink, stat } from 'node:fs/promises'
import { z } from 'zod'
import { parseDuration } from './clock.js'
import { FakephoneError } from './errors.js'
import { similarName } from './similar-name.js'
import { forTerminal } from './terminal-text.js'

export type Env = Readonly<Record<string, string | undefined>>

export interface ConfigSpec<S extends z.ZodObject> {
  /** `broker` or `agent`: names the environment variables and the messages. */
  kind: string
  schema: S
}

export interface ConfigSources {
  /** A JSON file holding one object: its path, or the file as read already (readConfigFile). */
  file?: string | ConfigFile
  env?: Env
  flags?: {
    /** Values given on the command line, by dotted key (`rateLimit.burst`); each key has a name below. */
    values: Readonly<Record<string, unknown>>
    /** The flag of each setting that has one, by dotted key (`mqttPort` → `--mqtt-port`). */
    names: Readonly<Record<string, string>>
  }
}

/** A config that cannot be used; `problems` holds one line per problem, each naming where it is. */
export class ConfigError extends FakephoneError {
  constructor(
    readonly kind: string,
    readonly problems: string[],
    message = `invalid ${kind} config (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n` +
      `${problems.map((p) => `  ${p}`).join('\n')}`,
  ) {
    super('ECONFIG', message)
  }
}

/**
 * A config file that cannot be read as a config (no such file, not JSON -- said at its line and column --, not one
 * object): its one line alone, no list heading it (it hides every setting), so `config check`, whether or not it knows
 * the file's kind yet, and a daemon's start (`fakephone agent`, `fakephone broker`) say it in the same words.
 */
export function unreadableConfig(kind: string, problem: string): ConfigError {
  // One line: a line break in the path the user typed is shown (\x0A), never a second line.
  return new ConfigError(kind, [problem], forTerminal(problem))
}

/** A TCP port, 0 letting the OS choose. */
export const PortSchema = z.number().int().min(0).max(65535)

/**
 * The broker URL schemes a phone connects with: mqtt.js's transports under Node (its connect/index.js table), MQTT over
 * TCP (mqtt, tcp), over TLS (mqtts, tls, ssl) or over WebSocket (ws, wss). mqtt.js takes any other scheme for plain MQTT
 * over TCP without a word, so every broker URL is checked against this one list first: the agent's config, `fleet run
 * --broker`, a cloud-moved notice.
 */
const MQTT_SCHEME_NAMES = ['mqtt', 'mqtts', 'tcp', 'tls', 'ssl', 'ws', 'wss']
/** As `new URL(...).protocol` says them: `mqtt:`. */
export const MQTT_SCHEMES: readonly string[] = MQTT_SCHEME_NAMES.map((name) => `${name}:`)
/** A scheme of the list without its colon, as zod's `z.url({ protocol })` checks it. */
export const MQTT_SCHEME_PATTERN = new RegExp(`^(${MQTT_SCHEME_NAMES.join('|')})$`)
/** The schemes as an error names them: "mqtt, mqtts, tcp, tls, ssl, ws or wss". */
export const MQTT_SCHEMES_TEXT = `${MQTT_SCHEME_NAMES.slice(0, -1).join(', ')} or ${MQTT_SCHEME_NAMES.at(-1)}`

/** pino's levels. */
export const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

/** Bytes, or text such as `512MB`, `5GB`, `1.5TB` (binary units); the result is bytes. */
export const SizeSchema = z.unknown().transform((value, ctx): number => {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)$/i.exec(value.trim()) : null
  if (m) return Math.round(Number(m[1]) * (SIZE_UNITS[(m[2] as string).toUpperCase()] as number))
  ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(value)} (use bytes, or e.g. 500MB, 5GB)` })
  return z.NEVER
})

/** Milliseconds, or text such as `500ms`, `30s`, `5m`; the result is milliseconds. */
export const DurationSchema = z.unknown().transform((value, ctx): number => {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value
  if (typeof value === 'string') {
    try {
      return parseDuration(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  }
  ctx.addIssue({ code: 'custom', message: 'expected a duration: whole milliseconds, or text such as 30s or 5m' })
  return z.NEVER
})

interface Leaf {
  path: string[]
  /** Environment values are taken as text, never as JSON. */
  text: boolean
  /** A DurationSchema setting: a bare number in it is milliseconds. */
  duration: boolean
}

/** The schema itself, under any default, prefault or optional wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType
  return s
}

/** Every setting of a schema: objects are walked into, anything else is a leaf. */
export function settings(schema: z.ZodType, path: string[] = []): Leaf[] {
  const s = unwrap(schema)
  if (s instanceof z.ZodObject)
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([key, inner]) => settings(inner, [...path, key]))
  const input = s instanceof z.ZodPipe ? unwrap(s.in as z.ZodType) : s
  return [
    { path, text: input instanceof z.ZodString || input instanceof z.ZodEnum, duration: s === DurationSchema || input === DurationSchema },
  ]
}

/** The keys of the object setting at `path` (the top level for []). */
function keysAt(schema: z.ZodType, path: readonly string[]): string[] {
  // zod reports unknown keys only on an object it walked into, so every step of `path` is an object here.
  const s = path.reduce((node, key) => unwrap((unwrap(node) as z.ZodObject).shape[key] as z.ZodType), schema)
  return Object.keys((unwrap(s) as z.ZodObject).shape)
}

/** The one rule from a key path to its environment variable. */
export function envName(kind: string, path: readonly string[]): string {
  return ['fakephone', kind, ...path]
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2'))
    .join('_')
    .toUpperCase()
}

type Plain = Record<string, unknown>
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v)

/** One source of values, with the name of each value it set, by dotted key. */
export interface Layer {
  values: Plain
  origins: Map<string, string>
  /** Flags: a duration was given with its unit (`--interval 100ms`), its value a number only once parsed. */
  parsed?: true
}

function setAt(target: Plain, path: readonly string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    if (!isPlain(node[key])) node[key] = {}
    node = node[key] as Plain
  }
  node[path[path.length - 1] as string] = value
}

/** Dotted key of every value in `values`, objects and what they hold. */
function allKeys(values: Plain, prefix = ''): string[] {
  return Object.entries(values).flatMap(([k, v]) => [`${prefix}${k}`, ...(isPlain(v) ? allKeys(v, `${prefix}${k}.`) : [])])
}

function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Plain, v) : v
  return out
}

/** Node's codes for a config path that is not a file, in words (the code follows them). */
const UNREADABLE: Readonly<Record<string, string>> = { ENOENT: 'no such file', EISDIR: 'a folder, not a file' }

/**
 * Where JSON.parse stopped, as an editor shows it (` at line 8, column 1`): Node 20 says only `at position 170`, and a
 * person who left a comma before a `}` in a file they wrote by hand counted characters to find it. Empty when the
 * message names no position. Config files and JSON scenarios (fleet/scenario.ts) say it alike.
 */
export function lineAndColumn(text: string, message: string): string {
  const at = /at position (\d+)/.exec(message)
  if (!at) return ''
  const before = text.slice(0, Number(at[1])).split('\n')
  return ` at line ${before.length}, column ${(before.at(-1) as string).length + 1}`
}

/** A pipe the shell made for `<(…)` (`/dev/fd/63`): its link names the pipe, `pipe:[…]`, not a path. */
async function anonymousPipe(file: string): Promise<boolean> {
  try {
    return /^pipe:\[\d+\]$/.test(await readlink(file))
  } catch {
    return false
  }
}

/**
 * Why a config path is no file to read, or null. A device (`--config /dev/zero`) never ends: read, it filled memory
 * until V8 refused the string, said `(undefined)`. A named pipe (mkfifo) with no writer held the start in its open, a
 * thread Node waits for, so SIGTERM did not stop it either. A pipe the shell made is read (`--config <(jq … broker.json)`);
 * a folder is left to the read, which says EISDIR.
 */
async function notAFile(file: string, stats: Stats): Promise<string | null> {
  if (stats.isFile() || stats.isDirectory()) return null
  if (stats.isFIFO()) return (await anonymousPipe(file)) ? null : 'a named pipe (FIFO), not a file: give the file itself, or <(cat FILE)'
  return stats.isCharacterDevice() ? 'a device, not a file' : 'not a regular file (a socket or a block device)'
}

/** The file's values, or the one problem that stops it from being read as a config. */
async function fileLayer(file: string): Promise<Layer | string> {
  let text: string
  try {
    const not = await notAFile(file, await stat(file))
    if (not !== null) return `${file}: cannot read it: ${not}`
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code as string
    const words = UNREADABLE[code]
    return `${file}: cannot read it${words ? `: ${words}` : ''} (${code})`
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    // One line: JSON.parse quotes the start of the text, newlines and all. A YAML file is read as JSON too: say so.
    const why = (err as Error).message.replace(/\n/g, '\\n')
    const yaml = /\.ya?ml$/i.test(file) ? ': a config file is JSON (YAML is for scenarios)' : ''
    return `${file}: not valid JSON${lineAndColumn(text, why)} (${why})${yaml}`
  }
  if (!isPlain(data)) return `${file}: must hold one JSON object, {"key": value, ...}`
  return { values: data, origins: new Map(allKeys(data).map((key) => [key, `${file}: ${key}`])) }
}

/**
 * A config file read once: its values (or the one problem that stops it from being read as a config), for both
 * `config check`'s guess of its kind from its keys and the check itself. Read twice, a file that is a pipe
 * (`config check <(…)`) was empty the second time, and one rewritten in between was checked against the kind of the other.
 */
export interface ConfigFile {
  path: string
  read: Layer | string
}

export async function readConfigFile(path: string): Promise<ConfigFile> {
  return { path, read: await fileLayer(path) }
}

/** The top-level keys of a config file, or the one problem that stops it from being read as a config. */
export function configFileKeys(file: ConfigFile): string[] | string {
  return typeof file.read === 'string' ? file.read : Object.keys(file.read.values)
}

function envLayer(spec: ConfigSpec<z.ZodObject>, env: Env, problems: string[]): Layer {
  const layer: Layer = { values: {}, origins: new Map() }
  const known = new Map(settings(spec.schema).map((leaf) => [envName(spec.kind, leaf.path), leaf]))
  const prefix = envName(spec.kind, []) + '_'
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix) || raw === undefined) continue
    const leaf = known.get(name)
    if (!leaf) {
      const meant = similarName(
        name.slice(prefix.length),
        [...known.keys()].map((k) => k.slice(prefix.length)),
      )
      const hint = meant ? `did you mean ${prefix}${meant}?` : `\`fakephone config env --kind ${spec.kind}\` lists them`
      problems.push(`${name}: no such ${spec.kind} setting (${hint})`)
      continue
    }
    setAt(layer.values, leaf.path, leaf.text ? raw : parseJsonOr(raw))
    layer.origins.set(leaf.path.join('.'), name)
  }
  return layer
}

function flagLayer(flags: NonNullable<ConfigSources['flags']>): Layer {
  const layer: Layer = { values: {}, origins: new Map(), parsed: true }
  for (const [key, value] of Object.entries(flags.values)) {
    setAt(layer.values, key.split('.'), value)
    // Callers give a name for every flag they pass (see cli/config-flags.ts).
    layer.origins.set(key, flags.names[key] as string)
  }
  return layer
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The layer that set the value at dotted key `key`, the last one winning; none for a value nobody set. */
function originOf(layers: Layer[], key: string): string | undefined {
  return layers.reduce<string | undefined>((found, layer) => layer.origins.get(key) ?? found, undefined)
}

/** `sources.file`: the file's path. */
function describe(
  spec: ConfigSpec<z.ZodObject>,
  sources: ConfigSources & { file?: string },
  layers: Layer[],
  issue: z.core.$ZodIssue,
): string[] {
  const path = issue.path.map(String)
  if (issue.code === 'unrecognized_keys') {
    // Only the file can hold keys the schema does not know, and it names every key it holds. A typo is answered with
    // the setting it most likely meant; anything else with where every setting is listed.
    const known = keysAt(spec.schema, path)
    return issue.keys.map((key) => {
      const meant = similarName(key, known)
      const hint = meant ? `; did you mean "${meant}"?` : ` (\`fakephone config env --kind ${spec.kind}\` lists every setting)`
      return `${originOf(layers, [...path, key].join('.')) as string}: unknown setting${hint}`
    })
  }
  const dotted = path.join('.')
  const origin = originOf(layers, dotted)
  if (origin) return [`${origin}: ${issue.message}`]
  const ways = [sources.file ? `in ${sources.file}` : 'in the config file', `as ${envName(spec.kind, path)}`]
  const flag = sources.flags?.names[dotted]
  if (flag) ways.push(`with ${flag}`)
  return [`${dotted}: missing; set it ${ways.slice(0, -1).join(', ')} or ${ways[ways.length - 1] as string}`]
}

/** The value at `path` in the values of a layer that set it (so every step above it is an object). */
function valueAt(values: Plain, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Plain)[key], values)
}

/**
 * A duration given as a bare number under a second, each named where it was set: a bare number is milliseconds, and
 * `"interval": 30` meant as 30 seconds sent a heartbeat every 30 ms (F1), enough to fill a Pi's SD card. Said, not
 * refused: tests and fleets run short intervals on purpose. Flags never hold a bare number (they need a unit).
 */
function shortDurationNotes(spec: ConfigSpec<z.ZodObject>, layers: Layer[]): string[] {
  return settings(spec.schema)
    .filter((leaf) => leaf.duration)
    .flatMap((leaf) => {
      const dotted = leaf.path.join('.')
      const layer = [...layers].reverse().find((l) => l.origins.has(dotted))
      const n = layer === undefined || layer.parsed ? undefined : valueAt(layer.values, leaf.path)
      if (typeof n !== 'number' || n <= 0 || n >= 1000) return []
      return [`${originOf(layers, dotted) as string}: ${n} is in milliseconds (${n} ms); for ${n} seconds give ${n * 1000} (or "${n}s")`]
    })
}

/**
 * Reads the layers that are given, merges them (file < env < flags) and checks
 * the result; throws a ConfigError listing every problem.
 */
export async function loadConfig<S extends z.ZodObject>(spec: ConfigSpec<S>, sources: ConfigSources): Promise<z.output<S>> {
  return (await loadConfigWithOrigins(spec, sources)).config
}

/**
 * loadConfig's config, and where each setting's value came from as a problem names it (`FILE: key`, the variable, the
 * flag; undefined for a default): `config check` names the setting whose file cannot be used the same way. `notes` are
 * values that are valid but most likely not meant (a duration of 30 ms given as `30`): the daemon and `config check`
 * say them, and run.
 */
export async function loadConfigWithOrigins<S extends z.ZodObject>(
  spec: ConfigSpec<S>,
  sources: ConfigSources,
): Promise<{ config: z.output<S>; origin(key: string): string | undefined; notes: string[] }> {
  const problems: string[] = []
  const layers: Layer[] = []
  const file = typeof sources.file === 'string' ? await readConfigFile(sources.file) : sources.file
  if (file !== undefined) {
    // An unreadable file hides every setting in it: checking the rest would only add noise.
    if (typeof file.read === 'string') throw unreadableConfig(spec.kind, file.read)
    layers.push(file.read)
  }
  layers.push(envLayer(spec, sources.env ?? {}, problems))
  if (sources.flags) layers.push(flagLayer(sources.flags))
  const merged = layers.reduce<Plain>((acc, layer) => merge(acc, layer.values), {})
  const result = spec.schema.safeParse(merged)
  if (result.success && problems.length === 0)
    return { config: result.data, origin: (key) => originOf(layers, key), notes: shortDurationNotes(spec, layers) }
  const named = { ...sources, file: file?.path }
  if (!result.success) problems.push(...result.error.issues.flatMap((issue) => describe(spec, named, layers, issue)))
  throw new ConfigError(spec.kind, problems)
}
