/**
 * F1/F3 ingest without a query per message: the registry answers `exists`
 * from memory (and the broker's looks for another process's removals at most
 * once per recheckMs, issue 14), and presence changes ride in the heartbeat batch. Both on a
 * real SQLite database, in process (no broker: the broker-level paths are in
 * test/broker/mqtt/ingest.test.ts and test/broker/devices/removal.test.ts).
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { openDb, type Db } from '../../../broker/db.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { StateStore } from '../../../broker/devices/state-store.js'
import type { Heartbeat } from '../../../common/contract.js'

const hb = (seq: number): Heartbeat => ({
  seq,
  at: 1000 + seq,
  lat: 52.5,
  lon: 13.4,
  accuracy: 5,
  speed: 0,
  battery: 0.5,
  charging: false,
  network: 'wifi',
})

t.test('exists answers from memory; without RecheckOptions (the CLI) it sees another connection remove or add a device', async (t) => {
  const dir = t.testdir()
  const db = openDb(dir)
  const other = openDb(dir)
  t.teardown(() => {
    db.close()
    other.close()
  })
  const registry = new DeviceRegistry(db, () => 1)
  const cli = new DeviceRegistry(other, () => 1)
  await registry.add('phone-a', 'alice')
  t.ok(registry.exists('phone-a'))
  registry.remove('phone-a')
  t.notOk(registry.exists('phone-a'), 'a removal here is seen at once')

  await cli.add('phone-b', 'alice')
  await nextTurn()
  t.ok(registry.exists('phone-b'), "another connection's device is known on the next turn")
  cli.remove('phone-b')
  await nextTurn()
  t.notOk(registry.exists('phone-b'), "another connection's removal is refused on the next turn")

  // A device inserted on this connection without the registry (an account import) is looked up, then remembered.
  db.prepare("INSERT INTO devices (id, account, secret_hash, created_at) VALUES ('phone-c', 'alice', 'x', 1)").run()
  t.ok(registry.exists('phone-c'))
  t.ok(registry.exists('phone-c'))
})

/** The broker's registry and the CLI's, on two connections to one database; `ms` is the broker registry's monotonic clock. */
function brokerAndCli(
  t: Test,
  recheckMs = 20,
): { registry: DeviceRegistry; cli: DeviceRegistry; db: Db; ms: { now: number }; failures: unknown[]; removed: string[] } {
  const dir = t.testdir()
  const db = openDb(dir)
  const other = openDb(dir)
  t.teardown(() => {
    if (db.open) db.close()
    other.close()
  })
  const ms = { now: 1000 }
  const failures: unknown[] = []
  const registry = new DeviceRegistry(db, () => 1, { recheckMs, monotonic: () => ms.now, failed: (err) => failures.push(err) })
  const removed: string[] = []
  registry.on('removed', (id) => removed.push(id))
  return { registry, cli: new DeviceRegistry(other, () => 1), db, ms, failures, removed }
}

t.test(
  'issue 14: the broker reads data_version at most once per recheckMs, and once more recheckMs after a message judged without it',
  async (t) => {
    const { registry, cli, ms, removed } = brokerAndCli(t)
    await cli.add('phone-a', 'alice')
    await cli.add('phone-b', 'alice')
    t.ok(registry.exists('phone-a'), 'the first message reads: a device the CLI added is known')
    cli.remove('phone-a')
    ms.now += 5
    t.ok(registry.exists('phone-a'), 'within recheckMs of the last read, a message is judged on that view')
    t.same(removed, [], 'nothing noticed yet')
    t.same(await once(registry, 'removed'), ['phone-a'], 'the read due recheckMs after the last one finds the removal and announces it')
    t.notOk(registry.exists('phone-a'), 'and the device is refused from then on')

    ms.now += 20
    cli.remove('phone-b')
    t.notOk(registry.exists('phone-b'), 'after a quiet spell of recheckMs, the next message is judged on a fresh read')
    t.same(removed, ['phone-a', 'phone-b'], 'and the removal announced at once')
  },
)

t.test('issue 14: a read due after the database closed (the broker stopped) does nothing', async (t) => {
  const { registry, cli, db, ms, failures } = brokerAndCli(t, 5)
  await cli.add('phone-a', 'alice')
  t.ok(registry.exists('phone-a'))
  ms.now += 1
  t.ok(registry.exists('phone-a'), 'judged on the last view: a read falls due in 4 ms')
  db.close()
  await sleep(20) // that read is a timer of the registry's own with no event to wait for; this timer expires after it
  t.same(failures, [], 'nothing read, nothing thrown')
})

t.test('issue 14: what a read throws goes to `failed` (the next message reads again); without RecheckOptions, to the caller', async (t) => {
  const { registry, cli, ms, failures } = brokerAndCli(t)
  await cli.add('phone-a', 'alice')
  await cli.add('phone-b', 'alice')
  t.ok(registry.exists('phone-a'))
  registry.once('removed', () => {
    throw new Error('a listener failed')
  })
  cli.remove('phone-a')
  ms.now += 20
  t.notOk(registry.exists('phone-a'), 'the message is still judged on what was read')
  t.match(failures, [{ message: 'a listener failed' }])
  cli.remove('phone-b')
  t.notOk(registry.exists('phone-b'), 'the next message reads again, without waiting recheckMs')

  const dir = t.testdir()
  const [mine, theirs] = [openDb(dir), openDb(dir)]
  t.teardown(() => [mine, theirs].forEach((db) => db.close()))
  const plain = new DeviceRegistry(mine, () => 1)
  await plain.add('phone-c', 'alice')
  t.ok(plain.exists('phone-c'))
  plain.once('removed', () => {
    throw new Error('a listener failed')
  })
  new DeviceRegistry(theirs, () => 1).remove('phone-c')
  t.throws(() => plain.exists('phone-c'), { message: 'a listener failed' })
})

t.test('presence rides in the heartbeat batch and is read through it; one change per device, the last one', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  const store = new StateStore(db)
  const onlineInDb = (): unknown => db.prepare("SELECT online FROM device_state WHERE device_id = 'phone-a'").pluck().get()
  let stored = 0
  store.on('stored', () => stored++)

  store.setPresence('phone-a', true, 5)
  t.equal(onlineInDb(), 0, 'not written yet: it waits for the batch')
  t.equal(store.device('phone-a')?.online, true, 'a read writes the pending batch first')
  t.equal(onlineInDb(), 1)

  store.setPresence('phone-a', true, 6)
  store.setPresence('phone-a', false, 7)
  store.recordHeartbeat('phone-a', { ...hb(1), charging: true }, 8)
  await nextTurn()
  t.equal(stored, 1, 'heartbeats and presence in one batch, reported once')
  const [view] = store.devices()
  t.match(view, { online: false, presenceAt: 7, last: { seq: 1, charging: true, receivedAt: 8 } })
  t.equal(stored, 1, 'a presence-only flush reports no stored heartbeats')
})

t.test('a failed batch still writes its presence; a batch scheduled on a database closed without a stop is dropped', async (t) => {
  const db = openDb(t.testdir())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  const store = new StateStore(db)
  const refused: string[] = []
  store.on('refused', (id) => refused.push(id))
  store.setPresence('phone-a', true, 5)
  store.recordHeartbeat('ghost', hb(1), 6) // no such device: the batch fails on its foreign key
  store.flush()
  t.same(refused, ['ghost'])
  t.equal(store.device('phone-a')?.online, true)

  store.setPresence('phone-a', false, 7)
  db.close()
  await nextTurn() // the scheduled flush finds the database closed: nothing thrown
  t.equal(db.open, false)
})

t.test('with a batch wait, heartbeats and presence are written together once it passes, or at once by a read', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  const store = new StateStore(db, 1000, 5)
  const storedCounts: number[] = []
  store.on('stored', (n) => storedCounts.push(n))

  store.recordHeartbeat('phone-a', hb(1), 2)
  await nextTurn()
  t.same(storedCounts, [], 'not written on the next turn: the batch waits')
  t.equal(store.history('phone-a', 10).length, 1, 'a read of the history writes the pending batch first')
  t.same(storedCounts, [1])

  const written = once(store, 'stored')
  store.setPresence('phone-a', true, 3)
  store.recordHeartbeat('phone-a', hb(2), 4)
  store.recordHeartbeat('phone-a', hb(3), 4)
  t.equal((await written)[0], 2, 'one batch once the wait passed')
  t.match(store.device('phone-a'), { online: true, last: { seq: 3 } })
})

t.test(
  'F3 a status hands what follows from it the switches said before, in its transaction, leaving the presence batch queued',
  async (t) => {
    const db = openDb(t.testdir())
    t.teardown(() => db.close())
    await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
    const store = new StateStore(db)
    const onlineInDb = (): unknown => db.prepare("SELECT online FROM device_state WHERE device_id = 'phone-a'").pluck().get()
    const seen: unknown[] = []
    store.setPresence('phone-a', true, 5)
    store.setStatus('phone-a', { cloudService: true, findDevice: false, at: 6 }, 6, (before) => seen.push(before, db.inTransaction))
    store.setStatus('phone-a', { cloudService: true, findDevice: true, at: 7 }, 7, (before) => seen.push(before))
    store.setStatus('gone', { cloudService: true, findDevice: true, at: 8 }, 8, (before) => seen.push(before))
    t.same(
      seen,
      [{ cloudService: null, findDevice: null }, true, { cloudService: true, findDevice: false }, undefined],
      'null: not said yet; undefined: no such device',
    )
    t.equal(onlineInDb(), 0, 'the presence change still waits for its batch')
    t.equal(store.device('phone-a')?.findDevice, true)
    t.ok(store.locationEnabled('phone-a'))
  },
)

t.test('F1 lastSeq: the highest heartbeat seq held of a device, stored or still queued, read without writing the batch', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 1)
  await registry.add('phone-a', 'alice')
  await registry.add('phone-b', 'alice')
  const store = new StateStore(db)
  t.equal(store.lastSeq('phone-a'), null, 'none yet')
  store.recordHeartbeat('phone-a', hb(7), 1)
  t.equal(store.lastSeq('phone-a'), 7, 'a queued one counts')
  store.flush()
  store.recordHeartbeat('phone-a', hb(5), 2)
  store.recordHeartbeat('phone-b', hb(40), 3)
  t.equal(store.lastSeq('phone-a'), 7, 'the stored one, above a lower one queued; another device does not count')
  store.recordHeartbeat('phone-a', hb(9), 4)
  t.equal(store.lastSeq('phone-a'), 9, 'a queued one above the stored')
  t.equal(db.prepare('SELECT COUNT(*) FROM locations').pluck().get(), 1, 'nothing written by asking')
  // An account import stores locations without moving the last known state: they count too.
  db.prepare(
    `INSERT INTO locations (device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at)
     VALUES ('phone-b', 50, 1, 0, 0, 1, 0, 50, 0, 'wifi', 1)`,
  ).run()
  t.equal(store.lastSeq('phone-b'), 50)
})
