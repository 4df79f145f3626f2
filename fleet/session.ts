/**
 * One `fakephone fleet run`, start to report: the broker to talk to (one
 * started in this process on a temporary data directory with its devices
 * provisioned, or a running one with a credentials file), the plan, the
 * phones, the fleet's console, the resource figures and the reconciled report.
 */
import { randomUUID, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { ensureConsoleToken } from '../broker/console-token.js'
import { ConsoleAnswerError, ConsoleApiError, ConsoleClient } from '../cli/console-client.js'
import type { Clock } from '../common/clock.js'
import { ClockViewSchema } from '../common/cloud/clock-api.js'
import { ItemsViewSchema } from '../common/cloud/sync-api.js'
import type { Logger } from '../common/log.js'
import { plural } from '../common/plural.js'
import { LoopDelay } from '../common/loop-delay.js'
import { AllUpLoopDelay } from './all-up-delay.js'
import { OwnerKeys } from '../common/signing.js'
import { HttpFleetConsole, type CommandFate } from './console-driver.js'
import { CredentialsError, type Credentials } from './credentials.js'
import { planFleet } from './plan.js'
import { reachBroker } from './broker-reach.js'
import { Rng } from './prng.js'
import { provision } from './provision.js'
import { buildReport, scopeOf, type FleetReport, type StoredItems, type StoredSeqs } from './report.js'
import type { MetricsServer } from './metrics.js'
import { FleetRun } from './runner.js'
import type { LoadedScenario } from './scenario.js'
import { slicePlan, WHOLE, type Shard } from './shard.js'

const LOOPBACK = '127.0.0.1'
const MB = 1024 * 1024
/** How long the console waits for a command's final state. */
const COMMAND_WAIT_MS = 10_000
/** How long the phones may take to settle (PUBACKs, reconnects) before the report. */
const SETTLE_MS = 15_000

/** `say` for the first line only: the later ones are dropped (one line for a run's waits, or its workers'). */
export function sayOnce(say: ((line: string) => void) | undefined): (line: string) => void {
  return (line) => {
    say?.(line)
    say = undefined
  }
}

/** The first wait's line only (`say`), with what is waited for and at most how long: that wait's and the later ones' limits. */
function waitingOnce(say: ((line: string) => void) | undefined): (what: string, atMostMs: number) => void {
  const once = sayOnce(say)
  return (what, atMostMs) => once(`waiting up to ${Math.ceil(atMostMs / 1000)} s for ${what} before the report`)
}

export interface RemoteBroker {
  brokerUrl: string
  /** The push channel, ws://host:port/push. */
  pushUrl?: string
  /** The console API (http://host:port) and its token: the fleet's own console and the reconciliation need both. */
  apiUrl?: string
  consoleToken?: string
  credentials: Credentials
}

export interface SessionOptions {
  /** Phones in the whole fleet; with `shard`, this process runs its slice of them. */
  count: number
  shard?: Shard
  loaded: LoadedScenario
  seed: string
  durationMs?: number
  push: boolean
  clock: Clock
  log: Logger
  signal: AbortSignal
  /** Phones' data directories (and the in-process broker's) go here. */
  workDir: string
  /** A running broker; none: one in this process. */
  remote?: RemoteBroker
  /** Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the run goes (0: a port the OS picks); `serving` gets the URL. */
  metricsPort?: number
  serving?: (url: string) => void
  /** How long the fleet may take to settle before the report (default 15 s). */
  settleMs?: number
  /** How long the report then waits for the commands' final states, and for the notifications still due (default 10 s each). */
  answersMs?: number
  /**
   * Hears one line, once, when the report has to wait for what is still due (heartbeat PUBACKs, reconnects, answers,
   * notifications): what, and how long at most. Off a terminal the run would otherwise go quiet for up to half a minute.
   */
  waiting?: (line: string) => void
  /** `owntracks`: the phones speak OwnTracks JSON (no push channel, no fleet console; PUBACKs are the evidence). */
  profile?: 'owntracks'
  /** At most this many phones coming up, and as many going down, at once (FleetRunOptions.phonesAtOnce). */
  phonesAtOnce?: number
  /** Called once the report is made and counted in the run's metrics, before `/metrics` closes (a worker sends them on). */
  ended?: (run: FleetRun) => Promise<void>
  /** Called about once a second of real time while the run goes (the live view). */
  tick?: (run: FleetRun) => void
}

export interface Target {
  brokerUrl: string
  pushUrl: string | undefined
  credentials: Credentials
  /** The same broker, as other processes (a run's workers) reach it. */
  shared: RemoteBroker
  client: ConsoleClient | null
  stored: StoredSeqs
  /** The cloud's HTTP side for the phones' transfers (S1, B1): the broker's own, or --api's; none without --api. */
  cloudUrl: string | undefined
  stop(): Promise<void>
}

/** What the cloud holds of an account's items, asked through the console API (S2: the console's view). */
export function itemsOf(client: ConsoleClient): StoredItems {
  return (account) =>
    client
      .read(ItemsViewSchema, 'GET', `/api/accounts/${encodeURIComponent(account)}/items`)
      .then((view) => new Set(view.items.map((i) => `${i.category}/${i.id}`)))
}

/** What it takes to reach the broker, or start one. */
type TargetOptions = Pick<SessionOptions, 'remote' | 'workDir' | 'count' | 'clock' | 'log'>

async function inProcessBroker(o: TargetOptions): Promise<Target> {
  const dataDir = join(o.workDir, 'cloud')
  // Loaded when needed: a --workers child never starts a broker, and the broker's modules are much of its start-up.
  const { CloudBroker, DEFAULT_BROKER_OPTIONS } = await import('../broker/server.js')
  const broker = new CloudBroker(
    {
      ...DEFAULT_BROKER_OPTIONS,
      dataDir,
      host: LOOPBACK,
      mqttPort: 0,
      httpPort: 0,
      // Every phone connects from 127.0.0.1: the per-address connection limit would take the fleet for one noisy client.
      rateLimit: { burst: 1_000_000, perSecond: 1_000_000 },
    },
    o.clock,
    o.log.child({ module: 'broker' }),
  )
  const { mqttPort, httpPort } = await broker.start()
  const credentials = provision({ dataDir, keysDir: join(o.workDir, 'keys'), count: o.count, prefix: 'fleet', clock: o.clock })
  const shared = {
    brokerUrl: `mqtt://${LOOPBACK}:${mqttPort}`,
    pushUrl: `ws://${LOOPBACK}:${httpPort}/push`,
    apiUrl: `http://${LOOPBACK}:${httpPort}`,
    consoleToken: ensureConsoleToken(dataDir),
    credentials,
  }
  return {
    ...shared,
    shared,
    client: new ConsoleClient(shared.apiUrl, shared.consoleToken),
    cloudUrl: shared.apiUrl,
    stored: (id) => {
      broker.store.flush()
      return Promise.resolve(new Set(broker.store.history(id, 10_000).map((r) => r.seq)))
    },
    stop: () => broker.stop(),
  }
}

/** Said when the console API of `--api` cannot be reached, at the start or during the run. */
const API_HINT =
  '; is the broker running there? --api takes its HTTP address, http://HOST:PORT with its --http-port (its start-up log says httpPort)'

/**
 * Asks the console API once, before any phone starts. A wrong --api (another port, the MQTT one) or a token the broker
 * does not take, or another version's broker whose clock answer it cannot read (A3), would otherwise fail the fleet's
 * console on every call and the report's check of what the cloud stored at the end: the whole run spent, and no report.
 */
async function checkConsoleApi(client: ConsoleClient, apiUrl: string): Promise<void> {
  try {
    await client.read(ClockViewSchema, 'GET', '/api/clock')
  } catch (err) {
    // ConsoleClient.read rejects with its ConsoleApiError only (a ConsoleAnswerError is one), its status 0 when unreachable.
    const e = err as ConsoleApiError
    // Unreachable: the client's words name the address, --api and what it takes.
    if (e.status === 0) throw e
    // Another version's broker (A3: its clock answer of another shape): the client's words name the call and the field.
    if (e instanceof ConsoleAnswerError) throw new ConsoleApiError(e.status, `--api ${apiUrl}: ${e.message}`)
    const why =
      e.status === 401
        ? "the broker there refuses the console token: give --console-token-file that broker's DIR/console.token"
        : `${e.message}: give the broker's HTTP address, http://HOST:PORT with its --http-port (its start-up log says httpPort)`
    throw new ConsoleApiError(e.status, `--api ${apiUrl}: ${why}`, e.reason)
  }
}

async function remoteBroker(r: RemoteBroker): Promise<Target> {
  await reachBroker(r.brokerUrl)
  const client =
    r.apiUrl && r.consoleToken ? new ConsoleClient(r.apiUrl, r.consoleToken, undefined, { from: '--api', unreachable: API_HINT }) : null
  if (client) await checkConsoleApi(client, r.apiUrl as string)
  return {
    brokerUrl: r.brokerUrl,
    pushUrl: r.pushUrl,
    credentials: r.credentials,
    shared: r,
    client,
    cloudUrl: r.apiUrl,
    stored: (id) => client && client.history(id, 10_000).then((h) => new Set(h.history.map((x) => x.seq))),
    stop: () => Promise.resolve(),
  }
}

/** Resolves when `promise` does or `signal` aborts. */
function untilEither(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return Promise.race([promise, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))])
}

/** The broker a run talks to: the one named, or one started in this process with the fleet provisioned on it. */
export const openTarget = (o: TargetOptions): Promise<Target> => (o.remote ? remoteBroker(o.remote) : inProcessBroker(o))

/** The first `count` devices of the credentials: the fleet. */
export function fleetDevices(credentials: Credentials, count: number): Credentials['devices'] {
  const devices = credentials.devices.slice(0, count)
  if (devices.length < count)
    throw new CredentialsError(`--count ${count}, but the credentials file has only ${devices.length} devices: provision more`)
  return devices
}

export async function runSession(o: SessionOptions): Promise<FleetReport> {
  const rssStart = process.memoryUsage.rss()
  const target = await openTarget(o)
  let metrics: MetricsServer | null = null
  try {
    const fleet = fleetDevices(target.credentials, o.count)
    const shard = o.shard ?? WHOLE
    const whole = planFleet(
      o.loaded,
      o.seed,
      fleet.map((d) => d.id),
      o.durationMs,
      // Each run's commands go out under ids of their own: a cloud refuses an id a run before this one sent it.
      randomUUID(),
    )
    const plan = slicePlan(whole, shard)
    const devices = plan.phones.map((p) => fleet[p.index] as (typeof fleet)[number])
    const keys = new OwnerKeys(target.credentials.keysDir)
    const publicKeys = new Map<string, KeyObject | undefined>()
    const ownerKey = (account: string): KeyObject | undefined => {
      // Once per account, when its first phone gets a command; an account whose private key is not here has no console to obey.
      if (!publicKeys.has(account)) publicKeys.set(account, keys.existingOwnerKey(account))
      return publicKeys.get(account)
    }
    const fleetConsole =
      target.client && !o.profile ? new HttpFleetConsole(target.client, keys, o.log.child({ module: 'fleet' })) : undefined
    const run = new FleetRun({
      plan,
      devices,
      ownerKey,
      brokerUrl: target.brokerUrl,
      pushUrl: o.push && !o.profile ? target.pushUrl : undefined,
      cloudUrl: target.cloudUrl,
      dataDir: join(o.workDir, 'phones'),
      clock: o.clock,
      log: o.log.child({ module: 'fleet' }),
      console: fleetConsole,
      backoff: { baseMs: 500, capMs: 10_000 },
      random: (index) => Rng.stream(o.seed, index, 'agent').next,
      profile: o.profile,
      // Nothing reads a session's event log: its heartbeats would only grow with the run.
      heartbeatEvents: false,
      phonesAtOnce: o.phonesAtOnce,
    })
    metrics = o.metricsPort === undefined ? null : await run.metrics.serve(o.metricsPort)
    if (metrics) o.serving?.(`http://${LOOPBACK}:${metrics.port}/metrics`)
    const loop = new LoopDelay().start()
    let loopDelayP99Ms = 0
    const allUp = new AllUpLoopDelay()
    const cpuStart = process.cpuUsage()
    let rssPeak = process.memoryUsage.rss()
    const started = performance.now()
    let fates: Record<CommandFate, number> | null = null
    const ticker = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
      const up = run.phonesUp()
      allUp.check(up.connected, up.target)
      o.tick?.(run)
    }, 1000)
    try {
      run.start()
      // An open run (no end in its stages, no --duration) goes on until Ctrl-C.
      await untilEither(Number.isFinite(plan.endAt) ? run.ended : new Promise<void>(() => {}), o.signal)
      // The plan's end (or Ctrl-C): what follows is the phones stopping, the ramp down.
      allUp.close()
      const settleMs = o.settleMs ?? SETTLE_MS
      const answersMs = o.answersMs ?? COMMAND_WAIT_MS
      const waiting = waitingOnce(o.waiting)
      await run
        .settled(settleMs, (what) => waiting(what, settleMs + 2 * answersMs))
        .catch((err: unknown) => o.log.warn({ err: (err as Error).message }, 'the fleet did not settle before the report'))
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
      // Phones that stay to the end are still up: the answers and notifications still due come in before they stop.
      fates = fleetConsole
        ? await fleetConsole.fates(answersMs, (n) => waiting(`${plural(n, 'command')} without a final state`, 2 * answersMs))
        : null
      await run.notificationsShown(answersMs, (what) => waiting(what, answersMs))
      await run.stop()
    } finally {
      clearInterval(ticker)
      loopDelayP99Ms = loop.stop().p99
      allUp.close()
    }
    const cpu = process.cpuUsage(cpuStart)
    const t = run.tally
    const messages = t.heartbeats.sent + t.commands.received + t.notifications.shown
    const report = await buildReport(
      run,
      { scenario: o.loaded.scenario.name, seed: o.seed, durationMs: performance.now() - started, fleet: scopeOf(o.loaded, o.count, shard) },
      {
        phones: devices.length,
        rssStartMb: rssStart / MB,
        rssPeakMb: rssPeak / MB,
        rssPerPhoneKb: (rssPeak - rssStart) / Math.max(1, devices.length) / 1024,
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        cpuPerMessageUs: messages === 0 ? 0 : (cpu.user + cpu.system) / messages,
        loopDelayP99Ms,
        loopDelayAllUpP99Ms: allUp.p99Ms,
        brokerInProcess: !o.remote,
      },
      // OwnTracks has no sequence numbers: the cloud numbers what it stores itself, so PUBACKs are the evidence.
      o.profile ? () => null : target.stored,
      fates,
      fleetConsole?.apiError,
      target.client ? itemsOf(target.client) : undefined,
    )
    // What the report reconciled, for the last scrapes of /metrics (and a worker's last metrics to its parent).
    run.metrics.countReport(report)
    await o.ended?.(run)
    return report
  } finally {
    await metrics?.close()
    await target.stop()
  }
}
