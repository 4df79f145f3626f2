/**
 * A real CloudBroker for a scenario: loopback only, OS-chosen ports, its
 * own temporary data directory (removed by the clean-up), and registered
 * devices. All bench connections come from 127.0.0.1, which the broker's
 * per-address connection limit would rightly treat as one noisy client;
 * the bench lifts that limit and says so in its output.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudBroker, DEFAULT_BROKER_OPTIONS, type BrokerOptions } from '../broker/server.js'
import { Agent, type AgentOptions } from '../agent/agent.js'
import { SystemClock, type Clock } from '../common/clock.js'
import type { ScenarioContext } from './context.js'
import type { Logger } from '../common/log.js'
import { inBatches, type Cleanup } from './lifecycle.js'

export const LOOPBACK = '127.0.0.1'

/** Every bench connection shares one address, so the per-address limit is opened wide. */
const BENCH_RATE_LIMIT: BrokerOptions['rateLimit'] = { burst: 1_000_000, perSecond: 1_000_000 }

/** Registrations in flight at once: scrypt runs on libuv's four-thread pool. */
const REGISTER_CONCURRENCY = 16

export interface Device {
  id: string
  secret: string
}

export interface BenchCloud {
  broker: CloudBroker
  dataDir: string
  mqttUrl: string
  /** The push channel (X1). */
  pushUrl: string
  /** The cloud's HTTP side (sync, backup, drive). */
  httpUrl: string
}

/** Creates a directory under the OS temp dir that the clean-up removes. */
export async function tempDir(cleanup: Cleanup, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fakephone-bench-${label}-`))
  cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true, maxRetries: 3 }))
  return dir
}

export async function startCloud(cleanup: Cleanup, log: Logger, label: string): Promise<BenchCloud> {
  const dataDir = await tempDir(cleanup, label)
  const broker = new CloudBroker(
    { ...DEFAULT_BROKER_OPTIONS, dataDir: join(dataDir, 'cloud'), host: LOOPBACK, mqttPort: 0, httpPort: 0, rateLimit: BENCH_RATE_LIMIT },
    new SystemClock(),
    log.child({ module: 'broker' }),
  )
  cleanup.defer('stop the broker', () => broker.stop())
  const { mqttPort, httpPort } = await broker.start()
  return {
    broker,
    dataDir,
    mqttUrl: `mqtt://${LOOPBACK}:${mqttPort}`,
    pushUrl: `ws://${LOOPBACK}:${httpPort}/push`,
    httpUrl: `http://${LOOPBACK}:${httpPort}`,
  }
}

/** Device ids `<prefix>-00001`, ... : topic-safe and sortable. */
export function deviceIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(5, '0')}`)
}

/** Registers `ids` (scrypt per device) in parallel batches; resolves with each secret. */
export async function registerDevices(cloud: BenchCloud, ids: readonly string[], signal: AbortSignal): Promise<Device[]> {
  return inBatches(ids, REGISTER_CONCURRENCY, signal, async (id) => ({ id, secret: (await cloud.broker.registry.add(id, 'bench')).secret }))
}

/** Reconnect backoff for bench agents: short, so a scenario does not wait long after a hiccup. */
export const BENCH_BACKOFF = { baseMs: 200, capMs: 2_000 }

/** One Agent of a bench fleet: its own data dir under the cloud's, quiet logs, the bench backoff; the scenario says the rest. */
export function benchAgent(
  ctx: ScenarioContext,
  cloud: BenchCloud,
  device: Device,
  clock: Clock,
  rest: Pick<AgentOptions, 'location' | 'heartbeatMs' | 'jitter'> & Partial<AgentOptions>,
): Agent {
  return new Agent({
    id: device.id,
    secret: device.secret,
    brokerUrl: cloud.mqttUrl,
    dataDir: join(cloud.dataDir, 'agents', device.id),
    clock,
    log: ctx.log.child({ module: 'agent', device: device.id }),
    backoff: BENCH_BACKOFF,
    ...rest,
  })
}
