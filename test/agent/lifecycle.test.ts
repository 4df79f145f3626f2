/**
 * The agent's life: F1 sequence numbers across restarts and crashes without a settings write per beat; a start that fails part-way still
 * stops cleanly.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import { Agent, type AgentOptions } from '../../agent/agent.js'
import { FixedSource } from '../../agent/location.js'
import { ManualClock } from '../../common/clock.js'
import type { Heartbeat } from '../../common/contract.js'
import { addDevice, agentConnected, firstFix, startAgent, startCloud, storedHeartbeats, type Cloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'
import { closedPort } from '../fixtures/ports.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

/** Runs `agent` for `beats` heartbeat intervals and resolves with the seqs it sent, once the cloud stored them. */
async function beats(cloud: Cloud, agent: Agent, count: number, intervalMs = 30_000): Promise<number[]> {
  const seqs: number[] = []
  const onBeat = (hb: Heartbeat): number => seqs.push(hb.seq)
  agent.on('heartbeat', onBeat)
  const stored = storedHeartbeats(cloud, count)
  for (let i = 0; i < count; i++) (cloud.clock as ManualClock).advance(intervalMs)
  await stored
  agent.off('heartbeat', onBeat)
  return seqs
}

/** F1: the agent's first heartbeat, sent as soon as it connected, once the cloud stored it. */
async function connectedFix(cloud: Cloud, agent: Agent): Promise<Heartbeat> {
  const fix = firstFix(cloud, agent)
  await agentConnected(agent)
  return fix
}

const nextSeqOnDisk = (dataDir: string): number =>
  (JSON.parse(readFileSync(join(dataDir, 'settings.json'), 'utf8')) as { nextSeq: number }).nextSeq

t.test(
  'F1 heartbeat seqs reserved in blocks: settings.json is written once per block, not per beat; seqs keep rising across a clean ' +
    'restart and a crash',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const dataDir = tempDir(t)
    const settingsPath = join(dataDir, 'settings.json')
    // A new phone's seqs start at the clock's now in ms (the F1 test below): the numbers here are counted from it.
    const s0 = cloud.clock.now()
    const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir, seqBlock: 4 })
    const sent = [(await connectedFix(cloud, first)).seq - s0]
    t.equal(nextSeqOnDisk(dataDir) - s0, 4, 'the first beat (the fix sent at connect) reserved seqs 0-3 on disk')
    const written = statSync(settingsPath)
    sent.push(...(await beats(cloud, first, 3)).map((seq) => seq - s0))
    const after = statSync(settingsPath)
    t.same([after.ino, after.mtimeMs], [written.ino, written.mtimeMs], 'three more beats did not rewrite settings.json')
    sent.push(...(await beats(cloud, first, 2)).map((seq) => seq - s0))
    t.same(sent, [0, 1, 2, 3, 4, 5])
    t.equal(nextSeqOnDisk(dataDir) - s0, 8, 'the fifth beat reserved the next block')
    await first.stop()
    t.equal(nextSeqOnDisk(dataDir) - s0, 6, 'a clean stop gives the rest of the block back')

    const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir, seqBlock: 4 })
    t.equal((await connectedFix(cloud, second)).seq - s0, 6, 'after a clean restart the next seq follows on')
    // A crash now: the disk holds what it held while the phone ran; the clean stop's write never happened.
    const onDiskWhileRunning = readFileSync(settingsPath)
    await second.stop()
    writeFileSync(settingsPath, onDiskWhileRunning)

    const third = await startAgent(t, cloud, 'phone-a', secret, { dataDir, seqBlock: 4 })
    t.equal((await connectedFix(cloud, third)).seq - s0, 10, 'after a crash the seq skips the rest of one block and reuses none')
    cloud.broker.store.flush()
    const stored = cloud.broker.store
      .history('phone-a', 20)
      .map((hb) => hb.seq - s0)
      .reverse()
    t.same(stored, [0, 1, 2, 3, 4, 5, 6, 10], 'the cloud got strictly increasing seqs')
  },
)

t.test('F1 a heartbeat whose seqs cannot be reserved is not sent, is logged, and the next one goes out', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, seqBlock: 1 })
  const first = (await connectedFix(cloud, agent)).seq
  // settings.json is written through a temporary file beside it: a directory in its way makes the write fail.
  const { mkdirSync, rmdirSync } = await import('node:fs')
  mkdirSync(join(dataDir, 'settings.json.tmp'))
  ;(cloud.clock as ManualClock).advance(30_000)
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'heartbeat not sent: could not reserve sequence numbers'))
  t.equal(agent.status().heartbeatsSent, 1, 'the first fix only')
  rmdirSync(join(dataDir, 'settings.json.tmp'))
  t.same(await beats(cloud, agent, 1), [first + 1], 'the seq that could not be reserved was not used')
})

t.test(
  'F1 a phone without its settings file (moved away, a new data directory with the same id and secret) starts its seqs above ' +
    'all it sent before: the cloud stores its heartbeats and the map shows its new fix, none dropped as replays',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const secret = await addDevice(cloud, 'phone-a')
    const dataDir = tempDir(t)
    const lives: number[][] = []
    /** One life of the phone at latitude `lat`: its connect fix and two beats, stored by the cloud; a clean stop, an hour off. */
    const live = async (dir: string, lat: number): Promise<void> => {
      const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir: dir, location: new FixedSource({ lat, lon: -3.2 }) })
      lives.push([(await connectedFix(cloud, agent)).seq, ...(await beats(cloud, agent, 2))])
      await agent.stop()
      clock.advance(3_600_000)
      cloud.broker.store.flush()
      t.equal(cloud.broker.store.device('phone-a')?.last?.lat, lat, `the map shows the fix at ${lat}`)
    }
    await live(dataDir, 55.9)
    // What the agent tells a user whose settings.json is damaged: move it away to start without it.
    renameSync(join(dataDir, 'settings.json'), join(dataDir, 'settings.json.damaged'))
    await live(dataDir, 51.5)
    // A Pi's SD card reflashed: a new data directory, the same device id and secret.
    await live(tempDir(t), 48.8)
    // A new data directory whose settings are written (a switch flipped) before any heartbeat went out, then a restart.
    const unsent = tempDir(t)
    const offline = await startAgent(t, cloud, 'phone-a', secret, { dataDir: unsent, brokerUrl: `mqtt://127.0.0.1:${await closedPort()}` })
    await offline.setSwitch('findDevice', true)
    await offline.stop()
    clock.advance(60_000)
    await live(unsent, 40.4)
    for (let i = 1; i < lives.length; i++) {
      const [before, after] = [lives[i - 1]!, lives[i]!]
      t.ok(Math.min(...after) > Math.max(...before), `life ${i + 1} sent seqs above life ${i}'s: ${after.join()} > ${before.join()}`)
    }
    t.equal(cloud.broker.store.history('phone-a', 100).length, 12, "the cloud stored every life's three heartbeats")
  },
)

t.test('heartbeats carry coordinates to 1e-6 degrees and the battery as an integer percent', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const location = new FixedSource({ lat: 55.948612345678, lon: -3.199912345678 }, 7.5)
  // Ten minutes at 4 %/h drain a fraction of a percent.
  const agent = await startAgent(t, cloud, 'phone-a', secret, { location, heartbeatMs: 600_000 })
  await agentConnected(agent)
  await beats(cloud, agent, 1, 600_000)
  const hb = cloud.broker.store.device('phone-a')?.last
  t.match(hb, { lat: 55.948612, lon: -3.199912, accuracy: 7.5 })
  t.ok(Number.isInteger(hb?.battery), `battery ${hb?.battery} is an integer percent`)
})

/** An agent of its own on a ManualClock no one else uses, so its timers can be counted. */
async function lonelyAgent(t: Test, opts: Partial<AgentOptions>): Promise<{ agent: Agent; clock: ManualClock; logs: LogCapture }> {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const agent = new Agent({
    id: 'phone-a',
    secret: 's',
    brokerUrl: `mqtt://127.0.0.1:${await closedPort()}`,
    dataDir: tempDir(t),
    clock,
    log: logs.logger(),
    location: new FixedSource({ lat: 0, lon: 0 }),
    heartbeatMs: 1000,
    jitter: 0,
    ...opts,
  })
  onEnd(t, () => agent.stop())
  return { agent, clock, logs }
}

t.test('a start that fails at once (the data directory cannot be made) stops cleanly', async (t) => {
  const file = join(tempDir(t), 'a-file')
  writeFileSync(file, '')
  const { agent, clock } = await lonelyAgent(t, { dataDir: join(file, 'phone') })
  await t.rejects(agent.start(), { code: 'ENOTDIR' })
  await agent.stop()
  t.equal(agent.status().dataChannel, 'stopped')
  t.equal(clock.waiting, 0, 'no timer left')
})

t.test('a start that fails part-way (after the push channel is up) stops what it started: no socket, no timer left', async (t) => {
  // A push endpoint that keeps every connection it is given, to see them all closed.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  onEnd(t, () => new Promise((resolve) => wss.close(resolve)))
  const sockets: WebSocket[] = []
  const connected = new Promise<void>((resolve) =>
    wss.on('connection', (ws) => {
      sockets.push(ws)
      resolve()
    }),
  )
  const pushUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/push`
  const { agent, clock, logs } = await lonelyAgent(t, { pushUrl })
  const dataDir = (agent as unknown as { opts: AgentOptions }).opts.dataDir
  const { mkdirSync } = await import('node:fs')
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(join(dataDir, 'drive.json'), '{"not":"drive settings"}')
  const pushUp = once(agent.framework, 'push')
  await t.rejects(agent.start(), { code: 'INVALID' }, 'the drive settings are corrupt: the start fails after the framework started')
  await pushUp
  await connected
  await agent.stop()
  t.equal(agent.status().framework.pushChannel, 'stopped')
  t.equal(agent.status().dataChannel, 'stopped')
  t.equal(clock.waiting, 0, 'no timer left')
  for (const ws of sockets) if (ws.readyState !== ws.CLOSED) await once(ws, 'close')
  t.pass('every push connection closed')
  t.notOk(logs.has('a part of the phone did not stop cleanly'))
})

t.test('a part that fails to stop is logged and the others still stop', async (t) => {
  const { agent, clock, logs } = await lonelyAgent(t, {})
  await agent.start()
  const stopDrive = agent.drive.stop.bind(agent.drive)
  agent.drive.stop = async () => {
    await stopDrive()
    throw new Error('disk gone')
  }
  await agent.stop()
  t.match(await logs.waitFor((l) => l.msg === 'a part of the phone did not stop cleanly'), { step: 'drive', err: 'disk gone' })
  t.equal(agent.status().framework.pushChannel, 'off')
  t.equal(agent.status().dataChannel, 'stopped')
  t.equal(clock.waiting, 0, 'no timer left')
})

t.test('F2 a lost-mode command that finishes after the heartbeats stopped does not start them again', async (t) => {
  const { agent, clock } = await lonelyAgent(t, {})
  await agent.start()
  await agent.stop()
  const command = {
    id: 'c1',
    device: 'phone-a',
    type: 'lost-mode',
    args: { on: true, message: 'Lost', phone: '555' },
    issuedAt: 0,
    expiresAt: 1,
    seq: 1,
  } as const
  t.match(await agent.run(command as unknown as Parameters<Agent['run']>[0]), { state: 'succeeded' })
  t.equal(clock.waiting, 0, 'no heartbeat timer')
})

t.test('F1: the battery carries on across a restart, along the curve its device id gives; another phone is elsewhere on it', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  const before = (await connectedFix(cloud, first)).battery
  t.ok(before >= 60 && before <= 100, `${before} %: the level the id gives at the start of the curve`)
  clock.advance(2 * 3_600_000)
  await first.stop()
  // Two hours later on the clock (4 %/h unplugged), and again an hour after the restart: no level drawn anew at a start.
  const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  t.equal((await connectedFix(cloud, second)).battery, before - 8, 'the restarted phone shows the level it had come down to')
  await second.stop()
  const secretB = await addDevice(cloud, 'phone-b')
  const other = await startAgent(t, cloud, 'phone-b', secretB)
  t.not((await connectedFix(cloud, other)).battery, before - 8, 'another device id, another level')
})
