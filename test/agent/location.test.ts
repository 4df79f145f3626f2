import t from 'tap'
import { DEMO_ROUTE, FixedSource, RouteSource, distanceM, noFixReason, readGpx } from '../../agent/location.js'
import { Battery } from '../../agent/battery.js'
import { join } from 'node:path'

t.test('a route is walked at its speed, interpolated, and loops back to its start', (t) => {
  const a = { lat: 0, lon: 0 }
  const b = { lat: 0, lon: 0.001 }
  const leg = distanceM(a, b)
  t.ok(Math.abs(leg - 111.19) < 0.1, `0.001° of longitude at the equator is ~111 m (${leg})`)
  const route = new RouteSource([a, b], 10, 0)
  t.same(route.fix(0), { lat: 0, lon: 0, accuracy: 8, speed: 10 })
  t.ok(Math.abs((route.fix((leg / 20) * 1000).lon ?? 0) - 0.0005) < 1e-9, 'halfway along the first leg')
  t.ok(Math.abs(route.fix((leg / 10) * 1000).lon - 0.001) < 1e-9, 'at the second waypoint')
  t.ok(Math.abs(route.fix((leg / 10) * 1500).lon - 0.0005) < 1e-9, 'walking back to the start')
  t.ok(Math.abs(route.fix((leg / 10) * 2000).lon) < 1e-9, 'round trip done: back at the start')
  t.ok(Math.abs(route.fix(-(leg / 20) * 1000).lon - 0.0005) < 1e-9, 'before the start time it extrapolates backwards')
  const withRepeat = new RouteSource([a, a, b], 10, 0)
  t.equal(withRepeat.fix(0).lat, 0, 'a repeated waypoint is a zero-length leg')
  t.throws(() => new RouteSource([a], 1, 0), /at least two waypoints/)
  t.throws(() => new RouteSource([a, b], 0, 0), /above 0/)
  t.throws(() => new RouteSource([a, a], 1, 0), /all the same point/)
  t.ok(DEMO_ROUTE.length > 2)
  t.same(new FixedSource({ lat: 1, lon: 2 }).fix(), { lat: 1, lon: 2, accuracy: 10, speed: 0 })
  t.end()
})

t.test('GPX tracks and routes are read; a broken file says what is wrong', (t) => {
  const dir = t.testdir({
    'track.gpx':
      `<?xml version="1.0"?><gpx><trk><trkseg><trkpt lat="55.1" lon="-3.1"><time>x</time></trkpt><trkpt lon='-3.2' ` +
      `lat='55.2'/></trkseg></trk></gpx>`,
    'route.gpx': `<gpx><rte><rtept lat="1" lon="2"/><rtept lat="3" lon="4"/></rte></gpx>`,
    'bad.gpx': `<gpx><trk><trkpt lat="abc" lon="1"/></trk></gpx>`,
    'short.gpx': `<gpx><trk><trkpt lat="1" lon="1"/></trk></gpx>`,
  })
  t.same(readGpx(join(dir, 'track.gpx')), [
    { lat: 55.1, lon: -3.1 },
    { lat: 55.2, lon: -3.2 },
  ])
  t.same(readGpx(join(dir, 'route.gpx')), [
    { lat: 1, lon: 2 },
    { lat: 3, lon: 4 },
  ])
  t.throws(() => readGpx(join(dir, 'bad.gpx')), /no valid lat\/lon/)
  t.throws(() => readGpx(join(dir, 'short.gpx')), /at least two/)
  t.end()
})

t.test('the battery drains, plugs in at 15 %, charges to full and unplugs', (t) => {
  const h = 3_600_000
  const battery = new Battery({ level: 19, at: 0 })
  t.same(battery.read(0), { level: 19, charging: false })
  t.same(battery.read(h / 2), { level: 17, charging: false }, '4 %/h drain')
  t.same(battery.read(h + h / 4), { level: 25, charging: true }, 'plugged in at 15 % after 30 min more, then 15 min at 40 %/h')
  t.same(
    battery.read(10 * h),
    { level: 73, charging: false },
    'full after 1.875 h more, then 6.875 h of drain (72.5 %, shown as a whole percent)',
  )
  const low = new Battery({ level: 5, at: 0 })
  t.same(low.read(h / 4), { level: 15, charging: true }, 'a battery found below 15 % starts charging')
  t.end()
})

t.test('F2 a locate without a fix says why: for gpsd, not connected, no fix yet, fix lost or too old', (t) => {
  const gpsd = { kind: 'gpsd', host: '127.0.0.1', port: 2947, retryInMs: 0, attempt: 0, lost: false, fix: null, maxAgeMs: 10_000 } as const
  t.equal(noFixReason(undefined), 'no location fix', 'a source that cannot say more')
  t.equal(noFixReason({ kind: 'fixed', lat: 0, lon: 0 }), 'no location fix')
  t.equal(noFixReason({ ...gpsd, state: 'waiting' }), 'no location fix: gpsd 127.0.0.1:2947 is not connected (is gpsd running?)')
  t.equal(noFixReason({ ...gpsd, state: 'connecting' }), 'no location fix: gpsd 127.0.0.1:2947 is not connected (is gpsd running?)')
  t.equal(noFixReason({ ...gpsd, state: 'watching' }), 'no location fix: gpsd 127.0.0.1:2947 has no fix yet')
  t.equal(noFixReason({ ...gpsd, state: 'watching', lost: true }), 'no location fix: gpsd 127.0.0.1:2947 says the receiver lost its fix')
  t.equal(
    noFixReason({ ...gpsd, state: 'watching', fix: { ageMs: 42_000, accuracy: 6 } }),
    'no location fix: the last from gpsd 127.0.0.1:2947 is 42s old, older than 10s',
  )
  t.end()
})
