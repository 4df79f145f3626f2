/**
 * The cloud data's HTTP router on a real HTTP server: who may call what,
 * error bodies with codes and statuses, JSON bodies checked by schema,
 * streamed replies, remembered device credentials. The authenticator here
 * is a table instead of the device registry, so each caller kind can be
 * driven on its own (the registry-backed one runs in the other cloud tests).
 */
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { z } from 'zod'
import { HttpRouter, HttpError, intParam } from '../../../broker/http/router.js'
import { DueTimer } from '../../../broker/due-timer.js'
import { ManualClock } from '../../../common/clock.js'
import { FakephoneError } from '../../../common/errors.js'
import { LogCapture } from '../../fixtures/logs.js'
import { onEnd } from '../../fixtures/scope.js'

async function serve(t: Parameters<typeof onEnd>[0], router: HttpRouter): Promise<string> {
  const server = createServer((req, res) => router.handle(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onEnd(t, () => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

t.test('each route names its callers; every failure is a JSON body with a code and a fitting status', async (t) => {
  const logs = new LogCapture()
  const clock = new ManualClock()
  let deviceChecks = 0
  const router = new HttpRouter(
    {
      isConsoleToken: (tok) => tok === 'console-token',
      device: async (id, secret) => {
        deviceChecks++
        return secret === `s${id.slice(1)}` ? 'alice' : undefined
      },
      sdk: (tok) => (tok === 'sdk-token' ? { account: 'alice', app: 'notes-app' } : undefined),
      grant: () => undefined,
    },
    logs.logger(),
    () => clock.now(),
    2,
  )
  router.add('GET', '/x/whoami', ['console', 'device', 'sdk'], (ctx) => ({ status: 200, body: ctx.principal }))
  router.add('POST', '/x/items/:name', ['console'], async (ctx) => ({
    status: 201,
    body: { name: ctx.params.name, ...(await ctx.json(z.strictObject({ size: z.number() }))) },
  }))
  router.add('GET', '/x/boom', ['console'], () => {
    throw new Error('disk on fire')
  })
  router.add('GET', '/x/known', ['console'], () => {
    throw new FakephoneError('QUOTA_EXCEEDED', 'over quota')
  })
  router.add('GET', '/x/odd', ['console'], () => {
    throw new FakephoneError('SOMETHING_ELSE', 'odd')
  })
  router.add('GET', '/x/teapot', ['console'], () => {
    throw new HttpError(418, 'TEAPOT', 'short and stout')
  })
  router.add('GET', '/x/limit', ['console'], (ctx) => ({ status: 200, body: { limit: intParam(ctx.url, 'limit', 5, 1, 10) } }))
  router.add('GET', '/x/stream', ['console'], () => ({
    status: 200,
    stream: Readable.from([Buffer.from('abc')]),
    headers: { 'content-type': 'text/plain' },
  }))
  router.add('GET', '/x/broken', ['console'], () => ({
    status: 200,
    stream: new Readable({
      read() {
        this.destroy(new Error('disk gone'))
      },
    }),
    headers: { 'content-type': 'text/plain' },
  }))
  const base = await serve(t, router)
  const get = async (path: string, authorization = 'Bearer console-token', init: RequestInit = {}) => {
    const res = await fetch(base + path, { ...init, headers: { authorization, ...(init.headers as Record<string, string>) } })
    return {
      status: res.status,
      body: res.headers.get('content-type') === 'application/json' ? ((await res.json()) as Record<string, unknown>) : await res.text(),
    }
  }
  t.same((await get('/x/whoami')).body, { kind: 'console' })
  t.same((await get('/x/whoami', basic('p1', 's1'))).body, { kind: 'device', deviceId: 'p1', account: 'alice' })
  t.same((await get('/x/whoami', basic('p1', 's1'))).body, { kind: 'device', deviceId: 'p1', account: 'alice' })
  t.equal(deviceChecks, 1, 'verified credentials are remembered')
  await get('/x/whoami', basic('p2', 's2'))
  await get('/x/whoami', basic('p3', 's3'))
  await get('/x/whoami', basic('p1', 's1'))
  t.equal(deviceChecks, 4, 'a full cache starts again: p1 was checked anew')
  await get('/x/whoami', basic('p1', 's1'))
  t.equal(deviceChecks, 4)
  clock.advance(60_000)
  await get('/x/whoami', basic('p1', 's1'))
  t.equal(deviceChecks, 5, 'after a minute the registry is asked again (a removed device is locked out)')
  t.same((await get('/x/whoami', 'Bearer sdk-token')).body, { kind: 'sdk', account: 'alice', app: 'notes-app' })
  let r = await get('/x/whoami', basic('p1', 'wrong'))
  t.match(r, {
    status: 401,
    body: { code: 'UNAUTHORIZED', error: 'missing or wrong console token or device id and secret or drive SDK token' },
  })
  t.equal((await get('/x/whoami', basic('nocolon', ''))).status, 401)
  t.equal((await get('/x/whoami', `Basic ${Buffer.from('p1').toString('base64')}`)).status, 401, 'Basic without a colon')
  t.equal((await get('/x/whoami', basic('', 's1'))).status, 401, 'Basic without a user')
  t.equal((await get('/x/whoami', 'Bearer unknown')).status, 401)
  t.equal((await fetch(base + '/x/whoami')).status, 401, 'no credentials at all')
  t.match(
    await get('/x/items/a', 'Bearer console-token', { method: 'POST' }),
    { status: 400 },
    'no body is an empty object, checked like any other',
  )
  t.equal((await get('/x/items/a', 'Bearer sdk-token', { method: 'POST' })).status, 401, 'an SDK token does not open a console route')
  r = await get('/x/items/a%20b', 'Bearer console-token', {
    method: 'POST',
    body: JSON.stringify({ size: 3 }),
    headers: { 'content-type': 'application/json' },
  })
  t.same(r, { status: 201, body: { name: 'a b', size: 3 } }, 'path parameters are decoded, bodies checked')
  r = await get('/x/items/a', 'Bearer console-token', { method: 'POST', body: '{"size":"big"}' })
  t.match(r, { status: 400, body: { code: 'BAD_REQUEST', error: /size/ } })
  r = await get('/x/items/a', 'Bearer console-token', { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) })
  t.match(r, { status: 413, body: { code: 'TOO_LARGE' } })
  r = await get('/x/items/a', 'Bearer console-token', { method: 'DELETE' })
  t.match(r, { status: 405, body: { code: 'METHOD_NOT_ALLOWED', error: /use POST/ } })
  t.match(await get('/x/boom'), { status: 500, body: { code: 'INTERNAL', error: /its log says why/ } })
  t.ok(logs.has('HTTP request failed'), 'the reason is in the log')
  t.match(await get('/x/known'), { status: 507, body: { code: 'QUOTA_EXCEEDED' } })
  t.match(await get('/x/odd'), { status: 500 }, 'an error code without a status is a bug, said as one')
  t.match(await get('/x/teapot'), { status: 418, body: { code: 'TEAPOT' } })
  t.match(await get('/x/limit?limit=11'), { status: 400, body: { error: 'limit must be a whole number from 1 to 10' } })
  t.same((await get('/x/limit')).body, { limit: 5 })
  t.same(await get('/x/stream'), { status: 200, body: 'abc' })
  await t.rejects(get('/x/broken'), 'a download that fails part-way is cut, not finished as if whole')
  t.match(
    await get('/y/elsewhere'),
    { status: 404, body: { code: 'NOT_FOUND', error: 'GET /y/elsewhere: there is no such path' } },
    'a path no route serves',
  )
  t.match(await get('/x/items/a%zz', 'Bearer console-token', { method: 'POST', body: '{"size":1}' }), {
    status: 400,
    body: { code: 'BAD_REQUEST', error: /malformed %-escape/ },
  })
})

t.test('a rule that fails runs again a minute later instead of spinning; a rule may ask to wake daily to look again', (t) => {
  const clock = new ManualClock(0)
  const logs = new LogCapture()
  let due: number | null = 1000
  const runs: number[] = []
  const timer = new DueTimer(
    clock,
    () => due,
    (now) => {
      runs.push(now)
      if (runs.length === 1) throw new Error('database locked')
      due = null
    },
    logs.logger(),
    'test-rule',
  )
  timer.reschedule()
  clock.advance(5000)
  t.same(runs, [], 'not started: nothing runs')
  timer.start()
  due = 900
  timer.reschedule()
  clock.advance(0)
  t.same(runs, [5000], 'overdue when started: runs at once')
  t.ok(logs.has('a cloud rule failed'))
  clock.advance(59_999)
  t.same(runs, [5000])
  clock.advance(1)
  t.same(runs, [5000, 65_000], 'retried a minute later')
  timer.stop()
  const looks: number[] = []
  const daily = new DueTimer(
    clock,
    () => null,
    (now) => looks.push(now),
    logs.logger(),
    'daily',
    86_400_000,
  )
  daily.start()
  clock.advance(2 * 86_400_000)
  t.same(looks, [65_000 + 86_400_000, 65_000 + 2 * 86_400_000], 'nothing due, but it looks again every day')
  daily.stop()
  t.end()
})

t.test('A3 dueBy arms for an earlier due time without asking the rule; a later one keeps the timer; an early wake looks again', (t) => {
  const clock = new ManualClock(0)
  let asked = 0
  let due: number | null = null
  const runs: number[] = []
  const timer: DueTimer = new DueTimer(
    clock,
    () => (asked++, due),
    (now) => {
      runs.push(now)
      due = null
      // Changes made while the rule runs need no look-ahead of their own: it looks once when done.
      timer.dueBy(now + 1)
      timer.reschedule()
    },
    new LogCapture().logger(),
    'test-rule',
  )
  timer.dueBy(10)
  clock.advance(20)
  t.same(runs, [], 'not started: dueBy arms nothing')
  timer.start()
  const looks = asked
  timer.dueBy(100)
  timer.dueBy(200)
  timer.dueBy(50)
  t.equal(asked, looks, 'dueBy never asks the rule for its next due time')
  clock.advance(29)
  t.same(runs, [])
  clock.advance(1)
  t.same(runs, [50], 'woken at the earliest time given (50 ms from the start, the clock at 20 then)')
  t.equal(asked, looks + 1, 'then it asks once')
  due = 70
  timer.reschedule()
  timer.reschedule()
  timer.dueBy(80)
  clock.advance(20)
  t.same(runs, [50, 70], 'a later dueBy left the earlier timer armed')
  timer.stop()
  t.end()
})
