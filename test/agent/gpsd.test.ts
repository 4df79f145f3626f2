/**
 * Location from gpsd. Protocol handling against an in-process server that
 * speaks gpsd's JSON (always runs), then against a real gpsd fed by gpsfake
 * from an NMEA log (skipped, saying why, where gpsfake is not installed).
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { GpsdSource, MAX_LINE_BYTES, UNKNOWN_ACCURACY_M, WATCH_COMMAND, type GpsdOptions } from '../../agent/gpsd.js'
import { ManualClock, SystemClock } from '../../common/clock.js'
import { fakeGpsd, freePort, ROYAL_MILE, ROYAL_MILE_NMEA, startGpsfake } from '../fixtures/gpsd.js'
import { findProgram } from '../fixtures/programs.js'
import { LogCapture } from '../fixtures/logs.js'
import { onEnd, tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

function source(t: Test, port: number, extra: Partial<GpsdOptions> = {}): { gpsd: GpsdSource; clock: ManualClock; logs: LogCapture } {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const gpsd = new GpsdSource({
    host: '127.0.0.1',
    port,
    clock,
    log: logs.logger(),
    maxAgeMs: 5000,
    random: () => 1,
    backoff: { baseMs: 100, capMs: 400 },
    ...extra,
  })
  onEnd(t, () => gpsd.stop())
  return { gpsd, clock, logs }
}

const tpv = (extra: object = {}): object => ({
  class: 'TPV',
  device: '/dev/ttyAMA0',
  mode: 3,
  time: '2026-01-01T12:00:00.000Z',
  lat: 55.9486,
  lon: -3.1999,
  eph: 12.5,
  speed: 1.389,
  ...extra,
})

t.test('gpsd: asks to watch, keeps the last TPV position, and has no fix when gpsd says so or the fix is too old', async (t) => {
  const server = await fakeGpsd(t)
  const { gpsd, clock, logs } = source(t, server.port)
  gpsd.start()
  const client = await server.nextClient()
  t.equal(await client.line(), WATCH_COMMAND.trim(), 'the first thing sent is ?WATCH with JSON on')
  t.equal(gpsd.state, 'watching')
  t.equal(gpsd.fix(clock.now()), null, 'no fix before any report')

  client.send({ class: 'VERSION', release: '3.22', proto_major: 3, proto_minor: 14 })
  client.send({ class: 'TPV', mode: 3, eph: 17.1 }) // a fix settling: a mode but no position yet
  client.send(tpv())
  t.same((await once(gpsd, 'fix'))[0], { lat: 55.9486, lon: -3.1999, accuracy: 12.5, speed: 1.389 })
  t.ok(logs.has('gpsd has a fix'), 'the first fix is logged')
  t.notMatch(JSON.stringify(logs.lines), /55\.94|-3\.19/, 'F1: without the position: no log line says where the phone is')
  clock.advance(5000)
  t.same(gpsd.fix(clock.now()), { lat: 55.9486, lon: -3.1999, accuracy: 12.5, speed: 1.389 }, 'still a fix at the maximum age')
  clock.advance(1)
  t.equal(gpsd.fix(clock.now()), null, 'older than the maximum age: no fix')

  client.send(tpv({ lat: 55.95, eph: undefined, epx: 4, epy: 9, speed: undefined }))
  t.same(
    (await once(gpsd, 'fix'))[0],
    { lat: 55.95, lon: -3.1999, accuracy: 9, speed: 0 },
    'no eph: the larger of epx and epy; no speed: standing',
  )
  client.send(tpv({ eph: undefined }))
  t.equal(((await once(gpsd, 'fix'))[0] as { accuracy: number }).accuracy, UNKNOWN_ACCURACY_M, 'no error estimate at all: a cautious 100 m')
  client.send(tpv({ eph: 250_000, speed: 5000 }))
  t.match((await once(gpsd, 'fix'))[0], { accuracy: 100_000, speed: 1000 }, 'wild estimates are held to what a heartbeat may carry')

  client.send(tpv({ mode: 1, lat: undefined, lon: undefined }))
  await once(gpsd, 'lost')
  t.equal(gpsd.fix(clock.now()), null, 'mode 1: the receiver has no fix')
  t.ok(logs.has('gpsd lost the fix'))
  client.send(tpv({ mode: 0 }))
  await once(gpsd, 'lost')
  t.equal(logs.lines.filter((l) => l.msg === 'gpsd lost the fix').length, 1, 'losing a fix already lost is not logged again')
  client.send(tpv({ mode: 2, lat: 1, lon: 2 }))
  t.match((await once(gpsd, 'fix'))[0], { lat: 1, lon: 2 }, 'a 2D fix is a fix')
})

t.test('gpsd: malformed lines are logged and skipped, and the next good report still counts', async (t) => {
  const server = await fakeGpsd(t)
  const { gpsd, clock, logs } = source(t, server.port)
  gpsd.start()
  const client = await server.nextClient()
  await client.line()
  const reasons: string[] = []
  gpsd.on('skipped', (reason) => reasons.push(reason))
  client.send('this is not json')
  client.send('[1,2,3]')
  client.send('null')
  client.send({ class: 'TPV', mode: 'three' })
  client.send(tpv({ lat: 95 }))
  client.send(tpv({ speed: -1 }))
  await within(5000, 'six skipped lines', new Promise<void>((resolve) => gpsd.on('skipped', () => reasons.length === 6 && resolve())))
  client.socket.write('x'.repeat(MAX_LINE_BYTES + 10)) // no end of line yet
  await once(gpsd, 'skipped')
  client.send('xxx, the end of that line')
  client.send('')
  client.send(tpv({ lat: 10 }))
  await once(gpsd, 'fix')
  t.same(gpsd.fix(clock.now()), { lat: 10, lon: -3.1999, accuracy: 12.5, speed: 1.389 })
  t.match(reasons, [
    'not JSON',
    'no report class',
    'no report class',
    /^bad TPV report: .*mode/,
    /^bad TPV report: .*lat/,
    /^bad TPV report: .*speed/,
    `a line longer than ${MAX_LINE_BYTES} bytes`,
  ])
  t.equal(reasons.length, 7, 'the rest of the long line is dropped without a second complaint')
  t.equal(logs.lines.filter((l) => l.msg === 'gpsd line skipped').length, reasons.length, 'each skipped line is logged')
  t.ok(
    logs.lines.every((l) => typeof l.line !== 'string' || l.line.length <= 200),
    'logged lines are cut short',
  )
  t.equal(gpsd.state, 'watching', 'the connection stays up')
})

t.test('gpsd: reconnects with capped backoff on the injected clock, keeping the last fix while it is fresh', async (t) => {
  const port = await freePort()
  const { gpsd, clock, logs } = source(t, port)
  const delays: number[] = []
  gpsd.on('state', (s) => {
    if (s === 'waiting') delays.push(gpsd.retryDelayMs)
  })
  gpsd.start()
  for (let i = 0; i < 4; i++) {
    while (gpsd.state !== 'waiting') await once(gpsd, 'state')
    clock.advance(gpsd.retryDelayMs)
  }
  t.same(delays, [100, 200, 400, 400], 'nobody listening: 100 ms doubling to the 400 ms cap')
  t.ok(logs.has('gpsd connection error'), 'the refusal is logged')

  const server = await fakeGpsd(t, port)
  while (gpsd.state !== 'waiting') await once(gpsd, 'state')
  clock.advance(gpsd.retryDelayMs)
  const client = await server.nextClient()
  t.equal(await client.line(), WATCH_COMMAND.trim(), 'gpsd is back: watching again')
  client.send(tpv())
  await once(gpsd, 'fix')
  client.socket.destroy()
  while (gpsd.state !== 'waiting') await once(gpsd, 'state')
  t.equal(gpsd.retryDelayMs, 100, 'gpsd had answered, so the backoff starts again from the first delay')
  t.ok(gpsd.fix(clock.now()), 'the last fix outlives the connection while it is fresh')
  clock.advance(100)
  await server.nextClient()
  gpsd.stop()
  t.equal(gpsd.state, 'stopped')
  t.equal(clock.waiting, 0, 'a stopped source schedules nothing')
})

const gpsfake = findProgram('gpsfake')
const noGpsfake =
  gpsfake && findProgram('gpsd')
    ? false
    : 'gpsfake or gpsd is not installed (Debian: apt-get install gpsd gpsd-clients python3-gps; .ci/run does this as root)'

t.test('gpsd for real: positions from an NMEA log replayed by gpsfake through gpsd', { skip: noGpsfake }, async (t) => {
  const port = await freePort()
  const fake = startGpsfake(t, gpsfake as string, port, ROYAL_MILE_NMEA, tempDir(t))
  const logs = new LogCapture()
  // Real time here: gpsd may take a moment to listen, and the source retries on its own (50 ms doubling to 0.5 s).
  const gpsd = new GpsdSource({
    host: '127.0.0.1',
    port,
    clock: new SystemClock(),
    log: logs.logger(),
    maxAgeMs: 5000,
    backoff: { baseMs: 50, capMs: 500 },
  })
  onEnd(t, () => gpsd.stop())
  const fixes: { lat: number; lon: number; accuracy: number; speed: number }[] = []
  const enough = new Promise<void>((resolve) =>
    gpsd.on('fix', (fix) => {
      fixes.push(fix)
      if (fixes.length === 5) resolve()
    }),
  )
  gpsd.start()
  await within(
    20_000,
    'five fixes from gpsfake',
    enough,
    () => `(gpsfake said: ${fake.stderr()}; source log: ${JSON.stringify(logs.lines.slice(-3))})`,
  )
  for (const fix of fixes) {
    const nearest = Math.min(...ROYAL_MILE.map((p) => Math.hypot(p.lat - fix.lat, p.lon - fix.lon)))
    t.ok(nearest < 1e-6, `${fix.lat},${fix.lon} is a position of the log`)
    t.ok(fix.accuracy > 0 && fix.accuracy <= 100, `accuracy ${fix.accuracy} m`)
  }
  t.ok(
    fixes.some((fix) => fix.accuracy < 100),
    "accuracy comes from gpsd's error estimate once it has one",
  )
  t.ok(
    fixes.some((fix) => Math.abs(fix.speed - 1.389) < 0.01),
    'speed: the log says 2.7 knots, 1.389 m/s',
  )
  t.ok(gpsd.fix(Date.now()), 'the source has a fix')
})
