/**
 * One HTTP stack: the console API (F1-F3), the framework's (X1-X3), the cloud
 * data's for the console and for phones (S, B, D, A) and the drive SDK's (D1,
 * D5) all meet the same client mistakes with the same status and the same
 * `{error, code}` body, on a real broker over a real socket.
 */
import t from 'tap'
import { MAX_CONSOLE_BODY_BYTES } from '../../../broker/devices/console-api.js'
import { MAX_FRAMEWORK_BODY_BYTES } from '../../../broker/framework/framework-api.js'
import { MAX_JSON_BYTES } from '../../../broker/http/router.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'
import { rawRequest } from '../../fixtures/http.js'

interface Family {
  name: string
  /** Good credentials for the family's routes. */
  auth: string
  wrongAuth: string
  /** A route that reads a JSON body, and the largest body it takes; none for the SDK, whose uploads are raw bytes. */
  json?: { method: string; path: string; maxBytes: number }
  /** A route the credential faults are tried on. */
  guarded: { method: string; path: string }
  /** A route with a path parameter, its value given as `%`. */
  param: { method: string; path: string }
  unknown: string
  wrongMethod: { method: string; path: string }
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

t.test('every API family answers the same fault with the same status and an {error, code} body, never a 500', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const consoleAuth = `Bearer ${cloud.consoleToken}`
  const issued = await fetch(`${cloud.apiUrl}/api/accounts/alice/drive/tokens`, {
    method: 'POST',
    headers: { authorization: consoleAuth },
    body: '{"app":"notes"}',
  })
  const { token: sdkToken } = (await issued.json()) as { token: string }
  const families: Family[] = [
    {
      name: 'console',
      auth: consoleAuth,
      wrongAuth: 'Bearer not-the-token',
      guarded: { method: 'GET', path: '/api/devices' },
      json: { method: 'POST', path: '/api/devices/phone-a/commands', maxBytes: MAX_CONSOLE_BODY_BYTES },
      param: { method: 'GET', path: '/api/devices/%/history' },
      unknown: '/api/devices/phone-a/photos',
      wrongMethod: { method: 'PUT', path: '/api/devices/phone-a/commands' },
    },
    {
      name: 'framework',
      auth: consoleAuth,
      wrongAuth: `Bearer ${sdkToken}`,
      guarded: { method: 'POST', path: '/api/devices/phone-a/notifications' },
      json: { method: 'POST', path: '/api/devices/phone-a/notifications', maxBytes: MAX_FRAMEWORK_BODY_BYTES },
      param: { method: 'GET', path: '/api/devices/%E0%A4%A/channels' },
      unknown: '/api/devices/phone-a/channels/data',
      wrongMethod: { method: 'DELETE', path: '/api/devices/phone-a/notifications' },
    },
    {
      name: 'cloud (console)',
      auth: consoleAuth,
      wrongAuth: basic('phone-a', secret),
      guarded: { method: 'PUT', path: '/api/accounts/alice/membership' },
      json: { method: 'PUT', path: '/api/accounts/alice/membership', maxBytes: MAX_JSON_BYTES },
      param: { method: 'GET', path: '/api/accounts/%zz/log' },
      unknown: '/api/accounts/alice/photos',
      wrongMethod: { method: 'POST', path: '/api/accounts/alice/membership' },
    },
    {
      name: 'cloud (device)',
      auth: basic('phone-a', secret),
      wrongAuth: basic('phone-a', 'not-its-secret'),
      guarded: { method: 'GET', path: '/cloud/v1/drive/files' },
      json: { method: 'POST', path: '/cloud/v1/drive/files', maxBytes: MAX_JSON_BYTES },
      param: { method: 'GET', path: '/cloud/v1/drive/files/%/content' },
      unknown: '/cloud/v1/photos',
      wrongMethod: { method: 'PUT', path: '/cloud/v1/drive/files' },
    },
    {
      name: 'SDK',
      auth: `Bearer ${sdkToken}`,
      wrongAuth: consoleAuth,
      guarded: { method: 'GET', path: '/sdk/v1/files' },
      param: { method: 'GET', path: '/sdk/v1/files/%ff%/content' },
      unknown: '/sdk/v1/folders',
      wrongMethod: { method: 'DELETE', path: '/sdk/v1/files' },
    },
  ]
  for (const f of families) {
    type Fault = [
      fault: string,
      method: string,
      path: string,
      authorization: string | undefined,
      body: string | undefined,
      status: number,
      code: string,
    ]
    const faults: Fault[] = [
      ['a malformed % escape', f.param.method, f.param.path, f.auth, undefined, 400, 'BAD_REQUEST'],
      ['no credentials', f.guarded.method, f.guarded.path, undefined, undefined, 401, 'UNAUTHORIZED'],
      ['wrong credentials', f.guarded.method, f.guarded.path, f.wrongAuth, undefined, 401, 'UNAUTHORIZED'],
      ['an unknown route', 'GET', f.unknown, f.auth, undefined, 404, 'NOT_FOUND'],
      ['a wrong method', f.wrongMethod.method, f.wrongMethod.path, f.auth, undefined, 405, 'METHOD_NOT_ALLOWED'],
    ]
    if (f.json) {
      const oversize = JSON.stringify({ pad: 'x'.repeat(f.json.maxBytes) })
      faults.push(['an oversize body', f.json.method, f.json.path, f.auth, oversize, 413, 'TOO_LARGE'])
      faults.push(['bad JSON', f.json.method, f.json.path, f.auth, '{"title":', 400, 'BAD_REQUEST'])
    }
    for (const [fault, method, path, authorization, body, status, code] of faults) {
      const reply = await rawRequest(cloud.apiUrl, method, path, { authorization, body })
      t.equal(reply.status, status, `${f.name}: ${fault} is ${status}`)
      t.same(Object.keys(reply.body as object).sort(), ['code', 'error'], `${f.name}: ${fault} answers {error, code}`)
      t.match(reply.body, { code, error: /\w/ }, `${f.name}: ${fault} says ${code} and why`)
    }
  }
  t.notOk(cloud.logs.has('HTTP request failed'), 'no client mistake was logged as the cloud failing')
  const noPath = await rawRequest(cloud.apiUrl, 'GET', '//')
  t.match(
    noPath,
    { status: 400, body: { code: 'BAD_REQUEST' } },
    'a request target that is no path is refused (it used to throw in the request handler)',
  )
  t.equal((await fetch(`${cloud.apiUrl}/api/devices`, { headers: { authorization: consoleAuth } })).status, 200, 'and keeps serving')
})
