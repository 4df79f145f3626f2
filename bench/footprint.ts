/**
 * `npm run footprint`: the resident memory of fakephone's daemons as a
 * service runs them, i.e. the built CLI as separate processes on 127.0.0.1:
 *   1. one `fakephone agent` process, after 10 s of heartbeats every second;
 *   2. the `fakephone broker` process idle, then with 100 agents connected and
 *      sending a heartbeat every second for 10 s.
 * The 100 agents of step 2 run inside this process (real Agent objects over
 * real TCP), so only the broker's side of them is in the broker's figure.
 * RSS is read from /proc/PID/status (VmRSS now, VmHWM the peak), so Linux only.
 * Everything is bounded in time; Ctrl-C stops it all.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { Agent } from '../agent/agent.js'
import { FixedSource } from '../agent/location.js'
import { openDb } from '../broker/db.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { deviceIds, LOOPBACK, tempDir } from './cloud.js'
import { Cleanup, errorText, inBatches, interruptSignal, sleep, waitUntil, withTimeout } from './lifecycle.js'
import { machineInfo } from './report.js'

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const AGENTS = 100
const SETTLE_MS = 10_000
const START_LIMIT_MS = 20_000
const CONNECT_LIMIT_MS = 30_000

const progress = (line: string): void => {
  process.stderr.write(`[footprint] ${line}\n`)
}

interface Rss {
  rssMb: number
  peakMb: number
}

/** VmRSS and VmHWM of a process, in MB. */
function rssOf(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 }
}

/** Spawns the built CLI; resolves once a JSON log line matching `ready` appears on its stdout. */
async function daemon(
  cleanup: Cleanup,
  name: string,
  args: string[],
  ready: (line: Record<string, unknown>) => boolean,
): Promise<{ proc: ChildProcessWithoutNullStreams; line: Record<string, unknown> }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' })
  const exited = once(proc, 'exit')
  cleanup.defer(`stop ${name}`, async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    await exited
  })
  let stderr = ''
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const found = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (text) => {
      if (!text.startsWith('{')) return
      const line = JSON.parse(text) as Record<string, unknown>
      if (ready(line)) resolve(line)
    })
    void exited.then(() => reject(new Error(`${name} exited early: ${stderr.trim()}`)))
  })
  return { proc, line: await withTimeout(found, START_LIMIT_MS, `${name} start-up`) }
}

async function measure(signal: AbortSignal): Promise<void> {
  const cleanup = new Cleanup()
  try {
    const dir = await tempDir(cleanup, 'footprint')
    const ids = deviceIds('fp', AGENTS + 1)
    progress(`registering ${ids.length} devices`)
    const db = openDb(join(dir, 'cloud'))
    const registry = new DeviceRegistry(db, Date.now)
    const devices = await inBatches(ids, 16, signal, async (id) => ({ id, secret: (await registry.add(id, 'footprint')).secret }))
    db.close()

    // All connections come from 127.0.0.1: lift the per-address limit, through the config file as an operator would.
    const config = join(dir, 'broker.json')
    await writeFile(
      config,
      JSON.stringify({
        dataDir: join(dir, 'cloud'),
        host: LOOPBACK,
        mqttPort: 0,
        httpPort: 0,
        rateLimit: { burst: 10_000, perSecond: 10_000 },
        logLevel: 'info',
      }),
    )
    const broker = await daemon(cleanup, 'broker', ['broker', '--config', config], (l) => l.msg === 'broker listening')
    const mqttUrl = `mqtt://${LOOPBACK}:${String(broker.line.mqttPort)}`
    await sleep(2000, undefined, { signal })
    const brokerIdle = rssOf(broker.proc.pid as number)
    progress(`broker idle: ${brokerIdle.rssMb.toFixed(1)} MB`)

    const first = devices[0] as { id: string; secret: string }
    const secretFile = join(dir, 'agent.secret')
    await writeFile(secretFile, first.secret, { mode: 0o600 })
    const agent = await daemon(
      cleanup,
      'agent',
      [
        'agent',
        '--id',
        first.id,
        '--secret-file',
        secretFile,
        '--broker',
        mqttUrl,
        '--data',
        join(dir, 'phone'),
        '--fixed',
        '55.95,-3.19',
        '--interval',
        '1s',
      ],
      (l) => l.msg === 'agent started',
    )
    await sleep(SETTLE_MS, undefined, { signal })
    const agentRss = rssOf(agent.proc.pid as number)
    progress(`one agent process: ${agentRss.rssMb.toFixed(1)} MB`)

    progress(`connecting ${AGENTS} agents`)
    const clock = new SystemClock()
    const log = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) })
    const fleet = devices.slice(1).map(
      (d) =>
        new Agent({
          id: d.id,
          secret: d.secret,
          brokerUrl: mqttUrl,
          dataDir: join(dir, 'fleet', d.id),
          clock,
          log,
          location: new FixedSource({ lat: 55.95, lon: -3.19 }),
          heartbeatMs: 1000,
          jitter: 0.1,
        }),
    )
    for (const a of fleet) cleanup.defer(`stop ${a.status().id}`, () => a.stop())
    await inBatches(fleet, 20, signal, (a) => a.start())
    const connected = (): number => fleet.filter((a) => a.status().dataChannel === 'connected').length
    if (!(await waitUntil(() => connected() === AGENTS, CONNECT_LIMIT_MS, signal, 50)))
      throw new Error(`only ${connected()} of ${AGENTS} agents connected`)
    await sleep(SETTLE_MS, undefined, { signal })
    const brokerLoaded = rssOf(broker.proc.pid as number)
    const sent = fleet.reduce((n, a) => n + a.status().heartbeatsSent, 0)
    progress(`broker with ${AGENTS} agents: ${brokerLoaded.rssMb.toFixed(1)} MB`)

    const m = machineInfo()
    const mb = (r: Rss): string => `${r.rssMb.toFixed(0)} MB (peak ${r.peakMb.toFixed(0)} MB)`
    process.stdout.write(
      [
        `fakephone footprint, ${new Date().toISOString()}`,
        `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB RAM, Node ${m.node} (${m.platform})`,
        `  one agent process, heartbeat every 1 s          ${mb(agentRss)}`,
        `  broker process, idle                            ${mb(brokerIdle)}`,
        `  broker process, ${AGENTS} agents connected, 1 hb/s each  ${mb(brokerLoaded)}  (${sent} heartbeats in ${SETTLE_MS / 1000} s)`,
        '',
      ].join('\n'),
    )
    process.stdout.write(
      JSON.stringify({ machine: m, agent: agentRss, brokerIdle, brokerWithAgents: { agents: AGENTS, ...brokerLoaded, heartbeats: sent } }) +
        '\n',
    )
  } finally {
    await cleanup.runAll(progress)
  }
}

measure(interruptSignal(progress)).then(
  () => process.exit(0),
  (err: unknown) => {
    progress(`failed: ${errorText(err)}`)
    process.exit(1)
  },
)
