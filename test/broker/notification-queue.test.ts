/** X3: the durable notification queue on its own: order, acknowledgements, expiry that survives a restart. */
import t from 'tap'
import { openDb } from '../../broker/db.js'
import { DEFAULT_TTL_MS, NotificationQueue } from '../../broker/notification-queue.js'
import { DeviceRegistry } from '../../broker/registry.js'
import { ManualClock } from '../../common/clock.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

const HOUR = 3_600_000

t.test('X3 the queue keeps order, answers acknowledgements, and expires by deadline -- also deadlines that passed while the broker was down', async (t) => {
  const dir = tempDir(t)
  const clock = new ManualClock()
  const log = new LogCapture().logger()
  let db = openDb(dir)
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  await new DeviceRegistry(db, () => 1).add('phone-b', 'alice')
  let queue = new NotificationQueue(db, clock, log)
  queue.start()
  t.equal(clock.waiting, 0, 'an empty queue sets no timer')
  const a = queue.enqueue('phone-a', { kind: 'weather', title: 'a', body: '', ttlMs: 2 * HOUR })
  const b = queue.enqueue('phone-a', { kind: 'message', title: 'b', body: 'default time to live' })
  queue.enqueue('phone-b', { kind: 'system-update', title: 'c', body: '', ttlMs: HOUR })
  t.equal(b.expiresAt - b.createdAt, DEFAULT_TTL_MS)
  t.same(queue.pending('phone-a').map((r) => r.title), ['a', 'b'], 'oldest first, per device')
  t.same(queue.acknowledge('phone-b', a.id), { outcome: 'unknown' }, "another device's notification is unknown to it")
  t.same(queue.acknowledge('phone-a', 'no-such-id'), { outcome: 'unknown' })
  queue.sent(b.id)
  clock.advance(1000)
  const ack = queue.acknowledge('phone-a', b.id)
  t.match(ack, { outcome: 'delivered', record: { state: 'delivered', delayMs: 1000, sends: 1 } })
  t.same(queue.acknowledge('phone-a', b.id), { outcome: 'already delivered' })
  t.same(queue.list('phone-a', 1).map((r) => r.title), ['b'], 'list: the newest n, oldest first')
  queue.stop()
  db.close()

  clock.advance(3 * HOUR)
  db = openDb(dir)
  queue = new NotificationQueue(db, clock, log)
  const expired: string[] = []
  queue.on('expired', (rows) => expired.push(...rows.map((r) => r.title)))
  queue.start()
  t.same(expired.sort(), ['a', 'c'], 'deadlines that passed while the broker was down are applied at start')
  t.same(queue.counts('phone-a'), { queued: 0, delivered: 1, expired: 1 })
  t.same(queue.pending('phone-a'), [])
  t.match(queue.acknowledge('phone-a', a.id), { outcome: 'delivered', record: { state: 'delivered' } }, 'an acknowledgement that comes after the deadline still counts: the user saw it')
  const d = queue.enqueue('phone-a', { kind: 'message', title: 'd', body: '', ttlMs: HOUR })
  t.equal(clock.waiting, 1)
  queue.stop()
  t.equal(clock.waiting, 0, 'stop cancels the expiry timer')
  t.equal(queue.list('phone-a', 10).find((r) => r.id === d.id)?.state, 'queued')
  db.close()
})
