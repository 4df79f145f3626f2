/** The shared MQTT connection: capped, jittered backoff on the injected clock instead of mqtt.js's fixed one-second retry. */
import t from 'tap'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import type { connect } from 'mqtt'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { ManualClock } from '../../common/clock.js'
import { MQTT_SCHEMES } from '../../common/config.js'
import { connectMqtt, mqttTarget, MqttLink, REFUSED_WHY } from '../../common/mqtt.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'
import { closedPort } from '../fixtures/ports.js'

const require = createRequire(import.meta.url)

t.test('a link that cannot connect waits a jittered delay, retries, and stops for good when told', async (t) => {
  // A port that refuses at once: bound by us, then closed.
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  server.close()
  const clock = new ManualClock()
  const logs = new LogCapture()
  const link = new MqttLink({ url: `mqtt://127.0.0.1:${port}`, clock, log: logs.logger(), mqtt: { clientId: 'x', connectTimeout: 2000 } })
  t.equal(link.state, 'connecting')
  await once(link, 'state')
  t.equal(link.state, 'waiting')
  t.ok(
    link.lastDelayMs >= 250 && link.lastDelayMs <= 500,
    `first retry after ${link.lastDelayMs} ms (default base 500 ms, halved jitter floor)`,
  )
  t.ok(logs.has('mqtt disconnected, retrying'))
  t.notOk(link.connected)
  clock.advance(link.lastDelayMs)
  t.equal(link.state, 'connecting', 'the retry fires on the injected clock')
  await once(link, 'state')
  t.ok(link.lastDelayMs >= 500 && link.lastDelayMs <= 1000, `second retry after ${link.lastDelayMs} ms`)
  await link.stop()
  t.equal(link.state, 'stopped')
  t.equal(clock.waiting, 0, 'stopping cancels the pending retry')
})

t.test('a link stopped cleanly while it is not connected has no DISCONNECT to send: it just stops', async (t) => {
  const clock = new ManualClock()
  const link = new MqttLink({
    url: `mqtt://127.0.0.1:${await closedPort()}`,
    clock,
    log: new LogCapture().logger(),
    mqtt: { clientId: 'x' },
  })
  await once(link, 'state')
  t.equal(link.state, 'waiting')
  await link.stopCleanly()
  t.equal(link.state, 'stopped')
  t.equal(clock.waiting, 0, 'no retry left')
})

t.test(
  'X1 a link switched off closes its connection and retries nothing until switched on; an acknowledged publish needs the connection',
  async (t) => {
    const { addDevice, startCloud } = await import('../fixtures/cloud.js')
    const cloud = await startCloud(t)
    // The link's own clock: the cloud keeps timers of its own (the backup schedule) on its clock.
    const clock = new ManualClock()
    const secret = await addDevice(cloud, 'phone-a')
    const cloudTimers = clock.waiting
    const link = new MqttLink({
      url: cloud.mqttUrl,
      clock,
      log: new LogCapture().logger(),
      startOff: true,
      mqtt: { clientId: 'phone-a', username: 'phone-a', password: secret },
    })
    t.teardown(() => link.stop())
    t.equal(link.state, 'off', 'started switched off: no connection at all')
    await t.rejects(link.publishAcked('fp/v1/phone-a/logs', '{}'), { code: 'ELINKDOWN', message: 'the data channel is not connected' })
    link.resume()
    await once(link, 'connect')
    const batch = JSON.stringify({ events: [{ seq: 0, at: 1, type: 'screen-on', detail: '' }] })
    await link.publishAcked('fp/v1/phone-a/logs', batch)
    t.equal(cloud.broker.framework.logs.summary('phone-a').events, 1, 'resolved once the cloud had it')
    await link.pause()
    await link.pause()
    t.equal(link.state, 'off')
    clock.advance(60_000)
    t.equal(clock.waiting, cloudTimers, "switched off: no retry waiting (the cloud's rules keep their timers)")
    while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
    t.pass('the cloud saw the connection close')
    link.resume()
    link.resume()
    await once(link, 'connect')
    t.ok(cloud.broker.isConnected('phone-a'), 'switched on: connected again with the same client')
  },
)

t.test('a link that was never switched on stops at once; a publish whose connection drops before its PUBACK fails', async (t) => {
  const never = new MqttLink({
    url: `mqtt://127.0.0.1:${await closedPort()}`,
    clock: new ManualClock(),
    log: new LogCapture().logger(),
    startOff: true,
    mqtt: { clientId: 'x' },
  })
  await never.stop()
  t.equal(never.state, 'stopped')
  // A broker that accepts the connection and then acknowledges nothing.
  const stuck = createServer((s) => s.once('data', () => s.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))))
  stuck.listen(0, '127.0.0.1')
  await once(stuck, 'listening')
  t.teardown(() => stuck.close())
  for (const [clean, why] of [
    [true, 'mqtt.js fails the publish as it closes'],
    [false, 'mqtt.js keeps the publish for a reconnect that never comes'],
  ] as const) {
    const link = new MqttLink({
      url: `mqtt://127.0.0.1:${(stuck.address() as AddressInfo).port}`,
      clock: new ManualClock(),
      log: new LogCapture().logger(),
      mqtt: { clientId: 'x', clean },
    })
    await once(link, 'connect')
    const failed = t.rejects(
      link.publishAcked('fp/v1/x/logs', '{}'),
      { code: 'ELINKDOWN', message: /^the data channel closed before the broker acknowledged/ },
      why,
    )
    await link.pause()
    await failed
    await link.stop()
  }
})

t.test('one connection failure is one log line, with its reason, even when mqtt.js reports the loss twice', async (t) => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const link = new MqttLink({ url: `mqtt://127.0.0.1:${await closedPort()}`, clock, log: logs.logger('info'), mqtt: { clientId: 'x' } })
  t.teardown(() => link.stop())
  await once(link, 'state')
  link.client.emit('close')
  t.equal(clock.waiting, 1, 'one retry waits')
  t.match(logs.lines, [{ msg: 'mqtt disconnected, retrying', err: /ECONNREFUSED/, attempt: 1 }])
  t.equal(logs.lines.length, 1)
  t.equal(link.credentialsRefused, false, 'no broker is not a refusal')
})

t.test('a broker that refuses the credentials is warned of, saying what to check, and retried', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  for (const [clientId, password] of [
    ['phone-a', 'not-the-secret'],
    ['ghost', secret],
  ] as const) {
    const logs = new LogCapture()
    const link = new MqttLink({
      url: cloud.mqttUrl,
      clock: new ManualClock(),
      log: logs.logger('info'),
      mqtt: { clientId, username: clientId, password },
    })
    t.teardown(() => link.stop())
    await logs.waitFor((l) => l.level === 40)
    t.match(logs.lines, [
      {
        level: 40,
        msg: `mqtt refused this device: ${REFUSED_WHY}`,
        err: /Bad username or password/,
        attempt: 1,
      },
    ])
    t.equal(link.state, 'waiting', 'retried: the device may be registered meanwhile')
    t.equal(link.credentialsRefused, true, 'and the link can say it was refused')
  }
})

t.test('a refusal that goes on is warned of once; the retries after it are info lines', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a')
  const logs = new LogCapture()
  const clock = new ManualClock()
  const link = new MqttLink({
    url: cloud.mqttUrl,
    clock,
    log: logs.logger('info'),
    mqtt: { clientId: 'phone-a', username: 'phone-a', password: 'not-the-secret' },
  })
  t.teardown(() => link.stop())
  await logs.waitFor((l) => l.level === 40)
  clock.advance(3_600_000)
  await logs.waitFor((l) => l.msg === 'mqtt refused this device again, retrying')
  t.equal(logs.lines.filter((l) => l.level === 40).length, 1, 'one warning')
  t.match(logs.lines.at(-1), { level: 30, attempt: 2, err: /Bad username or password/ })
})

t.test('a plain broker URL is taken apart once, as mqtt.js would take it; any other URL is left to mqtt.js', async (t) => {
  const plain = mqttTarget('mqtt://127.0.0.1:1883')
  t.same(plain, { protocol: 'mqtt', host: '127.0.0.1', port: 1883 })
  t.equal(mqttTarget('mqtt://127.0.0.1:1883'), plain, 'the same URL again: the same options, not parsed again')
  t.same(mqttTarget('mqtts://broker.example:8883/'), { protocol: 'mqtts', host: 'broker.example', port: 8883 })
  for (const url of ['mqtt://u:p@h:1', 'mqtt://h', 'ws://h:1/mqtt', 'mqtt://[::1]:1883', 'mqtt://h:1/?clientId=x', 'mqtt://h:1/x'])
    t.equal(mqttTarget(url), null, url)
  const port = await closedPort()
  for (const url of [`mqtt://127.0.0.1:${port}`, `mqtt://who@127.0.0.1:${port}/`]) {
    const ours = connectMqtt(url, { manualConnect: true, clientId: 'c' })
    const theirs = (require('mqtt') as { connect: typeof connect }).connect(url, { manualConnect: true, clientId: 'c' })
    for (const key of ['protocol', 'host', 'port', 'username', 'clientId'] as const)
      t.equal(ours.options[key], theirs.options[key], `${url}: ${key}`)
    // Never told to connect, they hold no socket (and mqtt.js cannot end a client that never connected).
  }
})

t.test("F1 each scheme of the one broker URL list reaches a broker over its own transport, as mqtt.js's table has it", async (t) => {
  // What the broker's port hears first: an MQTT CONNECT (0x10), a TLS ClientHello (0x16) or a WebSocket upgrade (GET).
  const server = createServer().listen(0, '127.0.0.1')
  t.teardown(() => server.close())
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const transport = (first: Buffer): string =>
    first[0] === 0x10 ? 'MQTT over TCP' : first[0] === 0x16 ? 'TLS' : first.subarray(0, 4).toString() === 'GET ' ? 'WebSocket' : 'other'
  const firstBytes = async (url: string): Promise<string> => {
    const connection = once(server, 'connection')
    const client = connectMqtt(url, { clientId: 'schemes', reconnectPeriod: 0, rejectUnauthorized: false })
    client.on('error', () => {})
    t.teardown(() => void client.end(true))
    const [socket] = (await connection) as [Socket]
    const [first] = (await once(socket, 'data')) as [Buffer]
    socket.destroy()
    return transport(first)
  }
  const expected: Record<string, string> = {
    'mqtt:': 'MQTT over TCP',
    'tcp:': 'MQTT over TCP',
    'mqtts:': 'TLS',
    'tls:': 'TLS',
    'ssl:': 'TLS',
    'ws:': 'WebSocket',
    'wss:': 'TLS',
  }
  for (const scheme of MQTT_SCHEMES)
    t.equal(await firstBytes(`${scheme}//127.0.0.1:${port}/mqtt`), expected[scheme] ?? 'a transport this test knows', scheme)
  t.same(Object.keys(expected).sort(), [...MQTT_SCHEMES].sort(), 'every transport mqtt.js has under Node is in the list')
  // Why the list is checked first: a scheme mqtt.js has no transport for is taken for plain MQTT without a word.
  t.equal(await firstBytes(`http://127.0.0.1:${port}/mqtt`), 'MQTT over TCP', 'http: is not refused by mqtt.js itself')
})
