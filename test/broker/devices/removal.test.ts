/**
 * A device removed while it is connected cannot take the broker down: it is
 * disconnected at once and refused thereafter, what is queued for or from it
 * is dropped with a logged reason, and a batch that still fails is written
 * row by row with the bad row logged and counted.
 */
import t, { type Test } from 'tap'
import { openDb } from '../../../broker/db.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import type { BehaviourEvent } from '../../../common/contract.js'
import {
  addDevice,
  closed,
  connect,
  connectDevice,
  heartbeat,
  startCloud,
  storedHeartbeats,
  subackCode,
  type Cloud,
} from '../../fixtures/cloud.js'
import { onEnd } from '../../fixtures/scope.js'

/** The registry as `fakephone device remove` sees it: another connection to the same data directory. */
function otherProcessRegistry(t: Test, cloud: Cloud): DeviceRegistry {
  const db = openDb(cloud.dataDir)
  onEnd(t, () => db.close())
  return new DeviceRegistry(db, Date.now)
}

const events = (from: number, n: number): BehaviourEvent[] =>
  [...Array(n).keys()].map((i) => ({ seq: from + i, at: 1000 + i, type: 'screen-on', detail: '' }))

t.test('a device removed through the broker is disconnected at once, its queued heartbeats dropped, and refused thereafter', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const gone = closed(phone)
  cloud.broker.store.recordHeartbeat('phone-a', heartbeat(1), cloud.clock.now())
  cloud.broker.registry.remove('phone-a')
  await gone
  t.pass('the connection is closed')
  const line = await cloud.logs.waitFor((l) => l.msg === 'device removed: disconnected, its queued messages dropped')
  t.match(line, { deviceId: 'phone-a', heartbeats: 1 }, 'the queued heartbeat is dropped, with a logged reason')
  t.equal(cloud.broker.store.counters.rowsDropped, 1)
  t.notOk(cloud.broker.isConnected('phone-a'))
  const refused = await connectDevice(t, cloud, 'phone-a', secret).then(
    () => null,
    (e: { code?: number }) => e.code,
  )
  t.equal(refused, 4, 'its credentials no longer work')
})

t.test(
  'a device removed by another process (the CLI) is refused on its next heartbeat, logs batch or subscription; the broker keeps running',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const secretB = await addDevice(cloud, 'phone-b')
    const cli = otherProcessRegistry(t, cloud)

    const subscriber = await connectDevice(t, cloud, 'phone-a', secret)
    cli.remove('phone-a')
    t.equal(await subackCode(subscriber, 'fp/v1/phone-a/cmd'), 128, 'a subscription is refused')
    t.ok(await cloud.logs.waitFor((l) => l.msg === 'subscription refused' && l.reason === 'the device was removed'))

    for (const [kind, payload] of [
      ['heartbeat', heartbeat(1)],
      ['logs', { events: events(0, 3) }],
    ] as const) {
      await cloud.broker.registry.add('phone-a', 'alice').then(async ({ secret }) => {
        const phone = await connectDevice(t, cloud, 'phone-a', secret, { clean: true })
        cli.remove('phone-a')
        const gone = closed(phone)
        phone.publish(`fp/v1/phone-a/${kind}`, JSON.stringify(payload), { qos: 1 })
        await gone
        t.pass(`${kind}: the connection is closed`)
        t.ok(
          await cloud.logs.waitFor(
            (l) => l.msg === 'publish refused' && l.reason === 'the device was removed' && String(l.topic).endsWith(kind),
          ),
          `${kind}: refused with a logged reason`,
        )
      })
    }

    const other = await connect(t, cloud.mqttUrl, { clientId: 'phone-b', username: 'phone-b', password: secretB })
    const stored = storedHeartbeats(cloud, 1)
    await other.publishAsync('fp/v1/phone-b/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
    await stored
    t.equal(cloud.broker.store.history('phone-b', 10).length, 1, 'another device is still served')
  },
)

t.test('a heartbeat batch that fails to write is written row by row: the bad row is logged and counted, the rest stored', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a')
  await addDevice(cloud, 'phone-b')
  const cli = otherProcessRegistry(t, cloud)
  const now = cloud.clock.now()
  cloud.broker.store.recordHeartbeat('phone-a', heartbeat(1), now)
  cloud.broker.store.recordHeartbeat('phone-b', heartbeat(1), now)
  cloud.broker.store.recordHeartbeat('phone-b', heartbeat(2), now)
  cli.remove('phone-a') // queued before the removal: its row now breaks the foreign key
  const stored = storedHeartbeats(cloud, 2)
  await stored
  t.equal(cloud.broker.store.history('phone-b', 10).length, 2, "the other device's rows are stored")
  t.equal(cloud.broker.store.counters.rowsRefused, 1, 'the bad row is counted')
  t.match(
    await cloud.logs.waitFor((l) => l.msg === 'heartbeat not stored'),
    { deviceId: 'phone-a', seq: 1, reason: /FOREIGN KEY/ },
    'and logged with why',
  )
})

t.test(
  'X2 a behaviour-log batch that fails to write is written event by event: the bad events logged and counted, never thrown',
  async (t) => {
    const cloud = await startCloud(t)
    await addDevice(cloud, 'phone-a')
    const framework = cloud.broker.framework
    framework.ingestLogs('phone-a', { events: events(0, 2) }, cloud.clock.now())
    t.equal(framework.counters.logEvents, 2)
    otherProcessRegistry(t, cloud).remove('phone-a')
    framework.ingestLogs('phone-a', { events: events(2, 2) }, cloud.clock.now())
    t.equal(framework.counters.logEventsRefused, 2, 'both events counted as refused')
    t.equal(
      cloud.logs.lines.filter((l) => l.msg === 'behaviour log event not stored' && /FOREIGN KEY/.test(String(l.reason))).length,
      2,
      'each logged with why',
    )
  },
)
