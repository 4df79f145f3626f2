/**
 * The connect ramp alone (issue 14): N devices connect (clean=false, as in the compare bench, 64 CONNECTs in flight)
 * to a fresh broker in its own process (broker-child.ts), no load before or after; prints the broker's CPU per
 * connect (from /proc: user + system over the ramp), the load generator's, and the time to connect all, as one
 * JSON line. The compare bench's ramp without its load windows, so before/after runs of a change to the connect path
 * take seconds, not minutes.
 *   node dist/bench/connect-ramp.js fakephone|aedes [N] [--profile DIR]
 * `--profile DIR`: a V8 CPU profile of the broker over the ramp alone (DIR/KIND-PID-connect.cpuprofile; read it with
 * `node dist/bench/cpu-top.js FILE`).
 */
import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDb } from '../broker/db.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import { looseFlags } from './args.js'
import { deviceIds, tempDir } from './cloud.js'
import { Cleanup, withTimeout } from './lifecycle.js'
import { connectPublishers, type Credentials } from './load.js'
import { sampleProcess, stopChild } from './mosquitto.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const READY_TIMEOUT_MS = 20_000

const flags = looseFlags()
const kind = process.argv[2] === 'aedes' ? 'aedes' : 'fakephone'
const n = flags.count(1000)
const profileDir = flags.value('--profile', '')

const cleanup = new Cleanup()
try {
  const creds: Credentials[] = deviceIds('ramp', n).map((id) => ({ id, secret: `s-${id}` }))
  const args = [kind]
  if (kind === 'fakephone') {
    const dir = await tempDir(cleanup, 'connect-ramp')
    const db = openDb(dir)
    const registry = new DeviceRegistry(db, Date.now)
    for (const c of creds) c.secret = (await registry.add(c.id, 'bench')).secret
    db.close()
    args.push(dir)
  }
  const env = profileDir ? { ...process.env, FAKEPHONE_PROFILE_DIR: profileDir, FAKEPHONE_PROFILE_PHASES: 'connect' } : process.env
  const child = spawn(process.execPath, [join(HERE, 'broker-child.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
  cleanup.defer('stop the broker', () => stopChild(child))
  let out = ''
  const lines = (match: RegExp): Promise<RegExpExecArray> =>
    withTimeout(
      new Promise<RegExpExecArray>((resolve) => {
        const onData = (d: Buffer): void => {
          out += d.toString()
          const m = match.exec(out)
          if (!m) return
          child.stdout?.off('data', onData)
          out = out.slice(m.index + m[0].length)
          resolve(m)
        }
        child.stdout?.on('data', onData)
      }),
      READY_TIMEOUT_MS,
      `the broker's ${String(match)}`,
    )
  const port = Number((await lines(/\{"port":(\d+)/))[1])
  const pid = child.pid as number
  if (profileDir) child.kill('SIGUSR2')
  const load = loadavg()[0] as number
  const before = await sampleProcess(pid)
  const ours = process.cpuUsage()
  const conn = await connectPublishers(`mqtt://127.0.0.1:${port}`, creds, cleanup, AbortSignal.timeout(120_000))
  const generator = process.cpuUsage(ours)
  const after = await sampleProcess(pid)
  if (profileDir) {
    child.kill('SIGUSR2')
    await lines(/"profiled"/)
  }
  const connected = conn.publishers.length
  const brokerUs = before && after ? ((after.cpuMs - before.cpuMs) * 1000) / connected : null
  console.log(
    JSON.stringify({
      kind,
      devices: n,
      connected,
      connectS: Math.round(conn.connectMs) / 1000,
      brokerUsPerConnect: brokerUs === null ? null : Math.round(brokerUs),
      generatorUsPerConnect: Math.round((generator.user + generator.system) / connected),
      load: Math.round(load * 100) / 100,
    }),
  )
} finally {
  await cleanup.runAll(() => {})
}
