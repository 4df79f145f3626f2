/**
 * The web console's relay (cli/web/page-api.ts) against a stand-in broker that records what it gets and answers what the
 * test says, bytes as they are: the console token and the page's body and type go through, the broker's status, type,
 * download name and body come back intact (a refused command's 409 too, F2), and a broker that is away or cuts its answer
 * short is a 502 with the reason.
 */
import t, { type Test } from 'tap'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PageApi } from '../../../cli/web/page-api.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { OwnerKeys } from '../../../common/signing.js'
import { readWholeBody } from '../../../common/http-body.js'
import { deviceView } from '../../fixtures/cloud.js'
import { closedPort } from '../../fixtures/ports.js'
import { tempDir } from '../../fixtures/scope.js'

/** What the stand-in broker got. */
interface Got {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

type Handler = (req: IncomingMessage, res: ServerResponse, got: Got) => void

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A stand-in broker answering with `handler`, and the page's side: PageApi.handle behind a server of its own. */
async function setup(t: Test, handler: Handler, brokerUrl?: string): Promise<{ got: Got[]; page: PageCall }> {
  const got: Got[] = []
  let url = brokerUrl
  if (url === undefined) {
    const broker = createServer((req, res) => {
      void readWholeBody(req).then((body) => {
        const one = { method: req.method as string, url: req.url as string, headers: req.headers, body: body.toString() }
        got.push(one)
        handler(req, res, one)
      })
    })
    url = await listen(broker)
    t.teardown(() => {
      broker.closeAllConnections()
      return new Promise((resolve) => broker.close(resolve))
    })
  }
  const api = new ConsoleClient(url, 'console-token')
  const keys = new OwnerKeys(tempDir(t))
  keys.signingKey('alice')
  const pageApi = new PageApi({ api, apiUrl: url, keys })
  const front = createServer((req, res) => {
    const u = new URL(req.url as string, 'http://page')
    void pageApi.handle(req, res, u.pathname.slice('/app/api'.length), u)
  })
  const base = await listen(front)
  t.teardown(() => new Promise((resolve) => front.close(resolve)))
  const page: PageCall = (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const req = request(new URL(path, base), { method, headers }, (res) => {
        void readWholeBody(res).then((bytes) => resolve({ status: res.statusCode as number, headers: res.headers, body: bytes.toString() }))
      })
      req.on('error', reject)
      req.end(body)
    })
  return { got, page }
}

type PageCall = (
  method: string,
  path: string,
  body?: string,
  headers?: Record<string, string>,
) => Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>

t.test('relayed as they are: the token, query, body and type to the broker; status, type, download name and bytes back', async (t) => {
  const { got, page } = await setup(t, (req, res) => {
    if (req.url?.endsWith('/content')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': "attachment; filename*=UTF-8''a.bin" })
      res.end(Buffer.from([0, 1, 2, 255]))
    } else if (req.method === 'POST') {
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end('{"file": {"id": "f1"}}')
    } else {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end('{"error":"no such account","code":"NOT_FOUND"}')
    }
  })
  const up = await page('POST', '/app/api/accounts/alice/drive/files?name=a.bin&folder=%2F', 'raw bytes', {
    'content-type': 'application/octet-stream',
  })
  t.same(up, { status: 201, headers: up.headers, body: '{"file": {"id": "f1"}}' }, 'the body byte for byte, spacing and all')
  t.equal(up.headers['content-type'], 'application/json')
  t.equal(up.headers['cache-control'], 'no-store')
  t.match(got[0], {
    method: 'POST',
    url: '/api/accounts/alice/drive/files?name=a.bin&folder=%2F',
    headers: { authorization: 'Bearer console-token', 'content-type': 'application/octet-stream', 'content-length': '9' },
    body: 'raw bytes',
  })

  const down = await page('GET', '/app/api/accounts/alice/drive/files/f1/content')
  t.equal(down.status, 200)
  t.equal(down.headers['content-type'], 'application/octet-stream')
  t.equal(down.headers['content-disposition'], "attachment; filename*=UTF-8''a.bin")
  t.match(got[1], { method: 'GET', url: '/api/accounts/alice/drive/files/f1/content', headers: { authorization: 'Bearer console-token' } })
  t.equal(got[1]?.headers['content-type'], undefined, 'a GET has no body and says no type')

  const missing = await page('GET', '/app/api/accounts/bob/items')
  t.same([missing.status, missing.body], [404, '{"error":"no such account","code":"NOT_FOUND"}'])
  t.equal(missing.headers['content-disposition'], undefined)

  const plain = await page('POST', '/app/api/devices/phone-a/notifications', '{"title":"Hi"}')
  t.equal(plain.status, 201)
  t.equal(got[3]?.headers['content-type'], 'application/json', "the page's body is JSON unless it says otherwise")
})

t.test('an answer without a type (a proxy in front of the broker) goes on as bytes; the console keeps serving', async (t) => {
  const { page } = await setup(t, (req, res) => {
    res.removeHeader('content-type')
    res.writeHead(req.url?.includes('bin') ? 504 : 200)
    res.end('gateway timeout')
  })
  const bare = await page('GET', '/app/api/accounts/alice/bin')
  t.same([bare.status, bare.headers['content-type'], bare.body], [504, 'application/octet-stream', 'gateway timeout'])
  t.equal((await page('GET', '/app/api/service')).status, 200, 'and the next call is answered too')
})

t.test("F2: a refused command's 409 reaches the page as the broker wrote it", async (t) => {
  const refusal = '{"error":"this device has not enabled Find Device","code":"NOT_ENABLED"}'
  const { got, page } = await setup(t, (req, res) => {
    res.writeHead(req.method === 'GET' ? 200 : 409, { 'content-type': 'application/json' })
    res.end(req.method === 'GET' ? JSON.stringify({ now: 1_000_000, device: deviceView() }) : refusal)
  })
  const refused = await page('POST', '/app/api/devices/phone-a/commands', '{"type":"locate","args":{}}')
  t.same([refused.status, refused.body], [409, refusal])
  t.match(got, [
    { method: 'GET', url: '/api/devices/phone-a' },
    {
      method: 'POST',
      url: '/api/devices/phone-a/commands',
      headers: { authorization: 'Bearer console-token', 'content-type': 'application/json' },
    },
  ])
  t.match(JSON.parse((got[1] as Got).body), { device: 'phone-a', type: 'locate', issuedAt: 1_000_000, sig: String }, 'signed here')
})

t.test("F2: a device view the console cannot read (another version's broker) is a 502 naming the field, and nothing is sent", async (t) => {
  const { got, page } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ now: 1_000_000, device: { id: 'phone-a', account: 'alice' } }))
  })
  const refused = await page('POST', '/app/api/devices/phone-a/commands', '{"type":"locate","args":{}}')
  t.equal(refused.status, 502, "the gateway's trouble, not a 200 the page would take for an answer")
  t.match(JSON.parse(refused.body), {
    code: 'BAD_ANSWER',
    error: /answered GET \/api\/devices\/phone-a with what this console cannot read .*device\.online/,
  })
  t.same(
    got.map((g) => g.method),
    ['GET'],
    'no command went to a device whose view could not be read',
  )
})

t.test('the broker away, or cutting its answer short: a 502 that says why', async (t) => {
  const away = await setup(t, () => {}, `http://127.0.0.1:${await closedPort()}`)
  const refused = await away.page('POST', '/app/api/accounts/alice/drive/files?name=x', 'x')
  t.equal(refused.status, 502)
  t.match(JSON.parse(refused.body), {
    code: 'BAD_GATEWAY',
    error: /^The broker is not answering at 127\.0\.0\.1:\d+: is `fakephone broker` \(or `fakephone demo`\) running\?$/,
    detail: /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
  })

  const cut = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100' })
    res.write('only ten b', () => res.destroy())
  })
  const short = await cut.page('GET', '/app/api/accounts/alice/drive/files/f1/content')
  t.equal(short.status, 502)
  t.match(JSON.parse(short.body), {
    code: 'BAD_GATEWAY',
    error: /^The connection to the broker at 127\.0\.0\.1:\d+ was cut: was it stopped or restarted\?$/,
    detail: 'aborted',
  })

  // The broker's 401 is about the console token (it changed), not this browser's session: not "signed out".
  const token = await setup(t, (_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'missing or wrong console token', code: 'UNAUTHORIZED' }))
  })
  for (const path of ['/app/api/devices', '/app/api/devices/phone-a/commands']) {
    const refusedToken = await token.page('GET', path)
    t.equal(refusedToken.status, 502, path)
    t.match(JSON.parse(refusedToken.body), {
      code: 'TOKEN_REFUSED',
      error: /^The broker refuses this console's token: it changed since this console started/,
      detail: 'missing or wrong console token',
    })
  }
  // A 401 that is no broker's (a proxy's login page in front of it): what came back, on one line, not the web console failing.
  const proxy = await setup(t, (_req, res) => {
    res.writeHead(401, { 'content-type': 'text/html' })
    res.end('<html>\n<body>Sign in</body>\n</html>\n')
  })
  for (const path of ['/app/api/devices', '/app/api/devices/phone-a/commands']) {
    const refused = await proxy.page('GET', path)
    t.equal(refused.status, 502, path)
    t.match(JSON.parse(refused.body), {
      code: 'TOKEN_REFUSED',
      detail: new RegExp(
        String.raw`^http:\/\/127\.0\.0\.1:\d+ did not answer like a fakephone broker \(HTTP 401, text\/html: ` +
          String.raw`"<html>\\x0A<body>Sign in<\/body>\\x0A<\/html>\\x0A"\)$`,
      ),
    })
  }
})

t.test('A3: the account views the page reads are checked with their schema; one it cannot read is a 502 naming the field', async (t) => {
  const account = {
    id: 'alice',
    tier: 'free',
    premiumUntil: null,
    quotaBytes: 5e9,
    usedBytes: 0,
    binMs: 30 * 86_400_000,
    lastActivityAt: 0,
    lastActivity: 'sync',
    freezesAt: null,
    frozenAt: 0,
    clearedAt: 0,
    serviceOn: true,
    serviceOffAt: null,
    devices: ['phone-a'],
  }
  const good = JSON.stringify({ now: 1, accounts: [account] })
  const { page } = await setup(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    // A broker of another version: the account list as it should be, the log's entries without their time.
    if (req.url === '/api/accounts') res.end(good)
    else
      res.end(
        JSON.stringify({
          now: 1,
          account: 'alice',
          log: [{ seq: 1, account: 'alice', rule: 'inactivity-freeze', message: 'x', count: 1 }],
        }),
      )
  })
  const listed = await page('GET', '/app/api/accounts')
  t.same([listed.status, listed.body], [200, good], 'one it reads goes through as it is')
  const log = await page('GET', '/app/api/accounts/alice/log?limit=5')
  t.equal(log.status, 502)
  t.match(JSON.parse(log.body), {
    code: 'BAD_ANSWER',
    error: /^the broker answered GET \/api\/accounts\/alice\/log with what this console cannot read: .*log\[0\]\.at/,
  })
})

t.test('F1: a track download of a history the console cannot read is a 502 naming the field, not an empty or broken file', async (t) => {
  const { got, page } = await setup(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    // A broker of another version: its fixes' place under another name.
    res.end(JSON.stringify({ now: 1, device: 'phone-a', history: [{ seq: 1, at: 1, position: { lat: 55.9, lon: -3.2 } }] }))
  })
  for (const format of ['gpx', 'geojson']) {
    const track = await page('GET', `/app/api/devices/phone-a/track.${format}?limit=5`)
    t.equal(track.status, 502, format)
    t.equal(track.headers['content-disposition'], undefined, 'no file is offered')
    t.match(JSON.parse(track.body), {
      code: 'BAD_ANSWER',
      error: /answered GET \/api\/devices\/phone-a\/history\?limit=5 with what this console cannot read \(.*history\[0\]\.lat.*\)/,
    })
  }
  t.equal(got[0]?.url, '/api/devices/phone-a/history?limit=5', 'the limit the page gave')
})

t.test('F2: a sent command the broker answers in a shape the console cannot read is a 502 naming the field, not "sent"', async (t) => {
  const { got, page } = await setup(t, (req, res) => {
    res.writeHead(req.method === 'GET' ? 200 : 201, { 'content-type': 'application/json' })
    // A broker of another version: the command it took, without where it stands.
    res.end(JSON.stringify(req.method === 'GET' ? { now: 1_000_000, device: deviceView() } : { now: 1_000_000, command: { id: 'c1' } }))
  })
  const sent = await page('POST', '/app/api/devices/phone-a/commands', '{"type":"locate","args":{}}')
  t.equal(sent.status, 502)
  t.match(JSON.parse(sent.body), {
    code: 'BAD_ANSWER',
    error: /^the broker answered POST \/api\/devices\/phone-a\/commands with what this console cannot read: .*command\.device/,
  })
  t.equal(got.length, 2, 'the command went to the broker: only its answer was unreadable')
})
