/** One time for the whole system: the cloud's lead over real time, kept in a data directory. */
import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import { CLOCK_FILE, PhoneClock, persistedSimulatedClock, readAhead, recordedClock, writeAhead } from '../../common/cloud-time.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

t.test('a data directory without a clock file is on real time; one with a broken file is an error naming it', (t) => {
  const dir = tempDir(t)
  t.equal(readAhead(dir), 0)
  t.equal(readAhead(join(dir, 'not-yet')), 0)
  writeFileSync(join(dir, CLOCK_FILE), '{"aheadMs":-3}')
  t.throws(() => readAhead(dir), /clock\.json is not a clock file.*aheadMs/)
  const other = tempDir(t)
  mkdirSync(join(other, CLOCK_FILE))
  t.throws(() => readAhead(other), { code: 'EISDIR' }, 'any other read failure is said as it is')
  t.end()
})

t.test('the simulated clock of a restarted cloud carries on from the last jump: a clock never goes backwards', (t) => {
  const dir = tempDir(t)
  const real = new ManualClock(1_000_000)
  const first = persistedSimulatedClock(join(dir, 'data'), real)
  t.equal(first.now(), 1_000_000)
  first.advance(73 * 3_600_000)
  t.same(JSON.parse(readFileSync(join(dir, 'data', CLOCK_FILE), 'utf8')), { aheadMs: 73 * 3_600_000 }, 'the jump is on disk')
  real.advance(60_000)
  const second = persistedSimulatedClock(join(dir, 'data'), real)
  t.equal(second.now(), 1_060_000 + 73 * 3_600_000, 'restarted: still 73 h ahead of real time')
  t.equal(recordedClock(join(dir, 'data'), real).now(), second.now(), 'a command opening the data directory reads the same time')
  t.end()
})

t.test('a phone records the cloud time it learnt, and only when it moved forward', (t) => {
  const dir = tempDir(t)
  const real = new ManualClock(5_000)
  writeAhead(dir, 1_000)
  const phone = new PhoneClock(dir, real)
  t.equal(phone.now(), 6_000, 'starts from what it learnt before')
  t.equal(phone.follow(5_500), false)
  writeFileSync(join(dir, CLOCK_FILE), 'untouched')
  t.equal(phone.follow(5_500), false, 'nothing written when nothing moved')
  t.equal(readFileSync(join(dir, CLOCK_FILE), 'utf8'), 'untouched')
  t.equal(phone.follow(9_000), true)
  t.equal(readAhead(dir), 4_000)
  t.end()
})

t.test("a phone records the lead its wall clock's jump left, and logs a failure to instead of failing the read", (t) => {
  const dir = tempDir(t)
  const real = new ManualClock(5_000)
  writeAhead(dir, 2 * 3_600_000)
  const logs = new LogCapture()
  const phone = new PhoneClock(dir, real, logs.logger())
  real.jump(3_600_000)
  t.equal(phone.now(), 5_000 + 2 * 3_600_000, 'the time goes on from where it was')
  t.equal(readAhead(dir), 3_600_000, 'what is left of the lead is on disk')
  t.match(logs.lines, [{ jumpMs: 3_600_000, aheadMs: 3_600_000 }])
  mkdirSync(join(dir, `${CLOCK_FILE}.tmp`))
  real.jump(1_800_000)
  t.equal(phone.now(), 5_000 + 2 * 3_600_000, 'a lead that cannot be recorded is still taken off')
  t.match(logs.lines[2], { msg: 'could not record the cloud time', err: { code: 'EISDIR' } })
  const quiet = new PhoneClock(tempDir(t), real)
  quiet.follow(real.now() + 3_600_000)
  real.jump(3_600_000)
  t.equal(quiet.ahead, 0, 'a phone clock without a log takes the jump off as well')
  t.end()
})
