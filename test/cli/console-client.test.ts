/**
 * The console's API client (cli/console-client.ts) against a broker that takes the connection and then says nothing:
 * `console` commands, `console migrate` and a fleet run's report fail with a reason instead of waiting for ever; and against
 * an address that is not HTTP (the MQTT port), said to be probably the MQTT port.
 */
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { once } from 'node:events'
import { ConsoleApiError, ConsoleClient } from '../../cli/console-client.js'

t.test('a broker that took the connection and never answers: the call fails after the client’s silence limit, saying so', async (t) => {
  const sockets: Socket[] = []
  // A real TCP server on a port the OS chose that reads each request and answers nothing (a hung process).
  const hung = createServer((socket) => void sockets.push(socket.resume()))
  hung.listen(0, '127.0.0.1')
  await once(hung, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    hung.close()
  })
  const { port } = hung.address() as { port: number }
  const url = `http://127.0.0.1:${port}`
  const client = new ConsoleClient(url, 'token', 100, { unreachable: '; is the broker running?', unauthorized: '' }, 1000)
  const err = await client.devices().then(
    () => undefined,
    (e: unknown) => e,
  )
  t.type(err, ConsoleApiError)
  t.equal((err as ConsoleApiError).status, 0, 'no HTTP status: the broker never answered')
  t.equal(
    (err as ConsoleApiError).message,
    `cannot reach the broker's HTTP API at ${url}: Error: it took the connection but said nothing for 1 s; is the broker running?`,
  )
  t.equal(sockets.length, 1, 'the request did reach the server')
})

t.test(
  'F2 the console at an address that answers in something other than HTTP (an MQTT port): said to be probably the MQTT port',
  async (t) => {
    // An MQTT port that writes first: a CONNACK's four bytes where the HTTP status line should be, then it closes.
    const mqttLike = createServer((socket) => socket.end(Buffer.from([0x20, 0x02, 0x00, 0x00])))
    mqttLike.listen(0, '127.0.0.1')
    await once(mqttLike, 'listening')
    t.teardown(() => mqttLike.close())
    const url = `http://127.0.0.1:${(mqttLike.address() as { port: number }).port}`
    const client = new ConsoleClient(url, 'token', 100, { from: '--api', unreachable: '; is the broker running?' })
    const err = (await client.devices().catch((e: unknown) => e)) as ConsoleApiError
    t.match(err.message, /^cannot reach the broker's HTTP API at http:\/\/127\.0\.0\.1:\d+ \(--api\): Error: Parse Error/)
    t.match(
      err.message,
      /: it took the connection but gave no HTTP answer; if the broker is running, this is probably its MQTT port: give the HTTP port/,
    )
    t.notMatch(err.message, /is the broker running/, 'the broker is running: that hint is not given')
  },
)

t.test('F2 an address that answered in HTTP and then cuts a connection keeps the usual hint: it is no MQTT port', async (t) => {
  let calls = 0
  const cutting = createHttpServer((req, res) => {
    if (++calls > 1) return void req.socket.destroy()
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' })
    res.end(JSON.stringify({ now: 0, devices: [] }))
  })
  cutting.listen(0, '127.0.0.1')
  await once(cutting, 'listening')
  t.teardown(() => cutting.close())
  const url = `http://127.0.0.1:${(cutting.address() as { port: number }).port}`
  const client = new ConsoleClient(url, 'token', 100, { from: '--api', unreachable: '; is the broker running?' })
  t.same(await client.devices(), { now: 0, devices: [] })
  const err = (await client.devices().catch((e: unknown) => e)) as ConsoleApiError
  t.equal(err.message, `cannot reach the broker's HTTP API at ${url} (--api): Error: socket hang up; is the broker running?`)
})

t.test('F1 an answer that is not JSON is the gateway trouble (502) when it came as a success, its own status otherwise', async (t) => {
  const stranger = createHttpServer((req, res) => {
    res.writeHead(req.url === '/api/devices' ? 200 : 404, { 'content-type': 'text/html' })
    res.end('<html>hello</html>')
  })
  stranger.listen(0, '127.0.0.1')
  await once(stranger, 'listening')
  t.teardown(() => stranger.close())
  const url = `http://127.0.0.1:${(stranger.address() as { port: number }).port}`
  const client = new ConsoleClient(url, 'token')
  const ok = (await client.devices().catch((e: unknown) => e)) as ConsoleApiError
  t.same([ok.status, ok.message], [502, `${url} did not answer like a fakephone broker (HTTP 200, text/html: "<html>hello</html>")`])
  const missing = (await client.device('phone-a').catch((e: unknown) => e)) as ConsoleApiError
  t.same(
    [missing.status, missing.message],
    [404, `${url} did not answer like a fakephone broker (HTTP 404, text/html: "<html>hello</html>")`],
  )
})

t.test(
  "M2, D1: a refusal whose body is no broker's (a proxy's error page, JSON without a reason) says what came back on one line",
  async (t) => {
    // A proxy's error page of several lines, longer than what is quoted; JSON of no refusal; nothing at all.
    const page = `<html>\n<head><title>500 Internal Server Error</title></head>\n<body>${'x'.repeat(200)}</body>\n</html>\n`
    const bodies: Record<string, [string | undefined, string]> = {
      '/page': ['text/html', page],
      '/json': ['application/json', '{"message":"busy"}'],
      '/empty': [undefined, ''],
    }
    const proxy = createHttpServer((req, res) => {
      const [type, body] = bodies[(req.url as string).replace(/^\/api/, '')] as [string | undefined, string]
      res.writeHead(500, type === undefined ? {} : { 'content-type': type })
      res.end(body)
    })
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    t.teardown(() => proxy.close())
    const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
    const client = new ConsoleClient(url, 'token')
    const said =
      `${url} did not answer like a fakephone broker (HTTP 500, text/html: "<html>\\x0A<head><title>500 Internal Server ` +
      `Error</title></head>\\x0A<body>${'x'.repeat(13)}" (${Buffer.byteLength(page)} bytes in all))`
    // The bytes of a blob or a drive file (streamed), and a JSON call: the same line.
    for (const call of [() => client.bytes('GET', '/api/page'), () => client.send('GET', '/api/page')])
      t.match(await call().catch((e: unknown) => e), { status: 500, message: said })
    t.match(await client.bytes('GET', '/api/json').catch((e: unknown) => e), {
      status: 500,
      message: `${url} did not answer like a fakephone broker (HTTP 500, application/json: "{\\"message\\":\\"busy\\"}")`,
    })
    t.match(await client.send('GET', '/api/empty').catch((e: unknown) => e), {
      status: 500,
      message: `${url} did not answer like a fakephone broker (HTTP 500, no content type, an empty body)`,
    })
  },
)

t.test("F2 a broker's refusal keeps its code for --json; a code that is not text is no code, its words still said", async (t) => {
  // A real HTTP server on a port the OS chose standing in for a broker, then for one that words its code as a number.
  const bodies = [
    { error: 'Find Device is off', code: 'NOT_ENABLED' },
    { error: 'Find Device is off', code: 7 },
  ]
  const refusing = createHttpServer((_req, res) =>
    res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify(bodies.shift())),
  )
  refusing.listen(0, '127.0.0.1')
  await once(refusing, 'listening')
  t.teardown(() => refusing.close())
  const client = new ConsoleClient(`http://127.0.0.1:${(refusing.address() as { port: number }).port}`, 'token')
  const refused = async () => (await client.devices().catch((e: unknown) => e)) as ConsoleApiError
  const coded = await refused()
  t.same([coded.status, coded.message, coded.refusedAs], [409, 'Find Device is off', 'NOT_ENABLED'])
  const numbered = await refused()
  t.same([numbered.status, numbered.message, numbered.refusedAs], [409, 'Find Device is off', undefined])
})
