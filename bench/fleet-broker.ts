/**
 * The fakephone broker in a process of its own for the fleet benches
 * (fleet-memory.ts, fleet-scale.ts), so the fleet's RSS and CPU are the
 * fleet's alone. The per-address rate limit is lifted (every phone comes from
 * 127.0.0.1). Prints `{"mqttPort":N,"httpPort":M}` once it listens, and
 * `{"ramp":{...}}` once TARGET MQTT clients are connected (or, short of it,
 * when told to stop): how many, the time from the first CONNACK to the
 * last, and the phones connected per second between.
 *   node dist/bench/fleet-broker.js DATA_DIR [TARGET]
 */
import { once } from 'node:events'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'

export interface BrokerChild {
  mqttPort: number
  httpPort: number
  child: ChildProcessByStdio<null, Readable, null>
  /** Resolves with the ramp once TARGET clients are connected, or with what there was at stop(). */
  ramp: Promise<Ramp>
  stop(): Promise<void>
}

export interface Ramp {
  /** Connections made (a reconnect counts again); short of the target when the run ended first. */
  connected: number
  firstToLastS: number
  perSecond: number
  /** The broker's CPU (user + system) from listening to the last CONNACK, per connection, ms. */
  cpuPerPhoneMs: number
  /**
   * Seconds from the first CONNACK until 90 % and 99 % of the target were connected (null: not reached), and the
   * phones per second up to 90 %: a ramp figure the last few stragglers (past the open-file room) do not stretch.
   */
  to90S: number | null
  to99S: number | null
  perSecondTo90: number | null
}

/** Starts the broker child on `dataDir` (its devices provisioned beforehand); `execArgv` for --cpu-prof and the like. */
export async function startBrokerChild(dataDir: string, target = 0, execArgv: string[] = []): Promise<BrokerChild> {
  const child = spawn(process.execPath, [...execArgv, fileURLToPath(import.meta.url), dataDir, String(target)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = (async function* () {
    let buf = ''
    for await (const chunk of child.stdout) {
      buf += String(chunk)
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        yield JSON.parse(buf.slice(0, i)) as { mqttPort: number; httpPort: number } & { ramp: Ramp }
        buf = buf.slice(i + 1)
      }
    }
  })()
  const first = await lines.next()
  if (first.done) throw new Error('the broker child ended before it listened')
  return {
    ...first.value,
    child,
    ramp: lines.next().then((r) => (r.done ? Promise.reject(new Error('no ramp')) : r.value.ramp)),
    stop: async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

const CPU_READ_MS = 5

async function main(dataDir: string, target: number): Promise<void> {
  const { CloudBroker, DEFAULT_BROKER_OPTIONS } = await import('../broker/server.js')
  const broker = new CloudBroker(
    {
      ...DEFAULT_BROKER_OPTIONS,
      dataDir,
      host: '127.0.0.1',
      mqttPort: 0,
      httpPort: 0,
      rateLimit: { burst: 1_000_000, perSecond: 1_000_000 },
    },
    new SystemClock(),
    createLogger({ level: 'error' }),
  )
  const ports = await broker.start()
  const cpuStart = process.cpuUsage()
  let cpuAtLast = cpuStart
  console.log(JSON.stringify(ports))
  let connected = 0
  let firstAt = 0
  let lastAt = 0
  /** When cpuAtLast was read: at most every CPU_READ_MS, and at the target (see the clientReady handler). */
  let cpuReadAt = -Infinity
  let said = false
  const at90 = Math.ceil(target * 0.9)
  const at99 = Math.ceil(target * 0.99)
  let to90S: number | null = null
  let to99S: number | null = null
  const say = (): void => {
    said = true
    const firstToLastS = (lastAt - firstAt) / 1000
    const cpuPerPhoneMs = (cpuAtLast.user + cpuAtLast.system - cpuStart.user - cpuStart.system) / 1000 / Math.max(connected, 1)
    const perSecond = connected / Math.max(firstToLastS, 1e-3)
    const perSecondTo90 = to90S === null ? null : at90 / Math.max(to90S, 1e-3)
    console.log(JSON.stringify({ ramp: { connected, firstToLastS, perSecond, cpuPerPhoneMs, to90S, to99S, perSecondTo90 } }))
  }
  broker.aedes.on('clientReady', () => {
    lastAt = performance.now()
    // A getrusage per CONNACK was 1.1-1.5 % of this broker's on-CPU samples in a ramp (perf-split.js): the bench's own
    // cost in the figure it measures. Read every CPU_READ_MS instead, and at the target; a run stopped short of it
    // counts the CPU up to at most CPU_READ_MS before its last CONNACK.
    if (lastAt - cpuReadAt >= CPU_READ_MS || connected + 1 === target) {
      cpuAtLast = process.cpuUsage()
      cpuReadAt = lastAt
    }
    if (connected++ === 0) firstAt = lastAt
    if (connected === at90) to90S = (lastAt - firstAt) / 1000
    if (connected === at99) to99S = (lastAt - firstAt) / 1000
    if (connected === target) say()
  })
  process.on('SIGTERM', () => {
    if (!said) say()
    void broker.stop().then(() => process.exit(0))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv[2] as string, Number(process.argv[3] ?? 0))
