/**
 * `node dist/bench/command-cpu.js [--n 400] [--warmup 50] [--every 25] [--log warn|info] [--profile FILE]`:
 * what one signed command round trip (F2) costs in CPU, with the broker, a
 * real agent and the console client in one process and no heartbeat load
 * (issue 14). The round trip is the compare bench's (bench/round-trip.ts):
 * an owner-signed `locate` through `ConsoleClient.submitAndWait` (one HTTP
 * request, as the CLI submits), run by a real Agent (journal sync included)
 * and its receipt verified with the device key; a start every `--every` ms.
 * Prints one JSON line: p50/p99 of the round trip, the process's CPU (all
 * threads, user + system) per round trip over the measured ones, and the
 * journal's share. `--profile FILE` writes a V8 CPU profile of the measured
 * round trips only (node:inspector, started after the warm-up); `--log info`
 * runs the broker and agent at a daemon's log level (to /dev/null, or to the file
 * CMD_CPU_LOG names) instead of the bench's `warn`.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ensureConsoleToken } from '../broker/console-token.js'
import { createLogger } from '../common/log.js'
import { registerDevices, startCloud, tempDir } from './cloud.js'
import { Owner } from './commands.js'
import { Cleanup, sleep } from './lifecycle.js'
import { commandProbe } from './round-trip.js'
import { LatencyRecorder } from './stats.js'

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '400' },
    warmup: { type: 'string', default: '50' },
    every: { type: 'string', default: '25' },
    log: { type: 'string', default: 'warn' },
    profile: { type: 'string' },
  },
})
const n = Number(values.n)
const warmup = Number(values.warmup)
const everyMs = Number(values.every)

const log =
  values.log === 'warn'
    ? createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) })
    : createLogger({ level: values.log, destination: pino.destination({ dest: process.env.CMD_CPU_LOG ?? '/dev/null', sync: false }) })

const cleanup = new Cleanup()
try {
  const cloud = await startCloud(cleanup, log, 'command-cpu')
  const owner = new Owner(await tempDir(cleanup, 'command-cpu-owner'))
  const [device] = await registerDevices(cloud, ['cpu-00001'], new AbortController().signal)
  if (!device) throw new Error('no device registered')
  owner.keys.rememberDevice(device.id, device.secret)
  const probe = await commandProbe({
    mqttUrl: cloud.mqttUrl,
    apiUrl: cloud.httpUrl,
    consoleToken: ensureConsoleToken(join(cloud.dataDir, 'cloud')),
    device,
    owner,
    dataDir: await tempDir(cleanup, 'command-cpu-agent'),
    log,
  })
  cleanup.defer('close the probe', () => probe.close())
  const paced = async (count: number, each: (ms: number) => void): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      await probe.once()
      const ms = performance.now() - started
      each(ms)
      if (everyMs - ms > 0) await sleep(everyMs - ms)
    }
  }
  await paced(warmup, () => {})
  const session = values.profile ? new Session() : null
  if (session) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.start')
  }
  probe.journal?.reset()
  process.stderr.write(`command-cpu: measuring ${n} round trips\n`)
  const latency = new LatencyRecorder(n)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await paced(n, (ms) => latency.record(ms))
  const cpu = process.cpuUsage(cpu0)
  const wallMs = performance.now() - t0
  process.stderr.write('command-cpu: measured\n')
  if (session && values.profile) {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(values.profile, JSON.stringify(profile))
    session.disconnect()
  }
  const s = latency.summary()
  const journal = probe.journal?.inPath
  process.stdout.write(
    JSON.stringify({
      n: s.count,
      p50: s.p50,
      p99: s.p99,
      cpuPerRoundTripMs: (cpu.user + cpu.system) / 1000 / s.count,
      userMs: cpu.user / 1000 / s.count,
      systemMs: cpu.system / 1000 / s.count,
      journalMs: journal ? journal.totalMs / s.count : null,
      wallMs,
    }) + '\n',
  )
} finally {
  await cleanup.runAll((line) => process.stderr.write(line + '\n'))
}
