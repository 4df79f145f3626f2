/** X3: the vendor's own notices -- weather warnings and system-update reminders -- for every device on a schedule. */
import t from 'tap'
import { serviceNotice } from '../../broker/service-notices.js'
import { DEFAULT_BROKER_OPTIONS } from '../../broker/server.js'
import { ManualClock } from '../../common/clock.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'

t.test('X3 with service notices on, every device gets a weather warning, then a system-update reminder, each with its own time to live', async (t) => {
  const framework = { ...DEFAULT_BROKER_OPTIONS.framework, serviceNoticeEveryMs: 3_600_000 }
  const cloud = await startCloud(t, { framework })
  const clock = cloud.clock as ManualClock
  await addDevice(cloud, 'phone-a')
  await addDevice(cloud, 'phone-b')
  clock.advance(2 * 3_600_000)
  for (const id of ['phone-a', 'phone-b']) {
    const rows = cloud.broker.framework.queue.list(id, 10)
    t.match(rows, [{ kind: 'weather', title: 'Weather warning' }, { kind: 'system-update', title: 'System update available', body: 'fakephone OS 1.1 is ready to install.' }], id)
    t.equal((rows[0]?.expiresAt ?? 0) - (rows[0]?.createdAt ?? 0), 6 * 3_600_000, 'a weather warning is stale after six hours')
    t.equal((rows[1]?.expiresAt ?? 0) - (rows[1]?.createdAt ?? 0), 7 * 86_400_000)
  }
  t.ok(cloud.logs.has('service notice queued for every device'))
})

t.test('the notices take turns and cycle through the weather texts', (t) => {
  const kinds = Array.from({ length: 10 }, (_, i) => serviceNotice(i))
  t.same(kinds.map((n) => n.kind).slice(0, 4), ['weather', 'system-update', 'weather', 'system-update'])
  t.equal(kinds[8]?.body, kinds[0]?.body, 'four weather texts, then again')
  t.equal(kinds[9]?.body, 'fakephone OS 1.5 is ready to install.')
  t.end()
})
