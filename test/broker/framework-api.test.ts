/** The console API's framework paths (X1-X3): routing and refusals without a socket, then the HTTP edges. */
import t from 'tap'
import { handleFrameworkApi, routeFramework, type FrameworkApiContext } from '../../broker/framework-api.js'
import type { NotificationRecord } from '../../broker/notification-queue.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'

const record = { id: 'x', title: 't' } as NotificationRecord
const ctx: FrameworkApiContext = {
  isConsoleToken: (tok) => tok === 'good',
  now: () => 7,
  channels: (id) => (id === 'phone-a' ? { data: { online: true, cloudService: true, since: 1 }, push: { connected: true, since: 2 }, notifications: { queued: 1, delivered: 0, expired: 0 }, logs: { events: 3, lastReceivedAt: 5 } } : undefined),
  notifications: (_id, limit) => Array.from({ length: limit }, () => record),
  notify: (_id, req) => ({ ...record, kind: req.kind, title: req.title, body: req.body }),
  logs: () => [],
  log: new LogCapture().logger(),
}

const call = (method: string, path: string, body = '', auth = 'Bearer good') => routeFramework(ctx, method, new URL(path, 'http://x'), auth, body)

t.test('the framework API answers only the console token and says what it cannot do', (t) => {
  t.same(call('GET', '/api/devices/phone-a/channels', '', 'Bearer bad'), { status: 401, body: { error: 'missing or wrong console token' } })
  t.same(call('GET', '/api/devices/ghost/channels'), { status: 404, body: { error: 'device "ghost" not found' } })
  t.same(call('POST', '/api/devices/phone-a/logs'), { status: 405, body: { error: 'POST is not supported here' } })
  t.same(call('DELETE', '/api/devices/phone-a/notifications'), { status: 405, body: { error: 'DELETE is not supported here' } })
  t.match(call('GET', '/api/devices/phone-a/channels'), { status: 200, body: { now: 7, device: 'phone-a', push: { connected: true } } })
  for (const limit of ['0', '1001', 'x']) t.equal(call('GET', `/api/devices/phone-a/notifications?limit=${limit}`).status, 400, `limit=${limit}`)
  t.equal((call('GET', '/api/devices/phone-a/notifications').body as { notifications: unknown[] }).notifications.length, 20, 'twenty by default')
  t.match(call('GET', '/api/devices/phone-a/logs?limit=5'), { status: 200, body: { total: 3, events: [] } })
  t.end()
})

t.test('X3 a notification from the console is checked field by field before it is queued', (t) => {
  const bad: [string, string, RegExp][] = [
    ['not JSON', '{', /not valid JSON/],
    ['no title', '{"kind":"weather"}', /title/],
    ['an unknown kind', '{"kind":"ad","title":"Buy"}', /kind/],
    ['a time to live of zero', '{"title":"x","ttlMs":0}', /ttlMs/],
    ['an unknown field', '{"title":"x","priority":9}', /priority/],
  ]
  for (const [name, body, reason] of bad) {
    const r = call('POST', '/api/devices/phone-a/notifications', body)
    t.equal(r.status, 400, name)
    t.match((r.body as { error: string }).error, reason, name)
  }
  t.match(call('POST', '/api/devices/phone-a/notifications', '{"title":"Hi"}'), { status: 201, body: { notification: { kind: 'message', title: 'Hi', body: '' } } }, 'kind and body have defaults')
  t.end()
})

t.test('over HTTP: a body over 16 KiB is refused with 413, a failure inside the cloud is a logged 500, other paths fall through', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a')
  const url = `${cloud.apiUrl}/api/devices/phone-a/notifications`
  const headers = { authorization: `Bearer ${cloud.consoleToken}`, 'content-type': 'application/json' }
  const big = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ title: 'x', body: 'y'.repeat(20_000) }) })
  t.equal(big.status, 413)
  t.match(await big.json(), { error: /over 16384 bytes/ })
  const ok = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ kind: 'weather', title: 'Gale', ttlMs: 3_600_000 }) })
  t.equal(ok.status, 201)
  t.match(await ok.json(), { notification: { kind: 'weather', title: 'Gale', state: 'queued', deviceId: 'phone-a' } })

  const logs = new LogCapture()
  const failing = { ...ctx, channels: () => { throw new Error('disk I/O error') }, log: logs.logger() }
  const res = { status: 0, text: '', writeHead(status: number) { this.status = status }, end(text: string) { this.text = text } }
  const req = Object.assign(new (await import('node:stream')).PassThrough(), { url: '/api/devices/phone-a/channels', method: 'GET', headers: { authorization: 'Bearer good' } })
  t.equal(handleFrameworkApi(failing, req as never, res as never), true)
  req.end()
  await logs.waitFor((l) => l.msg === 'console API request failed')
  t.equal(res.status, 500)
  t.match(JSON.parse(res.text), { error: /its log says why/ })
  t.equal(handleFrameworkApi(failing, Object.assign(req, { url: '/api/devices' }) as never, res as never), false, 'not a framework path')
})
