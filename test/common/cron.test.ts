/** Cron schedules on the one clock (B1's backup schedule). */
import cron, { type ScheduledTask } from 'node-cron'
import t from 'tap'
import { ManualClock } from '../../common/clock.js'
import { CronError, CronSchedule, checkCron } from '../../common/cron.js'

const HOUR = 3_600_000
const MINUTE = 60_000

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
  t.same(
    fired,
    ['2026-01-01T03:00:00.000Z', '2026-01-02T03:00:00.000Z', '2026-01-03T03:00:00.000Z'],
    'a jump of two days runs both, in order',
  )
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
  t.throws(() => leap.nextAfter(Date.UTC(2027, 1, 27)), CronError, 'found, but a day beyond the year a schedule may wait')
  t.equal(leap.nextAfter(Date.UTC(2027, 1, 28, 0, 30)), Date.UTC(2028, 1, 29), 'just within the year')
  t.end()
})

/** The minutes (0-59) a cron minute field names: `*`, `*\/n`, `a`, `a-b`, `a-b/n` and lists of them. */
function minutesOf(field: string): number[] {
  return field.split(',').flatMap((part) => {
    const [range, step] = part.split('/') as [string, string | undefined]
    const [lo, hi] = range === '*' ? [0, 59] : range.split('-').map(Number)
    const last = hi ?? (step === undefined ? lo : 59)
    return Array.from({ length: (last as number) - (lo as number) + 1 }, (_, i) => (lo as number) + i).filter(
      (m) => (m - (lo as number)) % Number(step ?? 1) === 0,
    )
  })
}

/**
 * The old lookup, kept here only as the reference: every minute ahead tested with node-cron's matcher -- every minute
 * that can match, that is. Every UTC offset of these zones is a whole number of quarter hours (Kolkata +5:30, Lord Howe
 * +10:30, Chatham +12:45), so a wall-clock minute the expression names lies on an instant whose minute is the same
 * modulo 15; the scan tests those instants only (a fifteenth of them for `30 1 * * *`), with the same matcher.
 */
function scanNextAfter(task: ScheduledTask, expression: string, from: number, horizonMinutes: number): number | null {
  const phases = new Set(minutesOf(expression.split(' ')[0] as string).map((m) => m % 15))
  for (let at = Math.floor(from / MINUTE) * MINUTE + MINUTE, i = 0; i < horizonMinutes; at += MINUTE, i++) {
    if (phases.has((at / MINUTE) % 15) && task.match(new Date(at))) return at
  }
  return null
}

const scanTask = (expression: string, timezone: string): ScheduledTask => cron.createTask(expression, () => {}, { timezone })

t.test('the reference scan skips only minutes that cannot match', (t) => {
  t.same(minutesOf('*').length, 60)
  t.same(minutesOf('30'), [30])
  t.same(minutesOf('*/20'), [0, 20, 40])
  t.same(minutesOf('0,30'), [0, 30])
  t.same(minutesOf('10-14/2,45'), [10, 12, 14, 45])
  t.same(minutesOf('50/5'), [50, 55])
  // Against the plain scan of every minute, in the zones with half- and three-quarter-hour offsets.
  for (const [expression, timezone] of [
    ['45 23 * * *', 'Pacific/Chatham'],
    ['*/20 1-3 * * *', 'Asia/Kolkata'],
    ['30 2 * * *', 'Australia/Lord_Howe'],
  ] as const) {
    const task = scanTask(expression, timezone)
    const from = Date.UTC(2026, 3, 5, 12, 7)
    let plain: number | null = null
    for (let at = from - (from % MINUTE) + MINUTE; plain === null; at += MINUTE) if (task.match(new Date(at))) plain = at
    t.equal(scanNextAfter(task, expression, from, 2 * 24 * 60), plain, `${expression} in ${timezone}`)
  }
  t.end()
})

/** The instants in 2026 where `timezone`'s UTC offset changes (to the hour), found hour by hour. */
function offsetChanges(timezone: string): number[] {
  const format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' })
  const offset = (at: number): string | undefined => format.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value
  const changes: number[] = []
  let before = offset(Date.UTC(2026, 0, 1))
  for (let at = Date.UTC(2026, 0, 1) + HOUR; at < Date.UTC(2027, 0, 1); at += HOUR) {
    const now = offset(at)
    if (now !== before) changes.push(at)
    before = now
  }
  return changes
}

const EXPRESSIONS = ['* * * * *', '30 1 * * *', '30 2 * * *', '*/20 1-3 * * *', '0,30 * * * *', '15 */6 * * 1-5']
const ZONES = ['UTC', 'Europe/London', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Pacific/Chatham', 'America/Sao_Paulo']

t.test('the field-by-field lookup gives the same minute as testing every minute, across summer-time changes in many zones', (t) => {
  let compared = 0
  const wrong: string[] = []
  for (const timezone of ZONES) {
    const changes = offsetChanges(timezone)
    t.ok(changes.length === 0 || changes.length === 2, `${timezone}: ${changes.length} offset changes in 2026`)
    for (const expression of EXPRESSIONS) {
      const schedule = new CronSchedule(expression, new ManualClock(), () => {}, timezone)
      const task = scanTask(expression, timezone)
      // From three hours before each change (or a plain June day) to two hours after, every 50 minutes and 17 s; each answer chained once.
      for (const change of changes.length > 0 ? changes : [Date.UTC(2026, 5, 10, 3)]) {
        for (let from = change - 3 * HOUR + 17_000; from < change + 2 * HOUR; from += 50 * MINUTE) {
          let at = from
          for (let k = 0; k < 2; k++) {
            const expected = scanNextAfter(task, expression, at, 4 * 24 * 60) as number
            const got = schedule.nextAfter(at)
            compared++
            if (got !== expected)
              wrong.push(
                `${expression} ${timezone} after ${new Date(at).toISOString()}: ${new Date(got).toISOString()}, scan says ` +
                  `${new Date(expected).toISOString()}`,
              )
            at = expected
          }
        }
      }
    }
  }
  t.same(wrong.slice(0, 10), [], `${compared} lookups compared`)
  t.end()
})

t.test('rare expressions agree with the scan too: yearly, leap day, Friday the 13th, last day', (t) => {
  const cases: [string, string, number][] = [
    ['0 0 1 1 *', 'Europe/Berlin', Date.UTC(2026, 11, 30)],
    ['59 23 31 12 *', 'America/New_York', Date.UTC(2026, 11, 30)],
    ['0 0 29 2 *', 'UTC', Date.UTC(2028, 1, 27)],
    ['0 0 13 * 5', 'Asia/Kolkata', Date.UTC(2026, 10, 10)],
    // The week searched from here ends on Friday 13 November at noon, before its 23:00.
    ['0 23 13 * 5', 'UTC', Date.UTC(2026, 10, 6, 12)],
    ['45 23 L * *', 'Pacific/Chatham', Date.UTC(2026, 1, 26)],
    ['0 0 * * 1#2', 'Europe/London', Date.UTC(2026, 2, 7)],
  ]
  for (const [expression, timezone, from] of cases) {
    const schedule = new CronSchedule(expression, new ManualClock(), () => {}, timezone)
    t.equal(
      schedule.nextAfter(from),
      scanNextAfter(scanTask(expression, timezone), expression, from, 8 * 24 * 60),
      `${expression} in ${timezone}`,
    )
  }
  t.end()
})

t.test('a lookup does bounded work: far fewer date conversions than minutes ahead, even a year ahead', (t) => {
  // Every match and every offset look-up formats a date once; the minute scan formatted one per minute (525,600 a year).
  const proto = Intl.DateTimeFormat.prototype
  const original = proto.formatToParts
  let calls = 0
  proto.formatToParts = function (this: Intl.DateTimeFormat, date?: Date | number) {
    calls++
    return original.call(this, date)
  }
  t.teardown(() => {
    proto.formatToParts = original
  })
  const worst: string[] = []
  for (const expression of ['0 0 1 1 *', '59 23 31 12 *', '0 0 29 2 *', '0 0 13 * 5', '* * * * *', '*/15 2-4 * * 1-5']) {
    for (const timezone of ['UTC', 'Europe/London', 'Australia/Lord_Howe']) {
      const schedule = new CronSchedule(expression, new ManualClock(), () => {}, timezone)
      calls = 0
      try {
        schedule.nextAfter(Date.UTC(2026, 0, 2, 0, 1))
      } catch {
        // 29 February 2026 does not exist: the search runs the whole year, which is the worst case.
      }
      if (calls > 600) worst.push(`${expression} ${timezone}: ${calls}`)
    }
  }
  t.same(worst, [], 'at most 600 date conversions per lookup')
  t.end()
})
