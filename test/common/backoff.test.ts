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
