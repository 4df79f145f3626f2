/** Retained messages found by topic name for exact subscriptions (broker/mqtt/retained-index.ts), by pattern for wildcards. */
import t from 'tap'
import { addDevice, connectConsole, connectDevice, nextMessage, startCloud } from '../../fixtures/cloud.js'

t.test('an exact subscription gets its retained message, a wildcard gets every match, a cleared one is gone', async (t) => {
  const cloud = await startCloud(t)
  for (const id of ['phone-a', 'phone-b']) {
    const phone = await connectDevice(t, cloud, id, await addDevice(cloud, id))
    await phone.publishAsync(`fp/v1/${id}/presence`, JSON.stringify({ state: 'online', at: 1 }), { qos: 1, retain: true })
  }

  const exact = await connectConsole(t, cloud)
  const one = nextMessage(exact)
  await exact.subscribeAsync(['fp/v1/phone-b/presence', 'fp/v1/phone-c/presence'], { qos: 1 })
  const [topic, payload] = await one
  t.equal(topic, 'fp/v1/phone-b/presence', 'the retained message of the topic named, none for a topic without one')
  t.same(JSON.parse(payload.toString()), { state: 'online', at: 1 })

  const wild = await connectConsole(t, cloud)
  const topics: string[] = []
  const both = new Promise<void>((resolve) =>
    wild.on('message', (topic) => {
      if (topics.push(topic) === 2) resolve()
    }),
  )
  await wild.subscribeAsync('fp/v1/+/presence', { qos: 1 })
  await both
  t.same(topics.sort(), ['fp/v1/phone-a/presence', 'fp/v1/phone-b/presence'], 'a wildcard still matches every retained topic')

  // An empty retained payload clears the topic; no client may publish one here (an empty presence is malformed), only Aedes itself.
  await new Promise<void>((resolve, reject) =>
    cloud.broker.aedes.publish(
      { cmd: 'publish', topic: 'fp/v1/phone-a/presence', payload: Buffer.alloc(0), qos: 0, retain: true, dup: false },
      (err) => (err ? reject(err) : resolve()),
    ),
  )
  const late = await connectConsole(t, cloud)
  const got: string[] = []
  late.on('message', (topic) => void got.push(topic))
  await late.subscribeAsync(['fp/v1/phone-a/presence', 'fp/v1/phone-b/presence'], { qos: 1 })
  // The retained messages come before the broker answers a later request on the same connection.
  await late.subscribeAsync('fp/v1/phone-b/status', { qos: 1 })
  t.same(got, ['fp/v1/phone-b/presence'], 'the cleared topic has no retained message left')
})
