/** F2, X3: command and notification expiry run on the shared DueTimer: a rule that throws is logged and tried again, never fatal. */
import t, { type Test } from 'tap'
import { CommandCenter } from '../../broker/devices/commands.js'
import { openDb } from '../../broker/db.js'
import { NotificationQueue } from '../../broker/framework/notification-queue.js'
import { DeviceRegistry } from '../../broker/devices/registry.js'
import { StateStore } from '../../broker/devices/state-store.js'
import { ManualClock } from '../../common/clock.js'
import { LogCapture } from '../fixtures/logs.js'
import { makeOwner, signed } from '../fixtures/owner.js'

const MINUTE = 60_000

async function setup(t: Test): Promise<{ db: ReturnType<typeof openDb>; clock: ManualClock; logs: LogCapture }> {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  return { db, clock: new ManualClock(), logs: new LogCapture() }
}

t.test('F2 a command expiry that throws is logged, retried a minute later, and later expiries still run', async (t) => {
  const { db, clock, logs } = await setup(t)
  const center = new CommandCenter(db, new StateStore(db), clock, logs.logger(), () => false)
  center.start()
  t.teardown(() => center.stop())
  const owner = makeOwner(t)
  const now = clock.now()
  const first = center.submit('phone-a', signed(owner, 'phone-a', 'ring', { seconds: 1 }, now, { expiresAt: now + MINUTE }))
  const second = center.submit('phone-a', signed(owner, 'phone-a', 'ring', { seconds: 1 }, now, { expiresAt: now + 10 * MINUTE }))
  let failures = 1
  center.on('changed', () => {
    if (failures-- > 0) throw new Error('listener broke')
  })
  clock.advance(MINUTE)
  t.match(
    logs.lines.find((l) => l.msg === 'a cloud rule failed'),
    { rule: 'command-expiry' },
    'the failure is logged with its rule',
  )
  t.equal(center.get(first.id)?.state, 'expired', 'the row was expired before the listener threw')
  clock.advance(10 * MINUTE)
  t.equal(center.get(second.id)?.state, 'expired', 'the next expiry still runs')
})

t.test('X3 a notification expiry that throws is logged and retried; nothing escapes', async (t) => {
  const { db, clock, logs } = await setup(t)
  const queue = new NotificationQueue(db, clock, logs.logger())
  queue.start()
  t.teardown(() => queue.stop())
  const n = queue.enqueue('phone-a', { kind: 'message', title: 'a', body: '', ttlMs: MINUTE })
  const later = queue.enqueue('phone-a', { kind: 'message', title: 'b', body: '', ttlMs: 10 * MINUTE })
  let failures = 1
  queue.on('expired', () => {
    if (failures-- > 0) throw new Error('listener broke')
  })
  clock.advance(MINUTE)
  t.match(
    logs.lines.find((l) => l.msg === 'a cloud rule failed'),
    { rule: 'notification-expiry' },
  )
  clock.advance(10 * MINUTE)
  t.same(
    queue.list('phone-a', 10).map((r) => [r.id, r.state]),
    [
      [n.id, 'expired'],
      [later.id, 'expired'],
    ],
    'both expired, the second on time',
  )
})
