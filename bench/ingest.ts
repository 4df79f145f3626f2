/**
 * Scenario 1, heartbeat ingest: D devices registered and connected to a
 * real CloudBroker over MQTT/TCP publish valid QoS 1 heartbeats at an
 * aggregate rate. Measures connecting everyone, the publish, PUBACK and
 * stored rates, publish→PUBACK and publish→stored latency, and RSS.
 */
import type { BenchArgs } from './args.js'
import { deviceIds, registerDevices, startCloud } from './cloud.js'
import type { Cleanup } from './lifecycle.js'
import { connectPublishers, runLoad, type Connected, type LoadResult } from './load.js'
import type { ScenarioContext } from './context.js'
import { MB, type LatencySummary } from './stats.js'
import { StoreProbe } from './store-probe.js'

export interface IngestResult {
  broker: string
  devices: number
  connected: number
  /** Registering every device (one scrypt hash each); null for a broker without the registry. */
  registerMs: number | null
  connectFailed: number
  connectError: string | null
  connectMs: number
  sent: number
  acked: number
  failed: number
  skipped: number
  /** Sends per second over the send window. */
  publishRate: number
  /** PUBACKs per second from the first send to the last PUBACK. */
  ackRate: number
  puback: LatencySummary
  /** Null for a broker without the fakephone store (Mosquitto). */
  stored: { count: number; rate: number; latency: LatencySummary; untraced: number } | null
  /** Resident set size of this process, MB: before the devices connected, and the highest seen during the run. */
  benchRssMb: { idle: number; peak: number }
  /** CPU of this process during the run, % of one core. */
  benchCpuPct: number
  /** A broker in a process of its own (Mosquitto): its RSS and CPU; null when the broker runs in this process. */
  separateBroker: { rssMb: { idle: number; peak: number } | null; cpuPct: number | null } | null
  /** Event-loop delay in the bench process during the run, ms. */
  loopDelay: { p99: number; max: number }
}

export async function runIngest(ctx: ScenarioContext, cleanup: Cleanup): Promise<IngestResult> {
  const { args } = ctx
  const cloud = await startCloud(cleanup, ctx.log, 'ingest')
  ctx.progress(`ingest: registering ${args.devices} devices (scrypt each)`)
  const registerStart = performance.now()
  const devices = await registerDevices(cloud, deviceIds('bench', args.devices), ctx.signal)
  const registerMs = performance.now() - registerStart
  const idleRss = process.memoryUsage.rss()
  ctx.progress(`ingest: connecting ${args.devices} devices`)
  const conn = await connectPublishers(cloud.mqttUrl, devices, cleanup, ctx.signal)
  const probe = new StoreProbe(cloud.broker.store, Math.ceil(args.rate * args.seconds))
  cleanup.defer('detach the store probe', probe.attach())
  ctx.progress(`ingest: publishing ${args.rate}/s for ${args.seconds} s`)
  const load = await runLoad(conn.publishers, {
    rate: args.rate,
    seconds: args.seconds,
    signal: ctx.signal,
    onSend: (seq, at) => probe.sent(seq, at),
  })
  const storedSpanS = (Math.max(probe.lastStoredAt, load.startedAt + load.windowMs) - load.startedAt) / 1000
  return {
    ...loadFigures('fakephone', args, conn, load, idleRss),
    registerMs,
    stored: { count: probe.stored, rate: probe.stored / storedSpanS, latency: probe.summary(), untraced: probe.untraced },
    separateBroker: null,
  }
}

/** The figures every ingest run has, whichever broker it ran against. */
export function loadFigures(
  broker: string,
  args: BenchArgs,
  conn: Connected,
  load: LoadResult,
  idleRss: number,
): Omit<IngestResult, 'stored' | 'separateBroker' | 'registerMs'> {
  return {
    broker,
    devices: args.devices,
    connected: conn.publishers.length,
    connectFailed: conn.failed,
    connectError: conn.firstError,
    connectMs: conn.connectMs,
    sent: load.sent,
    acked: load.acked,
    failed: load.failed,
    skipped: load.skipped,
    publishRate: load.sent / (load.windowMs / 1000),
    ackRate: load.acked / (load.spanMs / 1000),
    puback: load.puback,
    benchRssMb: { idle: idleRss / MB, peak: load.peakRss / MB },
    benchCpuPct: load.cpuPct,
    loopDelay: load.loopDelay,
  }
}
