import t from 'tap'
import { backoffDelay, DEFAULT_BACKOFF, RetryTimer } from '../../common/backoff.js'
import { ManualClock } from '../../common/clock.js'

t.test('reconnect delays grow exponentially, stay within [ceiling/2, ceiling] and stop at the cap', (t) => {
  const opts = { baseMs: 100, capMs: 2000 }
  t.equal(
    backoffDelay(0, opts, () => 0),
    50,
  )
  t.equal(
    backoffDelay(0, opts, () => 1),
    100,
  )
  t.equal(
    backoffDelay(3, opts, () => 1),
    800,
  )
  t.equal(
    backoffDelay(10, opts, () => 1),
    2000,
    'capped',
  )
  t.equal(
    backoffDelay(1000, opts, () => 0),
    1000,
    'huge attempt counts do not overflow',
  )
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, DEFAULT_BACKOFF)))
  t.ok(spread.size > 10, 'jitter spreads retries of many clients')
  t.end()
})

t.test('a retry timer waits the next delay on the injected clock, never twice at once, and starts over after a reset', (t) => {
  const clock = new ManualClock()
  const retry = new RetryTimer(clock, { baseMs: 100, capMs: 300 }, () => 1)
  let runs = 0
  t.equal(
    retry.schedule(() => runs++),
    true,
  )
  t.equal(
    retry.schedule(() => runs++),
    false,
    'a second schedule while one waits is ignored',
  )
  t.equal(retry.pending, true)
  clock.advance(99)
  t.equal(runs, 0)
  clock.advance(1)
  t.equal(runs, 1, 'ran after the first delay')
  t.equal(retry.pending, false)
  retry.schedule(() => runs++)
  t.equal(retry.lastDelayMs, 200, 'the second delay doubles')
  clock.advance(200)
  retry.schedule(() => runs++)
  t.equal(retry.lastDelayMs, 300, 'the third is held to the cap')
  t.equal(retry.attempts, 3)
  retry.cancel()
  clock.advance(1000)
  t.equal(runs, 2, 'a cancelled retry never runs')
  retry.reset()
  retry.schedule(() => runs++)
  t.equal(retry.lastDelayMs, 100, 'after a reset the delays start over')
  t.equal(
    new RetryTimer(clock).schedule(() => {}),
    true,
    'defaults: the shared backoff and Math.random',
  )
  t.end()
})

t.test('F1, X1: a waiting retry can be run at once (a device given a new secret), once; with none waiting, nothing runs', (t) => {
  const clock = new ManualClock()
  const retry = new RetryTimer(clock, { baseMs: 100, capMs: 300 }, () => 1)
  let runs = 0
  retry.runNow()
  t.equal(runs, 0, 'none waits: nothing runs')
  retry.schedule(() => runs++)
  retry.runNow()
  t.equal(runs, 1, 'ran without its delay')
  t.equal(retry.pending, false)
  clock.advance(1000)
  t.equal(runs, 1, 'and not again when its delay passes')
  t.end()
})
