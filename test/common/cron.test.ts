/** Cron schedules on the one clock (B1's backup schedule). */
import t from 'tap'
import { ManualClock } from '../../common/clock.js'
import { CronError, CronSchedule, checkCron } from '../../common/cron.js'

const HOUR = 3_600_000

t.test('a daily 03:00 schedule fires at 03:00 on the clock, not a minute before, and every day after', (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0))
  const fired: string[] = []
  const cron = new CronSchedule('0 3 * * *', clock, (at) => fired.push(new Date(at).toISOString()))
  t.notOk(cron.running)
  cron.start()
  cron.start()
  t.ok(cron.running)
  clock.advance(3 * HOUR - 60_000)
  t.same(fired, [], 'nothing at 02:59')
  clock.advance(60_000)
  t.same(fired, ['2026-01-01T03:00:00.000Z'])
  clock.advance(48 * HOUR)
  t.same(fired, ['2026-01-01T03:00:00.000Z', '2026-01-02T03:00:00.000Z', '2026-01-03T03:00:00.000Z'], 'a jump of two days runs both, in order')
  cron.stop()
  clock.advance(48 * HOUR)
  t.equal(fired.length, 3, 'stopped: no more')
  t.notOk(cron.running)
  t.end()
})

t.test('a schedule reads its time zone', (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 0, 0))
  const cron = new CronSchedule('0 3 * * *', clock, () => {}, 'Europe/London')
  t.equal(new Date(cron.nextAfter(clock.now())).toISOString(), '2026-06-01T02:00:00.000Z', '03:00 in London in summer is 02:00 UTC')
  t.end()
})

t.test('bad expressions are refused with the field that is wrong', (t) => {
  t.throws(() => checkCron('61 * * * *'), { code: 'BAD_CRON', message: /minute/ })
  t.throws(() => checkCron('* * *'), { message: /five fields/ })
  t.throws(() => checkCron('*/10 * * * * *'), { message: /five fields/ }, 'seconds are not offered: rules run on minutes')
  t.doesNotThrow(() => checkCron('*/15 2-4 * * 1-5'))
  t.throws(() => checkCron('0 0 30 2 *'), { message: /impossible/ }, '30 February never comes')
  const leap = new CronSchedule('0 0 29 2 *', new ManualClock(), () => {})
  t.throws(() => leap.nextAfter(Date.UTC(2026, 2, 1)), CronError, 'the next 29 February is two years away: more than a schedule may wait')
  t.end()
})
