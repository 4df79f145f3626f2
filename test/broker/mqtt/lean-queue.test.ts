/** The offline queue of a persistent session (broker/mqtt/lean-queue.ts): empty ones answered at once, queued messages still delivered. */
import aedesPersistence from 'aedes-persistence'
import mqtt from 'mqtt'
import type { Readable } from 'node:stream'
import t from 'tap'
import { skipEmptyQueues, type QueueStore } from '../../../broker/mqtt/lean-queue.js'
import { addDevice, closed, connectDevice, nextMessage, startCloud } from '../../fixtures/cloud.js'

/** Publishes as the broker does to a device's command topic (QoS 1). */
function publish(cloud: Awaited<ReturnType<typeof startCloud>>, topic: string, text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    cloud.broker.aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, retain: false, dup: false }, (err) =>
      err ? reject(err) : resolve(),
    ),
  )
}

t.test(
  'a command queued while a device was away arrives on its next CONNECT; a device with nothing queued keeps its session',
  async (t) => {
    const cloud = await startCloud(t)
    const secretA = await addDevice(cloud, 'phone-a')
    const secretB = await addDevice(cloud, 'phone-b')
    for (const [id, secret] of [
      ['phone-a', secretA],
      ['phone-b', secretB],
    ] as const) {
      const phone = await connectDevice(t, cloud, id, secret)
      await phone.subscribeAsync(`fp/v1/${id}/cmd`, { qos: 1 })
      const gone = closed(phone)
      await phone.endAsync()
      await gone
    }

    await publish(cloud, 'fp/v1/phone-a/cmd', 'while away')
    // The listener before the CONNACK: the queue is sent right after it.
    const back = mqtt.connect(cloud.mqttUrl, {
      clientId: 'phone-a',
      username: 'phone-a',
      password: secretA,
      clean: false,
      reconnectPeriod: 0,
    })
    t.teardown(() => back.endAsync(true))
    const queued = nextMessage(back)
    const [topic, payload] = await queued
    t.equal(topic, 'fp/v1/phone-a/cmd')
    t.equal(payload.toString(), 'while away', 'the queued QoS 1 message is delivered on the next CONNECT')

    const other = await connectDevice(t, cloud, 'phone-b', secretB)
    const live = nextMessage(other)
    await publish(cloud, 'fp/v1/phone-b/cmd', 'now')
    t.equal((await live)[1].toString(), 'now', 'the session with an empty queue kept its subscription')
  },
)

t.test('the store: a client that had something queued reads its queue, any other gets an empty stream', async (t) => {
  // The package is CommonJS whose module.exports is the factory; its types describe it as a `default` export.
  const memory = aedesPersistence as unknown as () => unknown
  const store = memory() as unknown as QueueStore & { setup(broker: { id: string }): Promise<void> }
  await store.setup({ id: 'broker' })
  skipEmptyQueues(store)
  const packet = { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, brokerId: 'broker', brokerCounter: 1 }
  await store.outgoingEnqueue({ clientId: 'one' }, packet)
  await store.outgoingEnqueueCombi([{ clientId: 'two' }], { ...packet, brokerCounter: 2 })
  const read = async (stream: Readable): Promise<number[]> => {
    const counters: number[] = []
    for await (const p of stream) counters.push((p as { brokerCounter: number }).brokerCounter)
    return counters
  }
  t.same(await read(store.outgoingStream({ id: 'one' })), [1], 'queued one by one')
  t.same(await read(store.outgoingStream({ id: 'two' })), [2], 'queued for several subscribers at once')
  t.same(await read(store.outgoingStream({ id: 'never' })), [], 'never queued: nothing, and the stream ends')
})
