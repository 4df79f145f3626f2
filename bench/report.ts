/**
 * The bench's output: the machine it ran on, and the results as aligned
 * text tables (for the README) or as JSON. Nothing here measures anything.
 */
import { arch, cpus, platform, totalmem } from 'node:os'
import { dirname } from 'node:path'
import type { BenchArgs, Scenario } from './args.js'
import type { BrokerFigures, CommandsResult } from './commands.js'
import type { FleetResult } from './fleet.js'
import type { IngestResult } from './ingest.js'
import type { MosquittoOutcome } from './mosquitto.js'
import type { PushResult } from './push.js'
import type { SyncResult } from './sync.js'
import type { CronResult } from './cron.js'
import type { WebCommandResult, WebResult } from './web.js'
import type { CompareResult } from './compare.js'
import type { MigrateResult } from './migrate.js'
import type { LatencySummary } from './stats.js'

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  platform: string
}

export interface Failed {
  error: string
}

export interface BenchReport {
  machine: MachineInfo
  args: Omit<BenchArgs, 'only'> & { only: Scenario[] }
  startedAt: string
  ingest?: IngestResult | Failed
  fleet?: FleetResult | Failed
  commands?: CommandsResult | Failed
  mosquitto?: MosquittoOutcome | Failed
  push?: PushResult | Failed
  sync?: SyncResult | Failed
  cron?: CronResult | Failed
  web?: WebResult | Failed
  webCommand?: WebCommandResult | Failed
  compare?: CompareResult | Failed
  migrate?: MigrateResult | Failed
}

export function machineInfo(): MachineInfo {
  const all = cpus()
  return {
    cpu: all[0]?.model.trim() ?? 'unknown',
    cores: all.length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    platform: `${platform()} ${arch()}`,
  }
}

const isFailed = (r: object): r is Failed => 'error' in r

// ---- number formatting

function ms(v: number | null): string {
  if (v === null) return '–'
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)
}

const int = (v: number): string => Math.round(v).toLocaleString('en-US')
const perS = (v: number): string => `${int(v)}/s`
const mb = (v: number): string => `${v.toFixed(0)} MB`
const secs = (msValue: number): string =>
  msValue < 1000
    ? `${msValue.toFixed(0)} ms`
    : Number.isInteger(msValue / 1000)
      ? `${msValue / 1000} s`
      : `${(msValue / 1000).toFixed(2)} s`
const pct = (v: number): string => `${v.toFixed(0)}%`
const latency3 = (l: LatencySummary): string => `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)} ms`

// ---- tables

type Row = [label: string, ...cells: string[]]

/** Aligns rows into columns, two spaces of indent. */
function table(rows: readonly Row[]): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows
    .map((row) => `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] as number) + 3))).join('')}`.trimEnd())
    .join('\n')
}

function header(r: BenchReport): string {
  const m = r.machine
  return [
    `fakephone bench, ${r.startedAt}`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB RAM, Node ${m.node} (${m.platform})`,
    'Setup:   real CloudBroker on 127.0.0.1 (OS-chosen ports, temp data dir). The load generator runs in',
    '         this same process and event loop as the fakephone broker; Mosquitto runs in its own process.',
    '         The per-address connection limit is lifted: every bench client comes from 127.0.0.1.',
  ].join('\n')
}

/** One column of the ingest table. */
function ingestColumn(r: IngestResult): string[] {
  const own = r.separateBroker
  const rise = (m: { idle: number; peak: number }): string => `${mb(m.idle)} → ${mb(m.peak)} (+${mb(m.peak - m.idle)})`
  return [
    r.registerMs === null ? 'n/a' : secs(r.registerMs),
    `${int(r.connected)}/${int(r.devices)}`,
    secs(r.connectMs),
    perS(r.publishRate),
    `${perS(r.ackRate)}${r.failed + r.skipped > 0 ? ` (${int(r.failed)} failed, ${int(r.skipped)} skipped)` : ''}`,
    r.stored ? perS(r.stored.rate) : 'n/a',
    latency3(r.puback),
    r.stored ? `${ms(r.stored.latency.p50)} / ${ms(r.stored.latency.p99)} ms` : 'n/a',
    own ? (own.rssMb ? rise(own.rssMb) : 'unknown') : `${rise(r.benchRssMb)}*`,
    own ? `${own.cpuPct === null ? '?' : pct(own.cpuPct)} broker + ${pct(r.benchCpuPct)} load` : `${pct(r.benchCpuPct)} broker + load`,
    mb(r.benchRssMb.peak),
    `${ms(r.loopDelay.p99)} ms`,
  ]
}

const INGEST_LABELS = [
  'register all devices (scrypt)',
  'devices connected',
  'time to connect all devices',
  'publish rate (sent)',
  'PUBACK rate',
  'stored rate',
  'publish→PUBACK p50 / p99 / max',
  'publish→stored p50 / p99',
  'broker RSS idle → peak',
  'CPU, % of one core',
  'bench process RSS peak',
  'event-loop delay p99 (bench)',
]

function columnOrNote(r: IngestResult | Failed | undefined, missing: string): string[] {
  if (r === undefined) return INGEST_LABELS.map((_, i) => (i === 0 ? missing : ''))
  if (isFailed(r)) return INGEST_LABELS.map((_, i) => (i === 0 ? 'failed (see below)' : ''))
  return ingestColumn(r)
}

function mosquittoResult(m: MosquittoOutcome | Failed | undefined): IngestResult | Failed | undefined {
  if (m === undefined || isFailed(m)) return m
  return m.ran ? m.result : undefined
}

function ingestSection(r: BenchReport): string {
  const a = r.args
  const mq = r.mosquitto
  const mqName = mq && !isFailed(mq) && mq.ran ? `mosquitto ${mq.version}` : 'mosquitto'
  const fake = columnOrNote(r.ingest, 'not run')
  const other = columnOrNote(mosquittoResult(mq), mq === undefined ? 'not run' : 'skipped')
  const rows: Row[] = [['', 'fakephone', mqName], ...INGEST_LABELS.map((label, i): Row => [label, fake[i] ?? '', other[i] ?? ''])]
  const notes = [
    r.ingest && isFailed(r.ingest) ? `  fakephone ingest failed: ${r.ingest.error}` : '',
    mq && isFailed(mq) ? `  mosquitto run failed: ${mq.error}` : '',
    mq && !isFailed(mq) && !mq.ran ? `  mosquitto skipped: ${mq.reason}` : '',
    r.ingest && !isFailed(r.ingest) && r.ingest.stored && r.ingest.stored.untraced > 0
      ? `  ${r.ingest.stored.untraced} stored heartbeats could not be traced to a publish`
      : '',
  ].filter(Boolean)
  return [
    `Heartbeat ingest: ${int(a.devices)} devices, ${perS(a.rate)} aggregate target, ${a.seconds} s, QoS 1 over MQTT/TCP`,
    table(rows),
    '  * this whole process: the fakephone broker plus the load generator and its clients.',
    ...notes,
  ].join('\n')
}

function fleetSection(r: BenchReport): string {
  const f = r.fleet
  if (f === undefined) return ''
  const a = r.args
  const title =
    `Fleet mode: ${int(a.agents)} Agent instances in this process, heartbeat every ${secs(a.agentHeartbeatMs)} ±10%, ${a.seconds} ` +
    `s after a warm-up`
  if (isFailed(f)) return `${title}\n  failed: ${f.error}`
  const rows: Row[] = [
    ['agents connected', `${int(f.connected)}/${int(f.agents)} in ${secs(f.connectMs)}`],
    ['heartbeats sent / stored', `${int(f.sent)} / ${int(f.stored)}`],
    ['stored per second', `${f.storedPerS.toFixed(1)}/s (expected ${f.expectedPerS.toFixed(1)}/s)`],
    ['process RSS before → after', `${mb(f.rssBeforeMb)} → ${mb(f.rssAfterMb)} (peak ${mb(f.peakRssMb)})`],
    ['RSS per agent', `${int(f.rssPerAgentKb)} KB`],
    ['event-loop delay p99 / max', `${ms(f.loopDelay.p99)} / ${ms(f.loopDelay.max)} ms`],
  ]
  const note = "  RSS per agent = (after - before) / agents; it includes the broker's side of each connection."
  return `${title}\n${table(rows)}\n${note}`
}

const share = (part: number, whole: number): string => (whole > 0 ? ` (${pct((part / whole) * 100)} of ${ms(whole)} ms)` : '')
const count = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1))

function succeededCell(ok: number, total: number, failed: number, first: string | null): string {
  return `${int(ok)}/${int(total)}${failed > 0 ? ` (${int(failed)} not: ${first ?? '?'})` : ''}`
}

function brokerRows(b: BrokerFigures, perCommandMs: number): Row[] {
  return [
    ['broker submit + receipts (sync)', `${ms(b.handlerPerCommandMs)} ms per command${share(b.handlerPerCommandMs, perCommandMs)}`],
    [
      '  of which SQLite',
      b.sqlite
        ? `${ms(b.sqlite.perCommandMs)} ms per command: ${count(b.sqlite.writesPerCommand)} writes + ` +
          `${count(b.sqlite.readsPerCommand)} reads`
        : 'not measured (CommandCenter internals changed)',
    ],
  ]
}

function commandsSection(r: BenchReport): string {
  const c = r.commands
  if (c === undefined) return ''
  const title = `Remote commands: owner-signed, submitted to the broker, run by real Agents, receipts back; 127.0.0.1`
  if (isFailed(c)) return `${title}\n  failed: ${c.error}`
  const rt = c.roundTrip
  const f = c.fanout
  const b = c.burst
  const legs = rt.legsP50
  const roundTripRows: Row[] = [
    [
      'commands succeeded',
      `${succeededCell(rt.succeeded, rt.commands, rt.failed, rt.firstFailure)}; ${int(rt.receiptsVerified)} receipts verified, ` +
        `${secs(rt.elapsedMs)} in all`,
    ],
    ['submit→succeeded p50 / p99 / max', `${latency3(rt.latency)} (mean ${ms(rt.meanMs)} ms)`],
    [
      'legs p50: →delivered / →executing / →succeeded (a skipped state counts as reached)',
      `${ms(legs.delivered)} / ${ms(legs.executing)} / ${ms(legs.final)} ms`,
    ],
    [
      'agent journal steps (append + fdatasync)',
      `${count(rt.journal.inPathPerCommand)} per command × ${ms(rt.journal.meanWriteMs)} ms = ${ms(rt.journal.perCommandMs)} ` +
        `ms${share(rt.journal.perCommandMs, rt.meanMs)}`,
    ],
    ['  + after the final state', `1 "reported" step, ${ms(rt.journal.reported.meanMs)} ms (not in the latency)`],
    ['  syncs per command, all steps', count(rt.journal.syncsPerCommand)],
    ['  journal log at the end (append-only)', rt.journalBytes === null ? 'unknown' : `${int(rt.journalBytes / 1024)} KB`],
    ...brokerRows(rt.broker, rt.meanMs),
  ]
  const fanoutRows: Row[] = [
    ['agents listening', `${int(f.listening)}/${int(f.agents)} in ${secs(f.listenMs)}`],
    ['commands succeeded', succeededCell(f.succeeded, f.agents, f.failed, f.firstFailure)],
    [
      'submit loop / all delivered / all final',
      `${secs(f.submitLoopMs)} / ${f.allDeliveredMs === null ? '–' : secs(f.allDeliveredMs)} / ` +
        `${f.allFinalMs === null ? '–' : secs(f.allFinalMs)}`,
    ],
    ['submit→succeeded p50 / p99 / max', latency3(f.latency)],
    [
      'agent journal steps (append + fdatasync)',
      `${int(f.journal.inPathPerCommand * f.agents + f.journal.reported.count)} in all, mean ${ms(f.journal.meanWriteMs)} ms each; ` +
        `${count(f.journal.syncsPerCommand)} syncs per command`,
    ],
    ...brokerRows(f.broker, 0),
    ['event-loop delay p99 / max', `${ms(f.loopDelay.p99)} / ${ms(f.loopDelay.max)} ms`],
  ]
  const burstRows: Row[] = [
    [
      'commands succeeded',
      `${succeededCell(b.succeeded, b.bursts * b.size, b.failed, b.firstFailure)}; ${int(b.receiptsVerified)} receipts verified`,
    ],
    ['submit→succeeded p50 / p99 / max', latency3(b.latency)],
    ['journal syncs per step (group commit)', `${b.syncsPerStep.toFixed(2)} (${count(b.journal.syncsPerCommand)} per command)`],
  ]
  // One table so the parts line up; the part titles go in between.
  const lines = table([...roundTripRows, ...fanoutRows, ...burstRows]).split('\n')
  const body = [
    `  Round trip: 1 agent, ${int(rt.commands)} locate command${rt.commands === 1 ? '' : 's'} one at a time after ${rt.warmup} ` +
      `warm-up${rt.commands < r.args.commands ? ` (time budget reached before ${int(r.args.commands)})` : ''}`,
    ...lines.slice(0, roundTripRows.length),
    `  Fan-out: ${int(f.agents)} agents, one ring each, all submitted in one loop`,
    ...lines.slice(roundTripRows.length, roundTripRows.length + fanoutRows.length),
    `  Burst: 1 agent, ${b.bursts} times ${b.size} locate commands submitted in one loop (after one warm-up burst), ${secs(b.elapsedMs)}`,
    ...lines.slice(roundTripRows.length + fanoutRows.length),
  ]
  const notes = [
    '  Every command: the agent journals 1 step (locate: done) or 2 (ring: executing, done) before its final receipt',
    '  goes out (one line appended to commands.jsonl, at most one fdatasync, shared by concurrent steps) and 1',
    '  after; a locate sends no delivered/executing receipt, so its legs are all one; the broker runs SQLite statements',
    '  (WAL, synchronous=NORMAL: no fsync per commit) inside submit() and each receipt. Times measured by wrapping',
    '  those calls; broker time blocks the event loop. Each round trip and each burst starts with the agent quiet',
    '  (the previous "reported" steps durable).',
    `  Journals and database under ${dirname(c.dataDir)} (removed after the run): fsync cost is that disk's.`,
  ]
  return `${title}\n${body.join('\n')}\n${notes.join('\n')}`
}

function syncSection(r: BenchReport): string {
  const s = r.sync as SyncResult | Failed
  const title =
    `App data sync (S1, S3): one phone syncs ${int(r.args.photos)} photos put in its camera folder while it was down; a second ` +
    `phone of the account pulls them`
  if (isFailed(s)) return `${title}\n  failed: ${s.error}`
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`
  const rate = (b: number, t: number): string => `${(b / 2 ** 20 / (t / 1000)).toFixed(0)} MiB/s`
  return `${title}\n${table([
    [
      'photos uploaded (blob, then metadata)',
      `${int(s.photos)} (${mib(s.photoBytes)}) in ${secs(s.uploadMs)}: ${perS((s.photos / s.uploadMs) * 1000)}`,
    ],
    ['photos pulled by the other phone', `${int(s.photos)} in ${secs(s.pullMs)}: ${perS((s.photos / s.pullMs) * 1000)}`],
    [
      `one ${mib(s.bigBlob.bytes)} blob, cut at ${mib(s.bigBlob.cutAt)}, resumed`,
      `${secs(s.bigBlob.uploadMs)} in all (${rate(s.bigBlob.bytes, s.bigBlob.uploadMs)}); resumed from ${mib(s.bigBlob.resumedFrom)}`,
    ],
  ])}`
}

function cronSection(r: BenchReport): string {
  const c = r.cron as CronResult | Failed
  const title = 'Cron look-ups (B1): CronSchedule.nextAfter from start times spread over a year'
  if (isFailed(c)) return `${title}\n  failed: ${c.error}`
  const rows = c.cases.map((k): Row => [
    `${k.expression} (${k.timezone})`,
    `mean ${ms(k.meanMs)} ms, max ${ms(k.maxMs)} ms over ${int(c.lookups)}`,
  ])
  return `${title}\n${table(rows)}`
}

function webSection(r: BenchReport): string {
  const w = r.web as WebResult | Failed
  const title = `Web console (F1): ${int(r.args.devices)} phones on the map in Chromium (headless), median / min / max`
  if (isFailed(w)) return `${title}\n  failed: ${w.error}`
  const spread = (s: WebResult['ready']): string => `${ms(s.median)} / ${ms(s.min)} / ${ms(s.max)} ms`
  const rows: Row[] = [
    ['navigation → first frame with the phones on the map', spread(w.firstMap)],
    ['navigation → page ready (list, map, clock, live)', spread(w.ready)],
    ["the page's files as transferred", `${(w.transferBytes / 1024).toFixed(0)} KiB`],
    ...w.interactions.map((i): Row => [i.name, spread(i.latency)]),
    ['longest main-thread task during the interactions', `${ms(w.longestTaskMs)} ms`],
  ]
  return `${title}\n${table(rows)}`
}

function webCommandSection(r: BenchReport): string {
  const c = r.webCommand as WebCommandResult | Failed
  const title = "Web console's command path (F2): the page's POST of a locate through the relay, until its answer (201, queued)"
  if (isFailed(c)) return `${title}\n  failed: ${c.error}`
  const rows: Row[] = [
    ["the process's first command (first relayed call): wall / process CPU", `${ms(c.first.ms)} / ${ms(c.first.cpuMs)} ms`],
    [`warm, ${int(c.warm.count)} one after another: p50 / p99 / max`, latency3(c.warm)],
    ['warm: process CPU per command (broker and web console)', `${ms(c.warm.cpuMsPerCommand)} ms`],
  ]
  return `${title}\n${table(rows)}`
}

function pushSection(r: BenchReport): string {
  const p = r.push
  if (p === undefined) return ''
  const a = r.args
  const title =
    `Push delivery (X1, X3): ${int(a.agents)} Agent instances with their push channel up, ${perS(a.pushRate)} queued round-robin ` +
    `for ${a.seconds} s`
  if (isFailed(p)) return `${title}\n  failed: ${p.error}`
  const d = p.delayed
  const rows: Row[] = [
    ['push channels connected', `${int(p.connected)}/${int(p.agents)} in ${secs(p.connectMs)}`],
    ['notifications queued / shown', `${int(p.sent)} / ${int(p.shown)}`],
    ['queued → shown p50 / p99 / max', latency3(p.latency)],
    ['event-loop delay p99 / max', `${ms(p.loopDelay.p99)} / ${ms(p.loopDelay.max)} ms`],
    ['permission revoked: queued, then delivered', `${int(d.queued)} → ${int(d.delivered)} in ${secs(d.drainMs)} after it returned`],
    ['  duplicates shown / agents out of order', `${int(d.duplicates)} / ${int(d.outOfOrder)}`],
  ]
  const note = '  "shown" = the phone wrote the id to disk (fsync) and showed it; the acknowledgement follows.'
  return `${title}\n${table(rows)}\n${note}`
}

export function renderReport(r: BenchReport): string {
  const sections = [header(r)]
  if (r.ingest !== undefined || r.mosquitto !== undefined) sections.push(ingestSection(r))
  if (r.fleet !== undefined) sections.push(fleetSection(r))
  if (r.commands !== undefined) sections.push(commandsSection(r))
  if (r.push !== undefined) sections.push(pushSection(r))
  if (r.sync !== undefined) sections.push(syncSection(r))
  if (r.cron !== undefined) sections.push(cronSection(r))
  if (r.web !== undefined) sections.push(webSection(r))
  if (r.webCommand !== undefined) sections.push(webCommandSection(r))
  return `${sections.join('\n\n')}\n\nJSON:\n${JSON.stringify(r)}\n`
}
