/**
 * F2-F4 end to end: signed remote commands from the owner, through a real
 * broker, to a real agent on a manual clock, with receipts the owner verifies.
 */
import t, { type Test } from 'tap'
import { randomUUID, type KeyObject } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ManualClock } from '../../common/clock.js'
import { verifyPayload } from '../../common/signing.js'
import { LOST_MODE_GUARD_MS } from '../../agent/agent.js'
import { agentConnected, firstFix, restartUnder, startAgent, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { commandState, listening, makeOwner, provision, run, signed } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'
import { filesHolding } from '../fixtures/disk-search.js'
import { notify, pushConnected, shownBy } from '../fixtures/framework.js'

async function setup(t: Test, heartbeatMs = 30_000) {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  const dataDir = tempDir(t)
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey, heartbeatMs })
  await firstFix(cloud, agent)
  await listening(cloud, 'phone-a')
  return { cloud, clock, owner, secret, dataDir, agent }
}

t.test('F2 locate returns a fresh fix with a receipt the owner can verify', async (t) => {
  const { cloud, clock, owner } = await setup(t)
  const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))
  t.equal(view.state, 'succeeded')
  t.match(view.data, { lat: 55.9486, lon: -3.1999, accuracy: 10, at: clock.now() })
  const deviceKey = owner.keys.deviceKey('phone-a') as KeyObject
  const receipt = view.receipt as NonNullable<typeof view.receipt>
  t.ok(verifyPayload(receipt, deviceKey), 'the receipt is signed by the device')
  t.notOk(verifyPayload({ ...receipt, at: 1 } as typeof receipt, deviceKey), 'a receipt changed by the broker does not verify')
})

t.test('F2 ring, lock (unlocked on the device with its PIN) and lost mode with faster heartbeats', async (t) => {
  const { cloud, clock, owner, agent } = await setup(t)
  t.equal((await run(cloud, signed(owner, 'phone-a', 'ring', { seconds: 20 }, clock.now()))).state, 'succeeded')
  t.equal(agent.status().ringingUntil, clock.now() + 20_000, 'the phone rings for 20 s')
  clock.advance(20_000)
  t.equal(agent.status().ringingUntil, null, 'then stops')

  await run(cloud, signed(owner, 'phone-a', 'lock', { message: 'Please return me', phone: '555-0100' }, clock.now()))
  t.same(agent.status().lock, { message: 'Please return me', phone: '555-0100' }, 'the lock screen shows the message and number')
  await t.rejects(agent.unlock('0000'), { code: 'WRONG_PIN' })
  t.ok(agent.status().lock, 'a wrong PIN keeps it locked')
  await agent.unlock('1234')
  t.equal(agent.status().lock, null, 'the right PIN unlocks it')

  const lost = await run(cloud, signed(owner, 'phone-a', 'lost-mode', { on: true, message: 'Lost', phone: '555' }, clock.now()))
  t.equal(lost.data?.['lostMode'], true)
  t.match(agent.status(), { lostMode: true, lock: { message: 'Lost' } })
  const before = agent.status().heartbeatsSent
  const fast = storedHeartbeats(cloud, 2)
  clock.advance(10_000)
  await fast
  t.equal(agent.status().heartbeatsSent - before, 2, 'lost mode: a heartbeat every 5 s instead of 30 s, battery included')
  t.ok(cloud.broker.store.device('phone-a')?.last?.battery)
  await run(cloud, signed(owner, 'phone-a', 'lost-mode', { on: false }, clock.now()))
  t.equal(agent.status().lostMode, false)
})

t.test('F2 wipe removes user data, keeps what its flags say, and reports counts and bytes', async (t) => {
  const { cloud, clock, owner, agent, dataDir } = await setup(t)
  mkdirSync(join(dataDir, 'user', 'photos'), { recursive: true })
  mkdirSync(join(dataDir, 'sdcard'))
  writeFileSync(join(dataDir, 'user', 'photos', 'a.jpg'), Buffer.alloc(1000))
  writeFileSync(join(dataDir, 'user', 'notes.txt'), 'hello')
  writeFileSync(join(dataDir, 'sdcard', 'music.mp3'), Buffer.alloc(500))
  await agent.setNetwork('mobile')
  const keep = await run(cloud, signed(owner, 'phone-a', 'wipe', { eraseSdcard: false, keepFindDevice: true }, clock.now()))
  t.match(keep.data, { files: 2, bytes: 1005, sdcardKept: true, findDeviceKept: true })
  t.notOk(existsSync(join(dataDir, 'user')), 'user data is gone')
  t.ok(existsSync(join(dataDir, 'sdcard', 'music.mp3')), 'external storage kept')
  t.equal(agent.status().network, 'wifi', 'settings are reset')
  t.equal(agent.status().findDevice, true, 'Find Device pairing kept')
  t.equal(agent.drive.syncOn, false, 'drive folder sync is off, as every sync category of a wiped phone is')
  t.match(JSON.parse(readFileSync(join(dataDir, 'drive.json'), 'utf8')), { sync: false, synced: {} }, 'and stays off after a restart')

  const erase = await run(cloud, signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: false }, clock.now()))
  t.match(erase.data, { files: 1, bytes: 500, sdcardKept: false, findDeviceKept: false })
  t.notOk(existsSync(join(dataDir, 'sdcard')))
  t.equal(agent.status().findDevice, false, 'pairing cleared: Find Device is off')
  while (cloud.broker.store.locationEnabled('phone-a')) await once(cloud.broker.store, 'status')
  t.throws(
    () => cloud.broker.commands.submit('phone-a', signed(owner, 'phone-a', 'locate', {}, clock.now())),
    { code: 'NOT_ENABLED' },
    'the cloud knows the phone no longer has Find Device',
  )
  const smuggled = signed(owner, 'phone-a', 'locate', {}, clock.now())
  const answered = once(agent.remote, 'settled')
  cloud.broker.sendToDevice('phone-a', JSON.stringify(smuggled))
  await answered
  t.match(agent.remote.journal.entry(smuggled.id)?.result, { state: 'rejected' }, 'an unpaired phone obeys no one')
})

t.test(
  'F3 with Find Device off a command is refused at once and nothing reaches the device; one that slips through is refused by the device',
  async (t) => {
    const { cloud, clock, owner, agent } = await setup(t)
    await agent.setSwitch('findDevice', false)
    while (cloud.broker.store.locationEnabled('phone-a')) await once(cloud.broker.store, 'status')
    const cmd = signed(owner, 'phone-a', 'lock', { message: 'x', phone: '1' }, clock.now())
    t.throws(() => cloud.broker.commands.submit('phone-a', cmd), {
      code: 'NOT_ENABLED',
      message: 'this device has not enabled Find Device',
    })
    t.match(cloud.broker.commands.get(cmd.id), { state: 'rejected', reason: 'this device has not enabled Find Device' })
    t.equal(agent.remote.journal.entry(cmd.id), undefined, 'the device never saw it')

    const answered = once(agent.remote, 'settled')
    const smuggled = signed(owner, 'phone-a', 'lock', { message: 'x', phone: '1' }, clock.now())
    cloud.broker.sendToDevice('phone-a', JSON.stringify(smuggled))
    await answered
    t.match(agent.remote.journal.entry(smuggled.id)?.result, { state: 'rejected', reason: 'this device has not enabled Find Device' })
    t.equal(agent.status().lock, null, 'nothing was executed')
  },
)

t.test("F2 X3 a wipe leaves no notification's text on the phone's disk, and remembers their ids", async (t) => {
  const { cloud, clock, owner, agent, dataDir } = await setup(t)
  await pushConnected(agent)
  const text = `your parcel code is ${randomUUID()}`
  const shown = shownBy(agent)
  const sent = notify(cloud, 'phone-a', { title: 'Courier', body: text })
  await shown.count(1)
  t.same(filesHolding(dataDir, text), ['push-inbox.json'], 'shown, the notification is kept on the phone')

  await run(cloud, signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now()))
  t.same(filesHolding(dataDir, text), [], 'wiped: no file of the phone holds its text')
  t.same(agent.status().framework.notifications.recent, [], '`phone notifications` lists none')
  const inbox = JSON.parse(readFileSync(join(dataDir, 'push-inbox.json'), 'utf8')) as { delivered: string[] }
  t.same(inbox.delivered, [sent.id], 'its id stays, so the cloud sending it again shows nothing twice')
})

t.test('F4 Find Device cannot be switched off in lost mode, nor until 72 hours after it ended', async (t) => {
  // A heartbeat an hour: the test jumps the clock by 72 hours, 8,640 heartbeats at the usual 30 s.
  const { cloud, clock, owner, agent } = await setup(t, 3_600_000)
  await run(cloud, signed(owner, 'phone-a', 'lost-mode', { on: true, message: 'Lost', phone: '555' }, clock.now()))
  await t.rejects(agent.setSwitch('findDevice', false), { code: 'F4_GUARD', message: /in lost mode: the owner must leave lost mode first/ })
  await run(cloud, signed(owner, 'phone-a', 'lost-mode', { on: false }, clock.now()))
  await t.rejects(agent.setSwitch('findDevice', false), { message: /until 72 hours after lost mode ended: 3d 0h left/ })
  clock.advance(LOST_MODE_GUARD_MS - 1000)
  await t.rejects(agent.setSwitch('findDevice', false), { message: /1s left/ }, 'one second before the boundary: still refused')
  t.equal(agent.status().findDevice, true)
  clock.advance(1000)
  t.equal((await agent.setSwitch('findDevice', false)).findDevice, false, 'at 72 hours: allowed')
  t.equal((await agent.setSwitch('cloudService', false)).cloudService, false, 'the guard is about Find Device only')
})

t.test('F2 a wipe queued for an offline device runs when it returns; cancel and expiry stop others', async (t) => {
  const { cloud, clock, owner, secret, agent, dataDir } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  mkdirSync(join(dataDir, 'user'))
  writeFileSync(join(dataDir, 'user', 'x'), 'x')
  const wipe = signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now())
  const cancelMe = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  const expireMe = signed(owner, 'phone-a', 'lock', { message: 'm', phone: 'p' }, clock.now(), { expiresAt: clock.now() + 60_000 })
  for (const c of [wipe, cancelMe, expireMe]) t.equal(cloud.broker.commands.submit('phone-a', c).state, 'queued')
  t.equal(cloud.broker.commands.cancel(cancelMe.id).state, 'cancelled')
  clock.advance(60_000)
  t.match(cloud.broker.commands.get(expireMe.id), { state: 'expired', reason: 'it expired before the device received it' })
  t.ok(existsSync(join(dataDir, 'user', 'x')), 'nothing ran while the device was away')

  const finished = commandState(cloud, wipe.id)
  const back = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  const view = await finished
  t.equal(view.state, 'succeeded', 'the queued wipe ran when the phone came back')
  t.notOk(existsSync(join(dataDir, 'user')))
  t.equal(back.remote.journal.entry(cancelMe.id), undefined, 'the cancelled ring never reached it')
  t.equal(back.remote.journal.entry(expireMe.id), undefined, 'the expired lock never reached it')
  t.throws(() => cloud.broker.commands.cancel(wipe.id), { code: 'NOT_CANCELLABLE', message: 'it is already succeeded' })
})

/** A phone stopped with `bytes` of user data left, and a wipe queued for it in the cloud (what a crash mid-wipe leaves). */
async function wipeWhileDown(t: Test, bytes: number) {
  const { cloud, clock, owner, secret, agent, dataDir } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  const wipe = signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now())
  cloud.broker.commands.submit('phone-a', wipe)
  mkdirSync(join(dataDir, 'user'))
  writeFileSync(join(dataDir, 'user', 'left-over.jpg'), Buffer.alloc(bytes))
  return { cloud, owner, secret, dataDir, wipe }
}

t.test('F2 a wipe interrupted by a crash finishes after restart and sends its receipt then', async (t) => {
  // The crash is simulated by the journal it leaves behind: the wipe recorded as executing, data half gone.
  const { cloud, owner, secret, dataDir, wipe } = await wipeWhileDown(t, 2048)
  writeFileSync(
    join(dataDir, 'commands.json'),
    JSON.stringify({ lastSeq: wipe.seq, entries: { [wipe.id]: { step: 'executing', command: wipe, reported: false } } }),
  )
  const finished = commandState(cloud, wipe.id)
  const settled: unknown[] = []
  const restarted = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey }, (a) =>
    a.remote.on('settled', (...said) => settled.push(said)),
  )
  const view = await finished
  t.match(view, { state: 'succeeded', data: { files: 1, bytes: 2048 } }, 'the wipe completed after the restart')
  t.notOk(existsSync(join(dataDir, 'user')))
  t.ok(view.receipt, 'with a receipt')
  t.equal(restarted.remote.journal.entry(wipe.id)?.step, 'done')
  // A fleet counts what its phones ran by this (fleet/runner.ts): one finished at a connect ran as much as one just received.
  t.same(
    settled.filter((said) => (said as string[])[1] === 'ran'),
    [[wipe.id, 'ran']],
    "the phone says it ran the wipe, once (the cloud's resend meanwhile was a repeat)",
  )
})

t.test('F2 a wipe whose journal line was torn by a crash mid-write finishes once after restart', async (t) => {
  // The crash is simulated by the log it leaves behind: received and executing on disk, the done line cut short.
  const { cloud, owner, secret, dataDir, wipe } = await wipeWhileDown(t, 1024)
  const line = (step: string): string => JSON.stringify({ step, command: wipe, reported: false })
  writeFileSync(join(dataDir, 'commands.jsonl'), `${line('received')}\n${line('executing')}\n${line('done').slice(0, 30)}`)
  const finished = commandState(cloud, wipe.id)
  const restarted = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  t.match(await finished, { state: 'succeeded', data: { files: 1, bytes: 1024 } }, 'the wipe completed after the restart')
  t.ok(cloud.logs.has('torn last journal line ignored'), 'the torn line was logged')
  t.equal(restarted.remote.journal.entry(wipe.id)?.step, 'done')
  await restarted.remote.idle()
  const steps = readFileSync(join(dataDir, 'commands.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { step?: string }).step)
  t.equal(steps.at(-1), 'done', 'every line of the log parses now, the last one the wipe done')
})

t.test(
  'F2 when the journal cannot be written (a full disk) the command is not run, the owner is told why, and the phone carries on',
  async (t) => {
    const { cloud, clock, owner, secret, agent, dataDir } = await setup(t)
    // The journal cannot be written while a directory has its name: the write fails as on a full disk.
    rmSync(join(dataDir, 'commands.jsonl'), { force: true })
    mkdirSync(join(dataDir, 'commands.jsonl'))
    const ring = await run(cloud, signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now()))
    t.match(ring, { state: 'failed', reason: /the phone could not record the command: EISDIR/ })
    t.equal(agent.status().ringingUntil, null, 'it did not ring')
    t.ok(cloud.logs.has('command journal could not be written'))
    rmSync(join(dataDir, 'commands.jsonl'), { recursive: true })
    t.equal(
      (await run(cloud, signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now()))).state,
      'succeeded',
      'with room again, the next command runs',
    )
    await agent.remote.idle()
    await agent.stop()
    const restarted = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
    await listening(cloud, 'phone-a')
    await restarted.remote.idle()
    t.match(restarted.remote.journal.entry(ring.id), { step: 'done', result: { state: 'failed' } }, 'the failed command is final on disk')
    t.equal(restarted.status().ringingUntil, null, 'and does not run after a restart')
    t.equal(cloud.broker.commands.get(ring.id)?.state, 'failed')
  },
)

t.test('F2 when only the last step cannot be written, the command has run and its real result is the answer', async (t) => {
  const { cloud, clock, owner, secret, agent, dataDir } = await setup(t)
  const journalPath = join(dataDir, 'commands.jsonl')
  const ringOnce = agent.run.bind(agent)
  // The disk fills while the phone rings: "executing" is on disk, "done" cannot be.
  agent.run = async (command) => {
    rmSync(journalPath)
    mkdirSync(journalPath)
    return ringOnce(command)
  }
  const ring = await run(cloud, signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now()))
  t.equal(ring.state, 'succeeded', 'the owner hears what happened: the phone rang')
  t.equal(agent.status().ringingUntil, clock.now() + 5_000)
  agent.run = ringOnce
  rmSync(journalPath, { recursive: true })
  t.equal((await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))).state, 'succeeded')
  await agent.remote.idle()
  await agent.stop()
  clock.advance(5_000)
  const restarted = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  await listening(cloud, 'phone-a')
  await restarted.remote.idle()
  t.match(restarted.remote.journal.entry(ring.id), { step: 'done', result: { state: 'succeeded' } }, 'on disk as done once there was room')
  t.equal(restarted.status().ringingUntil, null, 'it does not ring again after a restart')
})

t.test('F2 an owner key given as a function is read when the first command arrives; one that cannot be read refuses it', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  let asked = 0
  await startAgent(t, cloud, 'phone-a', await provision(cloud, owner, 'phone-a'), {
    ownerKey: () => {
      asked++
      return owner.publicKey
    },
  })
  await listening(cloud, 'phone-a')
  t.equal(asked, 0, 'not read at start')
  t.equal((await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))).state, 'succeeded')
  t.equal(asked, 1, 'read for the command')

  await startAgent(t, cloud, 'phone-b', await provision(cloud, owner, 'phone-b'), {
    ownerKey: () => {
      throw new Error('EACCES: the key file')
    },
  })
  await listening(cloud, 'phone-b')
  const refused = await run(cloud, signed(owner, 'phone-b', 'locate', {}, clock.now()))
  t.match(refused, { state: 'rejected', reason: 'this device is not paired with an owner' })
  t.ok(
    await cloud.logs.waitFor((l) => l.msg === "the owner's key cannot be read: the command is refused" && l.err === 'EACCES: the key file'),
  )
})

t.test('F2 a result for a command the cloud does not know, or for another device, is ignored', async (t) => {
  const { cloud, clock, owner } = await setup(t)
  const { connectDevice } = await import('../fixtures/cloud.js')
  const secretB = await provision(cloud, owner, 'phone-b')
  const cmd = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  cloud.broker.commands.submit('phone-a', cmd)
  const b = await connectDevice(t, cloud, 'phone-b', secretB)
  const fake = { command: cmd.id, device: 'phone-b', state: 'succeeded', at: 1, sig: 'AAAA' }
  await b.publishAsync('fp/v1/phone-b/result', JSON.stringify(fake), { qos: 1 })
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'result for an unknown command ignored' && l.device === 'phone-b'))
  t.not(cloud.broker.commands.get(cmd.id)?.state, 'succeeded', "phone-b cannot settle phone-a's command")
})

t.test(
  'F2 a stop waits for a command still running; its receipt, made after the data channel closed, is kept and sent when the phone is back',
  async (t) => {
    const { cloud, clock, owner, secret, agent, dataDir } = await setup(t)
    // The agent, link, journal and broker are real. Two of the agent's methods are wrapped (not replaced) so the
    // test decides when the command finishes: only after the stop has closed the data channel and started waiting.
    let release = (): void => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    let started = (): void => {}
    const running = new Promise<void>((resolve) => (started = resolve))
    const run = agent.run.bind(agent)
    agent.run = async (command) => {
      started()
      await held
      return run(command)
    }
    const ring = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
    const idle = agent.remote.idle.bind(agent.remote)
    let stepWhenIdle: string | undefined
    agent.remote.idle = async () => {
      release()
      await idle()
      stepWhenIdle = agent.remote.journal.entry(ring.id)?.step
    }
    cloud.broker.commands.submit('phone-a', ring)
    await running
    await agent.stop()
    t.equal(stepWhenIdle, 'done', 'the stop waited for the running command to finish')
    t.match(agent.remote.journal.entry(ring.id), { step: 'done', reported: false }, 'its receipt is still to send')
    t.equal(cloud.broker.commands.get(ring.id)?.state, 'executing', 'the cloud has no result yet')
    const finished = commandState(cloud, ring.id)
    const back = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
    const view = await finished
    t.match(view, { state: 'succeeded', data: { seconds: 5 } }, 'the receipt arrived once the phone was back')
    t.ok(
      verifyPayload(view.receipt as NonNullable<typeof view.receipt>, owner.keys.deviceKey('phone-a') as KeyObject),
      'signed by the phone',
    )
    t.equal(back.status().ringingUntil, null, 'the restarted phone did not ring again')
  },
)

t.test(
  'F2 a command running when the connection drops runs once: the reconnect does not start it again, its receipt goes out when it ends',
  async (t) => {
    const { cloud, clock, owner, agent } = await setup(t)
    // The agent, link, journal and broker are real; `run` is wrapped (not replaced) to count the runs and hold the first.
    let release = (): void => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    let started = (): void => {}
    const running = new Promise<void>((resolve) => (started = resolve))
    let runs = 0
    const run = agent.run.bind(agent)
    agent.run = async (command) => {
      if (runs++ === 0) {
        started()
        await held
      }
      return run(command)
    }
    const ring = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
    cloud.broker.commands.submit('phone-a', ring)
    await running
    // The connection goes with the broker while the ring runs; back, the phone is sent the unfinished command again.
    await restartUnder(cloud, agent)
    const resent = new Promise<void>((resolve) =>
      agent.remote.on('settled', (id, handling) => void (id === ring.id && handling === 'repeat' && resolve())),
    )
    clock.advance(1000)
    await agentConnected(agent)
    await resent
    t.equal(runs, 1, 'not started again at the reconnect')
    const finished = commandState(cloud, ring.id)
    release()
    t.match(await finished, { state: 'succeeded', data: { seconds: 5 } }, 'the receipt went out when the ring ended')
    await agent.remote.idle()
    t.equal(runs, 1, 'it rang once')
  },
)
