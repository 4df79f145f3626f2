/** Issue 12: the fleet's event-loop delay over the stretch when every phone was up, apart from its ramp (fleet/all-up-delay.ts). */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { AllUpLoopDelay } from '../../fleet/all-up-delay.js'

/** Holds the event loop for `ms`: a stall the delay monitor must see. */
function stall(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until);
}

t.test('no figure until every phone is up; a stall in the stretch shows in its p99', async (t) => {
  const d = new AllUpLoopDelay()
  d.check(0, 0)
  d.check(2, 3)
  d.close()
  t.equal(d.p99Ms, null, 'never every phone up (an empty process counts as none): no figure')

  const up = new AllUpLoopDelay()
  up.check(3, 3)
  t.equal(up.p99Ms, null, 'open: no figure before the stretch ends')
  // Two stalls, each longer than the monitor's interval: the histogram's top percent holds them.
  for (let i = 0; i < 2; i++) {
    stall(80)
    await sleep(20)
  }
  up.check(2, 3)
  const p99 = up.p99Ms
  t.ok(p99 !== null && p99 >= 50, `a phone went down: the stretch closed with the stalls in it (p99 ${p99} ms)`)
  up.check(3, 3)
  up.close()
  t.equal(up.p99Ms, p99, 'every phone up again later opens no second stretch; closing again changes nothing')
})

t.test('the plan ending closes an open stretch', async (t) => {
  const d = new AllUpLoopDelay()
  d.check(5, 5)
  await sleep(30)
  d.close()
  t.type(d.p99Ms, 'number')
  t.ok((d.p99Ms as number) >= 0)
})
