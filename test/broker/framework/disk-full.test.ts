/**
 * X2 on a full disk: behaviour logs the broker acknowledged while its
 * database could take no more (a real SQLITE_FULL: `PRAGMA max_page_count`
 * on the broker's connection) are held, logged, and stored once there is
 * room, and count as held in what the cloud tells the phone; an event wrong in itself is still refused alone.
 */
import t from 'tap'
import { openDb } from '../../../broker/db.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { BehaviourLogStore } from '../../../broker/framework/behaviour-logs.js'
import type { BehaviourEvent } from '../../../common/contract.js'
import { fillDatabase, freeDatabase } from '../../fixtures/db-full.js'
import { addDevice, connectDevice, nextMessage, startCloud } from '../../fixtures/cloud.js'

/** `n` events from `from`, each with a detail of 200 characters: more than a database page between them. */
const events = (from: number, n: number): BehaviourEvent[] =>
  [...Array(n).keys()].map((i) => ({ seq: from + i, at: 1000 + i, type: 'screen-on', detail: 'd'.repeat(200) }))

const HELD = 'behaviour logs held: the database cannot take them; written again when it can'

t.test('X2 behaviour logs acknowledged while the database is full are held, logged and stored once there is room', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const { db } = cloud.broker
  fillDatabase(db)
  await phone.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events: events(0, 100) }), { qos: 1 })
  t.match(await cloud.logs.waitFor((l) => l.msg === HELD), { level: 50, events: 100, held: 100, reason: /SQLITE_FULL/ })
  t.equal(cloud.broker.framework.logs.summary('phone-a').events, 0, 'none stored yet')
  // The answer to a subscription to the cloud's time says the seqs it holds: a phone numbers its next events past them.
  const time = nextMessage(phone)
  await phone.subscribeAsync('fp/v1/phone-a/time', { qos: 1 })
  t.match(JSON.parse((await time)[1].toString()), { logSeq: 99 }, 'the held events count as held')
  t.equal(cloud.broker.framework.lastLogSeq('phone-b'), null, "and as no one else's")
  freeDatabase(db)
  await cloud.logs.waitFor((l) => l.msg === 'behaviour logs stored' && l.stored === 100)
  t.equal(cloud.broker.framework.logs.summary('phone-a').events, 100, 'every acknowledged event stored')
  t.equal(cloud.broker.framework.lastLogSeq('phone-a'), 99)

  // Full again: two batches held, a retry that finds it still full, then a stop.
  fillDatabase(db)
  const heldLines = (): number => cloud.logs.lines.filter((l) => l.msg === HELD).length
  await phone.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events: events(100, 100) }), { qos: 1 })
  await phone.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events: events(200, 100) }), { qos: 1 })
  await cloud.logs.waitFor(() => heldLines() >= 5)
  t.match(cloud.logs.lines.filter((l) => l.msg === HELD).at(-1), { held: 200 }, 'both held again by the retry')
  await cloud.broker.stop()
  t.match(
    cloud.logs.lines.find((l) => l.msg.startsWith('broker stopped with behaviour logs')),
    { level: 50, events: 200 },
  )
})

t.test('X2 an event refused for its own fault goes alone; what the full database refused is handed back held', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  const store = new BehaviourLogStore(db)
  // An event wrong in itself, as the database sees it: a trigger refuses seq 0.
  db.exec(`CREATE TEMP TRIGGER refuse_0 BEFORE INSERT ON behaviour_logs WHEN NEW.seq = 0 BEGIN SELECT RAISE(ABORT, 'bad event'); END`)
  fillDatabase(db)
  const result = store.record('phone-a', events(0, 100), 1)
  t.same(result.refused, [{ seq: 0, reason: 'bad event' }])
  t.ok(result.stored > 0, 'the events that fitted are stored')
  t.match(result.held, { reason: /SQLITE_FULL/ })
  t.equal(result.stored + 1 + (result.held?.events.length ?? 0), 100, 'every event stored, refused or held')
  t.equal(result.held?.events[0]?.seq, result.stored + 1, 'held from the first that did not fit')
})
