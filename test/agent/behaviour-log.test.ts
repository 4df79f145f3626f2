/** X2: behaviour logs go up in batches over the data channel, never with the cloud service off, over mobile data only if allowed. */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Agent } from '../../agent/agent.js'
import { BehaviourLog, DEFAULT_LOG_TIMINGS, type DataPort, type PhoneState } from '../../agent/behaviour-log.js'
import type { ReceivedEvent } from '../../common/console-api.js'
import { ManualClock } from '../../common/clock.js'
import type { BehaviourEvent, LogBatch } from '../../common/contract.js'
import { addDevice, agentConnected, startAgent, startCloud, type Cloud } from '../fixtures/cloud.js'
import { dataTraffic, onePhone } from '../fixtures/framework.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

const MINUTE = 60_000
const MOVED = 'the cloud holds behaviour logs up to this seq, past this log (restored from an older copy?): the seqs go on above it'
/** What behaviour-log.json holds, as far as these tests read it. */
type LogState = { nextSeq: number; pending: BehaviourEvent[]; provisionalFrom?: number }
/** One simulated event a minute, an upload round every ten, four events a batch. */
const schedules = { eventEveryMs: MINUTE, uploadEveryMs: 10 * MINUTE, batchMax: 4 }

/** The phone's PUBACK comes before the cloud stores a batch (broker/server.ts): resolves once the cloud holds `events` of phone-a's. */
async function cloudStored(cloud: Cloud, events: number): Promise<void> {
  await cloud.logs.waitFor((l) => l.msg === 'behaviour logs stored' && cloud.broker.framework.logs.summary('phone-a').events >= events)
}

t.test('X2 behaviour events go up in batches over Wi-Fi on the schedule, and the cloud keeps what it received', async (t) => {
  const { cloud, clock, agent } = await onePhone(t, { framework: schedules })
  const traffic = await dataTraffic(t, cloud, 'phone-a')
  await agent.setSwitch('findDevice', false)
  clock.advance(10 * MINUTE)
  // 1 setting change + 10 simulated events = 11 = batches of 4, 4 and 3, each sent after the previous was acknowledged.
  await traffic.waitFor((m) => m.kind === 'logs' && (m.value as LogBatch).events.some((e) => e.seq === 10))
  // A watcher may see a message a moment before the cloud stores it (broker/server.ts): wait for what the cloud stored.
  await cloud.logs.waitFor((l) => l.msg === 'behaviour logs stored' && l.lastSeq === 10)
  const batches = traffic.all.filter((m) => m.kind === 'logs').map((m) => (m.value as LogBatch).events.length)
  t.same(batches, [4, 4, 3])
  const received = cloud.broker.framework.logs.list('phone-a', 100)
  t.equal(received.length, 11)
  t.same(
    received.map((e) => e.seq),
    [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
  )
  t.match(received.at(-1), { type: 'setting-changed', detail: 'findDevice=off' }, 'a real switch change is an event')
  t.match(received.at(-2), { type: 'screen-on' })
  t.match(received.at(-3), { type: 'app-opened', detail: /^\w+$/ })
  t.match(agent.status().framework.logs, { waiting: 0, uploaded: 11, notCollected: 0, deferred: null })
  t.equal(cloud.broker.framework.counters.logEvents, 11)
})

t.test('X2 over mobile data nothing goes up unless the user allowed it; with no network or no data channel it waits too', async (t) => {
  const { cloud, clock, agent } = await onePhone(t, { framework: schedules })
  await cloud.restart()
  while (agent.status().dataChannel !== 'waiting') await once(agent, 'channel')
  clock.advance(10 * MINUTE)
  t.match(agent.status().framework.logs, { waiting: 10, deferred: 'the data channel is down' })
  await agentConnected(agent)

  const traffic = await dataTraffic(t, cloud, 'phone-a')
  await agent.setNetwork('mobile')
  clock.advance(30 * MINUTE)
  t.match(agent.status().framework.logs, { uploaded: 0, deferred: /mobile data/ }, 'on mobile data: deferred')
  await agent.setNetwork('none')
  clock.advance(10 * MINUTE)
  t.match(agent.status().framework.logs, { waiting: 52, uploaded: 0, deferred: 'no network' }, 'deferred, not dropped')
  await agent.setNetwork('mobile')
  t.equal(traffic.all.filter((m) => m.kind === 'logs').length, 0, 'no log message reached the cloud')
  t.equal(cloud.broker.framework.logs.summary('phone-a').events, 0)

  const status = await agent.framework.setLogsOverMobile(true)
  t.equal(status.logsOverMobile, true)
  clock.advance(10 * MINUTE)
  await cloud.logs.waitFor((l) => l.msg === 'behaviour log batch uploaded' && l.waiting === 0)
  const uploaded = agent.status().framework.logs.uploaded
  await cloudStored(cloud, uploaded)
  const summary = cloud.broker.framework.logs.summary('phone-a')
  t.equal(summary.events, uploaded, 'allowed: everything deferred goes up over mobile data')
  t.ok(summary.events > 50)
})

t.test('X2 with the cloud service off nothing is collected, and after it is back on none of those events ever goes up', async (t) => {
  const { cloud, clock, agent } = await onePhone(t, { framework: schedules })
  const traffic = await dataTraffic(t, cloud, 'phone-a')
  clock.advance(5 * MINUTE)
  const waitingBefore = agent.status().framework.logs.waiting
  t.equal(waitingBefore, 5, 'five events recorded with consent, not yet uploaded')

  await agent.setSwitch('cloudService', false)
  const offAt = clock.now()
  clock.advance(60 * MINUTE)
  await agent.setNetwork('mobile')
  await agent.framework.setNetworkPermission(false)
  t.match(
    agent.status().framework.logs,
    { waiting: waitingBefore, notCollected: 63 },
    'an hour of events (and three switch changes) only counted',
  )
  const logBytesWhileOff = traffic.all.filter((m) => m.kind === 'logs').reduce((sum, m) => sum + m.bytes, 0)
  t.equal(logBytesWhileOff, 0, 'zero log bytes reached the cloud')

  await agent.setNetwork('wifi')
  await agent.setSwitch('cloudService', true)
  const onAt = clock.now()
  await agentConnected(agent)
  clock.advance(10 * MINUTE)
  await cloud.logs.waitFor((l) => l.msg === 'behaviour log batch uploaded' && l.waiting === 0)
  await cloudStored(cloud, agent.status().framework.logs.uploaded)
  const received = cloud.broker.framework.logs.list('phone-a', 1000)
  t.ok(received.length > waitingBefore)
  t.same(
    received.filter((e) => e.at > offAt && e.at < onAt),
    [],
    'no event from the off period reached the cloud',
  )
  t.notOk(
    received.some((e) => e.detail === 'cloudService=off'),
    'not even switching it off',
  )
  t.ok(received.some((e) => e.detail === 'cloudService=on'))
  t.equal(received.filter((e) => e.at <= offAt).length, waitingBefore, 'what was recorded with consent before went up')
})

t.test('X2 the cloud ignores logs from a device whose status says its cloud service is off', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const { connectDevice } = await import('../fixtures/cloud.js')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  await phone.publishAsync('fp/v1/phone-a/status', JSON.stringify({ cloudService: false, findDevice: true, at: 1 }), {
    qos: 1,
    retain: true,
  })
  await phone.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events: [{ seq: 0, at: 1, type: 'screen-on', detail: '' }] }), { qos: 1 })
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'behaviour logs ignored: the device has its cloud service off'))
  t.equal(cloud.broker.framework.logs.summary('phone-a').events, 0)
  t.equal(cloud.broker.framework.counters.logBatchesIgnored, 1)
  await phone.publishAsync('fp/v1/phone-a/status', JSON.stringify({ cloudService: true, findDevice: true, at: 2 }), {
    qos: 1,
    retain: true,
  })
  const batch = JSON.stringify({ events: [{ seq: 0, at: 1, type: 'screen-on', detail: '' }] })
  await phone.publishAsync('fp/v1/phone-a/logs', batch, { qos: 1 })
  await phone.publishAsync('fp/v1/phone-a/logs', batch, { qos: 1 })
  t.equal(cloud.broker.framework.logs.summary('phone-a').events, 1, 'a batch sent twice is stored once')
})

t.test('X2 a phone whose behaviour log came back from an older copy never reuses a seq the cloud holds, and loses no event', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const file = join(dataDir, 'behaviour-log.json')
  const start = async (): Promise<Agent> => startAgent(t, cloud, 'phone-a', secret, { dataDir, framework: schedules })
  const received = (): ReceivedEvent[] => cloud.broker.framework.logs.list('phone-a', 1000).reverse()

  // A first life: two events, not yet uploaded, and the user's copy of the data directory at a clean stop.
  let agent = await start()
  await agentConnected(agent)
  clock.advance(2 * MINUTE)
  await agent.stop()
  const copy = readFileSync(file, 'utf8')
  t.same(
    (JSON.parse(copy) as LogState).pending.map((e) => e.seq),
    [0, 1],
  )
  // The next life uploads them and ten more: the cloud holds 0-11.
  agent = await start()
  await agentConnected(agent)
  clock.advance(10 * MINUTE)
  await cloudStored(cloud, 12)
  await agent.stop()
  writeFileSync(file, copy)

  // The copy comes back, and the phone records two events before it reaches the cloud.
  await cloud.broker.stop()
  agent = await start()
  clock.advance(2 * MINUTE)
  t.match(agent.status().framework.logs, { waiting: 4 })
  await cloud.restart()
  // The phone retries within a second (its backoff, on the cloud's clock): a second records no event.
  while (agent.status().dataChannel !== 'waiting') await once(agent, 'channel')
  clock.advance(1000)
  await agentConnected(agent)
  t.ok(cloud.logs.has(MOVED), 'the phone says why its seqs moved')
  t.match(agent.status().framework.logs, { waiting: 2 }, 'the two the cloud already holds are not sent again')
  const stored = (): number => cloud.logs.lines.filter((l) => l.msg === 'behaviour logs stored').length
  const before = stored()
  clock.advance(10 * MINUTE)
  // Twelve events of this life, in three batches of four, each stored (or ignored as a replay) after its acknowledgement.
  await cloud.logs.waitFor((l) => l.msg === 'behaviour log batch uploaded' && l.waiting === 0)
  await cloud.logs.waitFor((l) => l.msg === 'behaviour logs stored' && stored() === before + 3)
  const events = received()
  t.same(
    events.map((e) => e.seq),
    [...Array(24).keys()],
    'each seq once, none reused: the events of this life numbered past the 11 the cloud held',
  )
  t.same(
    events.map((e) => e.at),
    events.map((e) => e.at).sort((a, b) => a - b),
    'a reader that keeps the last seq it saw misses nothing and sees them in the order they happened',
  )
  t.equal(events.filter((e) => e.receivedAt === events[23]?.receivedAt).length, 12, 'all twelve of this life reached the cloud')
})

/** A data channel whose publishes the test settles by hand. */
function fakePort(): DataPort & { sent: LogBatch[]; settle: (err?: Error) => void; connected(): boolean } {
  const sent: LogBatch[] = []
  let settle: (err?: Error) => void = () => {}
  return {
    sent,
    connected: () => true,
    publish: (batch) => {
      sent.push(batch)
      return new Promise((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())))
    },
    settle: (err) => settle(err),
  }
}

function makeLog(t: Test, port: DataPort, extra: Partial<ConstructorParameters<typeof BehaviourLog>[0]> = {}) {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const phone: PhoneState = { cloudService: true, network: 'wifi' }
  const dataDir = tempDir(t)
  const log = new BehaviourLog({
    ...DEFAULT_LOG_TIMINGS,
    ...schedules,
    dataDir,
    clock,
    log: logs.logger(),
    random: () => 0.5,
    phone: () => phone,
    logsOverMobile: () => false,
    data: port,
    ...extra,
  })
  return { log, clock, logs, dataDir }
}

t.test(
  'X2 one upload at a time; a failed upload keeps its events for the next round; a full log drops the oldest and says so',
  async (t) => {
    const port = fakePort()
    const { log, clock, logs } = makeLog(t, port, { pendingMax: 6 })
    await log.start()
    log.cloudHolds(null)
    clock.advance(10 * MINUTE)
    t.equal(port.sent.length, 1, 'the first batch is on its way')
    clock.advance(10 * MINUTE)
    t.equal(port.sent.length, 1, 'a round that finds an upload in flight leaves it alone')
    t.ok(logs.has('behaviour log full: oldest events dropped'))
    t.equal(log.status().waiting, 6)
    port.settle(new Error('the data channel closed before the broker acknowledged'))
    await logs.waitFor((l) => l.msg === 'behaviour log upload failed; the events wait for the next upload')
    t.equal(log.status().waiting, 6, 'nothing lost')
    clock.advance(10 * MINUTE)
    t.equal(port.sent.length, 2)
    t.same(
      port.sent[1]?.events.map((e) => e.seq),
      [23, 24, 25, 26],
      'the oldest of the six kept (23-28) go first',
    )
    port.settle()
    await logs.waitFor((l) => l.msg === 'behaviour log batch uploaded')
    const stopping = log.stop()
    port.settle()
    await stopping
    t.equal(clock.waiting, 0, 'stopped: no timer left')
  },
)

t.test('X2 seqs are provisional until the cloud says what it holds (across restarts), then past it; a held one goes no more', async (t) => {
  const port = fakePort()
  const { log, clock, logs, dataDir } = makeLog(t, port)
  const file = join(dataDir, 'behaviour-log.json')
  const onDisk = (): LogState => JSON.parse(readFileSync(file, 'utf8')) as LogState
  await log.start()
  clock.advance(10 * MINUTE)
  t.same(port.sent, [], 'connected, but the cloud has not said which seqs it holds: nothing goes')
  t.match(log.status(), { waiting: 10, deferred: 'the cloud has not said which seqs it holds' })
  await log.stop()
  t.equal(onDisk().provisionalFrom, 0, 'the file says the events are numbered provisionally')

  // The next run, still before the cloud's word: its events are provisional too.
  const again = makeLog(t, port, { dataDir, log: logs.logger(), clock }).log
  await again.start()
  again.connecting()
  clock.advance(2 * MINUTE)
  again.cloudHolds(4)
  clock.advance(8 * MINUTE)
  t.same(
    port.sent[0]?.events.map((e) => e.seq),
    [5, 6, 7, 8],
    "all twelve moved past the cloud's 4, in their order",
  )
  const moved = (): number => logs.lines.filter((l) => l.msg === MOVED).length
  t.equal(moved(), 1, 'the phone says why its seqs moved')

  // The acknowledgement is lost: the cloud holds 5-8 all the same, and says so on the next connection.
  port.settle(new Error('the data channel closed before the broker acknowledged'))
  await logs.waitFor((l) => l.msg === 'behaviour log upload failed; the events wait for the next upload')
  again.connecting()
  clock.advance(10 * MINUTE)
  t.equal(port.sent.length, 1, "a new connection waits for the cloud's word again")
  again.cloudHolds(8)
  t.match(again.status(), { waiting: 26, uploaded: 4 }, 'the four it holds are not sent again')
  again.cloudHolds(8)
  t.equal(moved(), 1, 'no seq moved: nothing more to say')
  clock.advance(10 * MINUTE)
  t.same(
    port.sent[1]?.events.map((e) => e.seq),
    [9, 10, 11, 12],
  )
  // The channel reconnects: the batch in flight is the last until the cloud's word.
  again.connecting()
  const stopping = again.stop()
  port.settle()
  await stopping
  t.equal(onDisk().provisionalFrom, undefined, 'numbered for good')
})

t.test("X2 a cloud that holds none of a new phone's events keeps its numbers", async (t) => {
  const port = fakePort()
  const { log, clock, dataDir } = makeLog(t, port)
  await log.start()
  clock.advance(MINUTE)
  log.cloudHolds(null)
  clock.advance(MINUTE)
  await log.stop()
  const state = JSON.parse(readFileSync(join(dataDir, 'behaviour-log.json'), 'utf8')) as LogState
  t.same(
    state.pending.map((e) => e.seq),
    [0, 1],
  )
  t.equal(state.provisionalFrom, undefined)
})

t.test('X2 a log that cannot be saved says so and carries on in memory', async (t) => {
  const { log, clock, logs, dataDir } = makeLog(t, fakePort())
  await log.start()
  rmSync(dataDir, { recursive: true })
  clock.advance(MINUTE)
  t.ok(await logs.waitFor((l) => l.msg === 'could not save the behaviour log'))
  t.equal(log.status().waiting, 1)
  mkdirSync(dataDir)
  await log.stop()
  const kept = JSON.parse(readFileSync(join(dataDir, 'behaviour-log.json'), 'utf8')) as { pending: unknown[] }
  t.equal(kept.pending.length, 1, 'the stop wrote what the failed save could not')
})

t.test('X2 a stop writes the log only when it holds something not yet saved', async (t) => {
  const { log, clock, dataDir, logs } = makeLog(t, fakePort())
  const file = join(dataDir, 'behaviour-log.json')
  await log.start()
  await log.stop()
  t.notOk(existsSync(file), 'nothing recorded: no file written at stop')

  await log.start()
  clock.advance(MINUTE)
  await log.stop()
  t.equal((JSON.parse(readFileSync(file, 'utf8')) as { pending: unknown[] }).pending.length, 1, 'the event recorded is on disk')

  const again = makeLog(t, fakePort(), { dataDir, log: logs.logger() }).log
  await again.start()
  t.equal(again.status().waiting, 1, 'loaded')
  // Changed behind the log's back: a stop that wrote the log again would put the event back.
  const emptied = { nextSeq: 1, pending: [], uploaded: 0, notCollected: 0, lastUploadAt: null }
  writeFileSync(file, JSON.stringify(emptied))
  await again.stop()
  t.same(JSON.parse(readFileSync(file, 'utf8')), emptied, 'nothing new since the load: not written again')
})
