/** Devices authenticate and touch only their own topics; the console is a separate role; $SYS stays closed. */
import t from 'tap'
import type { IClientOptions } from 'mqtt'
import { once } from 'node:events'
import { connect as tcpConnect } from 'node:net'
import {
  addDevice,
  closed,
  connect,
  connectConsole,
  connectDevice,
  heartbeat,
  nextMessage,
  startCloud,
  subackCode,
} from '../../fixtures/cloud.js'
import { LOGGED_SUBSCRIBE_REFUSALS } from '../../../broker/mqtt/access.js'

/** A CONNECT with CleanSession=0, username and password [MQTT-3.1]. */
function rawConnect(clientId: string, username: string, password: string): Buffer {
  const str = (s: string): Buffer => Buffer.concat([Buffer.from([s.length >> 8, s.length & 0xff]), Buffer.from(s)])
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc0, 0, 30]), str(clientId), str(username), str(password)])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

t.test('wrong credentials and bad client ids are refused with the right CONNACK code and a logged reason', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const cases: [string, IClientOptions, number, string][] = [
    ['wrong secret', { clientId: 'phone-a', username: 'phone-a', password: 'nope' }, 4, 'unknown device or wrong secret'],
    ['unknown device', { clientId: 'ghost', username: 'ghost', password: secret }, 4, 'unknown device or wrong secret'],
    ['no password', { clientId: 'phone-a', username: 'phone-a' }, 4, 'no username or password'],
    [
      'client id is not the device id',
      { clientId: 'phone-b', username: 'phone-a', password: secret },
      2,
      'a device must use its device id as client id',
    ],
    ['wrong console token', { clientId: 'console.x', username: 'console', password: 'guess' }, 4, 'wrong console token'],
    [
      'console without the console. prefix',
      { clientId: 'phone-a', username: 'console', password: cloud.consoleToken },
      2,
      'console client id must start with "console."',
    ],
  ]
  for (const [name, options, code, reason] of cases) {
    const err = await connect(t, cloud.mqttUrl, options).then(
      () => null,
      (e: { code?: number }) => e,
    )
    t.equal(err?.code, code, `${name}: CONNACK ${code}`)
    t.ok(await cloud.logs.waitFor((l) => l.msg === 'connection refused' && l.reason === reason), `${name}: logged`)
  }
  t.ok(await connectDevice(t, cloud, 'phone-a', secret), 'the right secret is accepted')

  // mqtt.js and mqtt-packet refuse to send this CONNECT, so it is written by hand.
  const raw = tcpConnect(cloud.mqttPort, '127.0.0.1')
  raw.write(rawConnect('', 'phone-a', secret))
  const [connack] = (await once(raw, 'data')) as [Buffer]
  t.same([...connack], [0x20, 0x02, 0x00, 0x02], 'an empty client id with a persistent session gets CONNACK 0x02')
  t.ok(cloud.logs.has('connection refused'))
  t.ok(await cloud.logs.waitFor((l) => l.reason === 'empty client id with a persistent session'))
  raw.destroy()
})

t.test("a device cannot publish or subscribe to another device's topics, $SYS or wildcards", async (t) => {
  const cloud = await startCloud(t)
  const secretA = await addDevice(cloud, 'phone-a')
  const a = await connectDevice(t, cloud, 'phone-a', secretA)
  for (const topic of [
    'fp/v1/phone-b/heartbeat',
    'fp/v1/+/heartbeat',
    'fp/v1/#',
    '#',
    '$SYS/#',
    'fp/v1/phone-a/heartbeat',
    'other/topic',
    // F2: the commands' changes are the console's alone, a device's own included.
    'fp/v1/commands/phone-a/changed',
    'fp/v1/commands/+/changed',
  ]) {
    t.equal(await subackCode(a, topic), 128, `subscribe ${topic} refused with SUBACK 0x80`)
  }
  t.ok(a.connected, 'a refused subscription does not drop the device')

  for (const [topic, reason, retain] of [
    ['fp/v1/phone-b/heartbeat', 'device phone-a may not publish for "phone-b"'],
    // A name the device chose is quoted as the terminal shows names (common/terminal-text): ESC as \x1B, a `"` as \".
    ['fp/v1/phone-a/x\x1b[2J"\\', 'devices do not publish "x\\x1B[2J\\"\\\\"'],
    ['$SYS/broker/x', '$SYS is reserved'],
    ['elsewhere', 'topic is outside the contract'],
    ['fp/v1/phone-a/cmd', 'devices do not publish "cmd"'],
    // F1, F2, X2: retained only where the contract says (presence, status); a later subscriber is not handed stale ones.
    ['fp/v1/phone-a/heartbeat', '"heartbeat" is never retained', true],
    ['fp/v1/phone-a/result', '"result" is never retained', true],
  ] as const) {
    const c = await connectDevice(t, cloud, 'phone-a', secretA)
    c.publish(topic, JSON.stringify(heartbeat(1)), { qos: 1, retain: retain === true })
    await closed(c)
    t.ok(await cloud.logs.waitFor((l) => l.msg === 'publish refused' && l.reason === reason), `publish to ${topic} refused: ${reason}`)
  }
  t.equal(cloud.broker.store.history('phone-b', 10).length, 0)
  t.equal(cloud.broker.store.history('phone-a', 10).length, 0, 'the retained heartbeat was not stored either')
  const watcher = await connectConsole(t, cloud)
  const retained: string[] = []
  watcher.on('message', (topic) => retained.push(topic))
  await watcher.subscribeAsync('fp/v1/#', { qos: 1 })
  // A message published after the SUBSCRIBE reaches the watcher after any retained ones it was due.
  const b = await connectDevice(t, cloud, 'phone-b', await addDevice(cloud, 'phone-b'))
  const seen = nextMessage(watcher)
  await b.publishAsync('fp/v1/phone-b/status', JSON.stringify({ cloudService: true, findDevice: true, at: 1 }), { qos: 1, retain: true })
  await seen
  t.same(retained, ['fp/v1/phone-b/status'], 'no retained heartbeat or receipt of phone-a was kept; a retained status is')
})

t.test('the console watches every device read-only, over TCP and over WebSocket', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const watcher = await connectConsole(t, cloud)
  const wsWatcher = await connect(t, cloud.wsUrl, { clientId: 'console.ws', username: 'console', password: cloud.consoleToken })
  t.equal(await subackCode(watcher, 'fp/v1/#', 0), 0, 'console may watch fp/v1/#')
  await wsWatcher.subscribeAsync('fp/v1/+/heartbeat')
  t.equal(await subackCode(watcher, '$SYS/#'), 128, 'but not $SYS')
  t.equal(await subackCode(watcher, 'elsewhere/#'), 128, 'nor topics outside fp/v1/')
  const seen = nextMessage(wsWatcher)
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(7)), { qos: 1 })
  const [topic, payload] = await seen
  t.equal(topic, 'fp/v1/phone-a/heartbeat')
  t.equal(JSON.parse(payload.toString()).seq, 7, 'the console saw the heartbeat over WebSocket')
  watcher.publish('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(8)), { qos: 1 })
  await closed(watcher)
  t.ok(await cloud.logs.waitFor((l) => l.reason === 'the console does not publish over MQTT'))
})

t.test('a SUBSCRIBE asking for thousands of foreign topics is refused topic by topic, and logs a few lines, not thousands', async (t) => {
  const cloud = await startCloud(t)
  const a = await connectDevice(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'))
  const topics = Array.from({ length: 2000 }, (_, i) => `fp/v1/phone-${i}/cmd`)
  const granted = await a.subscribeAsync(topics, { qos: 1 }).catch((err: { packet: { granted: number[] } }) => err.packet.granted)
  t.equal(granted.length, 2000)
  t.ok(
    (granted as (number | { qos: number })[]).every((g) => (typeof g === 'number' ? g : g.qos) === 128),
    'every one refused with 0x80',
  )
  const refused = cloud.logs.lines.filter((l) => l.msg === 'subscription refused')
  t.equal(refused.length, LOGGED_SUBSCRIBE_REFUSALS, 'the first ones are logged with their reason')
  t.match(refused[0], { clientId: 'phone-a', topic: 'fp/v1/phone-0/cmd', reason: 'device phone-a may subscribe only to its own topics' })
  t.equal(cloud.logs.lines.filter((l) => l.msg === 'more subscriptions refused on this connection; they are not logged').length, 1)
  t.equal(await subackCode(a, 'fp/v1/phone-a/cmd'), 1, 'the device is still connected and gets its own topic')
})
