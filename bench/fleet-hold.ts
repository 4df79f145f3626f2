/**
 * A fleet's memory over a run (issue 12): N complete phones in this process
 * (run with --expose-gc, and the worker's heap flags to match `--workers`:
 * `--max-semi-space-size=4 --heap-growing-percent=30`) against the fakephone
 * broker in a process of its own (fleet-broker.ts), a heartbeat each every
 * `--every` ms, held `--hold` s once every phone is connected. Says the peak
 * RSS and V8 heap over the run, per phone, and the heap still live per phone
 * after a full GC at the end: what the phones and the run's own records keep,
 * which fleet-memory.ts (a heartbeat every 10 minutes) leaves out on purpose.
 *   npm run build && node --expose-gc --max-semi-space-size=4 --heap-growing-percent=30 dist/bench/fleet-hold.js [N]
 *     [--every MS] [--hold S] [--no-push]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapStatistics } from 'node:v8'
import { startBrokerChild } from './fleet-broker.js'
import { SystemClock } from '../common/clock.js'
import { looseFlags } from './args.js'
import { createLogger } from '../common/log.js'
import { OwnerKeys, readPublicKey } from '../common/signing.js'
import { planFleet } from '../fleet/plan.js'
import { Rng } from '../fleet/prng.js'
import { provision } from '../fleet/provision.js'
import { FleetRun } from '../fleet/runner.js'
import { checkScenario } from '../fleet/scenario.js'

const flags = looseFlags()
const n = flags.count(2000)
const every = Number(flags.value('--every', '2000'))
const holdS = Number(flags.value('--hold', '60'))
const push = !flags.has('--no-push')
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')
const KB = 1024

const dir = mkdtempSync(join(tmpdir(), 'fakephone-fleet-hold-'))
const clock = new SystemClock()
const credentials = provision({ dataDir: join(dir, 'cloud'), keysDir: join(dir, 'keys'), count: n, prefix: 'fh', clock })
const broker = await startBrokerChild(join(dir, 'cloud'), n)
const keys = new OwnerKeys(credentials.keysDir)
const loaded = checkScenario({ groups: [{ name: 'g', heartbeat: { every, jitter: 0.1 } }] }, 'hold', '.')
const run = new FleetRun({
  plan: planFleet(
    loaded,
    'hold',
    credentials.devices.map((d) => d.id),
    3_600_000,
  ),
  devices: credentials.devices,
  ownerKey: (account) => readPublicKey(keys.ownerKeyFile(account)),
  brokerUrl: `mqtt://127.0.0.1:${broker.mqttPort}`,
  pushUrl: push ? `ws://127.0.0.1:${broker.httpPort}/push` : undefined,
  dataDir: join(dir, 'phones'),
  clock,
  log: createLogger({ level: 'error' }),
  backoff: { baseMs: 500, capMs: 10_000 },
  random: (index) => Rng.stream('hold', index, 'agent').next,
  // As `fleet run` (fleet/session.ts) runs it.
  heartbeatEvents: false,
})
try {
  for (let i = 0; i < 3; i++) gc()
  const heap0 = getHeapStatistics().used_heap_size
  const rss0 = process.memoryUsage.rss()
  const load = [loadavg()[0] as number]
  let peakRss = rss0
  let peakHeap = heap0
  const peaks = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
    peakHeap = Math.max(peakHeap, getHeapStatistics().total_physical_size)
  }, 100)
  const started = performance.now()
  run.start()
  while (run.phonesUp().connected < n) await new Promise((resolve) => setTimeout(resolve, 100))
  const rampS = (performance.now() - started) / 1000
  await new Promise((resolve) => setTimeout(resolve, holdS * 1000))
  clearInterval(peaks)
  load.push(loadavg()[0] as number)
  for (let i = 0; i < 3; i++) gc()
  const live = getHeapStatistics().used_heap_size
  const perPhone = (bytes: number): number => Math.round((bytes / n / KB) * 10) / 10
  console.log(
    JSON.stringify({
      phones: n,
      push,
      every,
      holdS,
      load,
      rampS: Math.round(rampS * 10) / 10,
      heartbeatsSent: run.tally.heartbeats.sent,
      heartbeatsAcked: run.tally.heartbeats.acked,
      peakRssKbPerPhone: perPhone(peakRss - rss0),
      peakHeapKbPerPhone: perPhone(peakHeap - heap0),
      liveHeapKbPerPhone: perPhone(live - heap0),
    }),
  )
} finally {
  await run.stop()
  await broker.stop()
  rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
