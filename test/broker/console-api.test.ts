/** The console API's routing and refusals, without a socket (the CLI tests cover it over HTTP). */
import t from 'tap'
import { route } from '../../broker/console-api.js'
import { openDb } from '../../broker/db.js'
import { DeviceRegistry } from '../../broker/registry.js'
import { StateStore } from '../../broker/state-store.js'
import { heartbeat } from '../fixtures/cloud.js'

t.test('the console API answers only the console token and says what it cannot do', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  await new DeviceRegistry(db, () => 1).add('phone-a', 'alice')
  const store = new StateStore(db, 2)
  store.recordHeartbeat('phone-a', heartbeat(1), 5)
  store.recordHeartbeat('phone-a', heartbeat(2), 6)
  t.equal(store.history('phone-a', 10).length, 2, 'a full batch is written at once, without waiting for the next tick')
  const ctx = { store, isConsoleToken: (tok: string) => tok === 'good', now: () => 7 }
  const call = (method: string, path: string, auth = 'Bearer good') => route(ctx, method, new URL(path, 'http://x'), auth)
  t.same(call('GET', '/api/devices', 'Bearer bad'), { status: 401, body: { error: 'missing or wrong console token' } })
  t.equal(call('GET', '/api/devices', '').status, 401)
  t.same(call('DELETE', '/api/devices'), { status: 405, body: { error: 'DELETE is not supported here' } })
  t.same(call('GET', '/elsewhere'), { status: 404, body: { error: '/elsewhere not found' } })
  t.equal(call('GET', '/api/devices/phone-a/photos').status, 404)
  t.equal(call('GET', '/api/devices/phone-a/history/x').status, 404)
  t.same(call('GET', '/api/devices/ghost'), { status: 404, body: { error: 'device "ghost" not found' } })
  for (const limit of ['0', '10001', 'lots']) t.equal(call('GET', `/api/devices/phone-a/history?limit=${limit}`).status, 400, `limit=${limit}`)
  t.match(call('GET', '/api/devices/phone-a'), { status: 200, body: { now: 7, device: { id: 'phone-a', last: { seq: 2 } } } })
  t.match(call('GET', '/api/devices/phone-a/history?limit=1'), { status: 200, body: { history: [{ seq: 2 }] } })
  t.equal((call('GET', '/api/devices/phone-a/history').body as { history: unknown[] }).history.length, 2, 'the default limit is 100')
  t.match(call('GET', '/api/devices'), { status: 200, body: { devices: [{ id: 'phone-a' }] } })
})
