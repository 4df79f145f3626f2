/**
 * `fakephone fleet run` (issue 12): complete agents in one process against a
 * real broker. Determinism on a ManualClock (two runs of one seed, one event
 * log), a fleet that reconciles to nothing lost, planned answers honoured.
 */
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConsoleClient } from '../../cli/console-client.js'
import { ManualClock, SystemClock } from '../../common/clock.js'
import { OwnerKeys, readPublicKey } from '../../common/signing.js'
import { HttpFleetConsole } from '../../fleet/console-driver.js'
import { planFleet } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { renderReport } from '../../fleet/report.js'
import { FleetRun } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { runSession } from '../../fleet/session.js'
import { startCloud } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'
import { LogCapture } from '../fixtures/logs.js'

const GPX =
  '<gpx><trk><trkseg><trkpt lat="55.95" lon="-3.19"/><trkpt lat="55.951" lon="-3.185"/>' +
  '<trkpt lat="55.949" lon="-3.18"/></trkseg></trk></gpx>'

const BUSY = {
  stages: [
    { kind: 'ramp-up', rate: 4 },
    { kind: 'steady', for: '30s' },
    { kind: 'ramp-down', rate: 4 },
  ],
  groups: [
    {
      name: 'walk',
      movement: { type: 'random-walk', centre: [55.95, -3.19], radiusM: 200 },
      heartbeat: { every: '2s', jitter: 0.3 },
      outages: { every: '15s', for: '4s' },
      switches: [
        { at: '5s', name: 'networkPermission', on: false },
        { at: '12s', name: 'networkPermission', on: true },
        { at: '10s', name: 'findDevice', on: false, share: 0.5 },
        { at: '20s', name: 'findDevice', on: true, share: 0.5 },
        { at: '25s', name: 'cloudService', on: false, share: 0.5 },
        { at: '30s', name: 'cloudService', on: true, share: 0.5 },
      ],
    },
    { name: 'track', movement: { type: 'gpx', file: 'walk.gpx' }, heartbeat: { every: '3s' } },
    {
      name: 'desk',
      movement: { type: 'stationary', at: [51.5, -0.12] },
      battery: { level: [10, 20], drainPerHour: 2000, chargePerHour: 4000, plugAt: 5 },
      heartbeat: { every: '2s' },
      commands: { answer: { succeed: 0.5, fail: 0.3, ignore: 0.2 } },
    },
  ],
  console: { commands: { every: '8s', types: ['locate', 'ring'] }, notifications: { every: '10s' } },
}

/** One seeded run on a ManualClock against its own broker, stepped half a second at a time, each step settled. */
async function manualRun(t: Test, seed: string): Promise<FleetRun> {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'walk.gpx'), GPX)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count: 8, prefix: 'det', accounts: 2, clock })
  const keys = new OwnerKeys(credentials.keysDir)
  const plan = planFleet(
    checkScenario(BUSY, 'busy', dir),
    seed,
    credentials.devices.map((d) => d.id),
  )
  const run = new FleetRun({
    plan,
    devices: credentials.devices,
    ownerKey: (account) => readPublicKey(keys.ownerKeyFile(account)),
    brokerUrl: cloud.mqttUrl,
    pushUrl: cloud.pushUrl,
    dataDir: join(dir, 'phones'),
    clock,
    log: cloud.logs.logger(),
    console: new HttpFleetConsole(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), keys),
    backoff: { baseMs: 50, capMs: 200 },
    random: (index) => Rng.stream(seed, index, 'agent').next,
  })
  t.teardown(() => run.stop())
  run.start()
  await run.settled()
  for (let i = 0; i < 400 && run.elapsed <= plan.endAt; i++) {
    clock.advance(500)
    await run.settled()
  }
  await run.stop()
  return run
}

type Curves = Record<string, { route: string[]; battery: string[] }>

/** Each phone's route (position by time) and battery curve (percent, + charging, by time), from a run's heartbeat events. */
function curves(run: FleetRun): Curves {
  const out: Curves = {}
  for (const e of run.eventLog()) {
    if (e.kind !== 'heartbeat') continue
    const [, position, battery] = e.detail.split(' ') as [string, string, string]
    const c = (out[e.device] ??= { route: [], battery: [] })
    c.route.push(`${e.t} ${position}`)
    c.battery.push(`${e.t} ${battery}`)
  }
  return out
}

t.test('two runs of one seed on a ManualClock give the same event log: routes, battery curves, event times', async (t) => {
  const a = await manualRun(t, 'same')
  const b = await manualRun(t, 'same')
  const log = a.eventLog()
  const kinds = new Set(log.map((e) => e.kind))
  for (const k of ['start', 'stop', 'heartbeat', 'outage', 'back', 'switch', 'command', 'notify'])
    t.ok(kinds.has(k), `the log has ${k} events`)
  t.ok(log.filter((e) => e.kind === 'heartbeat').length > 50, 'heartbeats with positions and battery')
  t.same(b.eventLog(), log, 'identical event logs')
  const ab = curves(a)
  t.same(curves(b), ab, 'each phone: the same route and battery curve, at the same times')
  // How many positions, or battery readings, the phone that has the most of them shows (times left out).
  const values = (pick: (c: Curves[string]) => string[]): number =>
    Math.max(...Object.values(ab).map((c) => new Set(pick(c).map((x) => x.split(' ')[1])).size))
  t.ok(values((c) => c.route) > 5 && values((c) => c.battery) > 5, 'routes that move, batteries that drain and charge')
  t.notSame(curves(await manualRun(t, 'other')), ab, 'another seed: other routes and battery curves')
  t.same(b.tally.heartbeats, a.tally.heartbeats)
  t.equal(a.tally.heartbeats.acked, a.tally.heartbeats.sent, 'every heartbeat acknowledged')
  t.ok(a.tally.commands.received > 0 && a.tally.notifications.shown > 0)
  // F2 on /metrics while it runs: the planned failures and silences, as the report counts them at the end.
  const { failedByScenario, ignoredByScenario } = a.tally.commands
  t.ok(failedByScenario > 0 && ignoredByScenario > 0, `${failedByScenario} failed and ${ignoredByScenario} ignored as planned`)
  const scraped = await a.metrics.registry.metrics()
  const counted = (outcome: string): number =>
    Number(new RegExp(`^fakephone_fleet_commands_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(scraped)?.[1])
  t.equal(counted('failed'), failedByScenario)
  t.equal(counted('ignored'), ignoredByScenario)
  t.ok(counted('succeeded') > 0, 'commands succeeded as planned too')
  t.equal(counted('succeeded') + counted('failed'), a.tally.commands.answered, 'each answered command under one outcome: they sum')
  t.match(scraped, new RegExp(`^fakephone_fleet_heartbeats_acked_total ${a.tally.heartbeats.acked}$`, 'm'))
  t.match(scraped, new RegExp(`^fakephone_fleet_notifications_shown_total ${a.tally.notifications.shown}$`, 'm'))
  t.match(
    scraped,
    /^# HELP fakephone_fleet_notification_delay_seconds how late the phone showed a notification: from its createdAt/m,
    "the histogram says what it measures: the cloud's createdAt to shown, not the fleet's queueing",
  )
  t.equal(a.phonesUp().running, 0, 'every phone stopped at its planned time')
  t.ok(
    log.some((e) => e.kind === 'heartbeat' && e.detail.endsWith('+')),
    'a drained battery plugs in and charges',
  )
})

t.test('a 100-phone fleet against the real broker reconciles to nothing lost; planned answers are honoured', async (t) => {
  const dir = tempDir(t)
  const loaded = checkScenario(
    {
      name: 'ci',
      stages: [
        { kind: 'ramp-up', rate: 500 },
        { kind: 'steady', for: '4s' },
      ],
      groups: [
        {
          name: 'phones',
          movement: { type: 'random-walk', centre: [55.95, -3.19] },
          heartbeat: { every: '1s', jitter: 0.2 },
          commands: { answer: { succeed: 0.6, fail: 0.2, ignore: 0.2 }, delay: { min: 0, max: '50ms' } },
        },
      ],
      console: { commands: { every: '2s' }, notifications: { every: '3s' } },
    },
    'ci',
    dir,
  )
  let metricsUrl = ''
  let scraped: Promise<string> | undefined
  const started = performance.now()
  const report = await runSession({
    count: 100,
    loaded,
    seed: 'ci',
    push: true,
    clock: new SystemClock(),
    log: new LogCapture().logger(),
    signal: new AbortController().signal,
    workDir: dir,
    metricsPort: 0,
    serving: (url) => (metricsUrl = url),
    // Scraped once, a second into the run.
    tick: () => void (scraped ??= fetch(metricsUrl).then((r) => r.text())),
  })
  const metrics = await (scraped as unknown as Promise<string>)
  for (const name of [
    'fakephone_fleet_heartbeat_puback_seconds_bucket',
    'fakephone_fleet_command_answer_seconds_count',
    'fakephone_fleet_notification_delay_seconds_sum',
    'fakephone_fleet_reconnects_total',
    'fakephone_fleet_heartbeats_sent_total',
    'fakephone_fleet_heartbeats_acked_total',
    'fakephone_fleet_commands_total',
    'fakephone_fleet_notifications_shown_total',
    'fakephone_fleet_phones_connected',
  ])
    t.match(metrics, name)
  t.comment(`100 phones: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  t.comment(renderReport(report))
  t.equal(report.phones.started, 100)
  t.ok(report.heartbeats.sent > 100, 'heartbeats flowed')
  t.equal(report.heartbeats.stored, report.heartbeats.sent, 'the cloud stored every heartbeat sent')
  t.equal(report.heartbeats.lost, 0)
  t.equal(report.commands.lost, 0)
  t.equal(report.notifications.lost, 0)
  t.ok(report.ok)
  t.ok(report.resources.rssPeakMb > 0 && report.resources.cpuUserMs > 0)
  const c = report.commands
  t.equal(c.answeredByPhones, c.answered, "the phones' own count of what they answered is the console's")
  const answeredOrNot = c.received + c.ignoredByScenario
  t.ok(answeredOrNot > 30, `enough commands to judge (${answeredOrNot})`)
  t.ok(Math.abs(c.ignoredByScenario / answeredOrNot - 0.2) < 0.15, `ignored ${c.ignoredByScenario} of ${answeredOrNot}`)
  t.ok(Math.abs(c.failedByScenario / answeredOrNot - 0.2) < 0.15, `failed ${c.failedByScenario} of ${answeredOrNot}`)
})
