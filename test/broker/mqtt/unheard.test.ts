/**
 * F1 ingest (issue 14): a device's publish that no one can receive goes straight to the broker's `published` hook,
 * past Aedes' delivery pipeline (broker/mqtt/unheard.ts); whatever someone can receive still reaches them, including a
 * console with a persistent session that was away.
 */
import type { PublishPacket } from 'aedes'
import mqtt from 'mqtt'
import t from 'tap'
import { skipUnheard } from '../../../broker/mqtt/unheard.js'
import { startAedes } from '../../fixtures/aedes.js'
import {
  addDevice,
  connect,
  connectConsole,
  connectDevice,
  heartbeat,
  nextMessage,
  startCloud,
  storedHeartbeats,
} from '../../fixtures/cloud.js'
import { onEnd } from '../../fixtures/scope.js'

t.test('an unheard publish reaches `published` only; a heard, retained or broker-made one is delivered', async (t) => {
  const published: string[] = []
  let reached = (): void => {}
  let heard = false
  const { aedes, url } = await startAedes(
    t,
    {
      published: (packet, _client, done) => {
        if (packet.topic.startsWith('fp/')) published.push(packet.payload.toString())
        reached()
        done()
      },
    },
    (a) => skipUnheard(a, (packet: PublishPacket) => heard && packet.topic.startsWith('fp/v1/')),
  )
  // Aedes writes a QoS 1 PUBACK before it publishes: the hook may run after the publisher has its PUBACK.
  const hooked = async (n: number): Promise<void> => {
    while (published.length < n) await new Promise<void>((resolve) => (reached = resolve))
  }
  const watcher = await connect(t, url, { clientId: 'watcher' })
  await watcher.subscribeAsync('fp/v1/#', { qos: 1 })
  const device = await connect(t, url, { clientId: 'dev-a' })
  const events: string[] = []
  aedes.on('publish', (packet, client) => {
    if (client) events.push(packet.payload.toString())
  })

  const first = nextMessage(watcher)
  await device.publishAsync('fp/v1/dev-a/heartbeat', 'unheard', { qos: 1 })
  await hooked(1)
  t.same(published, ['unheard'], 'the unheard message reached the published hook')
  t.same(events, ['unheard'], 'and Aedes announced it')
  await device.publishAsync('fp/v1/dev-a/presence', 'retained', { qos: 1, retain: true })
  t.equal((await first)[1].toString(), 'retained', 'a retained message takes the full pipeline: the watcher got it first')
  heard = true
  const second = nextMessage(watcher)
  await device.publishAsync('fp/v1/dev-a/heartbeat', 'heard', { qos: 1 })
  t.equal((await second)[1].toString(), 'heard')
  heard = false
  const third = nextMessage(watcher)
  aedes.publish(
    { cmd: 'publish', topic: 'fp/v1/dev-a/cmd', payload: Buffer.from('from the broker'), qos: 1, retain: false, dup: false },
    () => {},
  )
  t.equal((await third)[1].toString(), 'from the broker', "the broker's own publish takes the full pipeline")
  await hooked(4)
  t.same(published, ['unheard', 'retained', 'heard', 'from the broker'], 'every message reached the published hook once')
})

t.test('heartbeats are stored with no console; a console gets them while it watches, a persistent one after it was away', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const beat = async (seq: number): Promise<void> => {
    const stored = storedHeartbeats(cloud, 1)
    await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(seq)), { qos: 1 })
    await stored
  }
  await beat(1)

  // A console with a clean session: its subscription ends with it.
  const clean = await connectConsole(t, cloud)
  await clean.subscribeAsync('fp/v1/+/heartbeat', { qos: 1 })
  await clean.subscribeAsync('fp/v1/+/status', { qos: 1 })
  const seen = nextMessage(clean)
  await beat(2)
  t.equal(JSON.parse((await seen)[1].toString()).seq, 2, 'the watching console got the heartbeat')
  await clean.endAsync()
  await beat(3)

  // A console with a persistent session: Aedes queues for it while it is away.
  const options = { clientId: 'console.persistent', clean: false }
  const persistent = await connectConsole(t, cloud, options)
  await persistent.subscribeAsync('fp/v1/+/heartbeat', { qos: 1 })
  await persistent.endAsync()
  await beat(4)
  // Listening before CONNACK: the queued heartbeat may come in the same read.
  const back = mqtt.connect(cloud.mqttUrl, { ...options, username: 'console', password: cloud.consoleToken, reconnectPeriod: 0 })
  onEnd(t, () => back.endAsync(true))
  t.equal(JSON.parse((await nextMessage(back))[1].toString()).seq, 4, 'the heartbeat sent while it was away was kept for it')
  t.equal(cloud.broker.store.history('phone-a', 10).length, 4, 'every heartbeat was stored')
})

t.test("the broker's own connect, disconnect and subscription announcements are not published; its heartbeat is", async (t) => {
  const { aedes, url } = await startAedes(t, {}, (a) => skipUnheard(a, () => false))
  const announced: string[] = []
  aedes.on('publish', (packet) => {
    if (packet.topic.startsWith('$SYS/')) announced.push(packet.topic.slice(`$SYS/${aedes.id}/`.length))
  })
  const first = await connect(t, url, { clientId: 'dev-a', clean: false })
  await first.subscribeAsync('fp/v1/dev-a/cmd', { qos: 1 })
  await first.unsubscribeAsync('fp/v1/dev-a/cmd')
  // The same client id again: Aedes still closes the older connection (its takeover does not rely on the announcement).
  const closed = new Promise<void>((resolve) => first.once('close', () => resolve()))
  const second = await connect(t, url, { clientId: 'dev-a', clean: false })
  await closed
  await second.endAsync()
  await new Promise<void>((resolve) =>
    aedes.publish(
      { cmd: 'publish', topic: `$SYS/${aedes.id}/heartbeat`, payload: Buffer.from(aedes.id), qos: 0, retain: false, dup: false },
      () => resolve(),
    ),
  )
  t.same(announced, ['heartbeat'], 'only the heartbeat, which Aedes keeps its record of live brokers on')
})
