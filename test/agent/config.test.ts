/** The agent's settings: one `location` setting for every kind of place, and the defaults. */
import t from 'tap'
import { AgentConfigSchema, channelUrls, parseLocation } from '../../agent/config.js'
import { parseHostPort, parseLatLon } from '../../agent/place-text.js'
import { MQTT_SCHEMES } from '../../common/config.js'

t.test('location settings: route, gpx:FILE, fixed:LAT,LON, gpsd and gpsd:HOST:PORT; anything else says what is allowed', (t) => {
  t.same(parseLocation('route'), { kind: 'route' })
  t.same(parseLocation('gpx:/home/pi/walk.gpx'), { kind: 'gpx', file: '/home/pi/walk.gpx' })
  t.same(parseLocation('fixed:55.9486,-3.1999'), { kind: 'fixed', point: { lat: 55.9486, lon: -3.1999 } })
  t.same(parseLocation('gpsd'), { kind: 'gpsd', host: '127.0.0.1', port: 2947 })
  t.same(parseLocation('gpsd:192.168.1.20:2948'), { kind: 'gpsd', host: '192.168.1.20', port: 2948 })
  t.same(parseLocation('gpsd:[::1]:2947'), { kind: 'gpsd', host: '::1', port: 2947 })
  t.throws(() => parseLocation('fixed:91,0'), /"91,0" is not LAT,LON/)
  t.throws(() => parseLocation('gpsd:localhost'), /"localhost" is not HOST:PORT/)
  for (const bad of ['route:x', 'gpx:', 'fixed', 'moon', ''])
    t.throws(() => parseLocation(bad), /is not a location: use route, gpx:FILE/, bad)
  t.end()
})

t.test('coordinates and addresses are checked, not guessed', (t) => {
  t.same(parseLatLon('-90,180'), { lat: -90, lon: 180 })
  for (const bad of ['1', '1,', ',1', '1,2,3', 'a,b', '90.1,0', '0,-180.5']) t.equal(parseLatLon(bad), null, bad)
  t.same(parseHostPort('gps.local:1'), { host: 'gps.local', port: 1 })
  for (const bad of ['host', 'host:0', 'host:65536', ':2947', 'a:b:c']) t.equal(parseHostPort(bad), null, bad)
  t.end()
})

t.test('only the id is required; the rest has working defaults', (t) => {
  t.same(AgentConfigSchema.parse({ id: 'kitchen-pi' }), {
    id: 'kitchen-pi',
    broker: 'mqtt://127.0.0.1:1883',
    dataDir: './phone',
    secretCredential: 'device-secret',
    location: { kind: 'route' },
    speed: 1.4,
    gpsdMaxAge: 10_000,
    interval: 30_000,
    jitter: 0.1,
    logLevel: 'info',
  })
  const bad = AgentConfigSchema.safeParse({
    id: 'x',
    broker: 'http://x',
    interval: 0,
    secretCredential: '../etc/shadow',
    location: 'fixed:1',
  })
  t.match(
    bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    [
      /^broker: expected a broker URL/,
      /^secretCredential: a credential name/,
      /^location: "1" is not LAT,LON/,
      /^interval: the interval must be at least 1ms/,
    ],
  )
  for (const broker of ['nonsense', 'mqtt://', 'mqtt://127.0.0.1:notaport', 'mqtt://[::1', 'mqtt://:1883']) {
    t.match(
      AgentConfigSchema.safeParse({ id: 'x', broker }).error?.issues[0]?.message,
      /expected a broker URL/,
      `broker ${broker} is refused with a reason, not a crash`,
    )
  }
  t.ok(AgentConfigSchema.safeParse({ id: 'x', broker: 'ws://[::1]:8080/mqtt', push: 'wss://h/push' }).success, 'IPv6 and TLS URLs are fine')
  t.match(AgentConfigSchema.safeParse({ id: 'x', push: 'mqtt://h' }).error?.issues[0]?.message, /expected a push URL/)
  t.end()
})

t.test('F1 a ws:// broker or push URL without its path is refused with the URL to give, not retried for ever', (t) => {
  // `--broker ws://127.0.0.1:8080` (the broker serves MQTT over WebSocket at /mqtt) was taken: the broker turned the
  // upgrade down and the phone logged "mqtt disconnected, retrying", with no reason, for ever.
  const issues = (config: object): string[] | undefined =>
    AgentConfigSchema.safeParse({ id: 'x', ...config }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  t.same(issues({ broker: 'ws://127.0.0.1:8080', push: 'wss://cloud.example/' }), [
    'broker: a ws:// URL needs the path the broker serves it on: ws://127.0.0.1:8080/mqtt',
    'push: a wss:// URL needs the path the broker serves it on: wss://cloud.example/push',
  ])
  t.same(
    issues({ broker: 'nonsense' }),
    ['broker: expected a broker URL: mqtt://HOST:PORT or ws://HOST:PORT/mqtt (mqtt, mqtts, tcp, tls, ssl, ws or wss)'],
    'one reason, naming the schemes',
  )
  for (const broker of ['ws://127.0.0.1:8080/mqtt', 'wss://proxy.example/fakephone/mqtt', 'mqtt://127.0.0.1:1883'])
    t.equal(issues({ broker }), undefined, broker)
  t.end()
})

t.test('push and cloud URLs follow a ws:// broker URL; an mqtt:// broker gives none unless told (9: no fixed port guessed)', (t) => {
  t.same(channelUrls({ broker: 'ws://10.0.0.5:9000/mqtt' }), { pushUrl: 'ws://10.0.0.5:9000/push', cloudUrl: 'http://10.0.0.5:9000' })
  t.same(channelUrls({ broker: 'wss://cloud.example/mqtt' }), { pushUrl: 'wss://cloud.example/push', cloudUrl: 'https://cloud.example' })
  t.same(channelUrls({ broker: 'mqtt://10.0.0.5:1883' }), { pushUrl: undefined, cloudUrl: undefined })
  t.same(channelUrls({ broker: 'mqtt://10.0.0.5:1883', push: 'ws://10.0.0.5:9000/push' }), {
    pushUrl: 'ws://10.0.0.5:9000/push',
    cloudUrl: 'http://10.0.0.5:9000',
  })
  t.same(channelUrls({ broker: 'mqtt://10.0.0.5:1883', cloud: 'http://files.example:81' }), {
    pushUrl: undefined,
    cloudUrl: 'http://files.example:81',
  })
  t.end()
})

t.test("F1 a broker URL takes every scheme of the one list (mqtt.js's transports, as `fleet run --broker`), and no other", (t) => {
  const issues = (broker: string): string[] | undefined =>
    AgentConfigSchema.safeParse({ id: 'x', broker }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  for (const scheme of MQTT_SCHEMES) t.equal(issues(`${scheme}//127.0.0.1:1883/mqtt`), undefined, scheme)
  for (const scheme of ['http:', 'https:', 'mqtt+unix:', 'wx:', 'ftp:'])
    t.same(
      issues(`${scheme}//127.0.0.1:1883/mqtt`),
      ['broker: expected a broker URL: mqtt://HOST:PORT or ws://HOST:PORT/mqtt (mqtt, mqtts, tcp, tls, ssl, ws or wss)'],
      `${scheme} refused, naming the schemes`,
    )
  t.end()
})
