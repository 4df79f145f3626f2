/**
 * Issue 12's memory and CPU targets, measured in one run: the fleet's phones
 * beside a naive fleet of bare mqtt.js connections, each variant in a child
 * process of its own (so each RSS figure is its own), all against one
 * fakephone broker in this process, N phones, one heartbeat each every
 * `--every` ms:
 *   bare      N bare mqtt.js connections publishing valid heartbeats (QoS 1), nothing else
 *   owntracks fleet run --profile owntracks (one connection, a timer and a battery per phone)
 *   no-push   fleet run --no-push (complete agents, data channel only)
 *   full      fleet run (complete agents, both channels)
 * KB per phone is (peak RSS - RSS before the first phone) / N; CPU per
 * message is the child's user + system CPU over the run / messages sent.
 *   npm run build && node dist/bench/fleet-footprint.js [N] [--every MS] [--seconds S]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { readingOf } from '../agent/heartbeat.js'
import { looseFlags } from './args.js'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { ensureConsoleToken } from '../broker/console-token.js'
import { SystemClock } from '../common/clock.js'
import { encodePayload, topicFor } from '../common/contract.js'
import { createLogger } from '../common/log.js'
import { readCredentials, writeCredentialsOf } from '../fleet/credentials.js'
import { fleetCredentials, provision } from '../fleet/provision.js'
import { checkScenario } from '../fleet/scenario.js'
import { runSession } from '../fleet/session.js'

const VARIANTS = ['bare', 'owntracks', 'no-push', 'full'] as const
type Variant = (typeof VARIANTS)[number]
const LOOPBACK = '127.0.0.1'

interface Figures {
  variant: Variant
  phones: number
  connected: number
  connectS: number
  kbPerPhone: number
  cpuPerMessageUs: number
  messages: number
}

interface ChildArgs {
  variant: Variant
  mqttUrl: string
  pushUrl: string
  credentials: string
  every: number
  seconds: number
}

/** The naive fleet: bare connections, each publishing a heartbeat every `every` ms. */
async function bare(a: ChildArgs): Promise<Figures> {
  const { devices } = readCredentials(a.credentials)
  const rssStart = process.memoryUsage.rss()
  const cpuStart = process.cpuUsage()
  const started = performance.now()
  const clients = await Promise.all(
    devices.map(async (d) => {
      const c = mqtt.connect(a.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
      await new Promise((resolve) => c.once('connect', resolve))
      return c
    }),
  )
  const connectS = (performance.now() - started) / 1000
  let rssPeak = process.memoryUsage.rss()
  let messages = 0
  const timers = clients.map((c, i) => {
    let seq = 0
    return setInterval(
      () => {
        const fix = { lat: 55.95, lon: -3.19, accuracy: 8, speed: 1.4 }
        const hb = { seq: seq++, ...readingOf(Date.now(), fix, { level: 80, charging: false }, 'wifi') }
        c.publish(topicFor((devices[i] as { id: string }).id, 'heartbeat'), encodePayload('heartbeat', hb), { qos: 1 })
        messages++
      },
      a.every * (0.9 + (0.2 * i) / clients.length),
    )
  })
  for (let s = 0; s < a.seconds; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  }
  timers.forEach(clearInterval)
  const cpu = process.cpuUsage(cpuStart)
  await Promise.all(clients.map((c) => c.endAsync(true)))
  return {
    variant: 'bare',
    phones: devices.length,
    connected: clients.length,
    connectS,
    kbPerPhone: (rssPeak - rssStart) / devices.length / 1024,
    cpuPerMessageUs: (cpu.user + cpu.system) / Math.max(1, messages),
    messages,
  }
}

async function fleet(a: ChildArgs): Promise<Figures> {
  const credentials = readCredentials(a.credentials)
  const work = mkdtempSync(join(tmpdir(), 'fakephone-footprint-'))
  const controller = new AbortController()
  try {
    const report = await runSession({
      count: credentials.devices.length,
      loaded: checkScenario({ groups: [{ name: 'g', heartbeat: { every: a.every, jitter: 0.1 } }] }, 'footprint', '.'),
      seed: 'footprint',
      durationMs: a.seconds * 1000,
      push: a.variant === 'full',
      clock: new SystemClock(),
      log: createLogger({ level: 'error' }),
      signal: controller.signal,
      workDir: work,
      remote: { brokerUrl: a.mqttUrl, pushUrl: a.pushUrl, credentials },
      profile: a.variant === 'owntracks' ? 'owntracks' : undefined,
    })
    return {
      variant: a.variant,
      phones: report.phones.target,
      connected: report.phones.started - report.phones.startFailures,
      connectS: NaN,
      kbPerPhone: report.resources.rssPerPhoneKb,
      cpuPerMessageUs: report.resources.cpuPerMessageUs,
      messages: report.heartbeats.sent,
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function runChild(a: ChildArgs): Promise<Figures> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', JSON.stringify(a)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() as string) as Figures) : reject(new Error(`${a.variant}: exit ${code}`)),
    ),
  )
}

async function parent(argv: string[]): Promise<void> {
  const flags = looseFlags(argv)
  const n = flags.count(1000)
  const every = Number(flags.value('--every', '5000'))
  const seconds = Number(flags.value('--seconds', '20'))
  const dir = mkdtempSync(join(tmpdir(), 'fakephone-footprint-'))
  const log = createLogger({ level: 'error' })
  const clock = new SystemClock()
  const broker = new CloudBroker(
    {
      ...DEFAULT_BROKER_OPTIONS,
      dataDir: join(dir, 'cloud'),
      host: LOOPBACK,
      mqttPort: 0,
      httpPort: 0,
      rateLimit: { burst: 1e6, perSecond: 1e6 },
    },
    clock,
    log,
  )
  try {
    const { mqttPort, httpPort } = await broker.start()
    ensureConsoleToken(join(dir, 'cloud'))
    const credentials = join(dir, 'fleet.json')
    process.stderr.write(`provisioning ${n} devices...\n`)
    const plan = { dataDir: join(dir, 'cloud'), keysDir: join(dir, 'keys'), count: n, prefix: 'fp', clock }
    const secrets = fleetCredentials(plan)
    await writeCredentialsOf(credentials, secrets, () => provision(plan, secrets))
    const rows: Figures[] = []
    for (const variant of VARIANTS) {
      process.stderr.write(`${variant}: ${n} phones, one heartbeat every ${every} ms, ${seconds} s\n`)
      const row = await runChild({
        variant,
        mqttUrl: `mqtt://${LOOPBACK}:${mqttPort}`,
        pushUrl: `ws://${LOOPBACK}:${httpPort}/push`,
        credentials,
        every,
        seconds,
      })
      // Said at once, so a later variant's failure does not lose it.
      process.stderr.write(`${JSON.stringify(row)}\n`)
      rows.push(row)
    }
    const cpu = cpus()[0]
    console.log(`machine: ${cpus().length} × ${cpu?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`)
    console.log('| variant | phones | connected | KB RSS per phone | CPU per message | messages |')
    console.log('|---|---|---|---|---|---|')
    for (const r of rows)
      console.log(
        `| ${r.variant} | ${r.phones} | ${r.connected} | ${r.kbPerPhone.toFixed(1)} | ` +
          `${r.cpuPerMessageUs.toFixed(0)} µs | ${r.messages} |`,
      )
    writeFileSync(join(tmpdir(), 'fakephone-fleet-footprint.json'), JSON.stringify(rows, null, 2))
  } finally {
    await broker.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const [mode, json] = process.argv.slice(2)
if (mode === 'child') {
  const a = JSON.parse(json as string) as ChildArgs
  const figures = a.variant === 'bare' ? await bare(a) : await fleet(a)
  console.log(JSON.stringify(figures))
  process.exit(0)
} else await parent(process.argv.slice(2))
