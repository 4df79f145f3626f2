/**
 * The three-way comparison (issue 14): the same load generator against
 * fakephone, stock Aedes and Mosquitto, each broker in its own process
 * (broker-child.ts; Mosquitto when installed), interleaved: every round runs
 * each broker once, in a rotated order, and the table shows each figure's
 * median over the rounds with fakephone's ratio to the other two.
 *
 * Every device authenticates with its own credentials: fakephone with its
 * registry and per-device ACL; Mosquitto with a password file and a
 * `pattern` ACL; stock Aedes accepts anyone (no hooks). Figures per broker:
 * time to connect all devices, broker CPU per connect (over the connect ramp,
 * divided by the devices connected) and the load generator's own CPU per
 * connect (this process: when it is near the broker's, the ramp is the
 * generator's pace as much as the broker's), publish→PUBACK p50/p99 at QoS 1,
 * broker CPU per heartbeat (from /proc/PID/stat: user + system over the load
 * window, divided by the heartbeats acknowledged) and broker RSS with every
 * device connected.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { openDb } from '../broker/db.js'
import { ensureConsoleToken } from '../broker/console-token.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import type { ScenarioContext } from './context.js'
import { LOOPBACK, deviceIds, tempDir } from './cloud.js'
import { Cleanup, errorText, withTimeout } from './lifecycle.js'
import { Owner } from './commands.js'
import { connectPublishers, runLoad, type Credentials, type LoadResult } from './load.js'
import { commandProbe, probeRoundTrips, rawProbe, warmUp, type RoundTripProbe, type RoundTripSummary } from './round-trip.js'
import { findOnPath, freePort, mosquittoVersion, sampleProcess, stopChild, waitForListener } from './mosquitto.js'

export type BrokerKind = 'fakephone' | 'aedes' | 'mosquitto'

export interface CompareRun {
  broker: BrokerKind
  devices: number
  round: number
  connected: number
  connectMs: number
  /** Broker CPU (user + system) over the connect ramp per device connected, µs. */
  cpuUsPerConnect: number | null
  /** The load generator's (this process's) CPU over the connect ramp per device connected, µs. */
  generatorUsPerConnect: number | null
  sent: number
  acked: number
  p50: number | null
  p99: number | null
  /** Broker CPU (user + system) per acknowledged heartbeat, µs. */
  cpuUsPerHeartbeat: number | null
  /** Of that, the broker's main thread (its event loop), µs; the rest is GC helper threads and workers. */
  mainCpuUsPerHeartbeat: number | null
  /** Broker RSS with every device connected, after the load, MB. */
  rssMb: number | null
  /** The round-trip probe under a second window of the same load (round-trip.ts); null when it could not start. */
  roundTrip: RoundTripSummary | null
}

export interface CompareResult {
  rounds: number
  sizes: number[]
  mosquitto: { version: string } | { skipped: string }
  runs: CompareRun[]
  /** Where the Node brokers' CPU profiles went, with --profile. */
  profileDir: string | null
}

const HERE = dirname(fileURLToPath(import.meta.url))
const READY_TIMEOUT_MS = 20_000
/** Unmeasured load before each measured window. */
const WARM_UP_SECONDS = 2

interface Started {
  child: ChildProcess
  url: string
  /** fakephone's HTTP side (the console API). */
  apiUrl?: string
}

/** The round-trip probe's two ends: the device that answers, and the requester (Mosquitto's ACL lets it use any device's topics). */
const PROBE_DEVICE = 'cmp-probe'
const PROBE_REQUESTER = 'cmp-requester'

/** Spawns broker-child.js and resolves with its port once it printed it. */
async function startNodeBroker(args: string[], profileDir: string | null, cleanup: Cleanup): Promise<Started> {
  // Two profiles: the connect ramp (KIND-PID-connect.cpuprofile), then the measured load (KIND-PID.cpuprofile).
  const env = profileDir ? { ...process.env, FAKEPHONE_PROFILE_DIR: profileDir, FAKEPHONE_PROFILE_PHASES: 'connect,' } : process.env
  const child = spawn(process.execPath, [join(HERE, 'broker-child.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
  cleanup.defer(`stop ${args[0]}`, () => stopChild(child))
  let out = ''
  const [port, httpPort] = await withTimeout(
    new Promise<[number, number | undefined]>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        const line = /\{"port":(\d+)(?:,"httpPort":(\d+))?\}/.exec(out)
        if (line) resolve([Number(line[1]), line[2] === undefined ? undefined : Number(line[2])])
      })
      child.once('exit', (code) => reject(new Error(`${args[0]} exited with code ${code} before listening`)))
    }),
    READY_TIMEOUT_MS,
    `${args[0]} to listen`,
  )
  const apiUrl = httpPort === undefined ? undefined : `http://${LOOPBACK}:${httpPort}`
  return { child, url: `mqtt://${LOOPBACK}:${port}`, apiUrl }
}

/** Stops the child's profiler (SIGUSR2) and resolves once it wrote the profile. */
async function profiled(child: ChildProcess): Promise<void> {
  const written = new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      if (!d.toString().includes('"profiled"')) return
      child.stdout?.off('data', onData)
      resolve()
    }
    child.stdout?.on('data', onData)
  })
  child.kill('SIGUSR2')
  await withTimeout(written, READY_TIMEOUT_MS, 'the CPU profile')
}

/**
 * Registers the devices and the probe device in a fresh data directory (as `fakephone device add` would, the probe
 * device's receipt key going to `owner`) and starts the broker on it.
 */
async function startFakephone(
  creds: Credentials[],
  probe: Credentials,
  owner: Owner,
  profileDir: string | null,
  cleanup: Cleanup,
): Promise<Started & { consoleToken: string }> {
  const dir = await tempDir(cleanup, 'compare-fakephone')
  const db = openDb(dir)
  const registry = new DeviceRegistry(db, Date.now)
  for (const c of creds) c.secret = (await registry.add(c.id, 'bench')).secret
  probe.secret = (await registry.add(probe.id, 'bench')).secret
  owner.keys.rememberDevice(probe.id, probe.secret)
  db.close()
  const started = await startNodeBroker(['fakephone', dir], profileDir, cleanup)
  return { ...started, consoleToken: ensureConsoleToken(dir) }
}

/** Mosquitto with a password file (hashed by mosquitto_passwd -U) and an ACL that keeps each device to its own topics. */
async function startMosquitto(bin: string, creds: Credentials[], cleanup: Cleanup, signal: AbortSignal): Promise<Started> {
  const dir = await tempDir(cleanup, 'compare-mosquitto')
  const passwd = join(dir, 'passwd')
  await writeFile(passwd, creds.map((c) => `${c.id}:${c.secret}\n`).join(''), { mode: 0o600 })
  const tool = (await findOnPath('mosquitto_passwd')) ?? '/usr/bin/mosquitto_passwd'
  await promisify(execFile)(tool, ['-U', passwd])
  const acl = join(dir, 'acl')
  // The probe's requester plays the cloud: it may use every device's topics.
  await writeFile(acl, `pattern readwrite fp/v1/%u/#\nuser ${PROBE_REQUESTER}\ntopic readwrite fp/v1/#\n`)
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  // Started as root, Mosquitto switches to its own user, which could not read these files: it stays this process's user.
  const lines = [
    `listener ${port} ${LOOPBACK}`,
    `user ${userInfo().username}`,
    'allow_anonymous false',
    `password_file ${passwd}`,
    `acl_file ${acl}`,
  ]
  await writeFile(conf, [...lines, 'persistence false', 'set_tcp_nodelay true', 'log_dest stderr', 'log_type error', ''].join('\n'))
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
  cleanup.defer('stop mosquitto', () => stopChild(child))
  await waitForListener(port, child, signal)
  return { child, url: `mqtt://${LOOPBACK}:${port}` }
}

/** The round-trip probe for `kind`: a signed command to a real agent on fakephone, a raw request/response elsewhere. */
async function startProbe(
  ctx: ScenarioContext,
  broker: Started & { consoleToken?: string },
  probe: { device: Credentials; requester: Credentials; owner: Owner },
  cleanup: Cleanup,
): Promise<RoundTripProbe> {
  const started =
    broker.apiUrl !== undefined && broker.consoleToken !== undefined
      ? await commandProbe({
          mqttUrl: broker.url,
          apiUrl: broker.apiUrl,
          consoleToken: broker.consoleToken,
          device: { id: probe.device.id, secret: probe.device.secret as string },
          owner: probe.owner,
          dataDir: await tempDir(cleanup, 'compare-agent'),
          log: ctx.log,
        })
      : await rawProbe({ url: broker.url, responder: probe.device, requester: probe.requester })
  cleanup.defer('close the round-trip probe', () => started.close())
  return started
}

/**
 * One broker, one size: connect every device, run the load (its CPU, PUBACKs and RSS measured), then a second window of
 * the same load with the round-trip probe running, stop everything.
 */
async function measure(
  ctx: ScenarioContext,
  kind: BrokerKind,
  devices: number,
  round: number,
  mosquittoBin: string | null,
  profileDir: string | null,
): Promise<CompareRun> {
  const cleanup = new Cleanup()
  try {
    const creds: Credentials[] = deviceIds('cmp', devices).map((id) => ({ id, secret: `s-${id}-${round}` }))
    const probeEnds = {
      device: { id: PROBE_DEVICE, secret: `s-${PROBE_DEVICE}-${round}` },
      requester: { id: PROBE_REQUESTER, secret: `s-${PROBE_REQUESTER}-${round}` },
      owner: new Owner(await tempDir(cleanup, 'compare-owner')),
    }
    const broker =
      kind === 'fakephone'
        ? await startFakephone(creds, probeEnds.device, probeEnds.owner, profileDir, cleanup)
        : kind === 'aedes'
          ? await startNodeBroker(['aedes'], profileDir, cleanup)
          : await startMosquitto(mosquittoBin as string, [...creds, probeEnds.device, probeEnds.requester], cleanup, ctx.signal)
    const pid = broker.child.pid as number
    ctx.progress(`compare round ${round} ${kind}: connecting ${devices} devices`)
    const ramp = await connectRamp(broker, creds, profileDir, cleanup, ctx.signal)
    const conn = ramp.conn
    // Some of the same load first, not measured: every broker gets its caches (and V8 its JIT) warm, and what a broker
    // starts once under load (fakephone's WAL checkpointer, at 1 MB of WAL) is started before the window.
    // Each window's heartbeats carry seqs after the window's before it, so every one is a new row to fakephone (the same
    // seqs again would be QoS 1 redeliveries to it, ignored without a write: until 2026-12-05 the measured window's first
    // 2,000 and the round-trip window's all were).
    let nextSeq = 0
    const window = async (seconds: number): Promise<LoadResult> => {
      const firstSeq = nextSeq
      nextSeq += Math.ceil(ctx.args.rate * seconds)
      return runLoad(conn.publishers, { rate: ctx.args.rate, seconds, signal: ctx.signal, firstSeq })
    }
    await window(WARM_UP_SECONDS)
    const before = await sampleProcess(pid)
    ctx.progress(`compare round ${round} ${kind}: ${ctx.args.rate}/s for ${ctx.args.compareSeconds} s`)
    if (profileDir) broker.child.kill('SIGUSR2')
    const load = await window(ctx.args.compareSeconds)
    const after = await sampleProcess(pid)
    if (profileDir) await profiled(broker.child)
    const roundTrip = await probeUnderLoad(ctx, kind, broker, probeEnds, () => window(ctx.args.compareSeconds), cleanup)
    return {
      broker: kind,
      devices,
      round,
      connected: conn.publishers.length,
      connectMs: conn.connectMs,
      cpuUsPerConnect: ramp.brokerUs === null ? null : ramp.brokerUs / conn.publishers.length,
      generatorUsPerConnect: ramp.generatorUs / conn.publishers.length,
      sent: load.sent,
      acked: load.acked,
      p50: load.puback.p50,
      p99: load.puback.p99,
      cpuUsPerHeartbeat: before && after && load.acked > 0 ? ((after.cpuMs - before.cpuMs) * 1000) / load.acked : null,
      mainCpuUsPerHeartbeat: before && after && load.acked > 0 ? ((after.mainCpuMs - before.mainCpuMs) * 1000) / load.acked : null,
      rssMb: after?.rssMb ?? null,
      roundTrip,
    }
  } finally {
    await cleanup.runAll(ctx.progress)
  }
}

/** Connects every device, with the CPU the broker and this process spent on it (and the broker's profile of it, with --profile). */
async function connectRamp(
  broker: Started,
  creds: Credentials[],
  profileDir: string | null,
  cleanup: Cleanup,
  signal: AbortSignal,
): Promise<{ conn: Awaited<ReturnType<typeof connectPublishers>>; brokerUs: number | null; generatorUs: number }> {
  const pid = broker.child.pid as number
  if (profileDir) broker.child.kill('SIGUSR2')
  const before = await sampleProcess(pid)
  const ours = process.cpuUsage()
  const conn = await connectPublishers(broker.url, creds, cleanup, signal)
  const generator = process.cpuUsage(ours)
  const after = await sampleProcess(pid)
  if (profileDir) await profiled(broker.child)
  const brokerUs = before && after ? (after.cpuMs - before.cpuMs) * 1000 : null
  return { conn, brokerUs, generatorUs: generator.user + generator.system }
}

/** The second window: the same heartbeat load, the round-trip probe one request at a time beside it; null if it cannot start. */
async function probeUnderLoad(
  ctx: ScenarioContext,
  kind: BrokerKind,
  broker: Started & { consoleToken?: string },
  ends: { device: Credentials; requester: Credentials; owner: Owner },
  load: () => Promise<LoadResult>,
  cleanup: Cleanup,
): Promise<RoundTripSummary | null> {
  let probe: RoundTripProbe
  try {
    probe = await startProbe(ctx, broker, ends, cleanup)
    await warmUp(probe)
  } catch (err) {
    if (ctx.signal.aborted) throw err
    ctx.progress(`compare ${kind}: the round-trip probe could not start: ${errorText(err)}`)
    return null
  }
  ctx.progress(`compare ${kind}: ${probe.kind} round trips under the same load for ${ctx.args.compareSeconds} s`)
  let loading = true
  const [, roundTrip] = await Promise.all([load().finally(() => (loading = false)), probeRoundTrips(probe, () => !loading, ctx.signal)])
  return roundTrip
}

export async function runCompare(ctx: ScenarioContext, cleanup: Cleanup): Promise<CompareResult> {
  const bin = await findOnPath('mosquitto')
  const mosquitto = bin
    ? { version: await mosquittoVersion(bin) }
    : { skipped: 'no `mosquitto` binary on PATH (apt-get install mosquitto)' }
  if (!bin) ctx.progress(`compare: Mosquitto skipped: ${(mosquitto as { skipped: string }).skipped}`)
  const kinds = (bin ? (['fakephone', 'aedes', 'mosquitto'] as const) : (['fakephone', 'aedes'] as const)).filter((k) =>
    ctx.args.brokers.has(k),
  )
  const profileDir = ctx.args.profile
  const runs: CompareRun[] = []
  for (const devices of ctx.args.compareDevices) {
    for (let round = 1; round <= ctx.args.rounds; round++) {
      // Rotated each round, so no broker always runs first (a cold machine) or last.
      const order = kinds.map((_, i) => kinds[(i + round - 1) % kinds.length] as BrokerKind)
      for (const kind of order) {
        // Profile one run of each Node broker per size, the first round's: fakephone's next to stock Aedes' shows what is ours.
        const profile = kind !== 'mosquitto' && round === 1 ? profileDir : null
        try {
          runs.push(await measure(ctx, kind, devices, round, bin, profile))
        } catch (err) {
          if (ctx.signal.aborted) throw err
          ctx.progress(`compare round ${round} ${kind} ${devices}: failed: ${errorText(err)}`)
        }
      }
    }
  }
  void cleanup
  return { rounds: ctx.args.rounds, sizes: [...ctx.args.compareDevices], mosquitto, runs, profileDir }
}

function median(values: number[]): number | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const fmt = (v: number | null, digits: number, unit: string): string => (v === null ? '—' : `${v.toFixed(digits)}${unit}`)
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? '—' : `${(a / b).toFixed(2)}×`)

/** The README table: medians per broker and size, with fakephone's ratios. */
export function renderCompare(r: CompareResult): string {
  const version = 'version' in r.mosquitto ? `Mosquitto ${r.mosquitto.version}` : 'Mosquitto'
  const lines = [
    `Three-way comparison: medians of ${r.rounds} interleaved round(s); ratios are fakephone ÷ the other broker.`,
    'skipped' in r.mosquitto ? `Mosquitto skipped: ${r.mosquitto.skipped}` : '',
    `| devices | figure | fakephone | stock Aedes | ${version} | ÷ Aedes | ÷ Mosquitto |`,
    '|---|---|---|---|---|---|---|',
  ]
  for (const devices of r.sizes) {
    const of = (kind: BrokerKind, pick: (run: CompareRun) => number | null): number | null =>
      median(
        r.runs
          .filter((x) => x.broker === kind && x.devices === devices)
          .map(pick)
          .filter((v): v is number => v !== null),
      )
    const row = (label: string, pick: (run: CompareRun) => number | null, digits: number, unit: string): string => {
      const [f = null, a = null, m = null] = (['fakephone', 'aedes', 'mosquitto'] as const).map((k) => of(k, pick))
      const cells = [fmt(f, digits, unit), fmt(a, digits, unit), fmt(m, digits, unit), ratio(f, a), ratio(f, m)]
      return `| ${devices} | ${label} | ${cells.join(' | ')} |`
    }
    lines.push(
      row('time to connect all', (x) => x.connectMs / 1000, 2, ' s'),
      row('devices connected', (x) => x.connected, 0, ''),
      row('broker CPU per connect', (x) => x.cpuUsPerConnect, 0, ' µs'),
      row('load generator CPU per connect (one generator for all)', (x) => x.generatorUsPerConnect, 0, ' µs'),
      row('PUBACK p50', (x) => x.p50, 2, ' ms'),
      row('PUBACK p99', (x) => x.p99, 2, ' ms'),
      row('broker CPU per heartbeat', (x) => x.cpuUsPerHeartbeat, 0, ' µs'),
      row('of which its main thread', (x) => x.mainCpuUsPerHeartbeat, 0, ' µs'),
      row('broker RSS, all connected', (x) => x.rssMb, 0, ' MB'),
      row('heartbeats acknowledged', (x) => x.acked, 0, ''),
      row('round trip p50 (fakephone: signed command; others: raw MQTT)', (x) => x.roundTrip?.p50 ?? null, 2, ' ms'),
      row('round trip p99', (x) => x.roundTrip?.p99 ?? null, 2, ' ms'),
      row('round trips measured', (x) => x.roundTrip?.count ?? null, 0, ''),
      row("of which the agent's durable journal steps", (x) => x.roundTrip?.journalMs ?? null, 2, ' ms'),
    )
  }
  for (const x of r.runs.filter((run) => run.roundTrip?.firstFailure))
    lines.push(
      `${x.devices} devices, round ${x.round}, ${x.broker}: ${x.roundTrip?.failed} round trip(s) failed: ${x.roundTrip?.firstFailure}`,
    )
  if (r.profileDir)
    lines.push(
      '',
      `CPU profiles of the measured load (fakephone-PID, aedes-PID) and the connect ramp (*-connect): ${r.profileDir} ` +
        '(node dist/bench/cpu-top.js FILE)',
    )
  return lines.filter((l, i) => l !== '' || i > 1).join('\n')
}
