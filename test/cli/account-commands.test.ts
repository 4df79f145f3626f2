/** `console clock` as a person reads it: the cloud's lead over real time, as far as `clock advance` moved it. */
import t from 'tap'
import { renderAdvance, renderClock } from '../../cli/account-commands.js'

const DAY = 86_400_000
const now = Date.UTC(2026, 11, 14, 18, 25, 47)

t.test('after `clock advance 8d` the lead reads 8d 0h, also when the cloud measured it a few ms short', async (t) => {
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 8 * DAY - 6 }),
    `cloud time 2026-12-14 18:25:47 UTC (simulated, 8d 0h ahead of real time)\n`,
  )
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 8 * DAY + 6 }),
    `cloud time 2026-12-14 18:25:47 UTC (simulated, 8d 0h ahead of real time)\n`,
  )
  t.equal(
    renderClock({ now, simulated: true, aheadMs: 90_400 }),
    `cloud time 2026-12-14 18:25:47 UTC (simulated, 1m 30s ahead of real time)\n`,
  )
  t.equal(renderClock({ now, simulated: false, aheadMs: 0 }), `cloud time 2026-12-14 18:25:47 UTC (real time)\n`)
})

t.test('`clock advance` names what the rules did, in what a user can look up, not how many timers woke', async (t) => {
  const none = { log: [], accounts: [], commandsExpired: 0, notificationsQueued: 0, notificationsExpired: 0 }
  const from = now - DAY
  t.equal(
    renderAdvance(from, now, none),
    'Moved the cloud clock from 2026-12-13 18:25:47 UTC to 2026-12-14 18:25:47 UTC.\n' +
      'No rule had anything to do on the way: nothing for the cloud log, no command or notification.\n',
  )
  t.equal(
    renderAdvance(from, now, { ...none, notificationsQueued: 3, notificationsExpired: 1 }).split('\n')[1],
    'On the way: 3 notifications queued; 1 notification expired.',
  )
  t.equal(
    renderAdvance(from, now, {
      ...none,
      log: [
        { rule: 'bin-purge', entries: 1 },
        { rule: 'backup-cleanup', entries: 2 },
      ],
      accounts: ['demo'],
      commandsExpired: 2,
    }).split('\n')[1],
    'On the way: 3 cloud-log entries (bin-purge 1, backup-cleanup 2) for demo: `console account demo` shows them; 2 commands expired.',
  )
  t.equal(
    renderAdvance(from, now, { ...none, log: [{ rule: 'retirement-purge', entries: 1 }], accounts: ['demo'] }).split('\n')[1],
    'On the way: 1 cloud-log entry (retirement-purge 1) for demo: `console account demo` shows them while the account is open, ' +
      '`console service status` what each purge deleted and what the cloud keeps.',
    "M1: an account that lost access answers `console account` with 410: the purge's entry is in `service status`",
  )
})
