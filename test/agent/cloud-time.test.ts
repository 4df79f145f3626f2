/**
 * One time for the whole system: a phone follows the cloud's clock over its
 * data channel (the `time` topic), so what it stamps -- heartbeats, and so the
 * console's AGE -- reads the cloud's time after `console clock advance`; and
 * over its push channel (X1: the one left with the cloud service off), so a
 * notification shown after a jump is stamped on that same clock.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ShownNotification } from '../../agent/push-inbox.js'
import { ManualClock, SimulatedClock } from '../../common/clock.js'
import { CLOCK_FILE, PhoneClock, readAhead } from '../../common/cloud-time.js'
import { addDevice, agentConnected, cloudWithAgent, firstFix, startAgent, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { listening, makeOwner, provision, run, signed } from '../fixtures/owner.js'
import { notify, pushAtCloud, pushConnected, pushState } from '../fixtures/framework.js'
import { tempDir } from '../fixtures/scope.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** A cloud on a simulated clock over `real` (a manual one), device phone-a registered, and that phone's clock in its data directory. */
async function simulatedCloud(t: Test) {
  const real = new ManualClock()
  const cloudClock = new SimulatedClock(real)
  const cloud = await startCloud(t, {}, cloudClock)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  return { real, cloudClock, cloud, secret, dataDir, phoneClock: new PhoneClock(dataDir, real) }
}

/**
 * A real broker on its manual clock with the owner's phone-a, and that phone as a Pi: its wall clock `behindMs` behind
 * the cloud's, its data directory holding `savedAheadMs` in clock.json (0: no file), its clock following the cloud as
 * `fakephone agent` has it. Resolves once the phone has its first fix and listens for commands.
 */
async function piOf(t: Test, behindMs: number, savedAheadMs = 0) {
  const cloud = await startCloud(t)
  const cloudClock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  const real = new ManualClock(cloudClock.now() - behindMs)
  const dataDir = tempDir(t)
  if (savedAheadMs > 0) writeFileSync(join(dataDir, CLOCK_FILE), JSON.stringify({ aheadMs: savedAheadMs }) + '\n')
  const phoneClock = new PhoneClock(dataDir, real, cloud.logs.logger())
  const startedAt = phoneClock.now()
  const agent = await startAgent(t, cloud, 'phone-a', secret, {
    dataDir,
    clock: phoneClock,
    followCloud: (now, exact) => phoneClock.follow(now, exact),
    ownerKey: owner.publicKey,
  })
  await firstFix(cloud, agent)
  await listening(cloud, 'phone-a')
  return { cloud, cloudClock, owner, real, dataDir, phoneClock, startedAt, agent }
}

t.test('a phone follows a jump of the cloud clock at once, and its heartbeats carry the cloud time', async (t) => {
  const { real, cloudClock, cloud, secret, dataDir, phoneClock } = await simulatedCloud(t)
  const heard: number[] = []
  let told: () => void = () => {}
  const agent = await startAgent(t, cloud, 'phone-a', secret, {
    dataDir,
    clock: phoneClock,
    followCloud: (now) => {
      phoneClock.follow(now)
      heard.push(now)
      told()
    },
  })
  const first = new Promise<void>((resolve) => (told = resolve))
  await agentConnected(agent)
  await first
  t.equal(heard[0], real.now(), 'told the time when it subscribed')

  const jumped = new Promise<void>((resolve) => (told = resolve))
  cloudClock.advance(73 * HOUR)
  await jumped
  t.equal(phoneClock.now(), cloudClock.now(), 'the phone reads the cloud time after the jump')

  const stored = storedHeartbeats(cloud, 1)
  real.advance(30_000)
  await stored
  const [device] = cloud.broker.store.devices()
  t.equal(device?.last?.at, cloudClock.now(), 'the heartbeat is stamped in cloud time: its age is 0, not 73 h')
})

t.test('a time message that breaks the contract, or that cannot be recorded, is logged and changes nothing', async (t) => {
  const { cloud, agent } = await cloudWithAgent(t, 'phone-a', {
    followCloud: () => {
      throw new Error('disk full')
    },
  })
  agent.receiveCloudTime(Buffer.from('{"now":-1}'))
  t.match(await cloud.logs.waitFor((l) => l.msg === 'cloud time refused'), { reason: /now/ })
  agent.receiveCloudTime(Buffer.from('{"now":1}'))
  t.match(await cloud.logs.waitFor((l) => l.msg === 'could not record the cloud time'), { err: { message: 'disk full' } })
})

t.test('a phone that does not follow the cloud ignores its time', async (t) => {
  const { agent, clock } = await cloudWithAgent(t)
  const before = clock.now()
  agent.receiveCloudTime(Buffer.from(JSON.stringify({ now: before + HOUR })))
  t.equal(clock.now(), before)
  t.equal(agent.status().dataChannel, 'connected')
})

t.test(
  'X1: with the cloud service off, a phone follows a jump of the cloud clock over its push channel: a notice shown after ' +
    '`clock advance 3d` is stamped in cloud time, not 3 days before it was sent',
  async (t) => {
    const { real, cloudClock, cloud, secret, dataDir, phoneClock } = await simulatedCloud(t)
    const agent = await startAgent(t, cloud, 'phone-a', secret, {
      dataDir,
      clock: phoneClock,
      followCloud: (now) => phoneClock.follow(now),
    })
    await agentConnected(agent)
    await pushConnected(agent)
    await agent.setSwitch('cloudService', false)
    t.equal(agent.status().dataChannel, 'off', 'the data channel is cut: no `time` message reaches the phone')

    cloudClock.advance(3 * DAY)
    const sent = notify(cloud, 'phone-a', { title: 'after the jump' })
    let shown: ShownNotification | undefined
    while (shown?.id !== sent.id) [shown] = (await once(agent.framework, 'notification')) as [ShownNotification]
    t.equal(shown.createdAt, cloudClock.now(), 'queued on the cloud clock, 3 days on')
    t.equal(shown.shownAt, cloudClock.now(), 'shown on the same clock: the phone followed the cloud over push')
    t.equal(shown.delayMs, 0)
    t.equal(phoneClock.now(), cloudClock.now(), 'the rest of the phone reads that time too')
    t.equal(readAhead(dataDir), 3 * DAY, 'and keeps it across a restart')

    // A jump with nothing to show: the phone hears the cloud's time in the welcome of its next push connection.
    cloudClock.advance(DAY)
    cloud.broker.framework.gateway.drop('phone-a')
    await pushState(agent, 'waiting')
    real.advance(1000)
    await pushAtCloud(cloud, 'phone-a', true)
    await pushConnected(agent)
    t.equal(phoneClock.now(), cloudClock.now(), 'the welcome carries the cloud time')
  },
)

t.test(
  'F1, F2: a Pi that heard the cloud while its own clock was 2 days behind (booted without a real-time clock) and then ' +
    'had it set by NTP keeps the cloud time: its locate succeeds, its heartbeats are not 2 days ahead, and none flood',
  async (t) => {
    // The Pi's wall clock: the time it last saved, 2 days before the cloud's.
    const { cloud, cloudClock, owner, real, dataDir, phoneClock, agent } = await piOf(t, 2 * DAY)
    t.equal(phoneClock.now(), cloudClock.now(), 'the phone learnt the cloud time: 2 days ahead of its own clock')

    real.jump(2 * DAY)
    t.equal(phoneClock.now(), cloudClock.now(), 'NTP set its clock: it still reads the cloud time, not 2 days past it')
    t.match(
      cloud.logs.lines.find((l) => l.jumpMs === 2 * DAY),
      { aheadMs: 0, msg: /clock was set forward/ },
      'and says so in its log',
    )
    t.equal(readAhead(dataDir), 0, 'a restart does not bring the 2 days back')

    const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, cloudClock.now()))
    t.equal(view.state, 'succeeded', `a locate signed now is not taken for expired (${view.reason ?? 'no reason'})`)

    const sent = agent.status().heartbeatsSent
    const stored = storedHeartbeats(cloud, 1)
    real.advance(30_000)
    cloudClock.advance(30_000)
    await stored
    t.equal(agent.status().heartbeatsSent, sent + 1, 'the jump fired no heartbeats of its own: one at the next interval')
    t.equal(cloud.broker.store.devices()[0]?.last?.at, cloudClock.now(), 'stamped with the cloud time: its age is 0')
  },
)

t.test(
  'F1, F2: a Pi whose clock.json holds a lead saved by an older version (2 days: it heard the cloud before NTP set its ' +
    "clock) takes the cloud's time again at its first connection: its locate succeeds and its heartbeats are not ahead",
  async (t) => {
    // NTP set the Pi's clock long ago; the file is what the older version wrote.
    const { cloud, cloudClock, owner, real, dataDir, phoneClock, startedAt } = await piOf(t, 0, 2 * DAY)
    t.equal(startedAt, cloudClock.now() + 2 * DAY, 'it started 2 days ahead of the cloud')
    t.equal(phoneClock.now(), cloudClock.now(), "the cloud's time message brought it back")
    t.match(
      cloud.logs.lines.find((l) => l.dropMs === 2 * DAY),
      { aheadMs: 0, msg: /ran ahead of the cloud's time/ },
      'and says so in its log',
    )
    t.equal(readAhead(dataDir), 0, 'the file says so too: a restart does not bring the 2 days back')
    const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, cloudClock.now()))
    t.equal(view.state, 'succeeded', `a locate signed now is not taken for expired (${view.reason ?? 'no reason'})`)

    const stored = storedHeartbeats(cloud, 1)
    real.advance(30_000)
    cloudClock.advance(30_000)
    await stored
    t.equal(cloud.broker.store.devices()[0]?.last?.at, cloudClock.now(), 'stamped with the cloud time: its age is 0')
  },
)
