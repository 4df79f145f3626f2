/**
 * `fakephone fleet report merge`: shard reports (or a `--workers` run's
 * worker reports) joined into one. Counts add up; percentiles are recomputed
 * from the merged latency histograms, so they are the ones one run with every
 * sample would report (fleet/histogram.ts: within 1 % of the exact sample).
 * Reports of different scenarios, seeds, fleet sizes or shard counts, or two
 * reports of one shard, are refused with the reason. A merge that lacks shards
 * says which (`missingShards`) and is not OK: their phones were never counted.
 */
import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { FakephoneError } from '../common/errors.js'
import { LatencyHistogram, type HistogramData } from './histogram.js'
import { reportOk, type FleetReport, type FleetScope, type Resources, type Transfers } from './report.js'

export class MergeError extends FakephoneError {
  constructor(message: string) {
    super('MERGE', message)
  }
}

const Count = z.number().nonnegative()
const Pct = z.object({ count: Count, p50: Count, p90: Count, p99: Count, max: Count })
const Histogram = z.object({ count: Count, max: Count, buckets: z.array(z.tuple([z.number().int(), Count])) })
const Counts = (keys: readonly string[]): z.ZodObject<Record<string, typeof Count>> =>
  z.object(Object.fromEntries(keys.map((k) => [k, Count])))

/** What a report must hold to be merged (written by `fleet run --report` of this version). */
const ReportSchema = z.object({
  scenario: z.string(),
  seed: z.string(),
  durationMs: Count,
  fleet: z.object({
    size: z.number().int().positive(),
    scenarioHash: z.string(),
    shards: z.object({ count: z.number().int().positive(), parts: z.array(z.number().int().positive()) }),
  }),
  phones: Counts(['target', 'lost', 'started', 'stopped', 'outages', 'startFailures', 'switches', 'switchesRefused']).extend({
    // Optional: reports written before it was counted had none.
    restarts: Count.optional(),
  }),
  heartbeats: Counts(['sent', 'acked', 'lost', 'duplicated']).extend({ stored: Count.nullable(), ackMs: Pct }),
  commands: Counts(['issued', 'received', 'answered', 'refused', 'failedByScenario', 'ignoredByScenario', 'lost']).extend({
    // Optional: reports written before it counted them had none.
    unreconciled: Count.optional(),
    answeredByPhones: Count.optional(),
    answerMs: Pct,
  }),
  notifications: Counts(['issued', 'shown', 'lost', 'duplicated']).extend({ delayMs: Pct }),
  // Optional: reports written before transfers were counted had none (nothing synced then).
  transfers: Counts(['phones', 'seeded', 'uploaded', 'failed', 'pending', 'held', 'lost'])
    .extend({ stored: Count.nullable(), failures: z.record(z.string(), Count), backups: Counts(['made', 'failed']) })
    .optional(),
  resources: Counts([
    'phones',
    'rssStartMb',
    'rssPeakMb',
    'rssPerPhoneKb',
    'cpuUserMs',
    'cpuSystemMs',
    'cpuPerMessageUs',
    'loopDelayP99Ms',
  ]).extend({ loopDelayAllUpP99Ms: z.number().nonnegative().nullable(), brokerInProcess: z.boolean() }),
  histograms: z.object({ heartbeatAckMs: Histogram, commandAnswerMs: Histogram, notificationDelayMs: Histogram }),
  apiError: z.string().optional(),
})

/** Reads and checks one report file. */
export async function readReport(file: string): Promise<FleetReport> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new MergeError(`cannot read ${file} as JSON: ${(err as Error).message}`)
  }
  const parsed = ReportSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue
    throw new MergeError(`${file} is not a fleet report from \`fleet run --report\`: ${issue.path.join('.') || '(top)'}: ${issue.message}`)
  }
  return json as FleetReport
}

/** Each key of `parts[0]` summed over `parts`. */
function sum<T extends object>(parts: readonly T[], pick: (p: T) => Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of parts) for (const [k, v] of Object.entries(pick(p))) out[k] = (out[k] ?? 0) + v
  return out
}

const counts = <T extends object>(o: T): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter((e): e is [string, number] => typeof e[1] === 'number'))

function mergedHistogram(parts: readonly HistogramData[]): LatencyHistogram {
  const h = new LatencyHistogram()
  for (const p of parts) h.merge(p)
  return h
}

/** A report's transfers when nothing synced (and a report written before transfers were counted). */
export function noTransfers(): Transfers {
  return {
    phones: 0,
    seeded: 0,
    uploaded: 0,
    stored: 0,
    failed: 0,
    failures: {},
    pending: 0,
    held: 0,
    lost: 0,
    backups: { made: 0, failed: 0 },
  }
}

/** Several reports' transfers as one: counts and failures by code summed; stored unknown if one report's is. */
function mergedTransfers(ts: readonly Transfers[]): Transfers {
  const s = sum(ts, counts)
  return {
    ...(s as Omit<Transfers, 'stored' | 'failures' | 'backups'>),
    stored: ts.some((x) => x.stored === null) ? null : (s.stored as number),
    failures: sum(ts, (x) => x.failures),
    backups: sum(ts, (x) => x.backups) as Transfers['backups'],
  }
}

/** Several processes' resources as one: sums, with per-phone and per-message figures recomputed and the worst loop delay. */
export function mergedResources(rs: readonly Resources[], messages: number): Resources {
  const s = sum(rs, counts)
  const phones = s.phones as number
  return {
    phones,
    rssStartMb: s.rssStartMb as number,
    rssPeakMb: s.rssPeakMb as number,
    rssPerPhoneKb: (((s.rssPeakMb as number) - (s.rssStartMb as number)) * 1024) / Math.max(1, phones),
    cpuUserMs: s.cpuUserMs as number,
    cpuSystemMs: s.cpuSystemMs as number,
    cpuPerMessageUs: messages === 0 ? 0 : (((s.cpuUserMs as number) + (s.cpuSystemMs as number)) * 1000) / messages,
    loopDelayP99Ms: Math.max(...rs.map((r) => r.loopDelayP99Ms)),
    // Every phone of the fleet was up only if every process's were (each measured its own stretch).
    loopDelayAllUpP99Ms: rs.some((r) => r.loopDelayAllUpP99Ms === null)
      ? null
      : Math.max(...rs.map((r) => r.loopDelayAllUpP99Ms as number)),
    brokerInProcess: rs.some((r) => r.brokerInProcess),
  }
}

/** Refuses reports that are not slices of one fleet run, naming the two that differ and how. */
function checkSameFleet(reports: readonly FleetReport[], names: readonly string[]): void {
  const first = reports[0] as FleetReport
  const seen = new Map<number, string>()
  reports.forEach((r, i) => {
    const name = names[i] as string
    const differs = (what: string, a: unknown, b: unknown): never => {
      throw new MergeError(`${name} is not of the fleet run of ${names[0]}: its ${what} is ${JSON.stringify(a)}, not ${JSON.stringify(b)}`)
    }
    if (r.scenario !== first.scenario || r.fleet.scenarioHash !== first.fleet.scenarioHash)
      differs('scenario', `${r.scenario} (${r.fleet.scenarioHash})`, `${first.scenario} (${first.fleet.scenarioHash})`)
    if (r.seed !== first.seed) differs('seed', r.seed, first.seed)
    if (r.fleet.size !== first.fleet.size) differs('fleet size', r.fleet.size, first.fleet.size)
    if (r.fleet.shards.count !== first.fleet.shards.count) differs('shard count', r.fleet.shards.count, first.fleet.shards.count)
    for (const part of r.fleet.shards.parts) {
      const other = seen.get(part)
      if (other !== undefined) throw new MergeError(`shard ${part}/${r.fleet.shards.count} is in both ${other} and ${name}`)
      seen.set(part, name)
    }
  })
}

/**
 * One report of every phone in `reports` (named `names` in errors), saying which of the fleet's shards none of them ran
 * (`missingShards`): `fleet report merge`.
 */
export function mergeReports(reports: readonly FleetReport[], names: readonly string[]): FleetReport {
  const merged = joinReports(reports, names)
  const given = new Set(merged.fleet.shards.parts)
  merged.missingShards = Array.from({ length: merged.fleet.shards.count }, (_, i) => i + 1).filter((i) => !given.has(i))
  merged.ok = reportOk(merged)
  return merged
}

/**
 * One report of every phone in `reports`, counts only: a `--workers` run's workers, whose slices make up its shard
 * whole (their shards of the fleet's N·K are not the fleet's shards: the caller says which shard the whole is).
 */
export function joinReports(reports: readonly FleetReport[], names: readonly string[]): FleetReport {
  if (reports.length === 0) throw new MergeError('no reports to merge')
  checkSameFleet(reports, names)
  const first = reports[0] as FleetReport
  const hist = (pick: (h: FleetReport['histograms']) => HistogramData): LatencyHistogram =>
    mergedHistogram(reports.map((r) => pick(r.histograms)))
  const ack = hist((h) => h.heartbeatAckMs)
  const answer = hist((h) => h.commandAnswerMs)
  const delay = hist((h) => h.notificationDelayMs)
  const heartbeats = sum(reports, (r) => counts(r.heartbeats))
  const commands = sum(reports, (r) => counts(r.commands))
  const notifications = sum(reports, (r) => counts(r.notifications))
  const stored = reports.some((r) => r.heartbeats.stored === null) ? null : (heartbeats.stored as number)
  const messages = (heartbeats.sent as number) + (commands.received as number) + (notifications.shown as number)
  const merged: FleetReport = {
    scenario: first.scenario,
    seed: first.seed,
    durationMs: Math.max(...reports.map((r) => r.durationMs)),
    fleet: {
      ...first.fleet,
      shards: { count: first.fleet.shards.count, parts: reports.flatMap((r) => r.fleet.shards.parts).sort((a, b) => a - b) },
    },
    phones: sum(reports, (r) => r.phones) as FleetReport['phones'],
    heartbeats: { ...(heartbeats as Omit<FleetReport['heartbeats'], 'ackMs' | 'stored'>), stored, ackMs: ack.percentiles() },
    commands: {
      ...(commands as Omit<FleetReport['commands'], 'answerMs' | 'unreconciled' | 'answeredByPhones'>),
      unreconciled: commands.unreconciled ?? 0,
      answeredByPhones: commands.answeredByPhones ?? 0,
      answerMs: answer.percentiles(),
    },
    notifications: { ...(notifications as Omit<FleetReport['notifications'], 'delayMs'>), delayMs: delay.percentiles() },
    transfers: mergedTransfers(reports.map((r) => r.transfers ?? noTransfers())),
    resources: mergedResources(
      reports.map((r) => r.resources),
      messages,
    ),
    histograms: { heartbeatAckMs: ack.toJSON(), commandAnswerMs: answer.toJSON(), notificationDelayMs: delay.toJSON() },
    ok: false,
  }
  // A shard's (a worker's) console API error fails the whole: the first one said is the report's.
  const apiError = reports.find((r) => r.apiError !== undefined)?.apiError
  if (apiError !== undefined) merged.apiError = apiError
  merged.ok = reportOk(merged)
  return merged
}

/** What a process that measured nothing used: none of it, and no stretch with every phone up (a lost worker's phones went with it). */
export function noResources(): Resources {
  return {
    phones: 0,
    rssStartMb: 0,
    rssPeakMb: 0,
    rssPerPhoneKb: 0,
    cpuUserMs: 0,
    cpuSystemMs: 0,
    cpuPerMessageUs: 0,
    loopDelayP99Ms: 0,
    loopDelayAllUpP99Ms: null,
    brokerInProcess: false,
  }
}

/** The report of phones whose worker died without one: all of them lost, nothing else known. */
export function lostReport(meta: { scenario: string; seed: string; fleet: FleetScope; phones: number }): FleetReport {
  const none = new LatencyHistogram()
  const pct = none.percentiles()
  return {
    scenario: meta.scenario,
    seed: meta.seed,
    durationMs: 0,
    fleet: meta.fleet,
    phones: {
      target: meta.phones,
      lost: meta.phones,
      started: 0,
      restarts: 0,
      stopped: 0,
      outages: 0,
      startFailures: 0,
      switches: 0,
      switchesRefused: 0,
    },
    heartbeats: { sent: 0, acked: 0, stored: 0, lost: 0, duplicated: 0, ackMs: pct },
    commands: {
      issued: 0,
      received: 0,
      answered: 0,
      answeredByPhones: 0,
      refused: 0,
      failedByScenario: 0,
      ignoredByScenario: 0,
      lost: 0,
      unreconciled: 0,
      answerMs: pct,
    },
    notifications: { issued: 0, shown: 0, lost: 0, duplicated: 0, delayMs: pct },
    transfers: noTransfers(),
    resources: noResources(),
    histograms: { heartbeatAckMs: none.toJSON(), commandAnswerMs: none.toJSON(), notificationDelayMs: none.toJSON() },
    ok: false,
  }
}
