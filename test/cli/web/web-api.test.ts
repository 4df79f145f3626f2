/**
 * The web console's server (cli/web/): sign-in with the one-time link, every file and call the page uses -- signed in,
 * not signed in, from another host, malformed -- and the live event stream, against a real broker and a real agent
 * (F1-F3, X3, A1-A3, B3, R1, D1).
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { connect, createServer } from 'node:net'
import { WebConsole, mqttUrlFor, urlHost } from '../../../cli/web/server.js'
import { packageRoot } from '../../../cli/web/assets.js'
import { cookie, mintLoginToken } from '../../../cli/web/session.js'
import { LiveFeed } from '../../../cli/web/live.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { closedPort } from '../../fixtures/ports.js'
import { consoleCli, events, fakeStream, secondPhone, startWeb, tempDir, type Json } from '../../fixtures/web.js'
import { LogCapture } from '../../fixtures/logs.js'
import { run } from '../../fixtures/io.js'
import { OwnerKeys } from '../../../common/signing.js'

/** fetch() sets Host itself: this request names the host it is told to. */
function statusWithHost(base: string, jar: string, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = host === undefined ? { cookie: jar } : { host, cookie: jar }
    const req = request(new URL('/', base), { headers, setHost: host !== undefined }, (res) => {
      res.resume()
      resolve(res.statusCode as number)
    })
    req.on('error', reject)
    req.end()
  })
}

/** What every answer of the web console carries so that no other page shows it in a frame (clickjacking). */
function notFramed(t: Test, headers: Headers, what: string): void {
  t.equal(headers.get('x-frame-options'), 'DENY', what)
  t.equal(headers.get('content-security-policy'), "frame-ancestors 'none'", what)
  t.equal(headers.get('x-content-type-options'), 'nosniff', what)
}

t.test('sign-in: the link works once, and nothing is served without its cookie or to another host name', async (t) => {
  const s = await startWeb(t)
  t.match(s.web.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  t.equal(s.web.loginUrl, null, 'the link was used by the fixture')
  const again = await s.call('GET', '/login?token=whatever', { cookie: '' })
  t.equal(again.status, 401)
  t.match(again.text, /wrong, was already used, or has expired/)
  t.match(
    again.text,
    /<code>fakephone demo<\/code> \(<code>npm start<\/code>\) or <code>fakephone console web<\/code>/,
    'names both commands that print a link',
  )
  t.match(again.text, /<meta name="viewport" content="width=device-width, initial-scale=1">/, 'readable on a phone, not zoomed out')
  t.equal((await s.call('GET', '/login', { cookie: '' })).status, 401, 'no token')
  for (const path of ['/', '/js/app.js', '/world.geojson', '/config.json']) {
    const r = await s.call('GET', path, { cookie: '' })
    t.equal(r.status, 401, path)
    t.match(r.text, /not signed in/)
  }
  for (const path of ['/app/api/devices', '/events']) {
    t.same((await s.call('GET', path, { cookie: '' })).body, {
      error:
        'not signed in: open the login link this console printed when it started ' +
        '(a link works once; `fakephone console web-link URL` makes a new one)',
      code: 'UNAUTHORIZED',
    })
  }
  t.equal((await s.call('GET', '/app/api/devices', { cookie: 'fakephone_session=forged' })).status, 401, 'a forged session')
  t.equal((await s.call('POST', '/app/api/clock/advance', { cookie: '', body: '{"by":"1h"}' })).status, 401)
  const port = new URL(s.web.url).port
  t.equal(await statusWithHost(s.web.url, s.cookie, 'evil.example:80'), 421, 'another host name is refused (DNS rebinding)')
  t.equal(await statusWithHost(s.web.url, s.cookie, `localhost:${port}`), 200, 'localhost is fine')
  t.equal(await statusWithHost(s.web.url, s.cookie), 400, 'no host name is refused too')
  t.equal(mqttUrlFor('https://cloud.example:8443/'), 'wss://cloud.example:8443/mqtt')
  t.equal(mqttUrlFor('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/mqtt')
  t.equal(urlHost('::1'), '[::1]')
  t.throws(() => packageRoot('/'), /^no package.json above \/$/)
  t.equal(cookie('a=1; fakephone_session=x; b', 'fakephone_session'), 'x')
  t.equal(cookie(undefined, 'fakephone_session'), undefined)
})

/**
 * The status line of one raw HTTP/1.1 request to `base`, sent as `lines`: what fetch cannot send, such as an
 * absolute-form target that is no URL. The request asks for the connection to close, so the answer ends it.
 */
function rawStatus(base: string, lines: string[]): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (got += chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(got.split('\r\n')[0] as string))
    socket.end([...lines, 'Connection: close', '', ''].join('\r\n'))
  })
}

t.test(
  'a request whose target is no path is a 400 from the web console, the broker API and its WebSocket upgrades; both go on',
  async (t) => {
    // `new URL` throws on it: before, thrown in the request listener, it ended the process (in the demo, broker and phone too).
    const s = await startWeb(t)
    const bad = 'GET http://[ HTTP/1.1'
    const webHost = new URL(s.web.url).host
    t.equal(await rawStatus(s.web.url, [bad, `Host: ${webHost}`]), 'HTTP/1.1 400 Bad Request', 'the web console')
    t.equal(await rawStatus(s.cloud.apiUrl, [bad, 'Host: 127.0.0.1']), 'HTTP/1.1 400 Bad Request', 'the broker API')
    const upgrade = [
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
    ]
    t.equal(await rawStatus(s.cloud.apiUrl, [bad, 'Host: 127.0.0.1', ...upgrade]), 'HTTP/1.1 400 Bad Request', 'a WebSocket upgrade')
    t.ok(s.cloud.logs.has('websocket upgrade refused: bad request: "http://[" is not a path'), 'the upgrade refusal is logged')
    const web = await fetch(new URL('/', s.web.url), { headers: { cookie: s.cookie, connection: 'close' } })
    t.equal(web.status, 200)
    t.match(await web.text(), /fakephone console/)
    t.equal((await s.call('GET', '/app/api/devices')).status, 200, 'the web console and the broker still answer')
  },
)

t.test('sign-out: the cookie stops working, its event streams end, and another browser stays signed in', async (t) => {
  const s = await startWeb(t)
  // A second browser, signed in with a link `console web-link` would make.
  const link = new URL(`/login?token=${mintLoginToken(s.cloud.consoleToken, Date.now())}`, s.web.url)
  const login = await fetch(link, { redirect: 'manual' })
  const other = (login.headers.get('set-cookie') as string).split(';')[0] as string
  /** An open event stream of a session; `ended` resolves when the console closes it. */
  const stream = async (jar: string): Promise<{ ended: Promise<void>; abort(): void }> => {
    const controller = new AbortController()
    const res = await fetch(new URL('/events', s.web.url), { headers: { cookie: jar }, signal: controller.signal })
    const ended = (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) void chunk
      } catch {
        // aborted by the test
      }
    })()
    return { ended, abort: () => controller.abort() }
  }
  const mine = await stream(s.cookie)
  // The other browser's two tabs: one closed by hand, the other still open when this browser signs out.
  const tabs = [await stream(other), await stream(other)]
  tabs[0]?.abort()
  await tabs[0]?.ended

  const refused = await s.call('POST', '/logout', { page: false })
  t.equal(refused.status, 403, "another site's form cannot sign the owner out")
  t.equal((await s.call('GET', '/app/api/clock')).status, 200, 'still signed in')

  const out = await s.call('POST', '/logout')
  t.equal(out.status, 200)
  t.same(out.body, { signedOut: true, next: '/signed-out' })
  t.match(out.headers.get('set-cookie'), /^fakephone_session=; .*Max-Age=0/, 'the browser is told to drop the cookie')
  await mine.ended
  t.pass("this browser's event stream was closed: it hears no more positions")
  t.equal((await s.call('GET', '/app/api/devices')).status, 401, 'the cookie no longer works')
  t.equal((await s.call('GET', '/events')).status, 401)
  t.equal((await s.call('POST', '/logout')).status, 401, 'signed out already')
  const page = await s.call('GET', '/signed-out', { cookie: '' })
  t.equal(page.status, 200)
  t.match(page.text, /You signed out of this console: this browser needs a new link to sign in again\./)
  t.match(page.text, /<code>fakephone console web-link URL<\/code>/)
  // For a screen reader: its language, a heading and a main landmark; dark in the system's dark mode.
  t.match(page.text, /^<!doctype html><html lang="en">/)
  t.match(page.text, /<main><h1>fakephone console<\/h1><p>You signed out/)
  t.match(page.text, /<meta name="color-scheme" content="light dark">/)

  t.equal((await s.call('GET', '/app/api/clock', { cookie: other })).status, 200, 'the other browser is still signed in')
  t.equal(s.web.listeners, 1, 'its open tab still hears the feed')
  t.equal((await s.call('POST', '/logout', { cookie: other })).status, 200)
  await tabs[1]?.ended
  t.equal((await s.call('GET', '/app/api/clock', { cookie: other })).status, 401)

  // A browser that never opened the live feed (a script, a page still loading) signs out the same way.
  const third = await fetch(new URL(`/login?token=${mintLoginToken(s.cloud.consoleToken, Date.now())}`, s.web.url), { redirect: 'manual' })
  const quiet = (third.headers.get('set-cookie') as string).split(';')[0] as string
  t.equal((await s.call('POST', '/logout', { cookie: quiet })).status, 200, 'signed out with no event stream open')
  t.equal((await s.call('GET', '/app/api/clock', { cookie: quiet })).status, 401)
})

t.test('the page, Leaflet and the Natural Earth base map are served from this machine', async (t) => {
  const s = await startWeb(t)
  const page = await s.call('GET', '/')
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /text\/html/)
  t.match(page.text, /<script type="module" src="\/js\/app.js">/)
  t.notMatch(page.text, /https?:\/\//, 'no address outside this machine')
  t.equal((await s.call('GET', '/index.html')).text, page.text)
  for (const [path, type] of [
    ['/app.css', /text\/css/],
    ['/js/app.js', /javascript/],
    ['/js/map.js', /javascript/],
    ['/js/format-bytes.js', /javascript/],
    ['/js/format-time.js', /javascript/],
    ['/js/plural.js', /javascript/],
    ['/vendor/leaflet.js', /javascript/],
    ['/vendor/leaflet.css', /text\/css/],
    ['/vendor/images/layers.png', /image\/png/],
  ] as const) {
    const r = await s.call('GET', path)
    t.equal(r.status, 200, path)
    t.match(r.headers.get('content-type'), type, path)
  }
  const world = await s.call('GET', '/world.geojson')
  t.match(world.body, { type: 'FeatureCollection' })
  t.ok(world.body.features.length > 150, 'every country')
  // F1: drawn flat, a ring that jumps across the antimeridian and back went round the world: a band of land at 65-69° N
  // across every ocean (Russia's Chukotka; Fiji too). Only a ring round a pole (Antarctica) may cross it, once.
  const jumpers: string[] = []
  for (const f of world.body.features as { properties: { name: string }; geometry: { type: string; coordinates: Json } }[]) {
    const polygons: number[][][][] = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates
    for (const ring of polygons.flat()) {
      const jumps = ring.filter((p, i) => i > 0 && Math.abs((p[0] as number) - (ring[i - 1]?.[0] as number)) > 180).length
      if (jumps > 0) jumpers.push(`${f.properties.name} ${jumps}`)
    }
  }
  t.same(jumpers, ['Antarctica 1'], 'no ring jumps across the antimeridian and back')
  t.equal((await s.call('GET', '/world.geojson')).text, world.text, 'converted once, then served from memory')
  t.same((await s.call('GET', '/config.json')).body, { tiles: null })
  t.equal((await s.call('GET', '/js/missing.js')).status, 404)
  t.equal((await s.call('GET', '/../package.json')).status, 404)
  t.equal((await s.call('GET', '/vendor/../../package.json')).status, 404)
  t.equal((await s.call('POST', '/', { page: false })).status, 403, 'a change without the page header')
  t.equal((await s.call('POST', '/')).status, 405)
})

t.test("no answer of the web console can be shown in another page's frame, signed in or not (clickjacking)", async (t) => {
  // SameSite=Strict does not keep the cookie from a frame on another port of 127.0.0.1: the same site.
  const s = await startWeb(t)
  for (const [method, path, cookie] of [
    ['GET', '/', undefined],
    ['GET', '/js/app.js', undefined],
    ['GET', '/app/api/devices', undefined],
    ['POST', '/app/api/clock/advance', undefined],
    ['GET', '/', ''],
    ['GET', '/login?token=wrong', ''],
    ['GET', '/signed-out', ''],
  ] as const) {
    const r = await s.call(method, path, cookie === undefined ? {} : { cookie })
    notFramed(t, r.headers, `${method} ${path}${cookie === '' ? ' without a session' : ''} (${r.status})`)
  }
  const other = await new Promise<IncomingMessage>((resolve, reject) =>
    request(s.web.url, { headers: { host: 'evil.example' } }, resolve)
      .on('error', reject)
      .end(),
  )
  other.resume()
  t.equal(other.statusCode, 421)
  notFramed(t, new Headers(other.headers as Record<string, string>), 'another host name')
})

t.test('F1: devices, history, channels and the track as GPX and GeoJSON; live updates on a heartbeat', async (t) => {
  const s = await startWeb(t)
  const live = await events(t, s)
  t.equal(s.web.listeners, 1)
  s.real.advance(30_000)
  const first = await live.next('devices', (d) => d.devices[0]?.last !== null)
  t.match(first.devices, [{ id: 'phone-a', online: true, last: { lat: 55.9486, lon: -3.1999 } }])
  s.place.point = { lat: 55.95, lon: -3.18 }
  s.real.advance(30_000)
  const moved = await live.next('devices', (d) => d.devices[0]?.last?.lon === -3.18)
  t.match(moved.devices[0].last, { lat: 55.95, lon: -3.18, accuracy: 12 })

  t.match((await s.call('GET', '/app/api/devices')).body, { now: Number, devices: [{ id: 'phone-a', account: 'alice' }] })
  t.match((await s.call('GET', '/app/api/devices/phone-a')).body, { device: { id: 'phone-a', findDevice: true } })
  t.equal((await s.call('GET', '/app/api/devices/phone-b')).status, 404)
  // The broker's refusal reaches the page as the terminal shows it: a name quoted once, its ESC and line break escaped.
  t.match((await s.call('GET', `/app/api/devices/${encodeURIComponent('x\x1b[2J\n\\"y')}/history`)).body, {
    error: 'device "x\\x1B[2J\\x0A\\\\\\"y" not found',
  })
  t.match(
    (await s.call('GET', '/app/api/devices/phone-a/history?limit=5')).body,
    { history: { length: 3 } },
    'the first fix at connect, then two',
  )
  t.match((await s.call('GET', '/app/api/devices/phone-a/history?limit=0')).body, { code: 'BAD_REQUEST' })
  t.match((await s.call('GET', '/app/api/devices/phone-a/channels')).body, { device: 'phone-a', data: { online: true } })

  const gpx = await s.call('GET', '/app/api/devices/phone-a/track.gpx')
  t.equal(gpx.headers.get('content-type'), 'application/gpx+xml')
  t.equal(gpx.headers.get('content-disposition'), 'attachment; filename="phone-a.gpx"')
  t.match(gpx.text, /<trk><name>phone-a<\/name>\n    <trkseg>\n      <trkpt lat="55.9486" lon="-3.1999"><time>2026-01-01T00:00:00.000Z/)
  t.match(gpx.text, /<trkpt lat="55.95" lon="-3.18">/, 'oldest first')
  const geo = await s.call('GET', '/app/api/devices/phone-a/track.geojson?limit=10')
  t.equal(geo.headers.get('content-disposition'), 'attachment; filename="phone-a.geojson"')
  t.match(geo.body.features[0], {
    properties: {
      device: 'phone-a',
      times: ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:30.000Z', '2026-01-01T00:01:00.000Z'],
      accuracy: [12, 12, 12],
    },
    geometry: {
      type: 'LineString',
      coordinates: [
        [-3.1999, 55.9486],
        [-3.1999, 55.9486],
        [-3.18, 55.95],
      ],
    },
  })
  t.equal((await s.call('GET', '/app/api/devices/nope/track.gpx')).status, 404)
  t.equal((await s.call('GET', '/app/api/devices/%E0%A4%A/track.gpx')).status, 400, 'a malformed %-escape')
})

t.test('F1: a phone removed with `fakephone device remove` is said gone to every open page; another phone stays', async (t) => {
  const s = await startWeb(t)
  await secondPhone(t, s, 'phone-b', { lat: 51.5, lon: -0.12 })
  const live = await events(t, s)
  const removed = await run(['device', 'remove', 'phone-a', '--data', s.cloud.dataDir])
  t.equal(removed.code, 0)
  // The broker clears its retained presence and status; the feed hears them emptied and finds it no longer registered.
  const gone = await live.next('devices', (d) => d.gone.length > 0)
  t.same(
    { devices: gone.devices, gone: gone.gone },
    { devices: [], gone: ['phone-a'] },
    'the page is told to drop it from its list and map',
  )
  s.real.advance(30_000)
  t.match(await live.next('devices', (d) => d.devices.length > 0), { devices: [{ id: 'phone-b' }], gone: [] }, 'the other phone stays')
})

t.test("S1, A1: an account's cloud data changed: every page hears which account; a clock move is said as the clock", async (t) => {
  const s = await startWeb(t)
  const live = await events(t, s)
  const owner = new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken)
  await owner.send('PUT', '/api/accounts/alice/membership', { tier: 'premium', days: 30 })
  t.same(await live.next('accounts'), { accounts: ['alice'] })
  await owner.send('PUT', '/api/service/retirement', { announce: '10d', syncOff: '20d', migrationDeadline: '30d', shutdown: '40d' })
  t.same(await live.next('accounts'), { accounts: null }, 'the retirement plan: every account')
  // With no phone connected no phone's `time` topic tells the feed: the broker's own word that the clock moved does.
  await s.agent.stop()
  t.equal((await s.call('POST', '/app/api/clock/advance', { body: JSON.stringify({ by: '1d' }) })).status, 200)
  t.same(await live.next('clock'), {}, 'the clock moved: the pages reread everything, the accounts with it')

  const logs = new LogCapture()
  const feed = new LiveFeed(new ConsoleClient('http://127.0.0.1:1', 'x'), {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: new OwnerKeys(tempDir(t)),
    log: logs.logger(),
  })
  feed.onMessage('fp/v1/accounts/alice/changed', 'not json')
  feed.onMessage('fp/v1/commands/phone-a/changed', JSON.stringify({ device: 'phone-a', command: 'x', state: 'queued', args: {} }))
  t.match(logs.lines, [
    { msg: 'live feed: a malformed account change', reason: /not valid JSON/ },
    { msg: 'live feed: a malformed command change' },
  ])
  await feed.stop()
})

t.test('F2/F3: commands signed in the console process reach the agent; receipts verified; refusals in the CLI words', async (t) => {
  const s = await startWeb(t)
  const live = await events(t, s)
  const post = (body: unknown, device = 'phone-a') =>
    s.call('POST', `/app/api/devices/${device}/commands`, { body: typeof body === 'string' ? body : JSON.stringify(body) })
  const lock = await post({ type: 'lock', args: { message: 'Call me', phone: '555' } })
  t.equal(lock.status, 201)
  // F2: the phone is online; its receipt comes in a moment (the page shows it when it does), so nothing says "offline".
  t.match(lock.body.command, {
    type: 'lock',
    device: 'phone-a',
    text: /^lock sent to phone-a: waiting for its receipt \(expires in 7d 0h\)$/,
    verified: false,
  })
  await live.next('commands', (d) => Boolean(d.devices.includes('phone-a')))
  let list = (await s.call('GET', '/app/api/devices/phone-a/commands')).body
  for (let i = 0; i < 50 && list.commands[0].state !== 'succeeded'; i++) {
    await live.next('commands')
    list = (await s.call('GET', '/app/api/devices/phone-a/commands')).body
  }
  t.match(list.commands[0], { type: 'lock', state: 'succeeded', text: 'phone-a is locked', verified: true })
  t.match(list.commands[0].receiptText, /^verified receipt signed by phone-a at /)
  t.same(s.agent.status().lock, { message: 'Call me', phone: '555' })

  t.same((await post({ type: 'wipe', args: { eraseSdcard: false, keepFindDevice: true } })).body, {
    error: 'not confirmed: nothing was sent',
    code: 'NOT_CONFIRMED',
  })
  t.equal((await post({ type: 'wipe', args: { eraseSdcard: false, keepFindDevice: true }, confirm: 'phone-b' })).status, 400)
  t.match((await post('{not json')).body, { code: 'BAD_REQUEST', error: /^bad command: / })
  t.match((await post({ type: 'explode', args: {} })).body, { code: 'BAD_REQUEST', error: /^bad command: / })
  t.same((await post({ type: 'lock', args: { message: 'x' } })).body, {
    code: 'BAD_REQUEST',
    error: 'bad lock arguments: phone is missing: give text (a JSON string)',
  })
  // F2 from curl: each field the wipe takes is named with what it takes, not zod's "✖ Invalid input … → at eraseSdcard".
  t.same((await post({ type: 'wipe', args: { eraseSdcard: 'yes', sdcard: true }, confirm: 'phone-a' })).body, {
    code: 'BAD_REQUEST',
    error:
      'bad wipe arguments: eraseSdcard must be true or false, not "yes"; keepFindDevice is missing: give true or false; ' +
      'unknown field "sdcard"',
  })
  t.match((await post({ type: 'ring', args: { seconds: 0 } })).body, {
    error: 'bad ring arguments: seconds: Too small: expected number to be >=1',
  })
  t.match((await post({ type: 'locate', args: [] })).body, { error: 'bad locate arguments: the value must be an object, {...}, not []' })
  t.match((await post({ type: 'locate', args: {} }, 'phone-b')).body, { error: 'device "phone-b" not found', code: 'REFUSED' })
  t.equal((await post('')).status, 400, 'an empty body')
  const big = await s.call('POST', '/app/api/devices/phone-a/commands', { body: 'x'.repeat(8 * 1024 * 1024 + 1) })
  t.match(big, { status: 413, body: { code: 'TOO_LARGE' } })

  await s.agent.setSwitch('findDevice', false)
  const { store } = s.cloud.broker
  while (store.device('phone-a')?.findDevice !== false) await once(store, 'status')
  const refused = await post({ type: 'locate', args: {} })
  t.equal(refused.status, 409)
  t.match(refused.body, { error: 'this device has not enabled Find Device', code: 'NOT_ENABLED' })

  // F3: the cloud service off, Find Device on: the cloud's refusal names the switch, the text the page shows as it came
  // (and the CLI prints), the rejected command's reason too.
  await s.agent.setSwitch('findDevice', true)
  await s.agent.setSwitch('cloudService', false)
  while (store.device('phone-a')?.cloudService !== false) await once(store, 'status')
  const off = await post({ type: 'locate', args: {} })
  const serviceOff =
    "this device has not enabled Find Device: the phone's cloud service is off, and Find Device with it (turn it on in the " +
    "phone's settings)"
  t.equal(off.status, 409)
  t.match(off.body, { error: serviceOff, code: 'NOT_ENABLED', command: { state: 'rejected', reason: serviceOff } })
})

t.test("F2: every page hears where any phone's commands stand: phone-b located from the CLI, its fix verified", async (t) => {
  const s = await startWeb(t)
  await secondPhone(t, s, 'phone-b', { lat: 51.5007, lon: -0.1246 })
  const live = await events(t, s)
  const located = await consoleCli(s, 'locate', 'phone-b')
  t.match(located.out, /^phone-b is at 51\.50070,-0\.12460/, 'the CLI waited for the receipt')
  const succeeded = (d: Json): boolean => Boolean(d.outcomes.some((o: Json) => o.device === 'phone-b' && o.command.state === 'succeeded'))
  const heard = await live.next('outcomes', succeeded)
  t.match(heard.outcomes, [
    {
      device: 'phone-b',
      command: {
        type: 'locate',
        state: 'succeeded',
        final: true,
        reason: null,
        verified: true,
        receiptText: /^verified receipt signed by phone-b at /,
      },
      located: { lat: 51.5007, lon: -0.1246, accuracy: 12, at: s.clock.now() },
    },
  ])
  t.notOk(
    heard.outcomes.some((o: Json) => o.device === 'phone-a'),
    "phone-a's commands did not move: it is not in it",
  )
  // A page that opens now hears it at once, before anything moves again.
  const later = await events(t, s)
  t.match(await later.next('outcomes'), { outcomes: [{ device: 'phone-b', located: { lat: 51.5007 } }] })

  // A receipt this console cannot vouch for: another console, whose keys folder never provisioned phone-b, says so.
  const stranger = new LiveFeed(new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken), {
    mqttUrl: mqttUrlFor(s.cloud.apiUrl),
    consoleToken: s.cloud.consoleToken,
    keys: new OwnerKeys(tempDir(t)),
    log: new LogCapture().logger(),
  })
  const frames: string[] = []
  stranger.attach(fakeStream(frames))
  stranger.commandsMoved('phone-b')
  await stranger.flush()
  await stranger.stop()
  t.match(frames.join(''), /event: outcomes\ndata: .*"verified":false.*"located":null/, 'not verified: no fix on the map')
  t.match(frames.join(''), /receipt NOT verified: this keys folder did not provision phone-b/)
})

t.test('F2: a command queued and cancelled from a terminal for a phone that is away reaches an open page', async (t) => {
  const s = await startWeb(t)
  const live = await events(t, s)
  await s.agent.stop()
  while (s.cloud.broker.isConnected('phone-a')) await once(s.cloud.broker.store, 'presence')
  const ring = await consoleCli(s, 'ring', 'phone-a', '--wait', '10ms', '--expires', '1h')
  const id = (/command ([0-9a-f-]{36}) is queued/.exec(ring.out) as RegExpExecArray)[1] as string
  const newest = (state: string) => (d: Json) => Boolean(d.outcomes.some((o: Json) => o.device === 'phone-a' && o.command?.state === state))
  t.match(await live.next('outcomes', newest('queued')), { outcomes: [{ device: 'phone-a', command: { id, type: 'ring' } }] })
  const cancelled = await run(['console', '--api', s.cloud.apiUrl, '--data', s.cloud.dataDir, 'cancel', id], s.real)
  t.match(cancelled, { out: /^Cancelled ring /, err: '' })
  t.match(await live.next('outcomes', newest('cancelled')), { outcomes: [{ command: { id, reason: 'cancelled by the owner' } }] })
  t.notOk(s.cloud.broker.isConnected('phone-a'), 'the phone stayed away')
})

t.test(
  'F2: a command for a phone that is away stays queued, is cancelled, expires (the broker down too); a console without the key cannot sign',
  async (t) => {
    const s = await startWeb(t)
    const live = await events(t, s)
    await s.agent.stop()
    const queued = await s.call('POST', '/app/api/devices/phone-a/commands', {
      body: JSON.stringify({ type: 'ring', args: { seconds: 3 } }),
    })
    t.equal(queued.status, 201)
    t.match(queued.body.command.text, /^phone-a is offline: ring is queued and runs when it comes back \(expires in 10m 0s\)$/)
    t.match((await s.call('GET', '/app/api/devices/phone-a/commands')).body.commands[0].text, /^phone-a is offline: ring is queued/)
    // Queued for a phone that is away, it goes out on no device topic: the pages hear of it from the broker's word that it changed.
    const newest = (state: string) => (d: Json) => d.outcomes[0]?.command?.state === state
    t.match(await live.next('outcomes', newest('queued')), {
      outcomes: [{ device: 'phone-a', command: { type: 'ring', verified: false } }],
    })
    const cancel = await s.call('POST', `/app/api/commands/${queued.body.command.id}/cancel`, { body: '{}' })
    t.match(cancel.body, { command: { state: 'cancelled' } })
    t.match(await live.next('outcomes', newest('cancelled')), { outcomes: [{ command: { reason: 'cancelled by the owner' } }] })
    t.equal((await s.call('POST', `/app/api/commands/${queued.body.command.id}/cancel`, { body: '{}' })).status, 409)
    // A queued command expires on the cloud clock: a move past its deadline is heard as its outcome too.
    await s.call('POST', '/app/api/devices/phone-a/commands', { body: JSON.stringify({ type: 'ring', args: { seconds: 3 } }) })
    await live.next('outcomes', newest('queued'))
    t.equal((await s.call('POST', '/app/api/clock/advance', { body: JSON.stringify({ by: '1h' }) })).status, 200)
    t.match(await live.next('outcomes', newest('expired')), {
      outcomes: [{ device: 'phone-a', command: { type: 'ring', reason: 'it expired before the device received it' } }],
    })
    // One that expires while the broker is down: the broker expires it as it starts, before the feed is back to hear it; the
    // feed recalls the phones' commands once it is.
    const lost = await s.call('POST', '/app/api/devices/phone-a/commands', { body: JSON.stringify({ type: 'ring', args: { seconds: 3 } }) })
    await live.next('outcomes', newest('queued'))
    await s.cloud.broker.stop()
    s.clock.advance(3_600_000)
    await s.cloud.restart()
    t.match(await live.next('outcomes', newest('expired')), { outcomes: [{ device: 'phone-a', command: { id: lost.body.command.id } }] })

    const stranger = new WebConsole({
      apiUrl: s.cloud.apiUrl,
      consoleToken: s.cloud.consoleToken,
      keysDir: tempDir(t),
      log: s.cloud.logs.logger(),
      loginToken: 'letmein',
    })
    await stranger.start()
    t.teardown(() => stranger.stop())
    t.equal(stranger.loginUrl, `${stranger.url}login?token=letmein`)
    const login = await fetch(stranger.loginUrl as string, { redirect: 'manual' })
    t.equal(login.status, 303)
    t.equal(login.headers.get('location'), '/')
    t.match(login.headers.get('set-cookie'), /^fakephone_session=[\w-]+; HttpOnly; SameSite=Strict; Path=\/$/)
    const jar = (login.headers.get('set-cookie') as string).split(';')[0] as string
    const res = await fetch(new URL('/app/api/devices/phone-a/commands', stranger.url), {
      method: 'POST',
      headers: { cookie: jar, 'x-fakephone-page': '1' },
      body: JSON.stringify({ type: 'locate', args: {} }),
    })
    t.equal(res.status, 409)
    t.match(await res.json(), { code: 'NO_OWNER_KEY', error: /^no owner key for account "alice" in / })
  },
)

t.test(
  'F2 lost mode as device state; time and cloud data: clock and advance, account, items, bin, backups, drive, log, notifications',
  async (t) => {
    const s = await startWeb(t)
    const live = await events(t, s)
    // F2: lost mode is the device's state once the phone's receipt says it switched; every open page hears of it.
    t.equal((await s.call('GET', '/app/api/devices/phone-a')).body.device.lostMode, null, 'never switched')
    const lost = { type: 'lost-mode', args: { on: true, message: 'Lost!', phone: '555' } }
    t.equal((await s.call('POST', '/app/api/devices/phone-a/commands', { body: JSON.stringify(lost) })).status, 201)
    const on = await live.next('devices', (d) => d.devices[0]?.lostMode?.on === true)
    t.match(on.devices[0], { id: 'phone-a', lostMode: { on: true, message: 'Lost!', phone: '555', at: Number } })
    t.match((await s.call('GET', '/app/api/devices')).body.devices[0].lostMode, { on: true, message: 'Lost!' })
    const found = { type: 'lost-mode', args: { on: false } }
    t.equal((await s.call('POST', '/app/api/devices/phone-a/commands', { body: JSON.stringify(found) })).status, 201)
    const off = await live.next('devices', (d) => d.devices[0]?.lostMode?.on === false)
    t.match(off.devices[0].lostMode, { on: false, message: null, phone: null })
    t.match((await s.call('GET', '/app/api/clock')).body, { simulated: true, aheadMs: 0 })
    const moved = await s.call('POST', '/app/api/clock/advance', { body: JSON.stringify({ by: '73h' }) })
    t.match(moved.body, { simulated: true, aheadMs: 73 * 3_600_000, fired: Number })
    await live.next('clock')
    t.match((await s.call('POST', '/app/api/clock/advance', { body: '{"by":"soon"}' })).body, { code: 'BAD_REQUEST' })
    t.match((await s.call('GET', '/app/api/accounts')).body, { accounts: [{ id: 'alice', tier: 'free' }] })
    t.match((await s.call('GET', '/app/api/service')).body, { phase: 'in-service', plan: null, next: null }, 'M1: the retirement')
    t.match((await s.call('GET', '/app/api/accounts/alice/log?limit=5')).body, { account: 'alice', log: Array })
    t.match((await s.call('GET', '/app/api/accounts/alice/items')).body, { account: 'alice', items: [] })
    t.match((await s.call('GET', '/app/api/accounts/alice/bin')).body, { windowDays: 30, entries: [] })
    t.match((await s.call('DELETE', '/app/api/accounts/alice/bin/photos/x.jpg')).body, { code: 'NOT_FOUND' })
    t.match((await s.call('POST', '/app/api/accounts/alice/bin/photos/x.jpg/restore')).body, { code: 'NOT_FOUND' })
    t.match((await s.call('GET', '/app/api/accounts/alice/backups')).body, { retention: { state: 'active' }, backups: [] })

    const up = await s.call('POST', '/app/api/accounts/alice/drive/files?name=hello.txt&folder=%2F', {
      body: new TextEncoder().encode('hello') as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'application/octet-stream' },
    })
    t.match(up, { status: 201, body: { file: { name: 'hello.txt', size: 5, uploadedBy: 'console' } } })
    const files = (await s.call('GET', '/app/api/accounts/alice/drive/files')).body.files
    t.equal(files.length, 1)
    const content = await s.call('GET', `/app/api/accounts/alice/drive/files/${files[0].id}/content`)
    t.equal(content.text, 'hello')
    t.equal(content.headers.get('content-disposition'), "attachment; filename*=UTF-8''hello.txt")
    const share = await s.call('POST', `/app/api/accounts/alice/drive/files/${files[0].id}/shares`, { body: '{}' })
    t.match(share.body, { url: /\/share\// })
    t.equal(await (await fetch(share.body.url)).text(), 'hello', 'the share link works for anyone')

    const sent = await s.call('POST', '/app/api/devices/phone-a/notifications', { body: JSON.stringify({ title: 'Hi' }) })
    t.match(sent, { status: 201, body: { notification: { title: 'Hi' } } })
    t.match((await s.call('GET', '/app/api/devices/phone-a/notifications')).body, { notifications: [{ title: 'Hi' }] })
    t.match((await s.call('GET', '/app/api/accounts/alice/drive/tokens')).body, {
      error: 'GET /app/api/accounts/alice/drive/tokens: the web console has no such call',
      code: 'NOT_FOUND',
    })
    t.equal((await s.call('PUT', '/app/api/accounts/alice/membership', { body: '{"tier":"premium"}' })).status, 404, 'not a page call')
  },
)

t.test('the broker away: calls say so (502), the feed logs what it could not read, and start refuses clearly', async (t) => {
  const s = await startWeb(t)
  const live = await events(t, s)
  await s.agent.stop()
  await s.cloud.broker.stop()
  // Every open page hears at once that what it shows may be stale, and so does a page that opens meanwhile.
  const closed = {
    connected: false,
    state: 'broker unreachable',
    // The broker closes its connections as it stops (a connection cut short says so too).
    text: /^The (broker at [\d.:]+ closed the connection|connection to the broker at [\d.:]+ was cut): was it stopped or restarted\?$/,
    detail: String,
    lastContactAt: Number,
  }
  t.match(await live.next('broker'), closed)
  // Said again once the feed's attempts to reconnect are refused: the broker is not there.
  const refused = await live.next('broker')
  t.match(refused, { connected: false, text: /^The broker is not answering at 127\.0\.0\.1:\d+/, detail: /ECONNREFUSED/ })
  t.match(await (await events(t, s)).next('broker'), { connected: false, text: refused.text }, 'said to a page as soon as it opens')
  const away = await s.call('GET', '/app/api/devices')
  t.match(away, { status: 502, body: { code: 'BAD_GATEWAY', error: /^The broker is not answering at /, detail: /ECONNREFUSED/ } })
  t.match((await s.call('GET', '/app/api/devices/phone-a/commands')).body, { code: 'BAD_GATEWAY' })
  const lost = await s.cloud.logs.waitFor((l) => l.msg === 'live feed: MQTT error')
  t.match(lost, { level: 40, module: 'web', err: /ECONNREFUSED/ }, 'the feed says it lost the broker, and keeps trying')
  // Each attempt is refused again; the pages heard it once (the next broker event they get is the broker back), and the
  // log warned of it once: the retries, one a second, are at debug, not a warning a second on the console's terminal.
  const refusedLine = (l: { msg?: unknown; err?: unknown }): boolean =>
    String(l.msg).startsWith('live feed: MQTT error') && /ECONNREFUSED/.test(String(l.err))
  let refusals = 0
  await s.cloud.logs.waitFor((l) => refusedLine(l) && ++refusals === 3)
  t.same(
    s.cloud.logs.lines
      .filter(refusedLine)
      .slice(0, 3)
      .map((l) => [l.level, l.msg]),
    [
      [40, 'live feed: MQTT error'],
      [20, 'live feed: MQTT error again'],
      [20, 'live feed: MQTT error again'],
    ],
    'one warning for the reason, the retries after it at debug',
  )
  await s.cloud.restart()
  t.same(await live.next('broker'), { connected: true }, 'and when it is back: the pages reread what they show')

  const logs = new LogCapture()
  const feed = new LiveFeed(new ConsoleClient(`http://127.0.0.1:${await closedPort()}`, 'x'), {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: new OwnerKeys(tempDir(t)),
    log: logs.logger(),
  })
  feed.onMessage('fp/v1/phone-a/heartbeat')
  feed.onMessage('fp/v1/phone-a/logs')
  feed.onMessage('not/a/topic')
  await feed.flush()
  t.match(logs.lines, [{ msg: 'live feed: could not read the devices', err: /cannot reach the broker/ }])
  await feed.stop()
})

t.test('start: a wrong console token and a port in use are refused with the reason', async (t) => {
  const s = await startWeb(t)
  const wrong = new WebConsole({ apiUrl: s.cloud.apiUrl, consoleToken: 'wrong', keysDir: tempDir(t), log: s.cloud.logs.logger() })
  await t.rejects(wrong.start(), /^the live feed cannot watch ws:\/\/127\.0\.0\.1:\d+\/mqtt: Connection refused: Bad username or password$/)
  await wrong.stop()
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => taken.close(resolve)))
  const port = (taken.address() as { port: number }).port
  const clash = new WebConsole({
    apiUrl: s.cloud.apiUrl,
    consoleToken: s.cloud.consoleToken,
    keysDir: tempDir(t),
    log: s.cloud.logs.logger(),
    port,
  })
  await t.rejects(clash.start(), new RegExp(`^the web console cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
  await clash.stop()
})
