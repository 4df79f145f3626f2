/** F1 at the cloud: heartbeats stored in order, presence and last will, malformed payloads refused, restarts keep everything. */
import t from 'tap'
import { once } from 'node:events'
import {
  addDevice,
  closed,
  cloudCall,
  connect,
  connectConsole,
  connectDevice,
  heartbeat,
  nextMessage,
  startCloud,
  storedHeartbeats,
} from '../../fixtures/cloud.js'
import { MAX_TIME_MS } from '../../../common/contract.js'
import { makeOwner, signed } from '../../fixtures/owner.js'

t.test('F1 heartbeats are stored in order, a QoS 1 redelivery once, and the last one is the device position', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 51)
  for (let seq = 0; seq < 50; seq++)
    await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(seq, { lat: 55 + seq / 100 })), { qos: 1 })
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(10)), { qos: 1 })
  await stored
  const history = cloud.broker.store.history('phone-a', 100)
  t.equal(history.length, 50, 'the redelivered seq 10 is stored once')
  t.same(
    history.map((h) => h.seq),
    [...Array(50).keys()].reverse(),
    'newest first, none missing',
  )
  const view = cloud.broker.store.device('phone-a')
  t.equal(view?.last?.seq, 49)
  t.equal(view?.last?.lat, 55.49)
  t.equal(view?.online, true)
  t.equal(cloud.broker.counters.heartbeats, 51)
})

t.test('F1: a malformed heartbeat (a time no Date holds too) is refused, logged and never stored; the broker keeps serving', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  for (const payload of [
    'not json',
    JSON.stringify({ ...heartbeat(1), lat: 'north' }),
    JSON.stringify({ ...heartbeat(1), extra: 1 }),
    '',
    // A time past what a Date holds: stored, it stopped the account's export (its GPX) and the web page's history.
    JSON.stringify({ ...heartbeat(1), at: MAX_TIME_MS + 1 }),
  ]) {
    const phone = await connectDevice(t, cloud, 'phone-a', secret, { clean: true })
    phone.publish('fp/v1/phone-a/heartbeat', payload, { qos: 1 })
    await closed(phone)
  }
  const refusals = cloud.logs.lines.filter((l) => l.msg === 'publish refused')
  t.equal(refusals.length, 5)
  t.match(refusals[4], { reason: /^malformed heartbeat payload: .*at at$/ }, 'a time no Date holds')
  t.ok(
    refusals.every((l) => String(l.reason).startsWith('malformed heartbeat payload')),
    'each refusal says why',
  )
  t.equal(cloud.broker.store.history('phone-a', 10).length, 0, 'nothing stored')
  t.equal(cloud.broker.counters.publishRefused, 5)
  // Its other topics take the general check (the heartbeat has a path of its own): a malformed status is refused too.
  const statusSender = await connectDevice(t, cloud, 'phone-a', secret, { clean: true })
  statusSender.publish('fp/v1/phone-a/status', '{"cloudService":"yes"}', { qos: 1 })
  await closed(statusSender)
  t.match(cloud.logs.lines.filter((l) => l.msg === 'publish refused').at(-1), { reason: /^malformed status payload/ })
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 1)
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  await stored
  t.equal(cloud.broker.store.history('phone-a', 10).length, 1, 'a good heartbeat afterwards is stored')
})

t.test('F1 F2: a refused publish, whose reason MQTT 3.1.1 cannot give the device, is said in the console API device view', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  await addDevice(cloud, 'phone-b')
  const view = async (id: string): Promise<Record<string, unknown>> => {
    const reply = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', `/api/devices/${id}`)
    return reply.body.device as Record<string, unknown>
  }
  t.equal((await view('phone-a')).refused, null, 'nothing refused yet')

  const receipt = { command: '3f0c8a52-6d1e-4b7a-9c2f-5e8d1a7b4c60', device: 'phone-a', state: 'succeeded', at: 1, sig: 'AA==', extra: 1 }
  for (const [topic, payload] of [
    ['fp/v1/phone-a/heartbeat', JSON.stringify({ ...heartbeat(1), network: '5g' })],
    ['fp/v1/phone-a/result', JSON.stringify(receipt)],
  ] as const) {
    const phone = await connectDevice(t, cloud, 'phone-a', secret, { clean: true, reconnectPeriod: 0 })
    phone.publish(topic, payload, { qos: 1 })
    await closed(phone)
  }
  const devices = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/devices')
  const listed = (devices.body.devices as Record<string, unknown>[]).find((d) => d.id === 'phone-a')
  t.match(
    listed?.refused,
    { topic: 'fp/v1/phone-a/result', reason: 'malformed result payload: ✖ Unrecognized key: "extra"' },
    'the last one, in the list',
  )
  t.same((await view('phone-a')).refused, listed?.refused, 'and in the device view, with its time')
  t.equal((await view('phone-b')).refused, null, "another device's view says nothing of it")
  // A device removed and registered again is a new device: nothing of the old one is said of it.
  const removed = once(cloud.broker.registry, 'removed')
  cloud.broker.registry.remove('phone-a')
  await removed
  await addDevice(cloud, 'phone-a')
  t.equal((await view('phone-a')).refused, null, 'a device removed and added again starts with nothing refused')
})

t.test("F2: a locate's receipt whose fix is stamped past what a Date holds is refused, logged and never recorded", async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const locate = cloud.broker.commands.submit('phone-a', signed(makeOwner(t), 'phone-a', 'locate', {}, cloud.clock.now()))
  const receipt = (at: number): string =>
    JSON.stringify({
      command: locate.id,
      device: 'phone-a',
      state: 'succeeded',
      at: 1,
      data: { lat: 1, lon: 2, accuracy: 5, at },
      sig: 'AAAA',
    })
  // Recorded, it stopped the web console's page of the phone (its located fix shown as a date: toISOString threw).
  const forger = await connectDevice(t, cloud, 'phone-a', secret, { clean: true })
  forger.publish('fp/v1/phone-a/result', receipt(MAX_TIME_MS + 1), { qos: 1 })
  // Refused, the connection is closed; recorded, the command changes (and the checks below say so at once).
  await Promise.race([closed(forger), once(cloud.broker.commands, 'changed')])
  t.match(cloud.logs.lines.filter((l) => l.msg === 'publish refused').at(-1), { reason: /^malformed result payload: .*at data\.at$/ })
  t.not(cloud.broker.commands.get(locate.id)?.state, 'succeeded', 'not recorded')
  if (!t.passing()) return
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const changed = once(cloud.broker.commands, 'changed')
  await phone.publishAsync('fp/v1/phone-a/result', receipt(MAX_TIME_MS), { qos: 1 })
  await changed
  t.match(cloud.broker.commands.get(locate.id), { state: 'succeeded', data: { at: MAX_TIME_MS } }, 'the last instant a Date holds is')
})

t.test('presence: online on connect, the last will says offline, a session takeover stays online', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const watcher = await connectConsole(t, cloud)
  await watcher.subscribeAsync('fp/v1/phone-a/presence', { qos: 1 })
  const will = { topic: 'fp/v1/phone-a/presence', payload: Buffer.from('{"state":"offline"}'), qos: 1 as const, retain: true }
  const first = await connectDevice(t, cloud, 'phone-a', secret, { will })
  t.equal(cloud.broker.store.device('phone-a')?.online, true)
  const second = await connectDevice(t, cloud, 'phone-a', secret, { will })
  await closed(first)
  t.equal(cloud.broker.store.device('phone-a')?.online, true, 'the old connection closing does not mark the device offline')
  const willSeen = nextMessage(watcher)
  ;(second.stream as { destroy(): void }).destroy()
  const [, payload] = await willSeen
  t.same(JSON.parse(payload.toString()), { state: 'offline' }, 'watchers got the last will')
  while (cloud.broker.store.device('phone-a')?.online) await once(cloud.broker.store, 'presence')
  t.pass('the cloud marks the device offline')

  const third = await connectDevice(t, cloud, 'phone-a', secret, { will })
  const presence = once(cloud.broker.store, 'presence')
  await third.publishAsync('fp/v1/phone-a/presence', '{"state":"offline","at":5}', { qos: 1, retain: true })
  t.same(await presence, ['phone-a', false], 'a device saying offline itself is offline')
})

t.test('a broker that is not started says so, and stopping it is harmless', async (t) => {
  const { CloudBroker, DEFAULT_BROKER_OPTIONS } = await import('../../../broker/server.js')
  const { LogCapture } = await import('../../fixtures/logs.js')
  const broker = new CloudBroker(
    DEFAULT_BROKER_OPTIONS,
    new (await import('../../../common/clock.js')).ManualClock(),
    new LogCapture().logger(),
  )
  t.throws(() => broker.store, { message: 'the broker is not started' })
  t.throws(() => broker.registry, { message: 'the broker is not started' })
  await broker.stop()
  t.pass('stop before start resolves')
})

t.test('a broker restart keeps the registry, last state and history; devices start offline', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 3)
  for (const seq of [1, 2, 3]) await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(seq)), { qos: 1 })
  await stored
  await phone.endAsync()
  await cloud.restart()
  t.same(
    cloud.broker.registry.list().map((d) => d.id),
    ['phone-a'],
  )
  t.same(
    cloud.broker.store.history('phone-a', 10).map((h) => h.seq),
    [3, 2, 1],
  )
  t.equal(cloud.broker.store.device('phone-a')?.last?.seq, 3)
  t.equal(cloud.broker.store.device('phone-a')?.online, false)
  t.ok(await connectDevice(t, cloud, 'phone-a', secret), 'the same secret still works')
  const ws = await connect(t, cloud.wsUrl, { clientId: 'phone-a', username: 'phone-a', password: secret, clean: false })
  const wsClosed = closed(ws)
  await cloud.restart()
  await wsClosed
  t.pass('stopping the broker closes WebSocket connections too')
})
