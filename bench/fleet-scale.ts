/**
 * Issue 12's big run: N complete phones (`fakephone fleet run`, workers as
 * `--workers` says, auto by default) against the fakephone broker in a
 * process of its own (fleet-broker.ts), one heartbeat each every `--every`
 * ms (10,000 phones every 10 s: 1,000 heartbeats/s). Says the ramp (MQTT
 * clients connected per second, counted by the broker), phones connected,
 * messages lost, the fleet's RSS per phone, event-loop delay p99 and CPU per
 * message from the run's own reconciled report.
 *   npm run build && node dist/bench/fleet-scale.js [N] [--every MS] [--seconds S] [--no-push] [--workers K|auto]
 *     [--fleet-node-flags "--flag ..."]   (V8/Node flags for the fleet's process only, not the broker's: heap trials)
 *     [--phones-at-once N]   (fleet run's gate, fleet/gate.ts)
 *     [--broker-node-flags "--flag ..."]   (the same for the broker's process: `--cpu-prof --cpu-prof-dir DIR` profiles it)
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureConsoleToken } from '../broker/console-token.js'
import { CONNECTIONS_PER_PHONE, connectionRoom } from '../common/open-files.js'
import { looseFlags } from './args.js'
import { SystemClock } from '../common/clock.js'
import { writeCredentialsOf } from '../fleet/credentials.js'
import { fleetCredentials, provision } from '../fleet/provision.js'
import type { FleetReport } from '../fleet/report.js'
import { startBrokerChild, type Ramp } from './fleet-broker.js'

const flags = looseFlags()
const n = flags.count(10_000)
const every = Number(flags.value('--every', '10000'))
const seconds = Number(flags.value('--seconds', '60'))
const workers = flags.value('--workers', 'auto')
const push = !flags.has('--no-push')
const fleetNodeFlags = flags.value('--fleet-node-flags', '').split(' ').filter(Boolean)
const phonesAtOnce = flags.value('--phones-at-once', '')
const brokerNodeFlags = flags.value('--broker-node-flags', '').split(' ').filter(Boolean)

const dir = mkdtempSync(join(tmpdir(), 'fakephone-fleet-scale-'))
const cloud = join(dir, 'cloud')
try {
  process.stderr.write(`provisioning ${n} devices...\n`)
  const credentials = join(dir, 'fleet.json')
  const plan = { dataDir: cloud, keysDir: join(dir, 'keys'), count: n, prefix: 'fs', clock: new SystemClock() }
  const secrets = fleetCredentials(plan)
  await writeCredentialsOf(credentials, secrets, () => provision(plan, secrets))
  const token = ensureConsoleToken(cloud)
  const scenario = join(dir, 'scenario.json')
  writeFileSync(scenario, JSON.stringify({ name: 'scale', groups: [{ name: 'g', heartbeat: { every, jitter: 0.1 } }] }))
  const broker = await startBrokerChild(cloud, n, brokerNodeFlags)
  try {
    const loadBefore = loadavg()[0] as number
    const reportFile = join(dir, 'report.json')
    const main = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'cli', 'main.js')
    process.stderr.write(
      `${n} phones${push ? '' : ' (--no-push)'}, a heartbeat each every ${every} ms, ${seconds} s, --workers ${workers}\n`,
    )
    // The broker child has this process's limits; past its room the OS refuses connections and the ramp grows a tail.
    const room = connectionRoom()
    const holds = room && Math.floor(room.connections / (push ? CONNECTIONS_PER_PHONE : 1))
    if (holds !== undefined && holds < n) {
      process.stderr.write(
        `the broker's open-file room (about ${room?.connections} connections) holds ${holds} of these phones: ` +
          `the last ${n - holds} wait, retrying, until others let go, and the ramp below ends with them\n`,
      )
    }
    const fleet = spawn(
      process.execPath,
      [
        ...fleetNodeFlags,
        main,
        'fleet',
        'run',
        ...['--count', String(n), '--scenario', scenario, '--duration', `${seconds}s`, '--workers', workers],
        ...['--broker', `mqtt://127.0.0.1:${broker.mqttPort}`, '--credentials', credentials],
        ...['--api', `http://127.0.0.1:${broker.httpPort}`, '--console-token', token, '--report', reportFile, '--log-level', 'error'],
        ...(push ? [] : ['--no-push']),
        ...(phonesAtOnce ? ['--phones-at-once', phonesAtOnce] : []),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    await once(fleet, 'exit')
    await broker.stop()
    const ramp = await broker.ramp
    const r = JSON.parse(readFileSync(reportFile, 'utf8')) as FleetReport
    const cpu = cpus()[0]
    const figures = {
      machine: `${cpus().length} × ${cpu?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
      load: { before: loadBefore, after: loadavg()[0] },
      phones: n,
      push,
      fleetNodeFlags,
      workers: r.workers?.length ?? 1,
      ramp: ramp satisfies Ramp,
      started: r.phones.started,
      startFailures: r.phones.startFailures,
      lost: { phones: r.phones.lost, heartbeats: r.heartbeats.lost, commands: r.commands.lost, notifications: r.notifications.lost },
      heartbeats: r.heartbeats,
      resources: r.resources,
    }
    console.log(JSON.stringify(figures, null, 1))
    writeFileSync(join(tmpdir(), `fakephone-fleet-scale-${n}${push ? '' : '-no-push'}.json`), JSON.stringify(figures, null, 1))
  } finally {
    await broker.stop()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
