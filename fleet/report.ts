/**
 * The end-of-run report: every heartbeat, command, notification and transfer
 * accounted for (sent, acknowledged, stored by the cloud, lost, duplicated)
 * with latency percentiles, the phones' life events, and the memory and CPU
 * the run took. `lost` anywhere makes the run fail (exit status 1).
 * Transfers (S1, B1: the syncing groups' items and backups) reconcile as
 * heartbeats do: the items the phones say the cloud acknowledged are looked
 * up in the cloud's list of each account's items.
 */
import { plural } from '../common/plural.js'
import { forTerminal, quoted } from '../common/terminal-text.js'
import type { CommandFate } from './console-driver.js'
import type { HistogramData, Percentiles } from './histogram.js'
import { hash32 } from './prng.js'
import type { FleetRun } from './runner.js'
import type { LoadedScenario } from './scenario.js'
import type { SeqSet } from './seq-set.js'
import type { Shard } from './shard.js'

export type { Percentiles }

export interface Resources {
  phones: number
  rssStartMb: number
  rssPeakMb: number
  /** (peak RSS - RSS before the first phone) / phones. */
  rssPerPhoneKb: number
  cpuUserMs: number
  cpuSystemMs: number
  /** CPU time per message handled (heartbeats, commands, notifications), µs. */
  cpuPerMessageUs: number
  /** The event loop's delay p99: how late its ~10 ms timer fired, the timer's own interval taken off (common/loop-delay.ts). */
  loopDelayP99Ms: number
  /** The same p99 over the stretch when every phone was connected at once (fleet/all-up-delay.ts); null when they never all were. */
  loopDelayAllUpP99Ms: number | null
  /** True when the broker ran in this process too (its share is in these figures). */
  brokerInProcess: boolean
}

/** The syncing phones' items and backups (S1, B1); all 0 when no group syncs. */
export interface Transfers {
  /** Phones of syncing groups. */
  phones: number
  /** Items written into their data directories before their first start. */
  seeded: number
  /** Items whose upload the cloud acknowledged (each once). */
  uploaded: number
  /** Of those, the cloud holds (its list of each account's items); null when it could not be asked. */
  stored: number | null
  /** Failed attempts (each tried again at the next pass), by the cloud's error code in `failures`. */
  failed: number
  failures: Record<string, number>
  /** Items on the phones and not in the cloud when they stopped. */
  pending: number
  /** Of those, held back by a switch (the category's sync, the cloud service) or an outage the phone was not back from. */
  held: number
  /** Pending and not held, or acknowledged but not in the cloud. */
  lost: number
  backups: { made: number; failed: number }
}

/** What a report covers: merging checks that reports are of one fleet, and joins their shards. */
export interface FleetScope {
  /** Phones in the whole fleet (all shards). */
  size: number
  /** A fingerprint of the scenario (its checked form and GPX tracks): reports of other scenarios do not merge. */
  scenarioHash: string
  /** The shards of `count` this report covers (1-based); one run without --shard is 1 of 1. */
  shards: { count: number; parts: number[] }
}

/** One worker process of a `--workers` run. */
export interface WorkerOutcome {
  index: number
  pid: number
  phones: number
  /** `lost`: it ended without a report (crashed or killed); its phones count as lost. */
  outcome: 'reported' | 'lost'
  reason?: string
}

export interface FleetReport {
  scenario: string
  seed: string
  durationMs: number
  fleet: FleetScope
  phones: {
    target: number
    /** Phones whose worker died before reporting: nothing of theirs is accounted for. */
    lost: number
    /** Starts, restarts after an outage included. */
    started: number
    /** Starts of a phone back from an outage (absent from reports written before it was counted). */
    restarts?: number
    stopped: number
    outages: number
    startFailures: number
    switches: number
    switchesRefused: number
  }
  heartbeats: { sent: number; acked: number; stored: number | null; lost: number; duplicated: number; ackMs: Percentiles }
  commands: {
    issued: number
    received: number
    /**
     * Answered as planned, reconciled with the console: the final state the cloud has for each (without a console of the
     * fleet's own, as with OwnTracks phones, the phones' count: `answeredByPhones`).
     */
    answered: number
    /**
     * Answered as planned by the phones' own count: the receipt each journaled (F2), whatever the console could confirm.
     * The same commands seen from the other side, so not one more term of the sum: it exceeds `answered` by the answers
     * the console could not reconcile (the console API gone: `unreconciled`) or that never reached the cloud (`lost`).
     */
    answeredByPhones: number
    refused: number
    failedByScenario: number
    ignoredByScenario: number
    lost: number
    /** Submitted, but what became of them is unknown: the console API stopped answering before the cloud could say (`apiError`). */
    unreconciled: number
    answerMs: Percentiles
  }
  notifications: { issued: number; shown: number; lost: number; duplicated: number; delayMs: Percentiles }
  transfers: Transfers
  resources: Resources
  /** The latency histograms behind the percentiles, for `fleet report merge` (fleet/histogram.ts). */
  histograms: { heartbeatAckMs: HistogramData; commandAnswerMs: HistogramData; notificationDelayMs: HistogramData }
  workers?: WorkerOutcome[]
  /**
   * Why the cloud could not be asked what it stored or what became of the commands (the console API's error, when it
   * stopped answering before the report): the heartbeats then count by their PUBACKs (`stored` n/a), the commands not
   * reconciled as such. Absent when it answered throughout.
   */
  apiError?: string
  /**
   * A merged report's shards (of `fleet.shards.count`) that no report given had (`fleet report merge`, issue 12): its
   * phones were not counted, so the merge cannot say nothing was lost; [] when every shard is in. Absent from a run's
   * own report (a `--shard` run reports its slice alone).
   */
  missingShards?: number[]
  ok: boolean
}

/** A fingerprint of a checked scenario and its tracks. */
export function scenarioHash(loaded: LoadedScenario): string {
  return hash32(JSON.stringify([loaded.scenario, [...loaded.tracks]]))
    .toString(16)
    .padStart(8, '0')
}

/** The scope of a run of `shard` of a `size`-phone fleet. */
export const scopeOf = (loaded: LoadedScenario, size: number, shard: Shard): FleetScope => ({
  size,
  scenarioHash: scenarioHash(loaded),
  shards: { count: shard.count, parts: [shard.index] },
})

/**
 * Nothing lost, no phone that failed to start or was lost with its worker, every command reconciled with the cloud,
 * and, for a merged report, every shard in.
 */
export const reportOk = (r: FleetReport): boolean => nothingLost(r) && !r.missingShards?.length

/** Nothing lost among the phones the report counted (a merged report's missing shards aside). */
export const nothingLost = (r: FleetReport): boolean =>
  r.heartbeats.lost === 0 &&
  r.commands.lost === 0 &&
  r.notifications.lost === 0 &&
  r.transfers.lost === 0 &&
  r.phones.startFailures === 0 &&
  r.phones.lost === 0 &&
  !r.commands.unreconciled &&
  r.apiError === undefined

/** The heartbeat seqs the cloud stored for a device (null: the cloud cannot be asked, only PUBACKs count). */
export type StoredSeqs = (device: string) => Promise<Set<number>> | null

/** The items (`category/id`) the cloud holds for an account, live. */
export type StoredItems = (account: string) => Promise<Set<string>>

/** Accounts whose items are asked for at once. */
const ACCOUNTS_AT_ONCE = 8

/**
 * How many of the items the phones say the cloud acknowledged it holds: each account's list asked once, a few at a time.
 * Rejects with the console API's error.
 */
async function itemsStored(run: FleetRun, items: StoredItems): Promise<number> {
  const byAccount = new Map<string, Set<string>[]>()
  for (const { account, items: mine } of run.tally.uploadedItems.values()) byAccount.set(account, [...(byAccount.get(account) ?? []), mine])
  const accounts = [...byAccount]
  let stored = 0
  while (accounts.length > 0) {
    const batch = accounts.splice(0, ACCOUNTS_AT_ONCE)
    const clouds = await Promise.all(batch.map(([account]) => items(account)))
    batch.forEach(([, devices], i) => {
      const cloud = clouds[i] as Set<string>
      for (const mine of devices) for (const item of mine) if (cloud.has(item)) stored++
    })
  }
  return stored
}

/** The transfers section, with `stored` the cloud's count (null: not asked). */
function transfersOf(run: FleetRun, stored: number | null): Transfers {
  const t = run.tally
  const { pending, held, phones } = run.transferEnds()
  const { seeded, uploaded, failed, backupsMade, backupsFailed } = t.transfers
  return {
    phones,
    seeded,
    uploaded,
    stored,
    failed,
    failures: Object.fromEntries([...t.transferFailures].sort(([a], [b]) => a.localeCompare(b))),
    pending,
    held,
    lost: pending - held + (stored === null ? 0 : uploaded - stored),
    backups: { made: backupsMade, failed: backupsFailed },
  }
}

/**
 * The report of a run. `fates` is the fleet's console's count of the commands it submitted (null: the run had no console
 * of its own, as with OwnTracks phones, and the phones' own counts are all there is). The commands line reconciles:
 * issued = answered + refused (by the cloud at submission, or by the phone: F3) + ignored as planned + lost, where a
 * command the console could not submit at all counts lost, as does a notification it could not queue. When the console
 * API fails (`apiError`, from the fates, or here when asked what the cloud stored) the report still comes, with what the
 * run knows: the heartbeats by their PUBACKs, the commands not reconciled counted so (+ unreconciled in that sum), and
 * what the phones answered by their own count (`answeredByPhones`, beside the sum).
 */
export async function buildReport(
  run: FleetRun,
  meta: { scenario: string; seed: string; durationMs: number; fleet: FleetScope },
  resources: Resources,
  stored: StoredSeqs,
  fates: Record<CommandFate, number> | null,
  apiError?: string,
  items?: StoredItems,
): Promise<FleetReport> {
  const t = run.tally
  let storedCount: number | null = 0
  let lostHeartbeats = 0
  for (const [device, sent] of t.sentSeqs) {
    let cloud = apiError === undefined ? stored(device) : null
    const asked = await cloud?.catch((err: unknown) => {
      apiError = (err as Error).message
      cloud = null
    })
    // Without the cloud to ask, a PUBACK is the best evidence there is.
    const have = asked ?? (t.ackedSeqs.get(device) as SeqSet)
    const found = [...sent].filter((seq) => have.has(seq)).length
    storedCount = cloud && storedCount !== null ? storedCount + found : null
    lostHeartbeats += sent.size - found
  }
  let itemsInCloud: number | null = null
  if (items && apiError === undefined)
    itemsInCloud = await itemsStored(run, items).catch((err: unknown) => {
      apiError = (err as Error).message
      return null
    })
  const notes = run.notificationCounts()
  const report: FleetReport = {
    ...meta,
    phones: { target: run.phonesUp().target, lost: 0, ...t.phones },
    heartbeats: {
      sent: t.heartbeats.sent,
      acked: t.heartbeats.acked,
      stored: storedCount,
      lost: lostHeartbeats,
      duplicated: t.heartbeats.duplicateAcks,
      ackMs: t.heartbeatAck.percentiles(),
    },
    commands: {
      issued: t.commands.issued,
      received: t.commands.received,
      answered: fates ? fates.answered : t.commands.answered,
      answeredByPhones: t.commands.answered,
      refused: t.commands.refused + (fates?.refused ?? 0),
      failedByScenario: t.commands.failedByScenario,
      // The console's count: an ignored command that never reached its phone was ignored all the same.
      ignoredByScenario: fates ? fates.ignored : t.commands.ignoredByScenario,
      lost: (fates?.lost ?? 0) + t.commands.unsent,
      unreconciled: fates?.unreconciled ?? 0,
      answerMs: t.commandAnswer.percentiles(),
    },
    notifications: {
      issued: t.notifications.issued,
      shown: notes.shown,
      lost: t.notifications.issued - notes.shown,
      duplicated: t.notifications.duplicates,
      delayMs: t.notificationDelay.percentiles(),
    },
    transfers: transfersOf(run, itemsInCloud),
    resources,
    histograms: {
      heartbeatAckMs: t.heartbeatAck.toJSON(),
      commandAnswerMs: t.commandAnswer.toJSON(),
      notificationDelayMs: t.notificationDelay.toJSON(),
    },
    ...(apiError === undefined ? {} : { apiError }),
    ok: false,
  }
  report.ok = reportOk(report)
  return report
}

/** Why a run whose console API stopped answering failed: what it could not reconcile. */
export function failedWhy(r: FleetReport): string {
  const unknown = [
    ...(r.commands.unreconciled ? [`${plural(r.commands.unreconciled, 'command')} not reconciled`] : []),
    ...(r.heartbeats.stored === null ? ['heartbeats stored unknown'] : []),
  ]
  return `the console API stopped answering${unknown.length > 0 ? ` (${unknown.join(', ')})` : ''}`
}

const pct = (p: Percentiles): string => (p.count === 0 ? 'no samples' : `p50 ${p.p50} / p90 ${p.p90} / p99 ${p.p99} / max ${p.max} ms`)

/**
 * What the phones answered, and what of it the console reconciled (with no command of the fleet's console, nothing to
 * reconcile: OwnTracks phones, whose commands come from elsewhere).
 */
const answeredLine = (c: FleetReport['commands']): string =>
  `${c.answeredByPhones} answered by the phones${c.issued > 0 ? ` (${c.answered} reconciled with the console)` : ''}`

/** Which shards and workers the report covers, when it is not one whole run in one process. */
function scopeLines(r: FleetReport): string[] {
  const { shards, size } = r.fleet
  const lines: string[] = []
  if (shards.count > 1) {
    const all = shards.parts.length === shards.count ? 'all' : `${shards.count - shards.parts.length} missing`
    lines.push(`  shards        ${shards.parts.join(', ')} of ${shards.count} (${all}) of a ${size}-phone fleet`)
  }
  if (r.workers) {
    const each = r.workers.map(
      (w) => `#${w.index + 1} pid ${w.pid}: ${plural(w.phones, 'phone')} ${w.outcome}${w.reason ? ` (${forTerminal(w.reason)})` : ''}`,
    )
    lines.push(`  workers       ${each.join('; ')}`)
  }
  return lines
}

/** How many of the shards a merged report with shards missing lacks, and which: `1 of 3 shards missing (shard 2/3)`. */
export function missingWhy(r: FleetReport): string {
  const missing = r.missingShards as number[]
  const count = r.fleet.shards.count
  const which = missing.map((i) => `${i}/${count}`).join(', ')
  return `${missing.length} of ${count} shards missing (${missing.length === 1 ? 'shard' : 'shards'} ${which})`
}

/** The verdict: OK; FAILED when anything was lost (and which shards are missing, if any); INCOMPLETE when only shards are. */
function resultLine(r: FleetReport): string {
  if (r.ok) return 'result: OK, nothing lost'
  const missing = r.missingShards?.length ? missingWhy(r) : undefined
  if (nothingLost(r)) return `result: INCOMPLETE, ${missing as string}: nothing lost in the shards given`
  const why = r.apiError === undefined ? 'something was lost or a phone did not start' : failedWhy(r)
  return `result: FAILED, ${why}${missing === undefined ? '' : `; also ${missing}`}`
}

/** `30 of 30 phones started, 1 restart after an outage`: a phone back from an outage is not one more phone. */
function startsLine(p: FleetReport['phones']): string {
  const restarts = p.restarts ?? 0
  const again = restarts > 0 ? `, ${plural(restarts, 'restart')} after an outage` : ''
  return `${p.started - restarts} of ${p.target} phones started${again}`
}

/**
 * The phones an outage took for good (`16 not back by the end`): every start ends in a stop or an outage, so without
 * them the stopped fall short of the phones started with nothing to say where the rest went. Each outage a phone came
 * back from is a restart; in the others the phone was still away at the end (a report from before restarts were
 * counted: unsaid).
 */
function notBack(p: FleetReport['phones']): string {
  const gone = p.restarts === undefined ? 0 : p.outages - p.restarts
  return gone > 0 ? ` (${gone} not back by the end)` : ''
}

/** The transfers line, when a group syncs (S1, B1): nothing for a fleet without one, as before. */
function transfersLines(x: Transfers): string[] {
  if (x.phones === 0) return []
  const why = Object.entries(x.failures).map(([code, n]) => `${n} ${forTerminal(code)}`)
  return [
    `  transfers     ${plural(x.seeded, 'item')} seeded on ${plural(x.phones, 'phone')}, ${x.uploaded} uploaded, ` +
      `${x.stored ?? 'n/a'} stored, ${plural(x.failed, 'failed attempt')}${why.length > 0 ? ` (${why.join(', ')})` : ''}, ` +
      `${x.pending} pending at the end (${x.held} held by a switch or an outage), ${x.lost} lost; ` +
      `${plural(x.backups.made, 'backup')} made, ${x.backups.failed} failed`,
  ]
}

/**
 * The report for people. A merged report's scenario name and workers' reasons come from the shard reports given, which
 * anyone may have written: they are shown escaped (common/terminal-text), as every name from others.
 */
export function renderReport(r: FleetReport): string {
  const h = r.heartbeats
  const c = r.commands
  const n = r.notifications
  const res = r.resources
  return [
    `fleet ${quoted(r.scenario)} (seed ${forTerminal(r.seed)}): ${startsLine(r.phones)}, ${(r.durationMs / 1000).toFixed(1)} s`,
    `  phones        ${r.phones.stopped} stopped, ${plural(r.phones.outages, 'outage')}${notBack(r.phones)}, ` +
      `${plural(r.phones.switches, 'switch', 'switches')} (${r.phones.switchesRefused} refused), ` +
      `${r.phones.startFailures} failed to start, ` +
      `${r.phones.lost} lost with their worker`,
    ...scopeLines(r),
    `  heartbeats    ${h.sent} sent, ${h.acked} acked, ${h.stored ?? 'n/a'} stored, ${h.lost} lost, ` +
      `${h.duplicated} duplicated; PUBACK ${pct(h.ackMs)}`,
    `  commands      ${c.issued} issued, ${c.received} received, ${answeredLine(c)}, ${c.refused} refused, ` +
      `${c.failedByScenario} failed and ${c.ignoredByScenario} ignored as planned, ${c.lost} lost` +
      `${c.unreconciled ? `, ${c.unreconciled} not reconciled` : ''}; answer ${pct(c.answerMs)}`,
    ...transfersLines(r.transfers),
    `  notifications ${n.issued} issued, ${n.shown} shown, ${n.lost} lost, ` + `${n.duplicated} duplicated; issued→shown ${pct(n.delayMs)}`,
    `  resources     RSS ${res.rssStartMb.toFixed(0)} → peak ${res.rssPeakMb.toFixed(0)} MB ` +
      `(${res.rssPerPhoneKb.toFixed(0)} KB per phone), ` +
      `CPU ${(res.cpuUserMs / 1000).toFixed(1)} s user + ${(res.cpuSystemMs / 1000).toFixed(1)} s system ` +
      `(${res.cpuPerMessageUs.toFixed(0)} µs per message), loop delay p99 ${res.loopDelayP99Ms.toFixed(1)} ms` +
      (typeof res.loopDelayAllUpP99Ms === 'number' ? ` (${res.loopDelayAllUpP99Ms.toFixed(1)} ms with every phone up)` : '') +
      (res.brokerInProcess ? ' -- broker included' : ''),
    ...(r.apiError === undefined ? [] : [`  console API   stopped answering before the report: ${forTerminal(r.apiError)}`]),
    resultLine(r),
    '',
  ].join('\n')
}
