/**
 * Scenario files for `fakephone fleet run --scenario` (YAML or JSON,
 * documented in docs/SCENARIOS.md): the stages of a run (ramp-up, steady,
 * ramp-down), groups of phones with their movement, heartbeat pace, battery,
 * outages, the user's switches over time and how they answer commands, and
 * what the fleet itself asks of its phones as a console would. Every error is
 * reported with its path (`groups.0.movement.centre: ...`), all at once.
 */
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { z } from 'zod'
import { readGpx, type Point } from '../agent/location.js'
import { parseDuration } from '../common/clock.js'
import { lineAndColumn } from '../common/config.js'
import { FakephoneError } from '../common/errors.js'
import { plural } from '../common/plural.js'
import { similarName } from '../common/similar-name.js'

/** A duration: milliseconds, or text such as 500ms, 30s, 5m, 2h. */
const Duration = z
  .union([z.number().int().nonnegative(), z.string()], {
    // Not zod's "Invalid input": a steady stage without its `for`, or a `for: true`, says what it takes.
    error: (issue) => (issue.input === undefined ? 'required: a duration, e.g. 30s' : 'not a duration (use e.g. 500ms, 30s, 5m)'),
  })
  .transform((value, ctx) => {
    if (typeof value === 'number') return value
    try {
      return parseDuration(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  })
const PositiveDuration = Duration.refine((ms) => ms > 0, 'must be above 0')
const Share = z.number().min(0).max(1)
const LatLon = z.tuple([z.number().min(-90).max(90), z.number().min(-180).max(180)])

const Stage = z.discriminatedUnion('kind', [
  /** Phones started per second until every phone is up. */
  z.strictObject({ kind: z.literal('ramp-up'), rate: z.number().positive() }),
  z.strictObject({ kind: z.literal('steady'), for: Duration }),
  /** Phones stopped per second until none is left. */
  z.strictObject({ kind: z.literal('ramp-down'), rate: z.number().positive() }),
])

const Movement = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('random-walk'),
    centre: LatLon,
    radiusM: z.number().positive().default(500),
    speedMps: z.number().positive().default(1.4),
    /** A new heading is drawn this often. */
    stepEvery: PositiveDuration.default(10_000),
  }),
  z.strictObject({
    type: z.literal('gpx'),
    /** Relative to the scenario file. */
    file: z.string().min(1),
    speedMps: z.number().positive().default(1.4),
    /** Each phone walks the track shifted by up to this many metres, starting at its own point along it. */
    offsetM: z.number().nonnegative().default(50),
  }),
  z.strictObject({ type: z.literal('stationary'), at: LatLon, spreadM: z.number().nonnegative().default(100) }),
])

/** S1: a category's switch in the app-data-sync list; B1, B2: the phone's cloud-backup switch. */
const SwitchName = z.enum([
  'findDevice',
  'cloudService',
  'networkPermission',
  'sync.photos',
  'sync.contacts',
  'sync.notes',
  'sync.recordings',
  'backup',
])

/** How many of a kind of item each phone is seeded with (agent/phone-data/seed.ts): 10,000 of one kind at most. */
const ItemCount = z.number().int().min(0).max(10_000).default(0)
const On = z.boolean().default(true)

/** Shares within this of 1 add up to 1 (0.1 + 0.2 is not 0.3 in binary). */
const SUM_SLACK = 1e-9

/**
 * How a group's phones answer commands. An absent `succeed` takes what `fail` and `ignore` leave (`{fail: 0.2}` is
 * succeed 0.8), as a user reads it; an absent `fail` or `ignore` is 0. Shares given in full are kept as given, so a
 * scenario that names all three plans the same answers for a seed as before.
 */
const Answer = z
  .strictObject({
    succeed: Share.optional(),
    fail: Share.default(0),
    /** The phone drops the command: no receipt at all. */
    ignore: Share.default(0),
  })
  .transform((a, ctx) => {
    const rest = 1 - a.fail - a.ignore
    if (a.succeed === undefined && rest < -SUM_SLACK) {
      ctx.addIssue({
        code: 'custom',
        message: `fail (${String(a.fail)}) + ignore (${String(a.ignore)}) is above 1: no share is left to succeed`,
      })
      return z.NEVER
    }
    const succeed = a.succeed ?? Math.max(0, rest)
    if (Math.abs(succeed - rest) >= SUM_SLACK) {
      ctx.addIssue({ code: 'custom', message: 'succeed + fail + ignore must add up to 1 (leave succeed out and it takes the rest)' })
      return z.NEVER
    }
    return { succeed, fail: a.fail, ignore: a.ignore }
  })

const Group = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]{1,32}$/, '1-32 of a-z, 0-9 and "-"'),
  /** This group's part of the fleet, as a weight against the other groups' shares. */
  share: z.number().positive().default(1),
  movement: Movement.default({ type: 'stationary', at: [55.9486, -3.1999], spreadM: 100 }),
  heartbeat: z.strictObject({ every: PositiveDuration.default(30_000), jitter: z.number().min(0).max(0.9).default(0.1) }).default({
    every: 30_000,
    jitter: 0.1,
  }),
  battery: z
    .strictObject({
      /** The level each phone starts at is drawn from [min, max]. */
      level: z
        .tuple([z.number().min(0).max(100), z.number().min(0).max(100)])
        .refine(([a, b]) => a <= b, 'the first level must not be above the second')
        .default([60, 100]),
      drainPerHour: z.number().nonnegative().default(4),
      chargePerHour: z.number().positive().default(40),
      plugAt: z.number().min(0).max(100).default(15),
    })
    .default({ level: [60, 100], drainPerHour: 4, chargePerHour: 40, plugAt: 15 }),
  /** Each phone loses its connection for `for`, on average every `every` (a Poisson process per phone). */
  outages: z.strictObject({ every: PositiveDuration, for: PositiveDuration }).optional(),
  /** Items each phone holds before it starts (S1-S4), the same files for the same seed on the same day: its phones sync. */
  data: z.strictObject({ photos: ItemCount, contacts: ItemCount, notes: ItemCount, recordings: ItemCount }).optional(),
  /** The phones' sync switches (S1) and backup switch (B1) at their first start: its phones sync. Absent: all on, as a new phone's. */
  sync: z.strictObject({ photos: On, contacts: On, notes: On, recordings: On, backup: On }).optional(),
  /** At `at` after the run starts, `share` of the group's phones (the same phones for every entry of one switch) set it. */
  switches: z.array(z.strictObject({ at: Duration, name: SwitchName, on: z.boolean(), share: Share.default(1) })).default([]),
  commands: z
    .strictObject({
      answer: Answer.default({ succeed: 1, fail: 0, ignore: 0 }),
      /** How long a phone takes before it runs a command, drawn uniformly from [min, max]. */
      delay: z
        .strictObject({ min: Duration.default(0), max: Duration.default(0) })
        .refine((d) => d.min <= d.max, 'min must not be above max')
        .default({ min: 0, max: 0 }),
    })
    .default({ answer: { succeed: 1, fail: 0, ignore: 0 }, delay: { min: 0, max: 0 } }),
})

export const ScenarioSchema = z.strictObject({
  name: z.string().default('fleet'),
  stages: z.array(Stage).default([]),
  groups: z
    .array(Group)
    .min(1)
    .default([Group.parse({ name: 'phones' })]),
  /** What the fleet asks of its phones as a console would (needs the console token: in-process broker or --console-token). */
  console: z
    .strictObject({
      /** Each phone gets a command on average this often. */
      commands: z
        .strictObject({
          every: PositiveDuration,
          types: z
            .array(z.enum(['locate', 'ring']))
            .min(1)
            .default(['locate']),
        })
        .optional(),
      /** Each phone gets a push notification on average this often. */
      notifications: z.strictObject({ every: PositiveDuration }).optional(),
    })
    .default({}),
})

export type Scenario = z.infer<typeof ScenarioSchema>
export type ScenarioGroup = Scenario['groups'][number]
export type MovementSpec = ScenarioGroup['movement']
/** What a syncing group's phones hold and switch on at their first start (syncSetup). */
export interface SyncSetup {
  data: NonNullable<ScenarioGroup['data']>
  sync: NonNullable<ScenarioGroup['sync']>
}

const NO_DATA: SyncSetup['data'] = { photos: 0, contacts: 0, notes: 0, recordings: 0 }
const ALL_ON: SyncSetup['sync'] = { photos: true, contacts: true, notes: true, recordings: true, backup: true }

/**
 * A group's phones sync (they get the cloud's HTTP side: S1, B1) when it has `data`, `sync`, or a switch of a sync
 * category or of backup; null otherwise: its phones are as before, with no cloud transfers and nothing more to hold.
 */
export function syncSetup(g: ScenarioGroup): SyncSetup | null {
  const switched = g.switches.some((s) => s.name === 'backup' || s.name.startsWith('sync.'))
  if (!g.data && !g.sync && !switched) return null
  return { data: g.data ?? NO_DATA, sync: g.sync ?? ALL_ON }
}

/** The paths of the groups whose phones sync (`groups.1 (name)`), for a refusal that names them. */
export const syncingGroups = (scenario: Scenario): string[] =>
  scenario.groups.flatMap((g, i) => (syncSetup(g) ? [`groups.${i} (${g.name})`] : []))

/** A scenario with its GPX tracks read: what the planner needs. */
export interface LoadedScenario {
  scenario: Scenario
  /** Track points per group index (gpx movement only). */
  tracks: Map<number, Point[]>
  /** What the check let through but the user most likely did not mean, by path (`fleet run` prints them on stderr). */
  warnings: string[]
}

export class ScenarioError extends FakephoneError {
  constructor(
    readonly issues: string[],
    source: string,
  ) {
    super('SCENARIO', `${source}: ${plural(issues.length, 'error')}\n  ${issues.join('\n  ')}`)
  }
}

/** The keys whose numbers are durations: `at` of a switch too (a stationary group's `at` is a [lat, lon], not a number). */
const DURATION_KEYS = new Set(['every', 'for', 'at', 'min', 'max', 'stepEvery'])

/**
 * Durations given as bare numbers under a second: a number is milliseconds, so `heartbeat: { every: 30 }` is a
 * heartbeat every 30 ms (a flood), most likely meant as 30 s. Said, not refused: a JSON scenario may mean it (and says
 * so with "30ms").
 */
function bareMillisecondWarnings(value: unknown, path: string[] = []): string[] {
  if (typeof value !== 'object' || value === null) return []
  return Object.entries(value).flatMap(([key, v]) => {
    const at = [...path, key]
    if (typeof v === 'number' && v > 0 && v < 1000 && DURATION_KEYS.has(key) && !Array.isArray(value))
      return [`${at.join('.')}: ${v} is ${v} ms (a bare number is milliseconds): write ${v}s for seconds, or "${v}ms" if you mean it`]
    return bareMillisecondWarnings(v, at)
  })
}

const pathOf = (path: readonly PropertyKey[]): string => (path.length === 0 ? '(top)' : path.map(String).join('.'))

/** The schema under its default, optional and transform wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType
    else return s
  }
}

/**
 * The keys a scenario may hold at `path`: zod reports unknown keys only on an object it walked into, so each step is an
 * object, a list or a choice of objects (a movement's or a stage's kinds: their keys together).
 */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const s = unwrap(schema)
  if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).flatMap((option) => keysAt(option, path))
  if (s instanceof z.ZodArray) return keysAt(s.element as z.ZodType, path.slice(1))
  const shape = (s as z.ZodObject).shape as Record<string, z.ZodType>
  return path.length === 0 ? Object.keys(shape) : keysAt(shape[String(path[0])] as z.ZodType, path.slice(1))
}

/** One line per problem: an unknown key (a typo, or a part scenarios do not have) with the key it most likely meant. */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code !== 'unrecognized_keys') return [`${pathOf(issue.path)}: ${issue.message}`]
  const known = [...new Set(keysAt(ScenarioSchema, issue.path))]
  return issue.keys.map((key) => {
    const meant = similarName(key, known)
    const hint = meant ? `did you mean "${meant}"?` : `it takes ${known.join(', ')}`
    return `${pathOf([...issue.path, key])}: unknown key; ${hint}`
  })
}

/** The entries of a list in the scenario as written (`groups`, `stages`), each an object or {}: nothing when it is not a list. */
function entriesOf(value: unknown, key: string): Record<string, unknown>[] {
  const list = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined
  if (!Array.isArray(list)) return []
  return list.map((e: unknown) => (typeof e === 'object' && e !== null ? (e as Record<string, unknown>) : {}))
}

/**
 * What the schema cannot see, checked on the scenario as written so that these come with the schema's own problems, all
 * at once (a file with a bad duration and a duplicate group name says both, not the second after the first is fixed):
 * GPX tracks that cannot be read, group names given twice, the ramps' order. Entries the schema refuses are skipped.
 */
function structureOf(value: unknown, baseDir: string): { issues: string[]; tracks: Map<number, Point[]> } {
  const issues: string[] = []
  const tracks = new Map<number, Point[]>()
  const groups = entriesOf(value, 'groups')
  groups.forEach((g, i) => {
    const movement = g['movement'] as { type?: unknown; file?: unknown } | null | undefined
    if (movement?.type !== 'gpx' || typeof movement.file !== 'string') return
    try {
      tracks.set(i, readGpx(resolve(baseDir, movement.file)))
    } catch (err) {
      issues.push(`groups.${i}.movement.file: ${(err as Error).message}`)
    }
  })
  const names = groups.map((g) => g['name'])
  names.forEach(
    (n, i) =>
      typeof n === 'string' && names.indexOf(n) !== i && issues.push(`groups.${i}.name: "${n}" is already the name of another group`),
  )
  const kinds = entriesOf(value, 'stages').map((s) => s['kind'])
  if (kinds.filter((k) => k === 'ramp-up').length > 1 || kinds.filter((k) => k === 'ramp-down').length > 1)
    issues.push('stages: at most one ramp-up and one ramp-down')
  if (kinds.includes('ramp-down') && kinds[kinds.length - 1] !== 'ramp-down') issues.push('stages: the ramp-down comes last')
  if (kinds.includes('ramp-up') && kinds[0] !== 'ramp-up') issues.push('stages: the ramp-up comes first')
  return { issues, tracks }
}

/** Validates a parsed scenario; every problem is named by its path, all at once. `baseDir` is where GPX paths are relative to. */
export function checkScenario(value: unknown, source: string, baseDir: string): LoadedScenario {
  const parsed = ScenarioSchema.safeParse(value ?? {})
  const { issues, tracks } = structureOf(value, baseDir)
  if (!parsed.success) throw new ScenarioError([...parsed.error.issues.flatMap(describeIssue), ...issues], source)
  if (issues.length > 0) throw new ScenarioError(issues, source)
  return { scenario: parsed.data, tracks, warnings: bareMillisecondWarnings(value) }
}

/** Reads a scenario file: JSON when it ends in .json, YAML otherwise. */
export async function loadScenario(file: string): Promise<LoadedScenario> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ScenarioError([`cannot read it: ${(err as Error).message}`], file)
  }
  let value: unknown
  const json = file.endsWith('.json')
  try {
    // yaml is loaded on first use: a tenth of a second of CPU that every CLI start-up paid.
    value = json ? JSON.parse(text) : (await import('yaml')).parse(text)
  } catch (err) {
    // YAML's message has the line and column (and the lines around); JSON's only a position, said as an editor would.
    const why = (err as Error).message
    throw new ScenarioError([json ? `not valid JSON${lineAndColumn(text, why)} (${why})` : `not valid YAML: ${why}`], file)
  }
  return checkScenario(value, file, dirname(file))
}
