import { request, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { FOLLOW_SKEW_MS, FollowingClock, ManualClock, SimulatedClock, SystemClock, formatAge, parseDuration } from '../../common/clock.js'

t.test('ManualClock fires due timers in time order, ties in the order set, and reads each due time', (t) => {
  const clock = new ManualClock(1000)
  const seen: string[] = []
  clock.after(300, () => seen.push(`c@${clock.now()}`))
  clock.after(100, () => seen.push(`a@${clock.now()}`))
  clock.after(100, () => seen.push(`b@${clock.now()}`))
  const cancelled = clock.after(50, () => seen.push('never'))
  cancelled.cancel()
  clock.advance(99)
  t.same(seen, [], 'nothing is due before 100 ms')
  clock.advance(1)
  t.same(seen, ['a@1100', 'b@1100'])
  clock.advance(1000)
  t.same(seen, ['a@1100', 'b@1100', 'c@1300'])
  t.equal(clock.now(), 2100, 'the clock ends at the target time')
  t.equal(clock.waiting, 0)
  t.end()
})

t.test('a timer set by a firing timer fires within the same advance when due', (t) => {
  const clock = new ManualClock(0)
  const fired: number[] = []
  const tick = (): void => {
    fired.push(clock.now())
    clock.after(10, tick)
  }
  clock.after(10, tick)
  clock.advance(35)
  t.same(fired, [10, 20, 30])
  t.equal(clock.waiting, 1, 'the next tick is waiting')
  t.ok(new ManualClock().now() > 0, 'the default start is a real date')
  t.end()
})

t.test('ManualClock reads whole milliseconds, as Date.now() does, whatever fractions a jittered schedule asks for', (t) => {
  const clock = new ManualClock(0)
  const at: number[] = []
  clock.after(27_000.4, () => at.push(clock.now()))
  clock.after(0.6, () => at.push(clock.now()))
  clock.advance(27_000.2)
  t.same(at, [1, 27_000])
  t.equal(clock.now(), 27_000)
  t.end()
})

t.test('SystemClock reads wall time and its timers fire and cancel', async (t) => {
  const clock = new SystemClock()
  t.ok(Math.abs(clock.now() - Date.now()) < 1000)
  // SystemClock timers are unref'd (they must not keep a daemon alive); this handle keeps the test alive.
  const keepAlive = setInterval(() => {}, 1000)
  let cancelledFired = false
  clock.after(5, () => (cancelledFired = true)).cancel()
  const order: number[] = []
  await new Promise<void>((resolve) => {
    clock.after(20, () => {
      order.push(20)
      resolve()
    })
    clock.after(1, () => order.push(1))
  })
  clearInterval(keepAlive)
  t.same(order, [1, 20], 'timers fire in due order')
  t.notOk(cancelledFired, 'a cancelled timer due before the last one never fired')
  const steady = clock.steady()
  t.ok(steady > 0 && clock.steady() >= steady, 'its steady time is the monotonic clock the timers run on')
})

t.test('SystemClock waits out a delay longer than a Node timer holds, in steps, and can be cancelled on any step', async (t) => {
  // Node fires a timer of more than 2^31-1 ms (24.8 days) at once; a 28-day notification must not expire at once.
  const warnings: Error[] = []
  const onWarning = (w: Error): number => warnings.push(w)
  process.on('warning', onWarning)
  const keepAlive = setInterval(() => {}, 1000)
  const month = new SystemClock().after(30 * 86_400_000, () => t.fail('a 30-day timer fired at once'))
  // Steps of 8 ms: a 60 ms timer takes eight of them; one cancelled after its first step never fires.
  const stepped = new SystemClock(8)
  const started = Date.now()
  let cancelledFired = false
  const cancelled = stepped.after(40, () => (cancelledFired = true))
  setTimeout(() => cancelled.cancel(), 12)
  await new Promise<void>((resolve) => stepped.after(60, resolve))
  t.ok(Date.now() - started >= 59, 'the stepped timer waited its whole delay')
  t.notOk(cancelledFired, 'a timer cancelled between its steps never fired')
  month.cancel()
  clearInterval(keepAlive)
  process.off('warning', onWarning)
  t.same(
    warnings.map((w) => w.name),
    [],
    'no TimeoutOverflowWarning',
  )
})

t.test('parseDuration reads the units people write and names what it cannot read', (t) => {
  t.equal(parseDuration('500ms'), 500)
  t.equal(parseDuration('30s'), 30_000)
  t.equal(parseDuration('5m'), 300_000)
  t.equal(parseDuration('73h'), 73 * 3_600_000)
  t.equal(parseDuration('1d12h'), 36 * 3_600_000)
  for (const bad of ['', '5', 'h', '1.5h', '-3s', '3 h']) t.throws(() => parseDuration(bad), /not a duration/, bad)
  t.end()
})

t.test('formatAge says ages the way people read them', (t) => {
  t.equal(formatAge(-1), '0s', 'a clock that learnt the cloud time from a message lags it by the delay: just made')
  t.equal(formatAge(-FOLLOW_SKEW_MS), '0s')
  t.equal(formatAge(-FOLLOW_SKEW_MS - 1), 'in the future', 'beyond a message delay, a stamp ahead is a real clock fault')
  t.equal(formatAge(42_000), '42s')
  t.equal(formatAge(192_000), '3m 12s')
  t.equal(formatAge(5 * 3_600_000 + 60_000), '5h 1m')
  t.equal(formatAge(73 * 3_600_000), '3d 1h')
  t.end()
})

t.test('SimulatedClock runs on real time between jumps, and advance fires what falls due in order, each at its own time', (t) => {
  const real = new ManualClock(0)
  const clock = new SimulatedClock(real)
  const seen: string[] = []
  clock.after(3_600_000, () => seen.push(`1h@${clock.now()}`))
  clock.after(10_000, () => seen.push(`10s@${clock.now()}`))
  clock.after(100, () => seen.push('cancelled')).cancel()
  real.advance(10_000)
  t.same(seen, ['10s@10000'], 'real time passing fires a timer when it is due')
  t.equal(clock.advance(73 * 3_600_000), 1, 'one timer fell due in the jump')
  t.same(seen, ['10s@10000', '1h@3600000'], 'the jumped-over timer ran reading its own due time')
  t.equal(clock.now(), 10_000 + 73 * 3_600_000)
  t.equal(clock.ahead, 73 * 3_600_000, 'the clock now runs 73 h ahead of real time')
  clock.after(5000, () => seen.push(`later@${clock.now()}`))
  real.advance(4999)
  t.equal(seen.length, 2, 'a timer set after the jump waits its own real time')
  real.advance(1)
  t.equal(seen[2], `later@${10_000 + 73 * 3_600_000 + 5000}`)
  t.throws(() => clock.advance(-1), RangeError, 'the clock never goes back')
  t.end()
})

t.test(
  'SimulatedClock: a timer left waiting after a jump is re-armed for the real time left; the follower reads the same time on real timers',
  (t) => {
    const real = new ManualClock(0)
    const clock = new SimulatedClock(real)
    const fired: number[] = []
    clock.after(10 * 3_600_000, () => fired.push(clock.now()))
    clock.advance(9 * 3_600_000)
    t.same(fired, [], 'not due yet after 9 h')
    real.advance(3_600_000 - 1)
    t.same(fired, [], 'one real millisecond short')
    real.advance(1)
    t.same(fired, [10 * 3_600_000], 'due after the last real hour')
    const follower = clock.follower()
    t.equal(follower.now(), clock.now(), 'a phone in the same process reads cloud time')
    let ticks = 0
    follower.after(1000, () => ticks++)
    clock.advance(86_400_000)
    t.equal(ticks, 0, "a jump does not fire the phone's timers (no day of heartbeats at once)")
    real.advance(1000)
    t.equal(ticks, 1, 'they run on real time')
    t.end()
  },
)

t.test(
  'simulated time: advanceInSlices moves a year of hourly rules in order, each slice in its wrapper, and answers a request made ' +
    'during the move before it ends',
  async (t) => {
    const HOUR = 3_600_000
    const server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const { port } = server.address() as AddressInfo
    const clock = new SimulatedClock(new ManualClock(0))
    const seen: number[] = []
    let moveDone = false
    let answered: { at: number; moveDone: boolean } | null = null
    const hourly = (): void => {
      clock.after(HOUR, () => {
        seen.push(clock.now())
        // The first hour asks a server in this process (as a monitor asks /health while the clock moves).
        if (seen.length === 1) {
          request({ host: '127.0.0.1', port }, (res) => {
            res.resume()
            res.on('end', () => (answered = { at: clock.now(), moveDone }))
          }).end()
        }
        hourly()
      })
    }
    hourly()
    let slices = 0
    let inSlice = false
    const wrapped: boolean[] = []
    clock.after(HOUR / 2, () => wrapped.push(inSlice))
    const fired = await clock.advanceInSlices(
      365 * 24 * HOUR,
      (work) => {
        slices++
        inSlice = true
        work()
        inSlice = false
      },
      0,
    )
    moveDone = true
    t.equal(fired, 365 * 24 + 1, 'every hourly firing of the year, and the half-hour one')
    t.ok(
      seen.every((at, i) => at === (i + 1) * HOUR),
      'each hour fired in order, reading its own due time',
    )
    t.same(wrapped, [true], 'timers fire inside the slice wrapper (the broker commits one transaction per slice)')
    t.equal(slices, fired + 1, 'a slice of no time is one timer; the last finds none left')
    t.ok(answered, 'the request made during the move was answered before the move finished')
    const got = answered as unknown as { at: number; moveDone: boolean }
    t.equal(got.moveDone, false)
    t.ok(got.at < 365 * 24 * HOUR, 'answered part-way through the year')
    t.equal(clock.now(), 365 * 24 * HOUR, 'the clock arrives at the target')
    await t.rejects(
      clock.advanceInSlices(-1, (work) => work()),
      RangeError,
      'never backwards',
    )
  },
)

t.test('SimulatedClock on wall-clock time by default', (t) => {
  const clock = new SimulatedClock()
  t.ok(Math.abs(clock.now() - Date.now()) < 1000)
  t.end()
})

t.test('SimulatedClock starts ahead where a restarted cloud left off, and tells listeners of every jump', (t) => {
  const real = new ManualClock(1_000)
  const clock = new SimulatedClock(real, 5_000.4)
  t.equal(clock.now(), 6_000, 'starts 5 s ahead, in whole milliseconds')
  t.throws(() => new SimulatedClock(real, -1), RangeError, 'never behind real time')
  t.throws(() => new SimulatedClock(real, Number.NaN), RangeError)
  const heard: number[] = []
  const stop = clock.onJump((ahead) => heard.push(ahead))
  clock.advance(1_000)
  stop()
  clock.advance(1_000)
  t.same(heard, [6_000], 'the lead after the jump, until unsubscribed')
  t.end()
})

t.test('FollowingClock: real timers, the cloud time it was last told, and never backwards', (t) => {
  const real = new ManualClock(10_000)
  const clock = new FollowingClock(real, -5)
  t.equal(clock.now(), 10_000, 'a negative lead is no lead')
  t.equal(clock.follow(9_000), false, 'a cloud behind real time leaves it alone')
  t.equal(clock.follow(70_000), true)
  t.equal(clock.ahead, 60_000)
  t.equal(clock.now(), 70_000)
  t.equal(clock.follow(20_000), false, 'an older answer cannot move it back')
  t.equal(clock.now(), 70_000)
  let fired = 0
  clock.after(1_000, () => fired++)
  real.advance(999)
  t.equal(fired, 0)
  real.advance(1)
  t.equal(fired, 1, 'its timers run on real time')
  t.equal(clock.now(), 71_000)
  t.end()
})

t.test('ManualClock.jump sets the wall clock forward as NTP or a resume does: no timer fires, each keeps the time it had left', (t) => {
  const clock = new ManualClock(0)
  const fired: number[] = []
  clock.after(30_000, () => fired.push(clock.now()))
  clock.jump(3 * 3_600_000)
  t.equal(clock.now(), 3 * 3_600_000)
  t.equal(clock.steady(), 0, 'the steady clock does not move')
  t.same(fired, [], 'three hours of a 30 s timer: none fired')
  clock.advance(29_999)
  t.same(fired, [], 'it still has its 30 s to run')
  clock.advance(1)
  t.same(fired, [3 * 3_600_000 + 30_000])
  t.equal(clock.steady(), 30_000, 'advance moves both')
  t.end()
})

t.test('FollowingClock: a wall clock set forward takes the jump off the lead, down to none, and says so', (t) => {
  const real = new ManualClock(0)
  const steps: number[] = []
  const clock = new (class extends FollowingClock {
    protected override stepped(jumpMs: number): void {
      steps.push(jumpMs)
    }
  })(real, 10 * 60_000)
  real.jump(FOLLOW_SKEW_MS)
  t.equal(clock.ahead, 10 * 60_000, 'a jump within a message delay leaves the lead alone')
  real.jump(-60_000)
  t.equal(clock.now(), -55_000 + 10 * 60_000, 'a clock set back is left to read as it does')
  real.jump(4 * 60_000)
  t.equal(clock.now(), -55_000 + 10 * 60_000, 'set forward 4 min: the time goes on from where it was')
  t.equal(clock.ahead, 6 * 60_000)
  real.jump(60 * 60_000)
  t.equal(clock.ahead, 0, 'a jump past the lead leaves none, never a negative one')
  t.same(steps, [4 * 60_000, 60 * 60_000])
  real.jump(60 * 60_000)
  t.equal(clock.ahead, 0, 'with no lead, a jump (a resume from suspend against a real-time cloud) changes nothing')
  t.same(steps, [4 * 60_000, 60 * 60_000])
  const plain = new FollowingClock(real, 60 * 60_000)
  real.jump(10 * 60_000)
  t.equal(plain.ahead, 50 * 60_000, 'a plain FollowingClock takes the jump off too')
  const noSteady = new FollowingClock({ now: () => real.now(), after: (ms, fn) => real.after(ms, fn) }, 60 * 60_000)
  real.jump(10 * 60_000)
  t.equal(noSteady.ahead, 60 * 60_000, 'a real clock without steady time says nothing of jumps')
  t.end()
})

t.test(
  "FollowingClock: the cloud's time as sent (exact) takes off a lead the cloud does not share, beyond a message's delay, " +
    'never below real time; a time the cloud has only passed never does',
  (t) => {
    const real = new ManualClock(0)
    const drops: number[] = []
    const clock = new (class extends FollowingClock {
      protected override droppedBack(dropMs: number): void {
        drops.push(dropMs)
      }
    })(real, 2 * 86_400_000)
    t.equal(clock.follow(60_000), false, "a notification's createdAt (not exact) leaves the lead alone")
    t.equal(clock.follow(2 * 86_400_000 - FOLLOW_SKEW_MS, true), false, "within a message's delay of it: left alone")
    t.equal(clock.follow(60_000, true), true, 'the cloud says it is a minute ahead: the phone drops back to it')
    t.equal(clock.ahead, 60_000)
    t.same(drops, [2 * 86_400_000 - 60_000])
    t.equal(clock.follow(-60_000, true), true, 'a cloud behind real time: no lead at all')
    t.equal(clock.ahead, 0)
    t.equal(clock.follow(-60_000, true), false, 'and none to take off again')
    t.same(drops, [2 * 86_400_000 - 60_000, 60_000])
    const plain = new FollowingClock(real, 86_400_000)
    t.equal(plain.follow(real.now(), true), true, 'a plain FollowingClock drops back too')
    t.equal(plain.ahead, 0)
    t.end()
  },
)
