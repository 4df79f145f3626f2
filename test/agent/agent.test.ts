/** F1 and the first half of F3, driven by a real agent against a real broker on a manual clock. */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import type { Heartbeat } from '../../common/contract.js'
import { RouteSource } from '../../agent/location.js'
import { tempDir } from '../fixtures/scope.js'
import { closedPort } from '../fixtures/ports.js'
import {
  addDevice,
  agentConnected,
  cloudWithAgent,
  dataChannelUp,
  firstFix,
  restartUnder,
  startAgent,
  startCloud,
  storedHeartbeats,
  type Cloud,
} from '../fixtures/cloud.js'

t.test('F1 heartbeats follow the jittered schedule on the injected clock and carry the fix, battery and network', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a')
  const route = new RouteSource(
    [
      { lat: 55.9, lon: -3.2 },
      { lat: 55.91, lon: -3.2 },
    ],
    10,
    clock.now(),
  )
  // random() = 0 draws the shortest interval: 30 s × (1 − 0.2) = 24 s.
  const agent = await startAgent(t, cloud, 'phone-a', secret, { jitter: 0.2, random: () => 0, location: route })
  const fix = firstFix(cloud, agent)
  await agentConnected(agent)
  // A new phone's seqs start at the clock's now in ms (test/agent/lifecycle.test.ts).
  const s0 = clock.now()
  t.match(await fix, { seq: s0, at: clock.now(), lat: 55.9 }, 'the first fix goes out as soon as the phone is connected')
  clock.advance(23_999)
  t.equal(agent.status().heartbeatsSent, 1, 'nothing more before the interval')
  const stored = storedHeartbeats(cloud, 2)
  clock.advance(1)
  clock.advance(24_000)
  await stored
  const [second, first] = cloud.broker.store.history('phone-a', 10)
  t.same([first?.seq, second?.seq], [s0 + 1, s0 + 2])
  t.equal((second?.at ?? 0) - (first?.at ?? 0), 24_000)
  t.ok((second?.lat ?? 0) > (first?.lat ?? 0), 'the phone moved north along its route')
  t.equal(first?.network, 'wifi')
  t.equal(first?.speed, 10)
  t.ok((first?.battery ?? 0) >= 60)
  t.equal(agent.status().lastHeartbeat?.seq, s0 + 2)
})

t.test('F3 with Find Device or the cloud service off: no heartbeats, the map position goes offline; on resumes', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a')
  const agent = await startAgent(t, cloud, 'phone-a', secret)
  await agentConnected(agent)
  const first = storedHeartbeats(cloud, 1)
  clock.advance(30_000)
  await first
  for (const name of ['findDevice', 'cloudService'] as const) {
    const offSeen = once(cloud.broker.store, 'status')
    await agent.setSwitch(name, false)
    t.same(await offSeen, ['phone-a', false], `${name} off reaches the cloud`)
    const view = cloud.broker.store.device('phone-a')
    t.ok(view?.locationOffAt, 'the cloud marks the map position offline')
    const sentBefore = agent.status().heartbeatsSent
    clock.advance(10 * 30_000)
    t.equal(agent.status().heartbeatsSent, sentBefore, `${name} off: no heartbeat in ten intervals`)
    const onSeen = once(cloud.broker.store, 'status')
    await agent.setSwitch(name, true)
    t.same(await onSeen, ['phone-a', true])
    t.equal(cloud.broker.store.device('phone-a')?.locationOffAt, null)
    const resumed = storedHeartbeats(cloud, 1)
    clock.advance(30_000)
    await resumed
    t.equal(agent.status().heartbeatsSent, sentBefore + 1, `${name} on: heartbeats resume`)
  }
})

t.test('the cloud ignores a heartbeat from a device that said Find Device is off', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const { connectDevice, heartbeat } = await import('../fixtures/cloud.js')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  await phone.publishAsync('fp/v1/phone-a/status', JSON.stringify({ cloudService: true, findDevice: false, at: 1 }), {
    qos: 1,
    retain: true,
  })
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'heartbeat ignored: the device has Find Device or the cloud service off'))
  cloud.broker.store.flush()
  t.equal(cloud.broker.store.history('phone-a', 10).length, 0)
})

t.test('F1 an agent that loses the broker backs off, reconnects (its log says so) and resumes its heartbeats', async (t) => {
  const { cloud, clock, agent } = await cloudWithAgent(t)
  await restartUnder(cloud, agent)
  t.equal(agent.status().dataChannel, 'waiting', 'the data channel waits before retrying')
  t.equal(cloud.broker.store.device('phone-a')?.online, false, 'the restarted cloud starts with the device offline')
  clock.advance(1000)
  await agentConnected(agent)
  t.match(
    cloud.logs.lines.filter((l) => l.module === 'agent' && /^mqtt/.test(l.msg)),
    [{ msg: 'mqtt disconnected, retrying' }, { msg: 'mqtt connected again', downMs: 1000 }],
    "the phone's log says it is back, after how long, not only that it was retrying",
  )
  while (!cloud.broker.store.device('phone-a')?.online) await once(cloud.broker.store, 'presence')
  t.pass('the device is online again')
  const stored = storedHeartbeats(cloud, 1)
  clock.advance(30_000)
  await stored
  t.equal(cloud.broker.store.history('phone-a', 10).length, 2, 'heartbeats resume after the reconnect (the first fix went before)')
})

t.test('F3 a switch flipped while the phone is offline reaches the cloud when it reconnects', async (t) => {
  const { cloud, clock, agent } = await cloudWithAgent(t)
  await restartUnder(cloud, agent)
  await agent.setSwitch('findDevice', false)
  t.ok(cloud.broker.store.locationEnabled('phone-a'), 'the cloud cannot know yet')
  const statusSeen = once(cloud.broker.store, 'status')
  clock.advance(1000)
  t.same(await statusSeen, ['phone-a', false], 'the new status is announced on reconnect')
  t.notOk(cloud.broker.store.locationEnabled('phone-a'))
  await cloud.restart()
  t.notOk(cloud.broker.store.locationEnabled('phone-a'), 'the offline map position survives a broker restart')
})

/** A cloud with phone-a registered, the data directory its agents share, and `s0`, where a new phone's seqs start. */
async function phoneOnDisk(t: Test): Promise<{ cloud: Cloud; clock: ManualClock; secret: string; dataDir: string; s0: number }> {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a')
  // A new phone's seqs start at the clock's now in ms (test/agent/lifecycle.test.ts): counted from it here.
  return { cloud, clock, secret, dataDir: tempDir(t), s0: clock.now() }
}

t.test('settings and the heartbeat sequence survive an agent restart; a clean stop says offline', async (t) => {
  const { cloud, clock, secret, dataDir, s0 } = await phoneOnDisk(t)
  const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  const fix = firstFix(cloud, first)
  await agentConnected(first)
  await fix
  const stored = storedHeartbeats(cloud, 1)
  clock.advance(30_000)
  await stored
  await first.setNetwork('mobile')
  await first.setSwitch('findDevice', false)
  const offline = once(cloud.broker.store, 'presence')
  await first.stop()
  t.same(await offline, ['phone-a', false])
  const saved = JSON.parse(readFileSync(join(dataDir, 'settings.json'), 'utf8'))
  t.match(saved, { cloudService: true, findDevice: false, network: 'mobile', nextSeq: s0 + 2 })

  const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  await agentConnected(second)
  t.equal(second.status().findDevice, false, 'Find Device is still off after the restart')
  await second.setSwitch('findDevice', true)
  const next = storedHeartbeats(cloud, 1)
  clock.advance(30_000)
  await next
  t.equal(cloud.broker.store.device('phone-a')?.last?.seq, s0 + 2, 'the sequence continues where it stopped')
  t.equal(cloud.broker.store.device('phone-a')?.last?.network, 'mobile')
})

t.test('F1 a phone whose settings.json came back from an older copy never reuses a seq the cloud holds', async (t) => {
  const { cloud, clock, secret, dataDir, s0 } = await phoneOnDisk(t)
  const settingsPath = join(dataDir, 'settings.json')
  // One life of the phone: its first fix, `more` heartbeats on the schedule, a clean stop; answers the first fix.
  const life = async (more: number): Promise<Heartbeat> => {
    const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
    const fix = firstFix(cloud, agent)
    await agentConnected(agent)
    const first = await fix
    for (let i = 0; i < more; i++) {
      const stored = storedHeartbeats(cloud, 1)
      clock.advance(30_000)
      await stored
    }
    await agent.stop()
    return first
  }
  await life(0)
  // The user's copy of the data directory, taken at a clean stop: the next seq is s0 + 1.
  const backup = readFileSync(settingsPath, 'utf8')
  t.equal(JSON.parse(backup).nextSeq, s0 + 1)
  t.equal((await life(3)).seq, s0 + 1, 'the next life counts on')
  t.equal(cloud.broker.store.device('phone-a')?.last?.seq, s0 + 4)
  writeFileSync(settingsPath, backup)

  const after = await life(1)
  t.equal(after.seq, s0 + 5, 'the first heartbeat numbers past the highest seq the cloud holds, not from the restored file')
  t.equal(cloud.broker.store.device('phone-a')?.last?.seq, s0 + 6, 'the cloud takes it and the next one as the newest')
  t.equal(cloud.broker.store.history('phone-a', 100).length, 7, 'no heartbeat was dropped as a replay')
  t.equal(JSON.parse(readFileSync(settingsPath, 'utf8')).nextSeq, s0 + 7, 'the settings count on from there')
  t.ok(
    cloud.logs.has(
      'the cloud holds heartbeats up to this seq, past these settings (restored from an older copy?): the seqs go on above it',
    ),
    'the phone says why its seqs moved',
  )
})

t.test('an agent that was never started reports itself stopped and stops at once', async (t) => {
  const { Agent } = await import('../../agent/agent.js')
  const { FixedSource } = await import('../../agent/location.js')
  const { LogCapture } = await import('../fixtures/logs.js')
  const agent = new Agent({
    id: 'x',
    secret: 's',
    brokerUrl: `mqtt://127.0.0.1:${await closedPort()}`,
    dataDir: tempDir(t),
    clock: new ManualClock(),
    log: new LogCapture().logger(),
    location: new FixedSource({ lat: 0, lon: 0 }),
    heartbeatMs: 1000,
    jitter: 0,
  })
  t.equal(agent.status().dataChannel, 'stopped')
  await agent.stop()
  t.equal(agent.status().heartbeatsSent, 0)
})

t.test('an agent stops within its deadline when the broker stops answering', async (t) => {
  // A broker that accepts the connection and then answers nothing: raw TCP, since a real broker always answers.
  const { createServer } = await import('node:net')
  const stuck = createServer((s) => s.once('data', () => s.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))))
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve))
  t.teardown(() => stuck.close())
  const { Agent } = await import('../../agent/agent.js')
  const { FixedSource } = await import('../../agent/location.js')
  const { LogCapture } = await import('../fixtures/logs.js')
  const port = (stuck.address() as AddressInfo).port
  const agent = new Agent({
    id: 'x',
    secret: 's',
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    dataDir: tempDir(t),
    clock: new ManualClock(),
    log: new LogCapture().logger(),
    location: new FixedSource({ lat: 0, lon: 0 }),
    heartbeatMs: 1000,
    jitter: 0,
    stopTimeoutMs: 50,
  })
  await agent.start()
  await dataChannelUp(agent)
  await agent.stop()
  t.equal(agent.status().dataChannel, 'stopped', 'stopped although "offline" was never acknowledged')
})

t.test('an agent with no fix sends nothing, and a stopped agent stays stopped', async (t) => {
  const cloud = await startCloud(t)
  // The agent's own clock: the cloud keeps timers of its own (the backup schedule) on its clock.
  const clock = new ManualClock()
  const secret = await addDevice(cloud, 'phone-a')
  const cloudTimers = clock.waiting
  const agent = await startAgent(t, cloud, 'phone-a', secret, { location: { fix: () => null } })
  await agentConnected(agent)
  clock.advance(90_000)
  t.equal(agent.status().heartbeatsSent, 0)
  await agent.stop()
  t.equal(agent.status().dataChannel, 'stopped')
  clock.advance(90_000)
  t.equal(clock.waiting, cloudTimers, "no timer of the phone's is left behind (the cloud's rules keep theirs)")
})

t.test('an agent that cannot reach the cloud logs one line per reconnect attempt on each channel, saying why', async (t) => {
  const { Agent } = await import('../../agent/agent.js')
  const { FixedSource } = await import('../../agent/location.js')
  const { LogCapture } = await import('../fixtures/logs.js')
  const logs = new LogCapture()
  const clock = new ManualClock()
  const agent = new Agent({
    id: 'x',
    secret: 's',
    brokerUrl: `mqtt://127.0.0.1:${await closedPort()}`,
    pushUrl: `ws://127.0.0.1:${await closedPort()}/push`,
    dataDir: tempDir(t),
    clock,
    log: logs.logger('info'),
    location: new FixedSource({ lat: 0, lon: 0 }),
    heartbeatMs: 60_000,
    jitter: 0,
    random: () => 0.5,
    backoff: { baseMs: 100, capMs: 1000 },
  })
  t.teardown(() => agent.stop())
  const bothWaiting = async (): Promise<void> => {
    while (agent.status().dataChannel !== 'waiting' || agent.status().framework.pushChannel !== 'waiting') {
      await Promise.race([once(agent, 'channel'), once(agent.framework, 'push')])
    }
  }
  await agent.start()
  for (let attempt = 1; attempt <= 3; attempt++) {
    await bothWaiting()
    const lines = logs.lines.filter((l) => l.level >= 30)
    t.equal(lines.length, 2 * attempt, `attempt ${attempt}: one line per channel`)
    t.match(
      lines.slice(-2).sort((a, b) => a.msg.localeCompare(b.msg)),
      [
        { msg: 'mqtt disconnected, retrying', attempt, err: /ECONNREFUSED/ },
        { msg: 'push disconnected, retrying', attempt, err: /ECONNREFUSED/ },
      ],
    )
    clock.advance(1000)
  }
})
