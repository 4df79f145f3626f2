/**
 * `npm run fuzz -- [--count N] [--seed S] [--parallel P]`: the suite's fuzz
 * test (test/broker/fuzz.test.ts) for longer, against a broker in this
 * process on an OS-chosen port; prints what it did and exits 1 when a
 * well-behaved device stopped being served or a handler failed.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { fuzz } from './fuzz.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const count = arg('count', 10_000)
const seed = arg('seed', Date.now() % 2 ** 31)
const parallel = arg('parallel', 16)

const dataDir = mkdtempSync(join(tmpdir(), 'fakephone-fuzz-'))
const broker = new CloudBroker(
  { ...DEFAULT_BROKER_OPTIONS, dataDir, mqttPort: 0, httpPort: 0, rateLimit: { burst: 1e9, perSecond: 1e9 }, connectTimeoutMs: 2_000 },
  new SystemClock(),
  createLogger({ level: 'silent' }),
)
const { mqttPort } = await broker.start()
const fuzzDevice = await broker.registry.add('fuzz-a', 'fuzz')
const good = await broker.registry.add('phone-a', 'fuzz')
const phone = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
  clientId: 'phone-a',
  username: 'phone-a',
  password: good.secret,
  reconnectPeriod: 0,
})
let seq = 0
let served = true
const started = performance.now()
process.stderr.write(`[fuzz] seed ${seed}, ${count} cases, ${parallel} at a time\n`)
const stats = await fuzz(mqttPort, { deviceId: 'fuzz-a', secret: fuzzDevice.secret }, seed, count, parallel, async (i) => {
  if (i % 100 !== 0) return
  await phone.publishAsync(
    'fp/v1/phone-a/heartbeat',
    JSON.stringify({ seq: seq++, at: Date.now(), lat: 1, lon: 1, accuracy: 1, speed: 0, battery: 50, charging: false, network: 'wifi' }),
    { qos: 1 },
  )
  served &&= phone.connected
  if (i % 1000 === 0) process.stderr.write(`[fuzz] ${i} cases, heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB\n`)
})
broker.store.flush()
const storedAll = broker.store.history('phone-a', seq + 1).length === seq
const report = {
  seed,
  ...stats,
  seconds: (performance.now() - started) / 1000,
  heapMb: process.memoryUsage().heapUsed / 1e6,
  served: served && storedAll,
  counters: broker.counters,
}
process.stdout.write(JSON.stringify(report, null, 2) + '\n')
await phone.endAsync()
await broker.stop()
rmSync(dataDir, { recursive: true, force: true })
process.exitCode = report.served && broker.counters.handlerFailures === 0 ? 0 : 1
