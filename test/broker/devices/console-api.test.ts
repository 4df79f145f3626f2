/** The console API's routes (F1-F3) and refusals on the broker's router over a real socket (the CLI tests cover them end to end). */
import t from 'tap'
import { addConsoleRoutes } from '../../../broker/devices/console-api.js'
import { CommandCenter } from '../../../broker/devices/commands.js'
import { openDb } from '../../../broker/db.js'
import { HttpRouter } from '../../../broker/http/router.js'
import { DeviceRegistry } from '../../../broker/devices/registry.js'
import { StateStore } from '../../../broker/devices/state-store.js'
import { ManualClock } from '../../../common/clock.js'
import { heartbeat } from '../../fixtures/cloud.js'
import { rawRequest, serveRouter } from '../../fixtures/http.js'
import { LogCapture } from '../../fixtures/logs.js'
import { makeOwner, signed } from '../../fixtures/owner.js'
import type { Command } from '../../../common/contract.js'

t.test('the console API answers only the console token and says what it cannot do', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 1)
  await registry.add('phone-a', 'alice')
  const store = new StateStore(db, 2)
  store.recordHeartbeat('phone-a', heartbeat(1), 5)
  store.recordHeartbeat('phone-a', heartbeat(2), 6)
  t.equal(store.history('phone-a', 10).length, 2, 'a full batch is written at once, without waiting for the next tick')
  const clock = new ManualClock()
  const logs = new LogCapture()
  const commands = new CommandCenter(db, store, clock, logs.logger(), () => false)
  const router = new HttpRouter(
    { isConsoleToken: (tok) => tok === 'good', device: async () => undefined, sdk: () => undefined, grant: () => undefined },
    logs.logger(),
    () => clock.now(),
  )
  addConsoleRoutes(router, { store, commands, now: () => 7 })
  const base = await serveRouter(t, router)
  const call = (method: string, path: string, auth = 'Bearer good', body?: unknown) =>
    rawRequest(base, method, path, { authorization: auth, body: body === undefined ? undefined : JSON.stringify(body) })
  t.same(await call('GET', '/api/devices', 'Bearer bad'), {
    status: 401,
    body: { error: 'missing or wrong console token', code: 'UNAUTHORIZED' },
  })
  t.equal((await call('GET', '/api/devices', 'undefined')).status, 401)
  t.same(await call('DELETE', '/api/devices'), {
    status: 405,
    body: { error: 'DELETE is not supported on /api/devices; use GET', code: 'METHOD_NOT_ALLOWED' },
  })
  t.same(await call('GET', '/elsewhere'), { status: 404, body: { error: 'GET /elsewhere: there is no such path', code: 'NOT_FOUND' } })
  t.equal((await call('GET', '/api/devices/phone-a/photos')).status, 404)
  t.equal((await call('GET', '/api/devices/phone-a/history/x')).status, 404)
  t.equal((await call('GET', '/api/commands')).status, 404)
  t.equal((await call('GET', '/api')).status, 404)
  t.same(await call('GET', '/api/devices/ghost'), { status: 404, body: { error: 'device "ghost" not found', code: 'NOT_FOUND' } })
  for (const limit of ['0', '10001', 'lots'])
    t.equal((await call('GET', `/api/devices/phone-a/history?limit=${limit}`)).status, 400, `limit=${limit}`)
  t.match(await call('GET', '/api/devices/phone-a'), { status: 200, body: { now: 7, device: { id: 'phone-a', last: { seq: 2 } } } })
  t.match(await call('GET', '/api/devices/phone-a/history?limit=1'), { status: 200, body: { history: [{ seq: 2 }] } })
  t.equal(
    ((await call('GET', '/api/devices/phone-a/history')).body as { history: unknown[] }).history.length,
    2,
    'the default limit is 100',
  )
  t.match(await call('GET', '/api/devices'), { status: 200, body: { devices: [{ id: 'phone-a' }] } })
  t.same(await call('GET', '/api/devices/ghost/commands'), { status: 404, body: { error: 'device "ghost" not found', code: 'NOT_FOUND' } })
  t.equal((await call('POST', '/api/devices/ghost/commands', 'Bearer good', {})).status, 404)

  const owner = makeOwner(t)
  const cmd = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  t.match(await call('POST', '/api/devices/phone-a/commands', 'Bearer good', cmd), {
    status: 201,
    body: { command: { id: cmd.id, state: 'queued' } },
  })
  t.match(await call('POST', '/api/devices/phone-a/commands', 'Bearer good', cmd), {
    status: 409,
    body: { code: 'DUPLICATE', error: /already submitted/ },
  })
  t.match(await call('POST', '/api/devices/phone-a/commands', 'Bearer good', { nonsense: true }), {
    status: 400,
    body: { code: 'BAD_COMMAND', error: /not a valid command/ },
  })
  t.match(await call('GET', '/api/devices/phone-a/commands'), { status: 200, body: { commands: [{ id: cmd.id }] } })
  t.match(await call('GET', `/api/commands/${cmd.id}`), { status: 200, body: { command: { state: 'queued' } } })
  t.match(
    await call('GET', `/api/commands/${cmd.id}?wait=5`),
    { status: 200, body: { command: { state: 'queued' } } },
    'a wait that runs out answers the current state',
  )
  t.equal((await call('GET', `/api/commands/${cmd.id}?wait=-1`)).status, 400)
  t.same(await call('GET', '/api/commands/nope'), { status: 404, body: { error: 'command "nope" not found', code: 'NOT_FOUND' } })
  // F2: a bad wait is the request's fault whether or not what it names exists: a 400 that says what wait may be.
  const badWait = { status: 400, body: { error: 'wait must be a whole number from 0 to 60000', code: 'BAD_REQUEST' } }
  t.same(await call('GET', '/api/commands/nope?wait=soon'), badWait, 'F2 a bad wait on an unknown command: 400, not 404')
  t.same(
    await call('POST', '/api/devices/phone-nope/commands?wait=soon', 'Bearer good', signed(owner, 'phone-nope', 'ring', { seconds: 5 }, 1)),
    badWait,
    'F2 and on an unknown device',
  )
  const waiting = call('GET', `/api/commands/${cmd.id}?wait=60000`)
  // The waiting request is in the router once the command center has a listener for it.
  for (let i = 0; i < 1000 && commands.listenerCount('changed') === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  t.match(await call('POST', `/api/commands/${cmd.id}/cancel`), { status: 200, body: { command: { state: 'cancelled' } } })
  t.match(
    await waiting,
    { status: 200, body: { command: { state: 'cancelled' } } },
    'a waiting request answers as soon as the command is final',
  )
  t.match(
    await call('GET', `/api/commands/${cmd.id}?wait=60000`),
    { body: { command: { state: 'cancelled' } } },
    'no wait for a final command',
  )
  t.match(await call('POST', `/api/commands/${cmd.id}/cancel`), {
    status: 409,
    body: { code: 'NOT_CANCELLABLE', error: 'it is already cancelled', command: { id: cmd.id } },
  })
  t.equal((await call('POST', '/api/commands/nope/cancel')).status, 404)

  // F2: POST ?wait=MS submits and waits in the same request, with the GET's wait and its schema.
  const submitted = (cmd: Command, wait: string) => call('POST', `/api/devices/phone-a/commands?wait=${wait}`, 'Bearer good', cmd)
  for (const wait of ['-1', '60001', '1.5', 'soon']) {
    const bad = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
    t.same(
      await submitted(bad, wait),
      { status: 400, body: { error: 'wait must be a whole number from 0 to 60000', code: 'BAD_REQUEST' } },
      `F2 a submit with wait=${wait} is a 400 that says what wait may be`,
    )
    t.equal(commands.get(bad.id), undefined, `F2 and nothing was submitted (wait=${wait})`)
  }
  const unanswered = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  t.same(
    await submitted(unanswered, '5'),
    { status: 201, body: { now: 7, command: commands.get(unanswered.id) } },
    'F2 a submit whose wait runs out is created (201) and answers the pending view, queued',
  )
  t.equal(commands.get(unanswered.id)?.state, 'queued')
  t.match(await submitted(signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now()), '0'), {
    status: 201,
    body: { now: 7, command: { state: 'queued' } },
  })
  const answered = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  const inOne = submitted(answered, '60000')
  for (let i = 0; i < 1000 && commands.listenerCount('changed') === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  t.ok(commands.get(answered.id), 'the command was submitted before its request answered')
  commands.cancel(answered.id)
  t.match(
    await inOne,
    { status: 201, body: { now: 7, command: { id: answered.id, state: 'cancelled', reason: 'cancelled by the owner' } } },
    'F2 a submit that waits answers as soon as the command is final, in the same request',
  )
  t.equal(commands.listenerCount('changed'), 0, 'the wait stopped listening once answered')
  t.match(await submitted(answered, '60000'), { status: 409, body: { code: 'DUPLICATE' } }, 'a refused submit does not wait')

  const doomed = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  t.equal((await call('POST', '/api/devices/phone-a/commands', 'Bearer good', doomed)).status, 201)
  const orphaned = call('GET', `/api/commands/${doomed.id}?wait=50`)
  for (let i = 0; i < 1000 && commands.listenerCount('changed') === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  registry.remove('phone-a')
  t.same(
    await orphaned,
    {
      status: 404,
      body: { error: `command ${doomed.id} is gone: its device was removed while the request waited`, code: 'NOT_FOUND' },
    },
    'a command removed with its device while a request waited for it is a clear 404, not an answer without the command',
  )
})
