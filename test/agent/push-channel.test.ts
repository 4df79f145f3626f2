/** The phone's push connection against hand-written servers: keep-alive, frames that are not the protocol, switching it off mid-connect. */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws'
import { PushChannel, defaultPushUrl, type PushState } from '../../agent/push-channel.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { ManualClock } from '../../common/clock.js'
import { LogCapture } from '../fixtures/logs.js'

/** A WebSocket server on loopback that welcomes every hello and hands each connection to `serve`. */
async function fakeGateway(t: Test, serve: (ws: WebSocket) => void = () => {}, opts: ServerOptions = {}): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...opts })
  await once(wss, 'listening')
  wss.on('connection', (ws) => {
    ws.once('message', () => ws.send(JSON.stringify({ type: 'welcome', device: 'phone-a', at: 1 })))
    serve(ws)
  })
  t.teardown(() => {
    for (const c of wss.clients) c.terminate()
    return new Promise<void>((resolve) => wss.close(() => resolve()))
  })
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/push`
}

function channel(t: Test, url: string) {
  const clock = new ManualClock()
  const keepalive = new ManualClock()
  const logs = new LogCapture()
  const push = new PushChannel({
    url,
    credentials: new DeviceCredentials('phone-a', 's'),
    clock,
    keepaliveClock: keepalive,
    log: logs.logger(),
    random: () => 0.5,
    pingMs: 1000,
  })
  t.teardown(() => push.stop())
  return { push, clock, keepalive, logs }
}

async function reach(push: PushChannel, state: PushState): Promise<void> {
  while (push.state !== state) await once(push, 'state')
}

t.test('a connection whose ping goes unanswered until the next is due is dead: closed and retried', async (t) => {
  const url = await fakeGateway(t, () => {}, { autoPong: false })
  const { push, keepalive, logs } = channel(t, url)
  push.start(false)
  await reach(push, 'connected')
  keepalive.advance(1000)
  t.equal(push.state, 'connected', 'the first ping went out')
  keepalive.advance(1000)
  await reach(push, 'waiting')
  t.ok(logs.has('push keep-alive: no pong, the connection is dead'))
})

t.test('a pong in time keeps the connection; an error frame from the gateway is logged', async (t) => {
  let server: WebSocket | undefined
  const url = await fakeGateway(t, (ws) => (server = ws))
  const { push, keepalive, logs } = channel(t, url)
  push.start(false)
  await reach(push, 'connected')
  for (let round = 0; round < 3; round++) {
    const pinged = once(server as WebSocket, 'ping')
    keepalive.advance(1000)
    // The server answered the ping before this event; a frame sent after it arrives after the pong.
    await pinged
    server?.send(JSON.stringify({ type: 'error', code: 'TEST', message: `round ${round}` }))
    await logs.waitFor((l) => l.msg === 'the push gateway reported an error' && l.message === `round ${round}`)
  }
  t.equal(push.state, 'connected', 'three pings, three pongs, still connected')
})

t.test('frames that are not the protocol are refused with a logged reason and the connection stays', async (t) => {
  const url = await fakeGateway(t, (ws) => {
    ws.once('message', () => {
      ws.send('not json')
      ws.send(Buffer.from([1, 2, 3]), { binary: true })
      ws.send(JSON.stringify({ type: 'notification', id: 'not-a-uuid' }))
      ws.send(JSON.stringify({ type: 'error', code: 'LAST', message: 'after the junk' }))
    })
  })
  const { push, logs } = channel(t, url)
  const received: unknown[] = []
  push.on('notification', (n) => received.push(n))
  push.start(false)
  await logs.waitFor((l) => l.code === 'LAST')
  const refused = logs.lines.filter((l) => l.msg === 'push frame refused').map((l) => l.reason)
  t.match(refused, [/not valid JSON/, /binary frames/, /id/])
  t.same(received, [])
  t.equal(push.state, 'connected')
})

t.test('revoking the permission or stopping while the connection is still being made ends it without a retry', async (t) => {
  const url = await fakeGateway(t)
  const { push, clock } = channel(t, url)
  push.unblock()
  t.equal(push.state, 'off', 'unblocking a channel that is not blocked changes nothing')
  push.start(false)
  t.equal(push.state, 'connecting')
  push.block()
  t.equal(push.state, 'blocked')
  push.block()
  clock.advance(60_000)
  t.equal(push.state, 'blocked', 'no retry while blocked')
  push.unblock()
  await reach(push, 'connected')
  push.ack('8f7d2c1e-0b6a-4b5e-9c3d-2a1f0e9d8c7b')
  await push.stop()
  push.block()
  t.equal(push.state, 'stopped', 'a stopped channel stays stopped')

  const second = channel(t, url).push
  second.start(false)
  await second.stop()
  t.equal(second.state, 'stopped', 'stopped mid-connect')
  second.ack('8f7d2c1e-0b6a-4b5e-9c3d-2a1f0e9d8c7b')
  await channel(t, url).push.stop()
})

t.test('X3 a notification the cloud sent before it heard the permission was revoked is not taken: it stays with the cloud', async (t) => {
  let server: WebSocket | undefined
  const url = await fakeGateway(t, (ws) => (server = ws))
  const { push } = channel(t, url)
  const received: unknown[] = []
  push.on('notification', (n) => received.push(n))
  push.start(false)
  await reach(push, 'connected')
  push.block()
  const frame = {
    type: 'notification',
    id: '8f7d2c1e-0b6a-4b5e-9c3d-2a1f0e9d8c7b',
    kind: 'weather',
    title: 'late',
    body: '',
    createdAt: 1,
    expiresAt: 2,
  }
  const gone = once(server as WebSocket, 'close')
  server?.send(JSON.stringify(frame))
  await gone
  t.same(received, [], 'the frame reached a connection the phone had let go of, and was dropped')
})

t.test('the push URL defaults to the origin of a ws:// broker URL, and to none for mqtt:// (9: never a guessed fixed port)', (t) => {
  t.equal(defaultPushUrl('mqtt://10.0.0.5:1883'), undefined, 'an mqtt:// URL does not say where the HTTP side is: no guessed port')
  t.equal(defaultPushUrl('ws://cloud.example:9000/mqtt'), 'ws://cloud.example:9000/push')
  t.equal(defaultPushUrl('wss://cloud.example/mqtt'), 'wss://cloud.example/push')
  t.equal(defaultPushUrl('not a url'), undefined, 'the MQTT client refuses such a broker URL itself')
  t.end()
})
