/** F2 command bookkeeping in the cloud: what it refuses at submission, and what can still be cancelled. */
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import { CommandCenter, OPEN_COMMANDS_SQL } from '../../../broker/devices/commands.js'
import { openDb, type Db } from '../../../broker/db.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { StateStore } from '../../../broker/devices/state-store.js'
import { ManualClock } from '../../../common/clock.js'
import type { Heartbeat, Result } from '../../../common/contract.js'
import { LogCapture } from '../../fixtures/logs.js'
import { makeOwner, signed } from '../../fixtures/owner.js'

/** Devices connecting at once in the 300-device test (see there). */
const CONNECTING_AT_ONCE = 25

/** A fresh cloud database, closed with the test, with `phone-a` registered to alice. */
async function dbWithPhone(t: Test): Promise<Db> {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  return db
}

t.test(
  'F2 the cloud refuses commands for the wrong device, unknown devices and ones already expired, and cannot cancel one already sent',
  async (t) => {
    const db = await dbWithPhone(t)
    const clock = new ManualClock()
    let online = false
    const center = new CommandCenter(db, new StateStore(db), clock, new LogCapture().logger(), () => online)
    const owner = makeOwner(t)
    const now = clock.now()
    t.throws(() => center.submit('phone-a', signed(owner, 'phone-b', 'ring', { seconds: 1 }, now)), {
      code: 'BAD_COMMAND',
      message: 'the command is for "phone-b", not "phone-a"',
    })
    t.throws(() => center.submit('phone-z', signed(owner, 'phone-z', 'ring', { seconds: 1 }, now)), { code: 'NOT_FOUND' })
    const stale = signed(owner, 'phone-a', 'ring', { seconds: 1 }, now - 20_000, { expiresAt: now })
    t.throws(() => center.submit('phone-a', stale), { code: 'BAD_COMMAND', message: 'command refused: it expired before it was sent' })
    t.match(center.get(stale.id), { state: 'rejected', reason: 'it expired before it was sent' }, 'the refusal is on record')
    online = true
    const sent = center.submit('phone-a', signed(owner, 'phone-a', 'ring', { seconds: 1 }, now))
    t.ok(center.get(sent.id)?.sentAt, 'handed to the connected device')
    t.throws(() => center.cancel(sent.id), { code: 'NOT_CANCELLABLE', message: 'it was already sent to the device' })
    t.throws(() => center.cancel('nope'), { code: 'NOT_FOUND' })
    t.notOk(center.isListening('phone-a'))
    center.deviceListening('phone-a')
    t.ok(center.isListening('phone-a'))
    center.deviceGone('phone-a')
    t.notOk(center.isListening('phone-a'))
    center.stop()
  },
)

t.test('F2 a reported step moves a command forward in one statement; repeats, strays and late cancels change nothing', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 1)
  await registry.add('phone-a', 'alice')
  await registry.add('phone-b', 'alice')
  const clock = new ManualClock()
  const logs = new LogCapture()
  const center = new CommandCenter(db, new StateStore(db), clock, logs.logger(), () => true)
  const owner = makeOwner(t)
  const changes: string[] = []
  center.on('changed', (v) => changes.push(v.state))
  const ring = signed(owner, 'phone-a', 'ring', { seconds: 1 }, clock.now())
  center.submit('phone-a', ring)
  t.throws(() => center.submit('phone-a', ring), { code: 'DUPLICATE', message: `command ${ring.id} was already submitted` })
  const result = (state: Result['state'], extra: Partial<Result> = {}): Result =>
    ({ command: ring.id, device: 'phone-a', state, at: clock.now(), sig: 'AAAA', ...extra }) as Result
  center.onResult('phone-a', result('executing'))
  center.onResult('phone-a', result('delivered'))
  t.equal(center.get(ring.id)?.state, 'executing', 'a step behind the current one does not move it back')
  center.onResult('phone-b', result('succeeded'))
  center.onResult('phone-a', { ...result('succeeded'), command: 'nope' })
  t.equal(logs.lines.filter((l) => l.msg === 'result for an unknown command ignored').length, 2, "another device's and an unknown one")
  clock.advance(5)
  center.onResult('phone-a', result('succeeded', { data: { seconds: 1 } }))
  center.onResult('phone-a', result('failed', { reason: 'late' }))
  t.match(center.get(ring.id), { state: 'succeeded', data: { seconds: 1 }, receipt: { state: 'succeeded' }, updatedAt: clock.now() })
  t.same(changes, ['queued', 'executing', 'succeeded'], 'only real moves are announced')
  t.throws(() => center.cancel(ring.id), { code: 'NOT_CANCELLABLE', message: 'it is already succeeded' })

  // Expiry moves every queued command past its deadline in one statement, and leaves the others.
  const offline = new CommandCenter(db, new StateStore(db), clock, logs.logger(), () => false)
  const soon = [1, 2].map(() => signed(owner, 'phone-b', 'locate', {}, clock.now(), { expiresAt: clock.now() + 1000 }))
  const later = signed(owner, 'phone-b', 'locate', {}, clock.now(), { expiresAt: clock.now() + 5000 })
  for (const c of [...soon, later]) offline.submit('phone-b', c)
  offline.start()
  clock.advance(1000)
  t.same(
    [...soon, later].map((c) => offline.get(c.id)?.state),
    ['expired', 'expired', 'queued'],
  )
  t.equal(offline.cancel(later.id).state, 'cancelled')
  offline.stop()
})

t.test(
  'F2 a command submitted while heartbeats wait for their batch leaves them waiting, and sees the switches said meanwhile',
  async (t) => {
    const db = await dbWithPhone(t)
    const clock = new ManualClock()
    const store = new StateStore(db, 1000, 60_000)
    t.teardown(() => store.flush())
    const stored: number[] = []
    store.on('stored', (n: number) => stored.push(n))
    const center = new CommandCenter(db, store, clock, new LogCapture().logger(), () => true)
    const owner = makeOwner(t)
    const hb: Heartbeat = { seq: 1, at: 1, lat: 52.5, lon: 13.4, accuracy: 5, speed: 0, battery: 0.5, charging: false, network: 'wifi' }
    store.recordHeartbeat('phone-a', hb, 1)
    store.setStatus('phone-a', { cloudService: true, findDevice: false, at: 1 }, 1, () => {})
    t.throws(() => center.submit('phone-a', signed(owner, 'phone-a', 'locate', {}, clock.now())), { code: 'NOT_ENABLED' })
    store.setStatus('phone-a', { cloudService: true, findDevice: true, at: 2 }, 2, () => {})
    t.equal(
      center.submit('phone-a', signed(owner, 'phone-a', 'locate', {}, clock.now())).state,
      'queued',
      'the switch turned on is seen at once',
    )
    t.throws(() => center.submit('phone-z', signed(owner, 'phone-z', 'locate', {}, clock.now())), { code: 'NOT_FOUND' })
    t.same(stored, [], 'the queued heartbeat was not written for the commands')
    t.equal(store.device('phone-a')?.last?.seq, 1, 'a read of the device writes it first, as before')
    t.same(stored, [1])
    center.stop()
  },
)

t.test('F2 lost mode becomes the device state when a lost-mode receipt says succeeded, and only then', async (t) => {
  const db = await dbWithPhone(t)
  const clock = new ManualClock()
  const store = new StateStore(db)
  const center = new CommandCenter(db, store, clock, new LogCapture().logger(), () => true)
  const owner = makeOwner(t)
  t.equal(store.device('phone-a')?.lostMode, null, 'never switched: null')
  const send = (args: { on: true; message: string; phone: string } | { on: false }, state: Result['state'], at: number) => {
    const cmd = signed(owner, 'phone-a', 'lost-mode', args, clock.now())
    center.submit('phone-a', cmd)
    center.onResult('phone-a', { command: cmd.id, device: 'phone-a', state, at, sig: 'AAAA' } as Result)
    clock.advance(1000)
  }
  send({ on: true, message: 'Lost!', phone: '555' }, 'executing', clock.now())
  t.equal(store.device('phone-a')?.lostMode, null, 'not before the receipt says succeeded')
  send({ on: true, message: 'Lost!', phone: '555' }, 'failed', clock.now())
  t.equal(store.device('phone-a')?.lostMode, null, 'not when it failed')
  const onAt = clock.now()
  send({ on: true, message: 'Lost!', phone: '555' }, 'succeeded', onAt)
  t.same(store.device('phone-a')?.lostMode, { on: true, message: 'Lost!', phone: '555', at: onAt })
  send({ on: false }, 'succeeded', onAt - 500)
  t.same(
    store.device('phone-a')?.lostMode,
    { on: true, message: 'Lost!', phone: '555', at: onAt },
    'an older receipt arriving late changes nothing',
  )
  const ring = signed(owner, 'phone-a', 'ring', { seconds: 1 }, clock.now())
  center.submit('phone-a', ring)
  center.onResult('phone-a', { command: ring.id, device: 'phone-a', state: 'succeeded', at: clock.now(), sig: 'AAAA' } as Result)
  t.equal(store.device('phone-a')?.lostMode?.on, true, 'another command leaves it')
  const offAt = clock.now()
  send({ on: false }, 'succeeded', offAt)
  t.same(store.device('phone-a')?.lostMode, { on: false, message: null, phone: null, at: offAt })
  center.stop()
})

t.test('F2 3,000 commands submitted to 300 devices in one event-loop turn all arrive', async (t) => {
  const { startCloud, connectDevice } = await import('../../fixtures/cloud.js')
  const { provision, listening } = await import('../../fixtures/owner.js')
  const cloud = await startCloud(t, { rateLimit: { burst: 1000, perSecond: 1000 } })
  const owner = makeOwner(t)
  const devices = Array.from({ length: 300 }, (_, i) => `phone-${i}`)
  const perDevice = 10
  // Raw MQTT clients stand in for the phones: they only count what arrives. They connect CONNECTING_AT_ONCE at a time:
  // the broker and every client share this process's one event loop, and each client's CONNACK timeout (5 s,
  // fixtures/cloud.ts) runs from its own connect; all 300 at once made the last wait behind 299 handshakes, past 5 s
  // under a load of 6-10 ("connack timeout"). What is proved -- the submissions in one turn -- comes after every
  // device is connected and listening, as before.
  const phones: MqttClient[] = []
  for (let i = 0; i < devices.length; i += CONNECTING_AT_ONCE) {
    const batch = devices.slice(i, i + CONNECTING_AT_ONCE).map(async (id) => {
      const phone = await connectDevice(t, cloud, id, await provision(cloud, owner, id))
      await phone.subscribeAsync(`fp/v1/${id}/cmd`, { qos: 1 })
      await listening(cloud, id)
      return phone
    })
    phones.push(...(await Promise.all(batch)))
  }
  let received = 0
  const all = new Promise<void>((resolve) => {
    for (const phone of phones)
      phone.on('message', () => {
        if (++received === devices.length * perDevice) resolve()
      })
  })
  const now = cloud.clock.now()
  const commands = devices.flatMap((id) => Array.from({ length: perDevice }, () => signed(owner, id, 'locate', {}, now)))
  for (const c of commands) cloud.broker.commands.submit(c.device, c)
  await all
  t.equal(received, devices.length * perDevice, 'every command was delivered')
})

t.test('F2 a reconnecting device gets only its open commands, oldest first, without its history being walked', async (t) => {
  const db = await dbWithPhone(t)
  const clock = new ManualClock()
  let online = false
  const sent: string[] = []
  const deliver = (_device: string, c: { id: string }): boolean => {
    if (online) sent.push(c.id)
    return online
  }
  const center = new CommandCenter(db, new StateStore(db), clock, new LogCapture().logger(), deliver)
  t.teardown(() => center.stop())
  const owner = makeOwner(t)
  const done = (id: string, state: Result['state']): void =>
    center.onResult('phone-a', { command: id, device: 'phone-a', state, at: clock.now(), sig: 'AAAA' } as Result)
  // A long history: 300 finished commands around three still open, one of them executing.
  const open: string[] = []
  for (let i = 0; i < 300; i++) {
    clock.advance(1)
    const { id } = center.submit('phone-a', signed(owner, 'phone-a', 'locate', {}, clock.now()))
    if (i % 100 === 50) open.push(id)
    else done(id, 'succeeded')
  }
  done(open[1] as string, 'executing')
  online = true
  center.deviceListening('phone-a')
  t.same(sent, open, 'the open ones, oldest first, whatever their step; none of the finished')
  const plan = db.prepare<[string], { detail: string }>(`EXPLAIN QUERY PLAN ${OPEN_COMMANDS_SQL}`).all('phone-a')
  t.match(plan[0]?.detail, /USING INDEX commands_open_by_device/, 'read through the index of open commands, not the history')
})

t.test(
  'F2 steps reported while the database cannot write are held, logged and recorded once it can; a failed sent mark is logged',
  async (t) => {
    const db = await dbWithPhone(t)
    const clock = new ManualClock()
    const logs = new LogCapture()
    // A real refusal by SQLite (SQLITE_READONLY), from the moment the command is handed to the device.
    const readOnly = (on: boolean): unknown => db.pragma(`query_only = ${on ? 1 : 0}`)
    const deliver = (): boolean => {
      readOnly(true)
      return true
    }
    const center = new CommandCenter(db, new StateStore(db), clock, logs.logger(), deliver, 5)
    const owner = makeOwner(t)
    const ring = signed(owner, 'phone-a', 'ring', { seconds: 1 }, clock.now())
    t.match(center.submit('phone-a', ring), { state: 'queued' }, 'stored and sent: the console is answered')
    t.match(
      logs.lines.find((l) => l.msg === 'command sent, but the database could not mark it sent'),
      {
        level: 50,
        command: ring.id,
        code: 'SQLITE_READONLY',
      },
    )
    t.equal(center.get(ring.id)?.sentAt, null, 'not marked: it stays open and goes again at the next connection')

    const result = (state: Result['state']): Result =>
      ({ command: ring.id, device: 'phone-a', state, at: clock.now(), sig: 'AAAA' }) as Result
    const notRecorded = (): number => logs.lines.filter((l) => l.msg.startsWith('command step not recorded')).length
    center.onResult('phone-a', result('executing'))
    center.onResult('phone-a', result('succeeded'))
    t.match(
      logs.lines.find((l) => l.msg.startsWith('command step not recorded')),
      { level: 50, reason: /SQLITE_READONLY/, held: 1 },
    )
    await logs.waitFor(() => notRecorded() >= 4) // both again on the first retry, still read-only
    const succeeded = new Promise((resolve) => center.on('changed', (v) => v.state === 'succeeded' && resolve(v)))
    readOnly(false)
    t.match(await succeeded, { id: ring.id, state: 'succeeded' }, 'recorded in order once the database takes writes')
    t.equal(notRecorded(), 4)

    const lock = signed(owner, 'phone-a', 'ring', { seconds: 2 }, clock.now())
    center.submit('phone-a', lock)
    center.onResult('phone-a', { ...result('executing'), command: lock.id })
    center.stop()
    t.match(logs.lines.at(-1), { level: 50, steps: 1, msg: /^broker stopped with command steps the database could not take/ })
    readOnly(false)
    db.exec(`CREATE TEMP TRIGGER refuse BEFORE UPDATE ON commands BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END`)
    t.throws(
      () => center.onResult('phone-a', { ...result('executing'), command: lock.id }),
      {
        message: 'refused by a trigger',
      },
      "a failure that is not the storage's goes to the caller (the broker's event boundary logs it)",
    )
  },
)
