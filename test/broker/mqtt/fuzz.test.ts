/**
 * No packet from anyone stops the broker: a seeded, bounded fuzz run
 * (bench/fuzz.ts) against a real broker while a well-behaved device keeps
 * sending heartbeats. `npm run fuzz -- --count N --seed S` runs it longer.
 */
import t from 'tap'
import { fuzz, FuzzCases } from '../../../bench/fuzz.js'
import { addDevice, connectDevice, heartbeat, startCloud, storedHeartbeats } from '../../fixtures/cloud.js'

const SEED = Number(process.env['FAKEPHONE_FUZZ_SEED'] ?? 20261204)
const COUNT = 300

t.test('the same seed gives the same cases', async (t) => {
  const creds = { deviceId: 'fuzz-a', secret: 's' }
  const a = new FuzzCases(7, creds)
  const b = new FuzzCases(7, creds)
  for (let i = 0; i < 20; i++) t.same(a.next(), b.next())
})

t.test(
  `${COUNT} mutated packet sequences (seed ${SEED}): the broker stays up, a well-behaved device is served during and after, ` +
    `memory stays bounded`,
  async (t) => {
    const cloud = await startCloud(t, { rateLimit: { burst: 1e6, perSecond: 1e6 }, connectTimeoutMs: 2_000 })
    const fuzzSecret = await addDevice(cloud, 'fuzz-a')
    const secret = await addDevice(cloud, 'phone-a')
    const phone = await connectDevice(t, cloud, 'phone-a', secret)
    const heapBefore = process.memoryUsage().heapUsed
    let seq = 0
    const beat = async (): Promise<void> => {
      const stored = storedHeartbeats(cloud, 1)
      await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(seq++)), { qos: 1 })
      await stored
    }
    const stats = await fuzz(cloud.mqttPort, { deviceId: 'fuzz-a', secret: fuzzSecret }, SEED, COUNT, 8, (i) =>
      i % 25 === 0 ? beat() : undefined,
    )
    t.equal(stats.cases, COUNT, 'every case ran')
    t.equal(stats.lingering, 0, 'the broker closed every connection once the peer was done')
    await beat()
    t.equal(
      cloud.broker.store.history('phone-a', 1000).length,
      seq,
      'every heartbeat of the well-behaved device was stored, during and after',
    )
    t.ok(phone.connected, 'the well-behaved device was never disconnected')
    t.equal(cloud.broker.counters.handlerFailures, 0, 'no event handler failed')
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6
    t.ok(grownMb < 64, `heap grew ${grownMb.toFixed(1)} MB over ${COUNT} cases (bound 64 MB)`)
  },
)
