/**
 * The packet guard in front of Aedes, over real TCP sockets: oversize
 * frames, junk before CONNECT, a silent peer and a connection flood are
 * dropped with a logged reason while other clients keep working and the
 * broker's memory stays bounded.
 */
import t from 'tap'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { ManualClock } from '../../../common/clock.js'
import { ConnectionRateLimiter, guardConnection, guardedAddress, inspectReads } from '../../../broker/mqtt/guard.js'
import { addDevice, connectDevice, heartbeat, startCloud, storedHeartbeats } from '../../fixtures/cloud.js'

async function rawSocket(port: number): Promise<Socket> {
  const s = tcpConnect(port, '127.0.0.1')
  s.on('error', () => {})
  await once(s, 'connect')
  return s
}

/** Resolves when the peer is gone, whether it was closed or reset. */
const gone = (s: Socket): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()))

/** A CONNECT fixed header announcing `remaining` bytes, then those bytes of zeros. */
function announce(type: number, remaining: number): Buffer {
  const len: number[] = []
  let n = remaining
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    len.push(b)
  } while (n > 0)
  return Buffer.from([type << 4, ...len])
}

t.test('oversize packets and junk before CONNECT are dropped; other clients keep working; memory stays bounded', async (t) => {
  const cloud = await startCloud(t, { maxPacketBytes: 64 * 1024 })
  const secret = await addDevice(cloud, 'good-phone')
  const good = await connectDevice(t, cloud, 'good-phone', secret)
  const before = process.memoryUsage().rss
  const junk = Buffer.alloc(1024 * 1024, 0x41)
  for (let i = 0; i < 20; i++) {
    const s = await rawSocket(cloud.mqttPort)
    // Half the peers announce a 20 MB CONNECT, half send junk ('A' = 0x41, packet type 4) first.
    s.write(i % 2 === 0 ? Buffer.concat([announce(1, 20 * 1024 * 1024), junk]) : junk)
    for (let k = 0; k < 19 && !s.destroyed; k++) s.write(junk)
    await gone(s)
  }
  const grown = process.memoryUsage().rss - before
  t.ok(grown < 100 * 1024 * 1024, `RSS grew ${Math.round(grown / 1048576)} MB after 400 MB of junk from 20 peers`)
  t.equal(cloud.broker.counters.dropped, 20, 'every bad peer was dropped')
  t.ok(
    cloud.logs.lines.some((l) => l.msg === 'connection dropped' && l.reason === 'packet too large'),
    'oversize logged with its reason',
  )
  t.ok(
    cloud.logs.lines.some((l) => l.msg === 'connection dropped' && l.reason === 'first packet is not CONNECT'),
    'junk logged with its reason',
  )
  const stored = storedHeartbeats(cloud, 1)
  await good.publishAsync('fp/v1/good-phone/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  await stored
  t.equal(cloud.broker.store.history('good-phone', 10).length, 1, 'the well-behaved device was served throughout')
})

t.test('a malformed remaining length and a peer that never sends CONNECT are dropped', async (t) => {
  const cloud = await startCloud(t, { connectTimeoutMs: 50 })
  const bad = await rawSocket(cloud.mqttPort)
  bad.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))
  await gone(bad)
  const silent = await rawSocket(cloud.mqttPort)
  await gone(silent)
  const reasons = cloud.logs.lines.filter((l) => l.msg === 'connection dropped').map((l) => l.reason)
  t.same(reasons.sort(), ['malformed remaining length', 'no CONNECT in time'])
})

t.test('the guard passes a byte-by-byte CONNECT and zero-length packets through untouched', async (t) => {
  const inner = new PassThrough()
  const reasons: string[] = []
  guardConnection(inner, { maxPacketBytes: 100, connectTimeoutMs: 1000 }, (r) => reasons.push(r), 'peer')
  const got: Buffer[] = []
  const bytes = [0x10, 0x02, 0x00, 0x00, 0xc0, 0x00, 0xc0, 0x00]
  for (const b of bytes) {
    inner.write(Buffer.from([b]))
    got.push(inner.read() as Buffer)
  }
  t.same([...Buffer.concat(got)], bytes, 'CONNECT then two PINGREQs are read whole, one byte at a time')
  t.same(reasons, [])
  t.equal(guardedAddress(inner), 'peer')
  t.equal(guardedAddress(new PassThrough()), undefined, 'a stream that was never guarded has no address')
  inner.destroy()
})

t.test('a connection that is gone when its CONNECT time is up is not dropped for it', async (t) => {
  const reasons: string[] = []
  const opts = { maxPacketBytes: 100, connectTimeoutMs: 1 }
  // This one never says 'close' (as ws' stream until its socket is gone), so its timer still fires.
  const gone = new PassThrough({ emitClose: false })
  guardConnection(gone, opts, (r) => reasons.push(`gone: ${r}`), 'a')
  gone.destroy()
  const silent = new PassThrough()
  const dropped = new Promise<void>((resolve) => guardConnection(silent, opts, (r) => resolve(void reasons.push(`silent: ${r}`)), 'b'))
  await dropped
  t.same(reasons, ['silent: no CONNECT in time'], 'timers of the same length fire in order: the gone one fired first, silently')
  t.ok(silent.destroyed)
})

t.test("Aedes reads its connection only through read(): the guard's wrapper sees every byte before Aedes parses it", async (t) => {
  // The assumption inspectReads() rests on (lib/client.js in Aedes 1.x): if Aedes reads its connection any other way,
  // bytes reach its parser unseen and this test fails.
  const aedes = new Aedes()
  await aedes.listen()
  let seen = 0
  const server = createServer((socket) => {
    inspectReads(socket, (chunk) => {
      seen += chunk.length
      return true
    })
    aedes.handle(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, { clientId: 'reader' })
  await client.publishAsync('a/b', 'hello', { qos: 1 })
  t.ok(seen > 0)
  t.equal(seen, (client.stream as Socket).bytesWritten, 'CONNECT and PUBLISH were acknowledged, and every byte of them went through read()')
  await client.endAsync()
})

t.test('a connection flood from one address is refused past its budget and allowed again later', async (t) => {
  const clock = new ManualClock()
  const limiter = new ConnectionRateLimiter({ burst: 3, perSecond: 1 }, clock)
  t.same(
    [1, 2, 3, 4].map(() => limiter.allow('10.0.0.9')),
    [true, true, true, false],
  )
  t.ok(limiter.allow('10.0.0.10'), 'another address has its own budget')
  clock.advance(1000)
  t.ok(limiter.allow('10.0.0.9'), 'one second later one more is allowed')
  t.notOk(limiter.allow('10.0.0.9'))
  for (let i = 0; i < 10_001; i++) limiter.allow(`a${i}`)
  clock.advance(10_000)
  limiter.allow('fresh')
  t.ok(limiter.allow('10.0.0.9'), 'after pruning, a refilled address is treated as new')

  const cloud = await startCloud(t, { rateLimit: { burst: 2, perSecond: 0.001 } })
  const sockets = await Promise.all([1, 2, 3].map(() => rawSocket(cloud.mqttPort)))
  await gone(sockets[2] as Socket)
  t.equal(cloud.broker.counters.rateLimited, 1)
  t.ok(cloud.logs.has('connection refused: too many connections from this address'))
  for (const s of sockets) s.destroy()
})

t.test('with the default budget 10,000 devices behind one address reconnect at once after a restart; a flood is still cut', async (t) => {
  const { DEFAULT_BROKER_OPTIONS } = await import('../../../broker/server.js')
  const clock = new ManualClock()
  const limiter = new ConnectionRateLimiter(DEFAULT_BROKER_OPTIONS.rateLimit, clock)
  // The whole fleet within one second, up to 900 handshakes in flight at any moment: each authenticates 900 arrivals later.
  let refused = 0
  for (let i = 0; i < 10_900; i++) {
    if (i < 10_000 && !limiter.allow('127.0.0.1')) refused++
    if (i >= 900) limiter.authenticated('127.0.0.1')
    if (i % 100 === 99) clock.advance(10)
  }
  t.equal(refused, 0, 'no device is locked out')
  // The same number of connections that never authenticate: the budget runs out, and comes back only at perSecond.
  const flood = [...Array(10_000).keys()].filter(() => limiter.allow('10.0.0.66')).length
  t.equal(flood, DEFAULT_BROKER_OPTIONS.rateLimit.burst, 'a flood gets its burst, no more')
  clock.advance(1000)
  const later = [...Array(1000).keys()].filter(() => limiter.allow('10.0.0.66')).length
  t.equal(later, DEFAULT_BROKER_OPTIONS.rateLimit.perSecond, 'then perSecond')
  limiter.authenticated('10.0.0.77')
  t.ok(limiter.allow('10.0.0.77'), 'a refund for an address with no bucket changes nothing')

  const cloud = await startCloud(t, { rateLimit: { burst: 2, perSecond: 0.001 } })
  const secret = await addDevice(cloud, 'phone-a')
  for (let i = 0; i < 5; i++) await (await connectDevice(t, cloud, 'phone-a', secret, { clean: true })).endAsync()
  t.equal(cloud.broker.counters.rateLimited, 0, 'over real sockets: five authenticated connections on a budget of two')
  const sockets = await Promise.all([1, 2, 3].map(() => rawSocket(cloud.mqttPort)))
  await gone(sockets[2] as Socket)
  t.equal(cloud.broker.counters.rateLimited, 1, 'three that never authenticate: the third is refused')
  for (const s of sockets) s.destroy()
})
