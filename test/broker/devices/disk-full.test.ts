/**
 * F1 on a full disk: heartbeats the broker acknowledged while its database
 * could take no more are held, logged with the reason, and stored once space
 * returns; past the bound, new ones are refused before their PUBACK and the
 * device sends them again. The database is really full: SQLite answers
 * SQLITE_FULL once it would grow past `PRAGMA max_page_count`, set on the
 * broker's own connection (raising it again is "space returns").
 */
import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDb, type Db } from '../../../broker/db.js'
import { HEALTH_PATH } from '../../../broker/devices/console-api.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { StateStore, type HoldOptions } from '../../../broker/devices/state-store.js'
import { owntracksTopic } from '../../../common/owntracks.js'
import { fillDatabase, freeDatabase } from '../../fixtures/db-full.js'
import { addDevice, closed, connectDevice, heartbeat, startCloud, type Cloud } from '../../fixtures/cloud.js'

const QUICK: HoldOptions = { maxHeld: 100_000, retryMs: 5, retryMaxMs: 20 }

const rows = (db: Db, deviceId: string): number =>
  db.prepare('SELECT COUNT(*) FROM locations WHERE device_id = ?').pluck().get(deviceId) as number

/** Resolves once the broker's database holds `n` heartbeats of `deviceId`. */
function rowsReach(cloud: Cloud, deviceId: string, n: number): Promise<void> {
  const { store, db } = cloud.broker
  return new Promise((resolve) => {
    const check = (): void => {
      if (rows(db, deviceId) < n) return
      store.off('stored', check)
      resolve()
    }
    store.on('stored', check)
    check()
  })
}

const publishAll = (phone: MqttClient, from: number, n: number): Promise<unknown[]> =>
  Promise.all(
    [...Array(n).keys()].map((i) => phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(from + i)), { qos: 1 })),
  )

t.test('F1 heartbeats acknowledged on a full database are held, logged, said by /health, all stored once space returns', async (t) => {
  const cloud = await startCloud(t, { heartbeatHold: QUICK })
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const { db } = cloud.broker
  const health = async (): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${cloud.apiUrl}${HEALTH_PATH}`)
    return { status: res.status, body: await res.json() }
  }
  t.match(await health(), { status: 200, body: { status: 'ok', now: Number } }, 'healthy, to a monitor without the console token')
  fillDatabase(db)
  await publishAll(phone, 1, 300)
  t.pass('every heartbeat was acknowledged')
  const held = await cloud.logs.waitFor(
    (l) => l.msg === 'the database cannot take heartbeats: they are held in memory and written when it can',
  )
  t.match(held, { level: 50, reason: /full \(SQLITE_FULL\)/, held: Number, retryInMs: Number }, 'the reason and how many are held')
  t.ok(rows(db, 'phone-a') < 300, 'not all of them are stored while the database is full')
  t.equal(cloud.broker.store.counters.rowsRefused, 0, 'none is refused for the database being full')
  t.ok(phone.connected, 'the device stays connected')
  const api = await fetch(`${cloud.apiUrl}/api/devices/phone-a`, { headers: { authorization: `Bearer ${cloud.consoleToken}` } })
  t.equal(api.status, 200, 'the broker keeps answering, with what is stored')
  t.match(
    await health(),
    {
      status: 503,
      body: { status: 'degraded', reason: /^the database cannot take writes: .*full \(SQLITE_FULL\); \d+ acknowledged heartbeats held/ },
    },
    'a monitor is told the broker cannot store, and why',
  )

  const resumed = cloud.logs.waitFor((l) => l.msg === 'the database takes writes again: the held heartbeats are stored')
  freeDatabase(db)
  await resumed
  await rowsReach(cloud, 'phone-a', 300)
  t.equal(rows(db, 'phone-a'), 300, 'every acknowledged heartbeat is stored, once')
  t.equal(cloud.broker.store.device('phone-a')?.last?.seq, 300, 'and the last known state is the newest')
  t.match(await health(), { status: 200, body: { status: 'ok' } }, 'healthy again')
})

t.test('F1 past the bound of held heartbeats, new ones are refused before their PUBACK; the device sends them again', async (t) => {
  const cloud = await startCloud(t, { heartbeatHold: { ...QUICK, maxHeld: 10 } })
  const secret = await addDevice(cloud, 'phone-a')
  // A device as the agent is one: a persistent session, and a client that reconnects and sends what was not acknowledged.
  const phone = await connectDevice(t, cloud, 'phone-a', secret, { reconnectPeriod: 20 })
  const { db } = cloud.broker
  fillDatabase(db)
  // Whether part of this burst is refused already depends on when its first batch is written; all of it is held or sent again.
  const first = publishAll(phone, 1, 300)
  const held = await cloud.logs.waitFor(
    (l) => l.msg === 'the database cannot take heartbeats: they are held in memory and written when it can',
  )
  t.ok((held.held as number) >= 10, 'the bound is reached')
  const gone = closed(phone)
  const acked = Promise.all([first, publishAll(phone, 301, 50)])
  const refused = await cloud.logs.waitFor((l) => l.msg === 'publish refused')
  t.match(refused, { reason: /^the cloud cannot store heartbeats now: the database .* is full \(SQLITE_FULL\); \d+ are held/ })
  await gone
  t.pass('the connection is closed, the heartbeat not acknowledged')
  freeDatabase(db)
  await acked
  t.pass('every heartbeat was acknowledged in the end: the device sent the refused ones again')
  await rowsReach(cloud, 'phone-a', 350)
  t.equal(rows(db, 'phone-a'), 350, 'all of them stored, once')
})

t.test('F1 an OwnTracks location past the bound is refused before its PUBACK, as a heartbeat is, and sent again', async (t) => {
  const cloud = await startCloud(t, { heartbeatHold: { ...QUICK, maxHeld: 10 } })
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret, { reconnectPeriod: 20 })
  const { db } = cloud.broker
  const locations = (from: number, n: number): Promise<unknown[]> =>
    Promise.all(
      [...Array(n).keys()].map((i) =>
        phone.publishAsync(
          owntracksTopic('alice', 'phone-a'),
          JSON.stringify({ _type: 'location', tst: 2_000_000_000 + from + i, lat: 1, lon: 2, batt: 50 }),
          { qos: 1 },
        ),
      ),
    )
  fillDatabase(db)
  const first = locations(0, 100)
  await cloud.logs.waitFor((l) => l.msg === 'the database cannot take heartbeats: they are held in memory and written when it can')
  const gone = closed(phone)
  const acked = Promise.all([first, locations(100, 20)])
  t.match(await cloud.logs.waitFor((l) => l.msg === 'publish refused' && String(l.topic).startsWith('owntracks/')), {
    reason: /^the cloud cannot store heartbeats now/,
  })
  await gone
  freeDatabase(db)
  await acked
  await rowsReach(cloud, 'phone-a', 120)
  t.equal(rows(db, 'phone-a'), 120, 'every location stored once')
})

t.test('a broker stopped while its database is still full says how many held heartbeats go with it', async (t) => {
  const cloud = await startCloud(t, { heartbeatHold: { ...QUICK, retryMs: 60_000, retryMaxMs: 60_000 } })
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  fillDatabase(cloud.broker.db)
  await publishAll(phone, 1, 300)
  await cloud.logs.waitFor((l) => l.msg === 'the database cannot take heartbeats: they are held in memory and written when it can')
  await cloud.broker.stop()
  t.match(
    cloud.logs.lines.find(
      (l) => l.msg === 'broker stopped while the database refuses writes: the heartbeats and statuses it held are not stored',
    ),
    { level: 50, heartbeats: Number, reason: /SQLITE_FULL/ },
  )
})

t.test('F3 a status the database cannot take is held, logged and written once it can; the newest one wins', async (t) => {
  const cloud = await startCloud(t, { heartbeatHold: QUICK })
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const { db, store } = cloud.broker
  const HELD = "the database cannot take the device's status: it is held and written when it can"
  const heldLines = (): number => cloud.logs.lines.filter((l) => l.msg === HELD).length
  const status = (findDevice: boolean, at: number): Promise<unknown> =>
    phone.publishAsync('fp/v1/phone-a/status', JSON.stringify({ cloudService: true, findDevice, at }), { qos: 1 })
  // A real refusal by SQLite: the broker's connection may not write (SQLITE_READONLY).
  db.pragma('query_only = 1')
  await status(false, 1)
  t.match(await cloud.logs.waitFor((l) => l.msg === HELD), { level: 50, deviceId: 'phone-a', reason: /SQLITE_READONLY/ })
  t.notOk(store.locationEnabled('phone-a'), 'heartbeats already follow what the device said')
  await cloud.logs.waitFor(() => heldLines() >= 3) // retries that found it still read-only
  await status(true, 2)
  const written = once(store, 'status')
  db.pragma('query_only = 0')
  t.same(await written, ['phone-a', true], 'written once the database takes writes')
  t.match(store.device('phone-a'), { findDevice: true, cloudService: true }, 'the newest status')

  db.pragma('query_only = 1')
  const before = heldLines()
  await status(false, 3)
  await cloud.logs.waitFor(() => heldLines() > before)
  await cloud.broker.stop()
  t.match(
    cloud.logs.lines.find(
      (l) => l.msg === 'broker stopped while the database refuses writes: the heartbeats and statuses it held are not stored',
    ),
    { level: 50, statuses: 1, reason: /SQLITE_READONLY/ },
  )
})

/** A store on a database of its own, with phone-a registered. */
async function storeOn(t: Test, hold = QUICK): Promise<{ db: Db; store: StateStore }> {
  const db = openDb(t.testdir())
  t.teardown(() => {
    if (db.open) db.close()
  })
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  return { db, store: new StateStore(db, 1000, 0, () => {}, hold) }
}

t.test('in one batch, a removed device`s row is refused for its own fault and the rest held for the database`s', async (t) => {
  const { db, store } = await storeOn(t)
  const refused: string[] = []
  store.on('refused', (id) => refused.push(id))
  fillDatabase(db)
  store.recordHeartbeat('ghost', heartbeat(1), 1) // no such device: the batch fails on its foreign key first
  for (let seq = 1; seq <= 300; seq++) store.recordHeartbeat('phone-a', heartbeat(seq), 2)
  const [count, reason] = await new Promise<[number, string]>((resolve) => store.once('held', (n, why) => resolve([n, why])))
  t.same(refused, ['ghost'], 'the bad row is refused')
  t.ok(count > 0 && count < 300, 'the rows written one by one until the database was full are stored; the rest held')
  t.match(reason, /SQLITE_FULL/)
  t.equal(store.device('phone-a')?.last?.seq, 300 - count, 'a read while holding answers what is stored')
  const resumed = new Promise((resolve) => store.once('resumed', resolve))
  freeDatabase(db)
  t.equal(await resumed, count, 'the held rows are stored on the retry')
  t.equal(rows(db, 'phone-a'), 300)
  t.same(store.close(), null, 'a stop with nothing held says nothing is lost')
})

t.test('presence changes the database fails are held, never dropped', async (t) => {
  const { db, store } = await storeOn(t)
  // Not a full disk: a trigger makes every presence write fail, which only the database's state could do.
  db.exec(`CREATE TEMP TRIGGER no_presence BEFORE UPDATE OF online ON device_state BEGIN SELECT RAISE(ABORT, 'presence refused'); END`)
  store.setPresence('phone-a', true, 5)
  const [, reason] = await new Promise<[number, string]>((resolve) => store.once('held', (n, why) => resolve([n, why])))
  t.equal(reason, 'presence refused')
  t.equal(store.holdingBack(), null, 'no heartbeat is held: none is refused')
  store.setPresence('phone-a', false, 6)
  db.exec('DROP TRIGGER no_presence')
  await new Promise((resolve) => store.once('resumed', resolve))
  t.match(store.device('phone-a'), { online: false, presenceAt: 6 }, 'the newest change wins')
  const failing = (): void => {
    throw new Error('what follows failed')
  }
  t.throws(
    () => store.setStatus('phone-a', { cloudService: true, findDevice: true, at: 7 }, 7, failing),
    { message: 'what follows failed' },
    "a status that fails for a reason not the storage's is not held: the caller hears it",
  )
})

t.test('a retry due after the database closed without a stop does nothing', async (t) => {
  const { db, store } = await storeOn(t, { maxHeld: 1, retryMs: 1, retryMaxMs: 1 })
  fillDatabase(db)
  for (let seq = 1; seq <= 300; seq++) store.recordHeartbeat('phone-a', heartbeat(seq), 2)
  await new Promise((resolve) => store.once('held', resolve))
  db.close()
  let retried = false
  store.on('held', () => (retried = true))
  await sleep(20) // the retry is the store's own timer, with no event when it does nothing; this one expires after it
  t.notOk(retried, 'nothing written, nothing thrown')
})
