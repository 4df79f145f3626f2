/** `console clock` as a person reads it: the cloud's lead over real time, as far as `clock advance` moved it. */
import t from 'tap'
import { renderClock } from '../../cli/account-commands.js'

const DAY = 86_400_000
const now = Date.UTC(2026, 11, 14, 18, 25, 47)

t.test('after `clock advance 8d` the lead reads 8d 0h, also when the cloud measured it a few ms short', async (t) => {
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 8 * DAY - 6 }),
    `cloud time 2026-12-14T18:25:47.000Z (simulated, 8d 0h ahead of real time)\n`,
  )
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 8 * DAY + 6 }),
    `cloud time 2026-12-14T18:25:47.000Z (simulated, 8d 0h ahead of real time)\n`,
  )
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 90_400 }),
    `cloud time 2026-12-14T18:25:47.000Z (simulated, 1m 30s ahead of real time)\n`,
  )
  t.equal(renderClock({ now, simulated: false, aheadMs: 0 }), `cloud time 2026-12-14T18:25:47.000Z (real time)\n`)
})
