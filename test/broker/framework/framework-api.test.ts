/** The console API's framework routes (X1-X3) on the broker's router over a real socket: routing, refusals, the HTTP edges. */
import t from 'tap'
import { addFrameworkRoutes, type FrameworkApiContext } from '../../../broker/framework/framework-api.js'
import { HttpRouter } from '../../../broker/http/router.js'
import type { NotificationRecord } from '../../../broker/framework/notification-queue.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'
import { rawRequest, serveRouter } from '../../fixtures/http.js'
import { LogCapture } from '../../fixtures/logs.js'

const record = { id: 'x', title: 't' } as NotificationRecord
const ctx: FrameworkApiContext = {
  now: () => 7,
  channels: (id) =>
    id === 'phone-a'
      ? {
          data: { online: true, cloudService: true, since: 1 },
          push: { connected: true, since: 2 },
          notifications: { queued: 1, delivered: 0, expired: 0 },
          logs: { events: 3, lastReceivedAt: 5 },
        }
      : undefined,
  notifications: (_id, limit) => Array.from({ length: limit }, () => record),
  notify: (_id, req) => ({ ...record, kind: req.kind, title: req.title, body: req.body }),
  logs: () => [],
}

async function serve(t: Parameters<typeof serveRouter>[0], api: FrameworkApiContext, logs = new LogCapture()) {
  const router = new HttpRouter(
    { isConsoleToken: (tok) => tok === 'good', device: async () => undefined, sdk: () => undefined, grant: () => undefined },
    logs.logger(),
    () => 0,
  )
  addFrameworkRoutes(router, api)
  const base = await serveRouter(t, router)
  return (method: string, path: string, body?: string, auth = 'Bearer good') =>
    rawRequest(base, method, path, { authorization: auth, body })
}

t.test('the framework API answers only the console token and says what it cannot do', async (t) => {
  const call = await serve(t, ctx)
  t.same(await call('GET', '/api/devices/phone-a/channels', '', 'Bearer bad'), {
    status: 401,
    body: { error: 'missing or wrong console token', code: 'UNAUTHORIZED' },
  })
  t.same(await call('GET', '/api/devices/ghost/channels'), { status: 404, body: { error: 'device "ghost" not found', code: 'NOT_FOUND' } })
  t.same(await call('POST', '/api/devices/phone-a/logs'), {
    status: 405,
    body: { error: 'POST is not supported on /api/devices/phone-a/logs; use GET', code: 'METHOD_NOT_ALLOWED' },
  })
  t.match(await call('DELETE', '/api/devices/phone-a/notifications'), {
    status: 405,
    body: { code: 'METHOD_NOT_ALLOWED', error: /use GET or POST/ },
  })
  t.match(await call('GET', '/api/devices/phone-a/channels'), {
    status: 200,
    body: { now: 7, device: 'phone-a', push: { connected: true } },
  })
  for (const limit of ['0', '1001', 'x'])
    t.equal((await call('GET', `/api/devices/phone-a/notifications?limit=${limit}`)).status, 400, `limit=${limit}`)
  t.equal(
    ((await call('GET', '/api/devices/phone-a/notifications')).body as { notifications: unknown[] }).notifications.length,
    20,
    'twenty by default',
  )
  t.match(await call('GET', '/api/devices/phone-a/logs?limit=5'), { status: 200, body: { total: 3, events: [] } })
  t.equal((await call('GET', '/api/devices/ghost/logs')).status, 404)
})

t.test('X3 a notification from the console is checked field by field before it is queued', async (t) => {
  const call = await serve(t, ctx)
  const bad: [string, string, RegExp][] = [
    ['not JSON', '{', /not valid JSON/],
    ['no title', '{"kind":"weather"}', /title/],
    ['an unknown kind', '{"kind":"ad","title":"Buy"}', /kind/],
    ['a time to live of zero', '{"title":"x","ttlMs":0}', /ttlMs/],
    ['an unknown field', '{"title":"x","priority":9}', /priority/],
  ]
  for (const [name, body, reason] of bad) {
    const r = await call('POST', '/api/devices/phone-a/notifications', body)
    t.equal(r.status, 400, name)
    t.match(r.body, { code: 'BAD_REQUEST', error: /^bad notification: / }, name)
    t.match(r.body, { error: reason }, name)
  }
  t.match(await call('POST', '/api/devices/ghost/notifications', '{"title":"Hi"}'), { status: 404 })
  t.match(
    await call('POST', '/api/devices/phone-a/notifications', '{"title":"Hi"}'),
    { status: 201, body: { notification: { kind: 'message', title: 'Hi', body: '' } } },
    'kind and body have defaults',
  )
})

t.test('in the broker: a body over 16 KiB is refused with 413, a failure inside the cloud is a logged 500', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a')
  const url = `${cloud.apiUrl}/api/devices/phone-a/notifications`
  const headers = { authorization: `Bearer ${cloud.consoleToken}`, 'content-type': 'application/json' }
  const big = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ title: 'x', body: 'y'.repeat(20_000) }) })
  t.equal(big.status, 413)
  t.match(await big.json(), { code: 'TOO_LARGE', error: /over 16384 bytes/ })
  const ok = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ kind: 'weather', title: 'Gale', ttlMs: 3_600_000 }) })
  t.equal(ok.status, 201)
  t.match(await ok.json(), { notification: { kind: 'weather', title: 'Gale', state: 'queued', deviceId: 'phone-a' } })

  const logs = new LogCapture()
  const call = await serve(
    t,
    {
      ...ctx,
      channels: () => {
        throw new Error('disk I/O error')
      },
    },
    logs,
  )
  t.same(await call('GET', '/api/devices/phone-a/channels'), {
    status: 500,
    body: { error: 'the cloud could not answer this request; its log says why', code: 'INTERNAL' },
  })
  t.ok(logs.has('HTTP request failed'), 'the reason is in the log')
})
