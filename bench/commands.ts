/**
 * Scenario 4, remote commands end to end: owner-signed commands submitted
 * to a real CloudBroker (as the console API does) and run by real `Agent`s,
 * all on 127.0.0.1 and the system clock.
 *  1. Round trip: one agent, N `locate` commands one after another (after
 *     a warm-up); submit→succeeded latency and how it splits into legs.
 *     Each command starts with the agent quiet: the previous receipt's
 *     "reported" journal write has finished.
 *  2. Fan-out: A agents, one `ring` to each, all submitted at once; time
 *     until every one is final and the per-command latency.
 *  3. Burst: one agent, BURST_SIZE `locate` commands submitted at once,
 *     BURSTS times; per-command latency and fdatasyncs per journal step,
 *     which group commit keeps below one when commands run concurrently.
 * Each command costs the agent one journal step (locate: done) or two
 * (ring: executing, done) before its final receipt goes out (one appended
 * line and at most one fdatasync each, shared with concurrent steps; three
 * for every command before issue 14's fourth part), plus one after the
 * broker acknowledges it; and the
 * broker a handful of SQLite statements. Both are timed by wrapping those
 * calls on these instances (bench/command-probe.ts).
 */
import { randomUUID, type KeyObject } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Agent } from '../agent/agent.js'
import { JOURNAL_FILE } from '../agent/journal.js'
import { FixedSource } from '../agent/location.js'
import { SystemClock } from '../common/clock.js'
import type { CommandArgs, CommandType, Command, UnsignedCommand } from '../common/contract.js'
import { OwnerKeys, readPublicKey, signPayload, verifyPayload } from '../common/signing.js'
import { BrokerTimer, CommandWatcher, JournalTimer, type JournalStep, type Tracked } from './command-probe.js'
import { benchAgent, deviceIds, registerDevices, startCloud, tempDir, type BenchCloud, type Device } from './cloud.js'
import type { ScenarioContext } from './context.js'
import { stopAgents } from './fleet.js'
import { inBatches, waitUntil, type Cleanup } from './lifecycle.js'
import { LatencyRecorder, LoopDelay, type LatencySummary } from './stats.js'

const ACCOUNT = 'bench'
/** Commands run before the measured round trips: JIT, SQLite page cache, the journal file. */
const WARMUP_COMMANDS = 50
/** One command's limit in the round-trip part. */
const COMMAND_LIMIT_MS = 10_000
/** The round-trip part stops issuing commands after this long, whatever N is. */
const ROUND_TRIP_BUDGET_MS = 120_000
/** The fan-out: how long every command together may take to become final. */
const FANOUT_LIMIT_MS = 60_000
/** How long agents may take to connect and subscribe to their command topic. */
const LISTEN_LIMIT_MS = 30_000
/** After a final state, how long the agent may take to record the receipt as sent. */
const QUIET_LIMIT_MS = 2_000
const START_CONCURRENCY = 50
/** Heartbeats would only add unrelated traffic: one an hour, so none during the run. */
const HEARTBEAT_MS = 3_600_000
const RING_SECONDS = 5
/** The burst part: commands submitted at once to one agent, and how many such bursts. */
const BURST_SIZE = 20
const BURSTS = 10
const FIX = { lat: 55.9486, lon: -3.1999 }

/** Makes a detach safe to call twice: once when a part ends, again from the clean-up. */
function onlyOnce(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}

export interface JournalFigures {
  /** fsyncs and fdatasyncs per command, every step included ("reported" and compactions too). */
  syncsPerCommand: number
  /** Durable steps (append + fdatasync, shared with concurrent steps) per command before its final receipt goes out. */
  inPathPerCommand: number
  /** Mean time of one such write, ms. */
  meanWriteMs: number
  /** Their time per command, ms. */
  perCommandMs: number
  /** The write that records the receipt as acknowledged (after the final state): count and mean, ms. */
  reported: { count: number; meanMs: number }
  byStep: Record<JournalStep, { count: number; meanMs: number }>
}

export interface BrokerFigures {
  /** submit() plus every onResult(), synchronous, per command, ms. */
  handlerPerCommandMs: number
  /** SQLite statements inside them, per command; null when the statements could not be instrumented. */
  sqlite: { perCommandMs: number; writesPerCommand: number; readsPerCommand: number } | null
}

export interface RoundTripResult {
  commands: number
  warmup: number
  succeeded: number
  failed: number
  firstFailure: string | null
  receiptsVerified: number
  latency: LatencySummary
  meanMs: number
  /** p50 of each leg: submit→delivered, delivered→executing, executing→succeeded. */
  legsP50: { delivered: number | null; executing: number | null; final: number | null }
  /** Size of the agent's journal log at the end, bytes (appended to, compacted past a bound). */
  journalBytes: number | null
  journal: JournalFigures
  broker: BrokerFigures
  elapsedMs: number
}

export interface FanoutResult {
  agents: number
  listening: number
  listenMs: number
  succeeded: number
  failed: number
  firstFailure: string | null
  /** The synchronous loop of A submit() calls, ms. */
  submitLoopMs: number
  /** From the first submit until every command was delivered / final, ms. */
  allDeliveredMs: number | null
  allFinalMs: number | null
  latency: LatencySummary
  journal: JournalFigures
  broker: BrokerFigures
  loopDelay: { p99: number; max: number }
}

export interface BurstResult {
  bursts: number
  size: number
  succeeded: number
  failed: number
  firstFailure: string | null
  receiptsVerified: number
  latency: LatencySummary
  /** fsyncs and fdatasyncs per journal step (2 steps a locate): below 1 when steps share a sync. */
  syncsPerStep: number
  journal: JournalFigures
  elapsedMs: number
}

export interface CommandsResult {
  roundTrip: RoundTripResult
  fanout: FanoutResult
  burst: BurstResult
  /** Where the agents' journals and the broker's database live. */
  dataDir: string
}

/** The owner side, as `fakephone device add` and the console keep it. */
export class Owner {
  readonly keys: OwnerKeys
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject

  constructor(dir: string) {
    this.keys = new OwnerKeys(dir)
    this.privateKey = this.keys.signingKey(ACCOUNT)
    this.publicKey = readPublicKey(this.keys.ownerKeyFile(ACCOUNT))
  }

  /** A command signed as the console signs it (test/fixtures/owner.ts, cli/remote-commands.ts). */
  sign<T extends CommandType>(device: string, type: T, args: CommandArgs<T>): Command {
    const now = Date.now()
    const unsigned = {
      id: randomUUID(),
      device,
      type,
      args,
      issuedAt: now,
      expiresAt: now + 600_000,
      seq: this.keys.nextSeq(device, now),
    } as UnsignedCommand
    return signPayload(unsigned, this.privateKey) as Command
  }
}

function makeAgent(ctx: ScenarioContext, cloud: BenchCloud, device: Device, owner: Owner, clock: SystemClock): Agent {
  return benchAgent(ctx, cloud, device, clock, {
    location: new FixedSource(FIX),
    heartbeatMs: HEARTBEAT_MS,
    jitter: 0,
    ownerKey: owner.publicKey,
  })
}

/** Starts the agents and waits (bounded) until the broker sees each one subscribed to its command topic. */
async function startListening(
  ctx: ScenarioContext,
  cloud: BenchCloud,
  agents: readonly Agent[],
  ids: readonly string[],
  cleanup: Cleanup,
): Promise<{ listening: number; ms: number }> {
  cleanup.defer(`stop ${agents.length} agents`, () => stopAgents(agents, ctx.progress))
  const started = performance.now()
  await inBatches(agents, START_CONCURRENCY, ctx.signal, (a) => a.start())
  const commands = cloud.broker.commands
  await waitUntil(() => ids.every((id) => commands.isListening(id)), LISTEN_LIMIT_MS, ctx.signal, 5)
  return { listening: ids.filter((id) => commands.isListening(id)).length, ms: performance.now() - started }
}

/** Registers devices and hands each one's receipt key to the owner, as `device add` does. */
async function provision(ctx: ScenarioContext, cloud: BenchCloud, owner: Owner, prefix: string, count: number): Promise<Device[]> {
  const devices = await registerDevices(cloud, deviceIds(prefix, count), ctx.signal)
  for (const d of devices) owner.keys.rememberDevice(d.id, d.secret)
  return devices
}

/** Submits as the console API does; a refusal at submission is a failed command, not a crash. */
function submit(cloud: BenchCloud, command: Command): string | null {
  try {
    cloud.broker.commands.submit(command.device, command)
    return null
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}

function journalFigures(j: JournalTimer, commands: number): JournalFigures {
  const path = j.inPath
  const mean = (step: JournalStep): number => (j.count[step] ? j.totalMs[step] / j.count[step] : 0)
  const byStep = Object.fromEntries(
    (Object.keys(j.count) as JournalStep[]).map((s) => [s, { count: j.count[s], meanMs: mean(s) }]),
  ) as JournalFigures['byStep']
  return {
    syncsPerCommand: commands ? j.syncs / commands : 0,
    inPathPerCommand: commands ? path.count / commands : 0,
    meanWriteMs: path.count ? path.totalMs / path.count : 0,
    perCommandMs: commands ? path.totalMs / commands : 0,
    reported: { count: j.count.reported, meanMs: mean('reported') },
    byStep,
  }
}

function brokerFigures(b: BrokerTimer, commands: number): BrokerFigures {
  const per = (v: number): number => (commands ? v / commands : 0)
  return {
    handlerPerCommandMs: per(b.handlerMs),
    sqlite: b.statementsFound ? { perCommandMs: per(b.sqliteMs), writesPerCommand: per(b.writes), readsPerCommand: per(b.reads) } : null,
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size
  } catch {
    return null
  }
}

function p50(values: number[]): number | null {
  if (values.length === 0) return null
  const r = new LatencyRecorder(values.length)
  for (const v of values) r.record(v)
  return r.summary().p50
}

/** Part 1: N sequential locates on one agent, each started with the agent quiet. */
async function roundTrip(ctx: ScenarioContext, cloud: BenchCloud, owner: Owner, cleanup: Cleanup): Promise<RoundTripResult> {
  const n = ctx.args.commands
  const [device] = await provision(ctx, cloud, owner, 'cmd', 1)
  const id = (device as Device).id
  const agent = makeAgent(ctx, cloud, device as Device, owner, new SystemClock())
  const journal = new JournalTimer()
  cleanup.defer('unwrap the journal timer', journal.attach(agent.remote.journal))
  const { listening } = await startListening(ctx, cloud, [agent], [id], cleanup)
  if (listening !== 1) throw new Error(`the agent did not subscribe to its command topic within ${LISTEN_LIMIT_MS} ms`)
  const broker = new BrokerTimer()
  const unwrapBroker = onlyOnce(broker.attach(cloud.broker.commands, cloud.broker.store))
  cleanup.defer('unwrap the broker timer', unwrapBroker)
  const watcher = new CommandWatcher(cloud.broker.commands, ctx.signal)
  const detachWatcher = onlyOnce(watcher.attach())
  cleanup.defer('detach the command watcher', detachWatcher)

  const deviceKey = owner.keys.deviceKey(id)
  const latency = new LatencyRecorder(n)
  const all: number[] = []
  const legs = { delivered: [] as number[], executing: [] as number[], final: [] as number[] }
  let succeeded = 0
  let failed = 0
  let verified = 0
  let firstFailure: string | null = null
  ctx.progress(`commands: round trip, ${WARMUP_COMMANDS} warm-up then ${n} locate command${n === 1 ? '' : 's'} one at a time`)
  const started = performance.now()
  for (let i = 0; i < WARMUP_COMMANDS + n && performance.now() - started < ROUND_TRIP_BUDGET_MS; i++) {
    ctx.signal.throwIfAborted()
    if (i === WARMUP_COMMANDS) {
      journal.reset()
      broker.reset()
    }
    const command = owner.sign(id, 'locate', {})
    const done = watcher.expect(command.id, COMMAND_LIMIT_MS)
    const refused = submit(cloud, command)
    const t = await done
    // The agent records the receipt as sent once the broker acknowledges it; the next command starts after that write.
    await waitUntil(() => agent.remote.journal.entry(command.id)?.reported !== false, QUIET_LIMIT_MS, ctx.signal, 1)
    await agent.remote.journal.flushed()
    if (i < WARMUP_COMMANDS) continue
    if (t.state !== 'succeeded' || t.finalAt === null) {
      failed++
      firstFailure ??= refused ?? `${t.state}: ${t.reason ?? ''}`
      continue
    }
    succeeded++
    const ms = t.finalAt - t.submittedAt
    latency.record(ms)
    all.push(ms)
    if (t.deliveredAt !== null && t.executingAt !== null) {
      legs.delivered.push(t.deliveredAt - t.submittedAt)
      legs.executing.push(t.executingAt - t.deliveredAt)
      legs.final.push(t.finalAt - t.executingAt)
    }
    if (t.receipt && deviceKey && verifyPayload(t.receipt, deviceKey)) verified++
  }
  const elapsedMs = performance.now() - started
  // The fan-out instruments the same broker afresh.
  detachWatcher()
  unwrapBroker()
  const measured = succeeded + failed
  return {
    commands: measured,
    warmup: WARMUP_COMMANDS,
    succeeded,
    failed,
    firstFailure,
    receiptsVerified: verified,
    latency: latency.summary(),
    meanMs: all.reduce((s, v) => s + v, 0) / Math.max(1, all.length),
    legsP50: { delivered: p50(legs.delivered), executing: p50(legs.executing), final: p50(legs.final) },
    journalBytes: await fileSize(join(cloud.dataDir, 'agents', id, JOURNAL_FILE)),
    journal: journalFigures(journal, measured),
    broker: brokerFigures(broker, measured),
    elapsedMs,
  }
}

/** Part 2: one ring to each of A agents, all submitted in one synchronous loop. */
async function fanout(ctx: ScenarioContext, cloud: BenchCloud, owner: Owner, cleanup: Cleanup): Promise<FanoutResult> {
  const a = ctx.args.fanout
  ctx.progress(`commands: fan-out, registering and starting ${a} agents`)
  const devices = await provision(ctx, cloud, owner, 'fan', a)
  const clock = new SystemClock()
  const agents = devices.map((d) => makeAgent(ctx, cloud, d, owner, clock))
  const journal = new JournalTimer()
  for (const agent of agents) cleanup.defer('unwrap a journal timer', journal.attach(agent.remote.journal))
  const ids = devices.map((d) => d.id)
  const { listening, ms: listenMs } = await startListening(ctx, cloud, agents, ids, cleanup)
  // A new agent writes its journal log at start; only the commands' syncs count here.
  journal.reset()
  ctx.progress(`commands: ${listening}/${a} agents listening; one ring to each, all at once`)
  const broker = new BrokerTimer()
  cleanup.defer('unwrap the broker timer', broker.attach(cloud.broker.commands, cloud.broker.store))
  const watcher = new CommandWatcher(cloud.broker.commands, ctx.signal)
  cleanup.defer('detach the command watcher', watcher.attach())

  const signed = ids.map((id) => owner.sign(id, 'ring', { seconds: RING_SECONDS }))
  const refusals: (string | null)[] = []
  const loop = new LoopDelay().start()
  const started = performance.now()
  const finals = signed.map((command) => {
    const done = watcher.expect(command.id, FANOUT_LIMIT_MS)
    refusals.push(submit(cloud, command))
    return done
  })
  const submitLoopMs = performance.now() - started
  const results: Tracked[] = await Promise.all(finals)
  const loopDelay = loop.stop()

  const latency = new LatencyRecorder(a)
  let succeeded = 0
  let firstFailure: string | null = null
  let lastDelivered = -Infinity
  let lastFinal = -Infinity
  results.forEach((t, i) => {
    if (t.deliveredAt !== null) lastDelivered = Math.max(lastDelivered, t.deliveredAt)
    if (t.state === 'succeeded' && t.finalAt !== null) {
      succeeded++
      latency.record(t.finalAt - t.submittedAt)
      lastFinal = Math.max(lastFinal, t.finalAt)
    } else firstFailure ??= refusals[i] ?? `${t.state}: ${t.reason ?? ''}`
  })
  // The "reported" writes come after the final states; wait (bounded) for them so the journal figures are complete.
  const reported = (i: number): boolean => agents[i]?.remote.journal.entry((signed[i] as Command).id)?.reported !== false
  await waitUntil(() => agents.every((_, i) => reported(i)), QUIET_LIMIT_MS, ctx.signal, 5)
  await Promise.all(agents.map((ag) => ag.remote.journal.flushed()))
  return {
    agents: a,
    listening,
    listenMs,
    succeeded,
    failed: a - succeeded,
    firstFailure,
    submitLoopMs,
    allDeliveredMs: lastDelivered === -Infinity ? null : lastDelivered - started,
    allFinalMs: succeeded === a ? lastFinal - started : null,
    latency: latency.summary(),
    journal: journalFigures(journal, a),
    broker: brokerFigures(broker, a),
    loopDelay,
  }
}

/** Part 3: BURSTS times, BURST_SIZE locates to one agent submitted in one loop; each burst starts with the agent quiet. */
async function burst(ctx: ScenarioContext, cloud: BenchCloud, owner: Owner, cleanup: Cleanup): Promise<BurstResult> {
  const [device] = await provision(ctx, cloud, owner, 'burst', 1)
  const id = (device as Device).id
  const agent = makeAgent(ctx, cloud, device as Device, owner, new SystemClock())
  const journal = new JournalTimer()
  cleanup.defer('unwrap the journal timer', journal.attach(agent.remote.journal))
  const { listening } = await startListening(ctx, cloud, [agent], [id], cleanup)
  if (listening !== 1) throw new Error(`the agent did not subscribe to its command topic within ${LISTEN_LIMIT_MS} ms`)
  const watcher = new CommandWatcher(cloud.broker.commands, ctx.signal)
  cleanup.defer('detach the command watcher', watcher.attach())
  const deviceKey = owner.keys.deviceKey(id)
  const latency = new LatencyRecorder(BURSTS * BURST_SIZE)
  let succeeded = 0
  let verified = 0
  let firstFailure: string | null = null
  ctx.progress(`commands: burst, ${BURSTS} times ${BURST_SIZE} locate commands at once to one agent`)
  const started = performance.now()
  // The first burst warms up the path (JIT, the agent's first compaction); it is not measured.
  for (let b = -1; b < BURSTS; b++) {
    ctx.signal.throwIfAborted()
    if (b === 0) journal.reset()
    const commands = Array.from({ length: BURST_SIZE }, () => owner.sign(id, 'locate', {}))
    const finals = commands.map((command) => {
      const done = watcher.expect(command.id, COMMAND_LIMIT_MS)
      return { refused: submit(cloud, command), done }
    })
    const results = await Promise.all(finals.map((f) => f.done))
    const quiet = (): boolean => commands.every((c) => agent.remote.journal.entry(c.id)?.reported !== false)
    await waitUntil(quiet, QUIET_LIMIT_MS, ctx.signal, 1)
    await agent.remote.journal.flushed()
    if (b < 0) continue
    results.forEach((t, i) => {
      if (t.state !== 'succeeded' || t.finalAt === null) {
        firstFailure ??= finals[i]?.refused ?? `${t.state}: ${t.reason ?? ''}`
        return
      }
      succeeded++
      latency.record(t.finalAt - t.submittedAt)
      if (t.receipt && deviceKey && verifyPayload(t.receipt, deviceKey)) verified++
    })
  }
  const total = BURSTS * BURST_SIZE
  const steps = journal.inPath.count + journal.count.reported
  return {
    bursts: BURSTS,
    size: BURST_SIZE,
    succeeded,
    failed: total - succeeded,
    firstFailure,
    receiptsVerified: verified,
    latency: latency.summary(),
    syncsPerStep: steps ? journal.syncs / steps : 0,
    journal: journalFigures(journal, total),
    elapsedMs: performance.now() - started,
  }
}

export async function runCommands(ctx: ScenarioContext, cleanup: Cleanup): Promise<CommandsResult> {
  const cloud = await startCloud(cleanup, ctx.log, 'commands')
  const owner = new Owner(await tempDir(cleanup, 'owner-keys'))
  const rt = await roundTrip(ctx, cloud, owner, cleanup)
  const fan = await fanout(ctx, cloud, owner, cleanup)
  const bursts = await burst(ctx, cloud, owner, cleanup)
  return { roundTrip: rt, fanout: fan, burst: bursts, dataDir: cloud.dataDir }
}
