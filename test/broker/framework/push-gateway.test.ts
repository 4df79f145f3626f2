/**
 * The cloud's push gateway (X1, X3) spoken to frame by frame -- its own authentication, protocol refusals, takeover, limits, deadlines --
 * and the frame schemas both sides check.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { openDb } from '../../../broker/db.js'
import { NotificationQueue } from '../../../broker/framework/notification-queue.js'
import { PushGateway, type GatewayDeps } from '../../../broker/framework/push-gateway.js'
import { utf8Prefix } from '../../../broker/framework/push-session.js'
import { routeUpgrades } from '../../../broker/http/upgrade-router.js'
import { ManualClock } from '../../../common/clock.js'
import { addDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { delivered, notify } from '../../fixtures/framework.js'
import { LogCapture } from '../../fixtures/logs.js'
import { onEnd, tempDir } from '../../fixtures/scope.js'
import { ClientFrameSchema, ServerFrameSchema, decodeFrame, encodeFrame } from '../../../common/push-protocol.js'

type Frame = { type: string; [key: string]: unknown }

interface Client {
  ws: WebSocket
  /** The next frame from the cloud (frames already received first). */
  next(): Promise<Frame>
  closed: Promise<{ code: number; reason: string }>
  send(frame: unknown): void
}

async function client(t: Test, url: string): Promise<Client> {
  const ws = new WebSocket(url)
  onEnd(t, () => ws.terminate())
  const frames: Frame[] = []
  const waiters: ((f: Frame) => void)[] = []
  ws.on('message', (data) => {
    const frame = JSON.parse((data as Buffer).toString()) as Frame
    const w = waiters.shift()
    if (w) w(frame)
    else frames.push(frame)
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  await once(ws, 'open')
  return {
    ws,
    next: () => {
      const f = frames.shift()
      return f ? Promise.resolve(f) : new Promise((resolve) => waiters.push(resolve))
    },
    closed,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
  }
}

const hello = (device: string, secret: string) => ({ type: 'hello', v: 1, device, secret })
const UUID = '0d3c7a52-8e0b-4d4e-9f3a-6b1c2d3e4f50'

async function signedIn(t: Test, cloud: Cloud, id: string, secret: string): Promise<Client> {
  const c = await client(t, cloud.pushUrl)
  c.send(hello(id, secret))
  t.match(await c.next(), { type: 'welcome', device: id })
  return c
}

t.test(
  'X1 the push channel has its own authentication: a wrong secret or an unknown device is told why and closed with 4001',
  async (t) => {
    const cloud = await startCloud(t)
    await addDevice(cloud, 'phone-a')
    for (const [device, why] of [
      ['phone-a', 'wrong secret'],
      ['nobody', 'unknown device'],
    ]) {
      const c = await client(t, cloud.pushUrl)
      c.send(hello(device as string, 'guess'))
      t.same(await c.next(), { type: 'error', code: 'UNAUTHORIZED', message: 'unknown device or wrong secret' }, why as string)
      t.match(await c.closed, { code: 4001 })
    }
    t.equal(cloud.broker.framework.gateway.counters.refused, 2)
    t.ok(cloud.logs.has('push connection refused'))
  },
)

t.test(
  'before the hello is accepted anything else closes the connection (4003); after it a malformed frame is answered and the ' +
    'connection stays',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const cases: [string, string | Buffer, RegExp][] = [
      ['an ack first', JSON.stringify({ type: 'ack', id: UUID }), /say hello first/],
      ['not JSON', '{"type":', /not a push frame: payload is not valid JSON/],
      ['a binary frame', Buffer.from('{}'), /binary frames/],
      ['an old protocol version', JSON.stringify({ ...hello('phone-a', secret), v: 0 }), /not a push frame: .*v/],
    ]
    for (const [name, data, reason] of cases) {
      const c = await client(t, cloud.pushUrl)
      c.ws.send(data)
      t.match(await c.next(), { type: 'error', code: 'BAD_FRAME', message: reason }, name)
      t.match(await c.closed, { code: 4003 }, name)
    }

    // An ack hard on the heels of the hello arrives before the secret is checked: refused, and the late check changes nothing.
    const hasty = await client(t, cloud.pushUrl)
    hasty.send(hello('phone-a', secret))
    hasty.send({ type: 'ack', id: UUID })
    t.match(await hasty.next(), { type: 'error', message: 'say hello first' })
    t.match(await hasty.closed, { code: 4003 })

    const c = await signedIn(t, cloud, 'phone-a', secret)
    c.send('junk')
    t.match(await c.next(), { type: 'error', code: 'BAD_FRAME', message: /not valid JSON/ })
    c.send(hello('phone-a', secret))
    t.match(await c.next(), { type: 'error', code: 'BAD_FRAME', message: 'hello was already said on this connection' })
    c.send({ type: 'ack', id: UUID })
    t.match(await c.next(), { type: 'error', code: 'UNKNOWN_ID' })
    const n = notify(cloud, 'phone-a', { title: 'one' })
    t.match(await c.next(), { type: 'notification', id: n.id, title: 'one' })
    c.send({ type: 'ack', id: n.id })
    c.send({ type: 'ack', id: n.id })
    c.send('marker')
    t.match(
      await c.next(),
      { type: 'error', code: 'BAD_FRAME' },
      'the next answer is to the marker: a repeated acknowledgement is no error',
    )
    t.match(await delivered(cloud, 'phone-a', n.id), { state: 'delivered', sends: 1 })
    t.equal(cloud.broker.framework.gateway.counters.delivered, 1)
    t.equal(c.ws.readyState, WebSocket.OPEN, 'after all that the connection is still up')
  },
)

t.test('a newer push connection of the same device replaces the older (4000) and gets what the older never acknowledged', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const older = await signedIn(t, cloud, 'phone-a', secret)
  const n = notify(cloud, 'phone-a')
  t.match(await older.next(), { id: n.id })
  const newer = await signedIn(t, cloud, 'phone-a', secret)
  t.match(await older.closed, { code: 4000, reason: 'replaced by a newer push connection' })
  t.match(await newer.next(), { type: 'notification', id: n.id }, 'sent again on the new connection')
  t.ok(cloud.broker.framework.gateway.connected('phone-a'), 'the older one leaving does not take the device offline')
  t.equal(cloud.broker.framework.gateway.drop('nobody'), false)
})

t.test('the per-address connection limit covers the push endpoint; an unknown WebSocket path gets 404', async (t) => {
  const cloud = await startCloud(t, { rateLimit: { burst: 1, perSecond: 1 } })
  const first = await client(t, cloud.pushUrl)
  const second = await client(t, cloud.pushUrl)
  t.match(await second.closed, { code: 1013, reason: 'too many connections from this address' })
  t.ok(cloud.logs.has('push connection refused: too many connections from this address'))
  first.ws.terminate()
  const stray = new WebSocket(`ws://127.0.0.1:${cloud.httpPort}/elsewhere`)
  stray.on('error', () => {})
  const [, res] = (await once(stray, 'unexpected-response')) as [unknown, { statusCode: number }]
  t.equal(res.statusCode, 404)
  stray.terminate()
  t.ok(cloud.logs.has('websocket upgrade refused: no such endpoint'))
})

/** A gateway of its own on a ManualClock for its deadlines, with a hand-made secret check. */
async function bareGateway(t: Test, verify: GatewayDeps['verify']) {
  const db = openDb(tempDir(t))
  onEnd(t, () => db.close())
  const clock = new ManualClock()
  const timers = new ManualClock()
  const logs = new LogCapture()
  const log = logs.logger()
  const gateway = new PushGateway(
    { verify, queue: new NotificationQueue(db, clock, log), clock, timers, log, allow: () => true, authenticated: () => {} },
    { helloTimeoutMs: 5000, idleTimeoutMs: 60_000 },
  )
  const http = createServer()
  http.on('upgrade', routeUpgrades(new Map([['/push', gateway.wss]]), log))
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  gateway.start()
  onEnd(t, () => new Promise((resolve) => http.close(resolve)))
  onEnd(t, () => gateway.stop())
  return { gateway, timers, logs, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/push` }
}

t.test('a connection that says no hello in time is closed (4002); one that goes silent, without even a ping, is cut off', async (t) => {
  const { gateway, timers, logs, url } = await bareGateway(t, async (_id, secret) => secret === 'good')
  const mute = await client(t, url)
  timers.advance(5000)
  t.same(await mute.next(), { type: 'error', code: 'HELLO_TIMEOUT', message: 'no hello within 5000 ms' })
  t.match(await mute.closed, { code: 4002 })

  const quiet = await client(t, url)
  quiet.send(hello('phone-a', 'good'))
  t.match(await quiet.next(), { type: 'welcome' })
  timers.advance(59_999)
  quiet.ws.ping()
  await once(quiet.ws, 'pong')
  timers.advance(59_999)
  t.equal(quiet.ws.readyState, WebSocket.OPEN, 'a ping counts as a sign of life')
  timers.advance(1)
  t.match(await quiet.closed, { code: 1006 })
  t.ok(logs.has('push connection idle, cut off'))
  t.same(gateway.presenceOf('phone-a'), { connected: false, since: new ManualClock().now() })
  t.same(gateway.presenceOf('phone-b'), { connected: false, since: null }, 'never seen')

  const last = await client(t, url)
  last.send(hello('phone-a', 'good'))
  await last.next()
  gateway.stop()
  t.match(await last.closed, { code: 1006 }, 'a stopping cloud cuts every connection')
})

t.test('a refusal whose reason is over 123 bytes of UTF-8 is cut to fit the close frame; the gateway goes on', async (t) => {
  // Before any hello: the schema's words (✖, →: three bytes each) made 123 characters more than 123 bytes, and ws threw.
  const { url } = await bareGateway(t, async (_id, secret) => secret === 'good')
  const bad = await client(t, url)
  bad.send({ type: 'hello', device: '../x', secret: 'a' })
  t.match(await bad.next(), { type: 'error', code: 'BAD_FRAME', message: /^not a push frame: ✖/ })
  const { code, reason } = await bad.closed
  t.equal(code, 4003)
  t.ok(Buffer.byteLength(reason) <= 123 && reason.startsWith('not a push frame: ✖'), `cut to ${Buffer.byteLength(reason)} bytes`)
  t.equal(utf8Prefix('a→b', 2), 'a', 'never inside a character')
  t.equal(utf8Prefix('a→b', 4), 'a→')
  t.equal(utf8Prefix('a→b', 5), 'a→b')
  const good = await client(t, url)
  good.send(hello('phone-a', 'good'))
  t.match(await good.next(), { type: 'welcome', device: 'phone-a' }, 'the next device is served')
})

t.test('a secret check that fails inside the cloud is logged and the connection cut, never crashing the broker', async (t) => {
  const { logs, url } = await bareGateway(t, () => Promise.reject(new Error('database is closed')))
  const c = await client(t, url)
  c.send(hello('phone-a', 'good'))
  await c.closed
  t.match(await logs.waitFor((l) => l.msg === 'push hello could not be checked'), { err: 'database is closed' })
})

const id = '0d3c7a52-8e0b-4d4e-9f3a-6b1c2d3e4f50'

t.test('push frames are checked field by field; binary frames are not part of the protocol', (t) => {
  t.same(decodeFrame(ClientFrameSchema, JSON.stringify({ type: 'ack', id }), false), { ok: true, value: { type: 'ack', id } })
  t.match(decodeFrame(ClientFrameSchema, Buffer.from('{}'), true), { ok: false, reason: /binary/ })
  const notification = { type: 'notification', id, kind: 'weather', title: 'Gale', body: '', createdAt: 1, expiresAt: 2 }
  t.equal(decodeFrame(ServerFrameSchema, JSON.stringify(notification), false).ok, true)
  const refused: [string, unknown][] = [
    ['no title', { ...notification, title: '' }],
    ['an id that is not a UUID', { ...notification, id: '42' }],
    ['an unknown kind', { ...notification, kind: 'ad' }],
    ['an unknown frame type', { type: 'reboot' }],
  ]
  for (const [name, frame] of refused) t.equal(decodeFrame(ServerFrameSchema, JSON.stringify(frame), false).ok, false, name)
  t.throws(
    () => encodeFrame(ClientFrameSchema, { type: 'hello', v: 1, device: 'Bad Id', secret: 's' }),
    'our own bugs never reach the wire',
  )
  t.end()
})
