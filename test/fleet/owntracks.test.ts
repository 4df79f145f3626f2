/**
 * `fakephone fleet run --profile owntracks` (issue 12): the payloads field by
 * field against the OwnTracks booklet (common/owntracks.ts cites it), a seeded
 * fleet against a real Mosquitto (every location counted by a subscriber,
 * reportLocation answered, the lwt on an abrupt disconnect), and the same
 * profile against fakephone's broker, where each location is stored as the
 * device's heartbeat (F1) and a device is refused on another's topics.
 */
import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ManualClock, SystemClock, type Clock } from '../../common/clock.js'
import {
  locationPayload,
  locationToHeartbeat,
  OwnTracksCmdSchema,
  OwnTracksLocationSchema,
  OwnTracksLwtSchema,
  OwnTracksTransitionSchema,
  owntracksTopic,
  parseOwnTracksTopic,
} from '../../common/owntracks.js'
import type { FleetDevice } from '../../fleet/credentials.js'
import { anonymousDevices } from '../../fleet/credentials.js'
import { OwnTracksPhone } from '../../fleet/owntracks-phone.js'
import { planFleet } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { FleetRun } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { runSession } from '../../fleet/session.js'
import { heartbeat, startCloud } from '../fixtures/cloud.js'
import { run as runCli } from '../fixtures/io.js'
import { LogCapture } from '../fixtures/logs.js'
import { mosquittoBin, NO_MOSQUITTO, startMosquitto } from '../fixtures/mosquitto.js'
import { onEnd, tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

/** The next `event` of an mqtt.js client (its typed emitter is not a node:events one). */
const next = (client: MqttClient, event: 'connect' | 'message' | 'close'): Promise<unknown> =>
  new Promise((resolve) => client.once(event, resolve))

const MOSQUITTO = await mosquittoBin()
/** Skips a Mosquitto test, saying why, where mosquitto is not installed (.ci/run installs it). */
const needsMosquitto = { skip: MOSQUITTO ? false : NO_MOSQUITTO }

const READING = { at: 1_767_225_600_900, lat: 55.948612, lon: -3.199871, accuracy: 8.4, speed: 1.4, battery: 81, charging: false }

t.test('a location carries the booklet fields with their types and units', async (t) => {
  const loc = locationPayload({ ...READING, network: 'wifi' }, 'ot-00042', undefined, 1_767_225_601_500)
  t.same(loc, {
    _type: 'location',
    tst: 1_767_225_600, // epoch seconds of the fix
    lat: 55.948612,
    lon: -3.199871,
    acc: 8, // metres, integer
    batt: 81, // percent, integer
    bs: 1, // unplugged
    vel: 5, // 1.4 m/s = 5.04 km/h, integer
    conn: 'w',
    tid: '42', // the last two characters of the topic
    created_at: 1_767_225_601,
  })
  t.ok(Number.isInteger(loc.tst) && Number.isInteger(loc.acc) && Number.isInteger(loc.batt) && Number.isInteger(loc.vel))
  const still = locationPayload({ ...READING, accuracy: 0, speed: 0, battery: 100, charging: true, network: 'mobile' }, 'x1', 'r')
  t.notOk('acc' in still || 'vel' in still, 'acc and vel are left out when zero')
  t.same([still.bs, still.conn, still.t, still.created_at], [3, 'm', 'r', still.tst], 'full on the charger, mobile data, an answer')
  t.same(
    [
      locationPayload({ ...READING, charging: true, network: 'none' }, 'x1').bs,
      locationPayload({ ...READING, network: 'none' }, 'x1').conn,
    ],
    [2, 'o'],
  )
  t.notOk(OwnTracksLocationSchema.safeParse({ ...loc, tst: 1.5 }).success, 'tst is an integer')
  t.notOk(OwnTracksLocationSchema.safeParse({ ...loc, conn: 'x' }).success, 'conn is w, m or o')
  t.ok(OwnTracksLwtSchema.safeParse({ _type: 'lwt', tst: 1 }).success)
  t.ok(OwnTracksCmdSchema.safeParse({ _type: 'cmd', action: 'reportLocation' }).success)
  const transition = { _type: 'transition', wtst: 1, lat: 1, lon: 2, tst: 3, acc: 10, event: 'enter', desc: 'home', t: 'c' }
  t.ok(OwnTracksTransitionSchema.safeParse(transition).success)
  t.notOk(OwnTracksTransitionSchema.safeParse({ ...transition, event: 'stay' }).success, 'event is enter or leave')
  t.equal(owntracksTopic('jane', 'phone', 'cmd'), 'owntracks/jane/phone/cmd')
  t.same(parseOwnTracksTopic('owntracks/jane/phone'), { user: 'jane', device: 'phone', sub: null })
  t.equal(parseOwnTracksTopic('owntracks/+/phone'), null)
})

t.test('F1: one mapping from an OwnTracks location to a heartbeat, schema-checked', async (t) => {
  const loc = locationPayload({ ...READING, charging: true, network: 'mobile' }, 'ot-1')
  const hb = locationToHeartbeat(loc, 7)
  t.same(hb, {
    ok: true,
    value: {
      seq: 7,
      at: 1_767_225_600_000,
      lat: 55.948612,
      lon: -3.199871,
      accuracy: 8,
      speed: 5 / 3.6,
      battery: 81,
      charging: true,
      network: 'mobile',
    },
  })
  const bare = locationToHeartbeat({ _type: 'location', tst: 10, lat: 1, lon: 2, batt: 50 }, 0)
  t.match(bare, { ok: true, value: { accuracy: 0, speed: 0, charging: false, network: 'wifi' } }, 'missing fields read as the booklet says')
  t.match(locationToHeartbeat({ _type: 'location', tst: 10, lat: 1, lon: 2 }, 0), { ok: false, reason: /batt is missing/ })
  t.match(locationToHeartbeat({ _type: 'location', tst: 10, lat: 1, lon: 2, batt: 5, acc: 10_000_000 }, 0), {
    ok: false,
    reason: /accuracy/,
  })
})

/** Every message on owntracks/#, parsed. */
async function watch(t: Test, url: string): Promise<{ client: MqttClient; seen: { topic: string; body: Record<string, unknown> }[] }> {
  const client = mqtt.connect(url, { clientId: `watch-${process.pid}`, reconnectPeriod: 0 })
  onEnd(t, () => client.endAsync(true))
  await next(client, 'connect')
  const seen: { topic: string; body: Record<string, unknown> }[] = []
  client.on('message', (topic, payload) => {
    // What the test itself sends on cmd topics need not be JSON.
    if (payload[0] === 0x7b) seen.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> })
  })
  await client.subscribeAsync('owntracks/#', { qos: 1 })
  return { client, seen }
}

/**
 * Waits, by the subscriber's own messages, until `ok()` holds. The bound is for a fleet that never publishes: phones
 * start, connect and send their first location on the real clock, which a loaded machine stretched past 5 s.
 */
async function seenUntil(client: MqttClient, ok: () => boolean, what: string): Promise<void> {
  await within(
    20_000,
    what,
    (async () => {
      while (!ok()) await next(client, 'message')
    })(),
  )
}

const SCENARIO = {
  name: 'ot',
  groups: [
    {
      name: 'walk',
      movement: { type: 'random-walk', centre: [55.95, -3.19] },
      heartbeat: { every: '1s', jitter: 0.2 },
      switches: [{ at: '2s', name: 'findDevice', on: false }],
    },
  ],
}

/** A seeded OwnTracks fleet on a ManualClock, stepped half a second at a time to `ms`, each step settled. */
async function fleet(
  t: Test,
  url: string,
  devices: FleetDevice[],
  clock: ManualClock,
  ms: number,
  scenario: object = SCENARIO,
): Promise<FleetRun> {
  const plan = planFleet(
    checkScenario(scenario, 'ot', '.'),
    'ot-seed',
    devices.map((d) => d.id),
    ms,
  )
  const logs = new LogCapture()
  const run = new FleetRun({
    plan,
    devices,
    ownerKey: () => undefined,
    brokerUrl: url,
    dataDir: tempDir(t),
    clock,
    log: logs.logger(),
    backoff: { baseMs: 50, capMs: 200 },
    random: (index) => Rng.stream('ot-seed', index, 'agent').next,
    profile: 'owntracks',
  })
  onEnd(t, () => run.stop())
  run.start()
  await run.settled()
  while (run.elapsed < ms) {
    clock.advance(500)
    await run.settled()
  }
  return run
}

function phone(url: string, clock: Clock, device: string, user: string, logs = new LogCapture(), gps = true): OwnTracksPhone {
  return new OwnTracksPhone({
    brokerUrl: url,
    user,
    device,
    clock,
    log: logs.logger(),
    location: { fix: () => (gps ? { lat: 55.95, lon: -3.19, accuracy: 5, speed: 0 } : null) },
    heartbeatMs: 1000,
    jitter: 0,
    random: () => 0.5,
    battery: { level: 80, model: { drainPerHour: 1, chargePerHour: 10, plugAt: 10 } },
  })
}

t.test(
  'against Mosquitto: every location arrives, reportLocation is answered, the lwt follows an abrupt end, not a clean stop',
  needsMosquitto,
  async (t) => {
    const url = await startMosquitto(t, MOSQUITTO as string)
    const { client, seen } = await watch(t, url)
    const clock = new ManualClock()
    const devices = anonymousDevices(4, 'ot', 'fleet').devices
    const run = await fleet(t, url, devices, clock, 4_000)
    const sent = run.tally.heartbeats.sent
    t.ok(sent >= 4 * 3, `${sent} locations published`)
    t.equal(run.tally.heartbeats.acked, sent, 'every one acknowledged')
    const locations = (): typeof seen => seen.filter((m) => m.body['_type'] === 'location')
    await seenUntil(client, () => locations().length >= sent, 'the subscriber counts every location')
    t.equal(locations().length, sent, 'the subscriber got as many as were published')
    t.ok(locations().every((m) => OwnTracksLocationSchema.safeParse(m.body).success && parseOwnTracksTopic(m.topic)?.user === 'fleet'))
    t.ok(
      run.eventLog().some((e) => e.kind === 'switch-skipped' && e.detail.includes('OwnTracks')),
      'switches are not for OwnTracks phones',
    )

    const first = devices[0] as FleetDevice
    await client.publishAsync(owntracksTopic('fleet', first.id, 'cmd'), JSON.stringify({ _type: 'cmd', action: 'reportLocation' }), {
      qos: 1,
    })
    await client.publishAsync(owntracksTopic('fleet', first.id, 'cmd'), JSON.stringify({ _type: 'cmd', action: 'dump' }), { qos: 1 })
    await client.publishAsync(owntracksTopic('fleet', first.id, 'cmd'), 'not json', { qos: 1 })
    const answer = (): boolean => seen.some((m) => m.topic === owntracksTopic('fleet', first.id) && m.body['t'] === 'r')
    await seenUntil(client, answer, 'a location with t=r answers reportLocation')
    t.ok(answer())
    await run.settled()
    t.same([run.tally.commands.received, run.tally.commands.answered], [2, 1], 'two cmds received (bad JSON ignored), one answered')

    const firstConnect = Math.floor(clock.now() / 1000)
    const lone = phone(url, clock, 'ot-lone', 'jane', new LogCapture(), false)
    let beats = 0
    lone.on('heartbeat', () => beats++)
    await lone.start()
    t.equal(lone.status().dataChannel, 'connected')
    clock.advance(1_000)
    t.equal(beats, 0, 'no location without a fix')
    const quitter = phone(url, clock, 'ot-quits', 'jane', new LogCapture(), false)
    await quitter.start()
    await quitter.stop()
    await lone.kill()
    await seenUntil(client, () => seen.some((m) => m.topic === 'owntracks/jane/ot-lone'), 'the broker publishes the last will')
    const will = seen.find((m) => m.topic === 'owntracks/jane/ot-lone')
    t.same(will?.body, { _type: 'lwt', tst: firstConnect }, 'lwt with the time it first connected')
    t.notOk(
      seen.some((m) => m.topic === 'owntracks/jane/ot-quits'),
      'a phone stopped cleanly (stopped before the killed one) sends DISCONNECT: no last will',
    )
  },
)

t.test('a location whose PUBACK never comes (the phone killed at once) is not counted as acknowledged', needsMosquitto, async (t) => {
  const url = await startMosquitto(t, MOSQUITTO as string)
  const clock = new ManualClock()
  const logs = new LogCapture()
  const p = phone(url, clock, 'ot-cut', 'jane', logs)
  let acked = 0
  p.on('heartbeatAcked', () => acked++)
  await p.start()
  clock.advance(1_000)
  await p.kill()
  t.equal(acked, 0)
  t.ok(logs.has('owntracks: location not acknowledged'))
})

t.test("against fakephone's broker: locations stored as heartbeats; a device is kept to its own topics", async (t) => {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count: 3, prefix: 'otb', clock })
  const run = await fleet(t, cloud.mqttUrl, credentials.devices, clock, 3_000)
  const sent = run.tally.heartbeats.sent
  t.ok(sent >= 6 && run.tally.heartbeats.acked === sent, `${sent} locations, all acknowledged`)
  cloud.broker.store.flush()
  const stored = credentials.devices.reduce((n, d) => n + cloud.broker.store.history(d.id, 1000).length, 0)
  t.equal(stored, sent, 'each location stored once as a heartbeat')
  const [a, b] = credentials.devices as [FleetDevice, FleetDevice]
  const rows = cloud.broker.store.history(a.id, 1000)
  t.same(
    rows.map((r) => r.seq),
    rows.map((_, i) => rows.length - 1 - i),
    'numbered 0, 1, 2... by the cloud',
  )

  // A device as a raw client: its own topic takes a location once; the same again is a redelivery; others are refused.
  const raw = mqtt.connect(cloud.mqttUrl, { clientId: a.id, username: a.id, password: a.secret, reconnectPeriod: 0 })
  onEnd(t, () => raw.endAsync(true))
  await next(raw, 'connect')
  const subscribe = (topic: string): Promise<number | undefined> =>
    new Promise((resolve) => raw.subscribe(topic, { qos: 1 }, (err, granted) => resolve(err ? 128 : granted?.[0]?.qos)))
  t.equal(await subscribe(owntracksTopic(a.account, a.id, 'cmd')), 1, 'its own cmd topic')
  t.equal(await subscribe(owntracksTopic(b.account, b.id, 'cmd')), 128, "not another device's")
  t.equal(await subscribe(owntracksTopic(a.account, a.id)), 128, 'not its own location topic either')
  const own = owntracksTopic(a.account, a.id)
  const before = cloud.broker.counters.heartbeats
  const loc = JSON.stringify({ _type: 'location', tst: 2_000_000_000, lat: 1, lon: 2, batt: 50 })
  await raw.publishAsync(own, loc, { qos: 1 })
  await raw.publishAsync(own, loc, { qos: 1 })
  await raw.publishAsync(own, JSON.stringify({ _type: 'location', tst: 2_000_000_001, lat: 1, lon: 2 }), { qos: 1 })
  await raw.publishAsync(own, JSON.stringify({ _type: 'lwt', tst: 1 }), { qos: 1 })
  t.equal(cloud.broker.counters.heartbeats, before + 1, 'one stored: not the repeat, not the one without batt, not the lwt')
  t.ok(cloud.logs.has('OwnTracks location not stored'))
  const closed = next(raw, 'close')
  raw.publish(owntracksTopic(b.account, b.id), loc, { qos: 1 })
  await closed
  t.ok(cloud.logs.has('publish refused'), "a location on another device's topic closes the connection")

  const bad = mqtt.connect(cloud.mqttUrl, { clientId: b.id, username: b.id, password: b.secret, reconnectPeriod: 0 })
  onEnd(t, () => bad.endAsync(true))
  await next(bad, 'connect')
  const gone = next(bad, 'close')
  bad.publish(owntracksTopic(b.account, b.id), '{"_type":"location"}', { qos: 1 })
  await gone
  t.ok(
    cloud.logs.lines.some((l) => /malformed OwnTracks payload/.test(JSON.stringify(l))),
    'a malformed location is refused',
  )
  cloud.broker.registry.remove(a.id)
  t.ok(
    cloud.logs.has('device removed: disconnected, its queued messages dropped, its retained presence and status cleared'),
    'its numbering goes with it',
  )

  // A device that sent fakephone heartbeats first: its OwnTracks locations carry on from the highest seq stored.
  const [c] = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys2'), count: 1, prefix: 'otc', clock }).devices as [FleetDevice]
  const both = mqtt.connect(cloud.mqttUrl, { clientId: c.id, username: c.id, password: c.secret, reconnectPeriod: 0 })
  onEnd(t, () => both.endAsync(true))
  await next(both, 'connect')
  await both.publishAsync(`fp/v1/${c.id}/heartbeat`, JSON.stringify(heartbeat(7, { at: clock.now() })), { qos: 1 })
  await both.publishAsync(owntracksTopic(c.account, c.id), loc, { qos: 1 })
  cloud.broker.store.flush()
  t.same(
    cloud.broker.store.history(c.id, 10).map((r) => r.seq),
    [8, 7],
    'the location is heartbeat 8',
  )
})

/** Two OwnTracks phones from the command line; each test adds where they go. */
const RUN_TWO = ['fleet', 'run', '--count', '2', '--profile', 'owntracks']

/** A scenario file in `dir` whose phones send a location every `everyMs`. */
function fastScenario(dir: string, everyMs: number): string {
  const file = join(dir, `every-${everyMs}.json`)
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'g', heartbeat: { every: everyMs } }] }))
  return file
}

t.test('F1: an OwnTracks phone back from an outage counts its locations on, not as duplicates of its life before', async (t) => {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(tempDir(t), 'keys'), count: 3, prefix: 'oto', clock })
  const away = { ...SCENARIO, groups: [{ ...SCENARIO.groups[0], outages: { every: '2s', for: '1s' } }] }
  const run = await fleet(t, cloud.mqttUrl, credentials.devices, clock, 8_000, away)
  const { sent, acked, duplicateAcks } = run.tally.heartbeats
  t.ok(run.tally.phones.restarts >= 2, `${run.tally.phones.restarts} phones back from an outage`)
  t.same({ acked, duplicateAcks }, { acked: sent, duplicateAcks: 0 }, `${sent} locations, each acknowledged once`)
  cloud.broker.store.flush()
  const stored = credentials.devices.reduce((n, d) => n + cloud.broker.store.history(d.id, 1000).length, 0)
  t.equal(stored, sent, 'the cloud holds as many: none was sent twice')
})

t.test('fleet run --profile owntracks from the command line with credentials; a profile it does not know', async (t) => {
  const cloud = await startCloud(t, {}, new SystemClock())
  const dir = tempDir(t)
  const creds = join(dir, 'c.json')
  t.equal(
    (
      await runCli([
        'fleet',
        'provision',
        '--count',
        '2',
        '--account-prefix',
        'otc',
        '--data',
        cloud.dataDir,
        '--keys',
        join(dir, 'k'),
        '--out',
        creds,
      ])
    ).code,
    0,
  )
  const scenario = fastScenario(dir, 300)
  const out = await runCli(
    [...RUN_TWO, '--broker', cloud.mqttUrl, '--credentials', creds, '--scenario', scenario, '--duration', '1500ms', '--json'],
    new SystemClock(),
  )
  t.equal(out.code, 0, out.err)
  const report = JSON.parse(out.out) as { ok: boolean; heartbeats: { sent: number; acked: number; stored: number | null } }
  t.match(report, { ok: true, heartbeats: { stored: null } })
  t.ok(report.heartbeats.sent > 0 && report.heartbeats.acked === report.heartbeats.sent, 'every location acknowledged')
  const bad = await runCli(['fleet', 'run', '--count', '1', '--profile', 'mqttx'])
  t.match(bad.err, /the one profile is owntracks/)
})

t.test('fleet run --profile owntracks against a plain Mosquitto: anonymous phones', needsMosquitto, async (t) => {
  const url = await startMosquitto(t, MOSQUITTO as string)
  const scenario = fastScenario(tempDir(t), 200)
  // 3 s, not 1: each worker's phone must get its first location out before the run stops it, and on a loaded machine a
  // freshly forked worker's first second can go on loading code (this failed twice at load 10-12 with 1 s).
  const anon = await runCli([...RUN_TWO, '--broker', url, '--duration', '3s', '--workers', '2', '--scenario', scenario], new SystemClock())
  t.equal(anon.code, 0, anon.err)
  t.match(anon.out, /workers +#1 pid \d+: 1 phone reported; #2 pid \d+: 1 phone reported/)
  t.match(anon.out, /result: OK/)
  // Locations are retained: a subscriber that comes after the run still gets each phone's last one.
  const { client, seen } = await watch(t, url)
  const topics = (): Set<string> => new Set(seen.filter((m) => m.body['_type'] === 'location').map((m) => m.topic))
  await seenUntil(client, () => topics().size === 2, `a location from each phone (the run said: ${anon.out})`)
  t.same(
    [...topics()].sort(),
    ['owntracks/fleet/owntracks-00001', 'owntracks/fleet/owntracks-00002'],
    'each worker ran its phone as OwnTracks',
  )
})

t.test('runSession with the owntracks profile and its own broker', async (t) => {
  const report = await runSession({
    count: 2,
    loaded: checkScenario({ groups: [{ name: 'g', heartbeat: { every: 300 } }] }, 's', '.'),
    seed: 's',
    durationMs: 1000,
    push: true,
    clock: new SystemClock(),
    log: new LogCapture().logger(),
    signal: new AbortController().signal,
    workDir: tempDir(t),
    profile: 'owntracks',
  })
  t.ok(report.ok && report.heartbeats.sent > 0 && report.heartbeats.stored === null, 'PUBACKs are the evidence')
})
