/**
 * X3: the durable notification queue on its own -- order, acknowledgements, expiry that survives a restart -- and the vendor service
 * notices that fill it.
 */
import t from 'tap'
import { openDb } from '../../../broker/db.js'
import { DEFAULT_TTL_MS, NotificationQueue } from '../../../broker/framework/notification-queue.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { ManualClock } from '../../../common/clock.js'
import { LogCapture } from '../../fixtures/logs.js'
import { tempDir } from '../../fixtures/scope.js'
import { serviceNotice } from '../../../broker/framework/service-notices.js'
import { DEFAULT_BROKER_OPTIONS } from '../../../broker/server.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

const HOUR = 3_600_000

t.test(
  'X3 the queue keeps order, answers acknowledgements, and expires by deadline -- also deadlines that passed while the broker was down',
  async (t) => {
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
    t.same(
      queue.pending('phone-a').map((r) => r.title),
      ['a', 'b'],
      'oldest first, per device',
    )
    t.same(queue.acknowledge('phone-b', a.id), { outcome: 'unknown' }, "another device's notification is unknown to it")
    t.same(queue.acknowledge('phone-a', 'no-such-id'), { outcome: 'unknown' })
    queue.sent(b.id)
    clock.advance(1000)
    const ack = queue.acknowledge('phone-a', b.id)
    t.match(ack, { outcome: 'delivered', record: { state: 'delivered', delayMs: 1000, sends: 1 } })
    t.same(queue.acknowledge('phone-a', b.id), { outcome: 'already delivered' })
    t.same(
      queue.list('phone-a', 1).map((r) => r.title),
      ['b'],
      'list: the newest n, oldest first',
    )
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
    t.match(
      queue.acknowledge('phone-a', a.id),
      { outcome: 'delivered', record: { state: 'delivered' } },
      'an acknowledgement that comes after the deadline still counts: the user saw it',
    )
    const d = queue.enqueue('phone-a', { kind: 'message', title: 'd', body: '', ttlMs: HOUR })
    t.equal(clock.waiting, 1)
    queue.stop()
    t.equal(clock.waiting, 0, 'stop cancels the expiry timer')
    t.equal(queue.list('phone-a', 10).find((r) => r.id === d.id)?.state, 'queued')
    db.close()
  },
)

t.test(
  'X3 with service notices on, every device gets a weather warning, then a system-update reminder, each with its own time to live',
  async (t) => {
    const framework = { ...DEFAULT_BROKER_OPTIONS.framework, serviceNoticeEveryMs: 3_600_000 }
    const cloud = await startCloud(t, { framework })
    const clock = cloud.clock as ManualClock
    await addDevice(cloud, 'phone-a')
    await addDevice(cloud, 'phone-b')
    clock.advance(2 * 3_600_000)
    for (const id of ['phone-a', 'phone-b']) {
      const rows = cloud.broker.framework.queue.list(id, 10)
      t.match(
        rows,
        [
          { kind: 'weather', title: 'Weather warning' },
          { kind: 'system-update', title: 'System update available', body: 'fakephone OS 1.1 is ready to install.' },
        ],
        id,
      )
      t.equal((rows[0]?.expiresAt ?? 0) - (rows[0]?.createdAt ?? 0), 6 * 3_600_000, 'a weather warning is stale after six hours')
      t.equal((rows[1]?.expiresAt ?? 0) - (rows[1]?.createdAt ?? 0), 7 * 86_400_000)
    }
    t.ok(cloud.logs.has('service notice queued for every device'))
  },
)

t.test('the notices take turns and cycle through the weather texts', (t) => {
  const kinds = Array.from({ length: 10 }, (_, i) => serviceNotice(i))
  t.same(kinds.map((n) => n.kind).slice(0, 4), ['weather', 'system-update', 'weather', 'system-update'])
  t.equal(kinds[8]?.body, kinds[0]?.body, 'four weather texts, then again')
  t.equal(kinds[9]?.body, 'fakephone OS 1.5 is ready to install.')
  t.end()
})
