import t from 'tap'
import { backoffDelay, DEFAULT_BACKOFF } from '../../common/backoff.js'

t.test('reconnect delays grow exponentially, stay within [ceiling/2, ceiling] and stop at the cap', (t) => {
  const opts = { baseMs: 100, capMs: 2000 }
  t.equal(backoffDelay(0, opts, () => 0), 50)
  t.equal(backoffDelay(0, opts, () => 1), 100)
  t.equal(backoffDelay(3, opts, () => 1), 800)
  t.equal(backoffDelay(10, opts, () => 1), 2000, 'capped')
  t.equal(backoffDelay(1000, opts, () => 0), 1000, 'huge attempt counts do not overflow')
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, DEFAULT_BACKOFF)))
  t.ok(spread.size > 10, 'jitter spreads retries of many clients')
  t.end()
})

t.test('a Retry waits on the injected clock, keeps one retry at a time and starts over after a success', async (t) => {
  const { ManualClock } = await import('../../common/clock.js')
  const { Retry } = await import('../../common/backoff.js')
  const clock = new ManualClock()
  const retry = new Retry(clock, { baseMs: 100, capMs: 1000 }, () => 1)
  let fired = 0
  retry.schedule(() => fired++)
  retry.schedule(() => fired++)
  t.equal(retry.lastDelayMs, 100)
  clock.advance(100)
  t.equal(fired, 1, 'a second schedule while one waits is the same retry')
  retry.schedule(() => fired++)
  t.equal(retry.lastDelayMs, 200, 'the next one waits twice as long')
  retry.cancel()
  clock.advance(1000)
  t.equal(fired, 1, 'cancelled')
  retry.reset()
  retry.schedule(() => fired++)
  t.equal(retry.lastDelayMs, 100, 'after a success, the shortest delay again')
  t.equal(retry.attempts, 1)
})
