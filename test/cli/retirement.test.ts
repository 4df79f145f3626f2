/** M1 from the command line: `console service retire` and `console service status`, in-process against a real broker. */
import t from 'tap'
import type { ManualClock } from '../../common/clock.js'
import { renderRetirement } from '../../cli/retirement-commands.js'
import { renderAccounts, type ListedAccount } from '../../cli/account-commands.js'
import type { RetirementStatus } from '../../broker/cloud/retirement-plan.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { run, runJson } from '../fixtures/io.js'
import { ConsoleClient } from '../../cli/console-client.js'

const DAY = 86_400_000

t.test('M1: console service retire sets the plan and own deadlines; console service status shows the phases and accounts', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  await addDevice(cloud, 'p-alice', 'alice')
  await addDevice(cloud, 'p-bob', 'bob')
  const cli = (...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'service', ...args])

  let r = await cli('status')
  t.equal(r.out, 'cloud time 2026-01-01 00:00 UTC: the service runs as usual; no retirement is planned.\n')
  r = await cli('retire', '--announce', '1d', '--sync-off', '10d')
  t.match(r, { code: 1, err: /the plan needs all four dates: --announce, --sync-off, --migration-deadline and --shutdown/ })
  r = await cli('retire', '--account', 'bob')
  t.match(r, { code: 1, err: /--account and --deadline go together/ })
  r = await cli('retire', '--account', 'bob', '--deadline', '20d', '--shutdown', '60d')
  t.match(r, { code: 1, err: /give either the plan's four dates or --account with --deadline/ })
  r = await cli('retire', '--announce', '1d', '--sync-off', '10d', '--migration-deadline', '5d', '--shutdown', '60d')
  t.match(r, { code: 1, err: /migration-deadline \(2026-01-06 00:00 UTC\) must come after sync-off \(2026-01-11 00:00 UTC\)/ })

  r = await cli('retire', '--announce', '1d', '--sync-off', '10d', '--migration-deadline', '40d', '--shutdown', '60d')
  t.equal(r.code, 0)
  t.match(r.out, /^The service will retire:\ncloud time {10}2026-01-01 00:00 UTC\nphase {15}planned\n/)
  t.match(r.out, /\nnext {16}announced on 2026-01-02 00:00 UTC \(in 24h 0m\)\n/)
  t.match(r.out, /migration deadline {2}2026-02-10 00:00 UTC \(accounts not migrated or exported lose access: 410 Gone\)/)
  r = await cli('retire', '--account', 'bob', '--deadline', '2026-01-21')
  t.equal(r.out, 'Account bob now has its own deadline: 2026-01-21 00:00 UTC.\n')
  cloud.broker.cloud.retirement.markMigrated('alice', 'migrate', undefined, 'to http://127.0.0.1:9')
  clock.advance(20 * DAY)
  r = await cli('status')
  t.match(r.out, /phase {15}migration-window\nnext {16}deadline-passed on 2026-02-10 00:00 UTC \(in 20d 0h\)/)
  t.match(r.out, /ACCOUNT\s+DEADLINE\s+PHASE\s+ACCESS\s+MIGRATION\s+PURGE\n/)
  t.match(r.out, /alice\s+2026-02-10 00:00 UTC\s+migration-window\s+read-only\s+migrated 2026-01-01 00:00 UTC\s+2026-03-02 00:00 UTC/)
  t.match(r.out, /bob\s+2026-01-21 00:00 UTC \(own\)\s+deadline-passed\s+CLOSED \(410\)\s+-\s+2026-03-02 00:00 UTC/)
  r = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, '--json', 'service', 'status'])
  t.match(JSON.parse(r.out), { phase: 'migration-window', accounts: [{ account: 'alice' }, { account: 'bob', access: 'closed' }] })
  r = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'accounts'])
  t.match(r.out, /\nalice .* 2027-01-\d\d\n/, "alice migrated: A3's freeze date as before")
  t.match(r.out, /\nbob .* closed 2026-01-21 \(migration deadline passed\)\n/, 'bob lost access: the list says so, not a freeze date')
  // M1: a deadline that passed no longer changes, also for an account whose deadline step has not run yet (its deadline
  // passed with it here: one made after it is refused since, see below): before, a later deadline of its own opened such an
  // account again.
  r = await cli('retire', '--account', 'bob', '--deadline', '10d')
  t.match(r, { code: 1, err: 'the deadline of account "bob" has passed: it no longer changes' })
  await addDevice(cloud, 'p-late', 'late')
  clock.advance(21 * DAY)
  r = await cli('retire', '--account', 'late', '--deadline', '10d')
  t.match(r, { code: 1, err: 'the deadline of account "late" has passed: it no longer changes' })
  t.match((await cli('status')).out, /\nlate\s+2026-02-10 00:00 UTC\s+deadline-passed\s+CLOSED \(410\)/)
})

t.test('M1: status after the shutdown, with an export and a purge; and a plan with no accounts', async (t) => {
  const plan = { announceAt: 0, syncOffAt: DAY, deadlineAt: 2 * DAY, shutdownAt: 3 * DAY, createdAt: 0 }
  const status: RetirementStatus = {
    now: 4 * DAY,
    plan,
    phase: 'shut-down',
    next: null,
    accounts: [
      {
        account: 'carol',
        deadlineAt: 2 * DAY,
        ownDeadline: false,
        phase: 'shut-down',
        access: 'purged',
        migration: { how: 'export', at: DAY, detail: '' },
        purgeAt: 3 * DAY,
        purgedAt: 3 * DAY,
        purged: 'the service retired: deleted items 2, …. Kept: …',
      },
    ],
  }
  const text = renderRetirement(status)
  t.match(text, /next {16}none: the service is gone/)
  t.match(text, /carol\s+1970-01-03 00:00 UTC\s+shut-down\s+PURGED\s+exported 1970-01-02 00:00 UTC\s+done 1970-01-04 00:00 UTC/)
  t.match(text, /\n\nPurged carol: the service retired: deleted items 2, …\. Kept: …\n$/, 'what the purge deleted and what stays')
  t.match(renderRetirement({ ...status, accounts: [] }), /\n\nNo accounts\.\n$/)
  const carol: ListedAccount = {
    id: 'carol',
    tier: 'free',
    premiumUntil: null,
    quotaBytes: 5e9,
    usedBytes: 0,
    binMs: 30 * DAY,
    lastActivityAt: 0,
    lastActivity: 'console-sign-in',
    freezesAt: 365 * DAY,
    frozenAt: null,
    clearedAt: null,
    serviceOn: true,
    serviceOffAt: null,
    devices: [],
    retirement: status.accounts[0]!,
  }
  t.match(renderAccounts([carol], 4 * DAY), /\ncarol .* deleted 1970-01-04 \(the service shut down\)\n$/, 'purged: not a freeze date')
  // M1: its phones' cloud service is not "on" once the service shut down: gone, purged or (in its guarantee) not yet.
  t.match(renderAccounts([carol], 4 * DAY), /\ncarol +free .* GB +gone \(purged\) +console-sign-in/)
  const kept = { ...carol, retirement: { ...status.accounts[0]!, access: 'read-only' as const, purgedAt: null, purged: null } }
  t.match(renderAccounts([kept], 4 * DAY), /\ncarol +free .* GB +gone \(shut down\) +console-sign-in/)
  t.match(renderAccounts([{ ...carol, retirement: null }], 4 * DAY), /\ncarol +free .* GB +on +console-sign-in/, 'no plan: on')
})

t.test("M1: a purged account: the console CLI says the broker's reason and date, and where the purge's record is", async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'p-alice', 'alice')
  const cli = (...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args])
  const planned = await cli('service', 'retire', '--announce', 'now', '--sync-off', '1d', '--migration-deadline', '2d', '--shutdown', '3d')
  t.equal(planned.code, 0, planned.err)
  ;(cloud.clock as ManualClock).advance(4 * DAY)
  const r = await cli('account', 'alice')
  t.equal(r.code, 1)
  t.match(
    r.err,
    new RegExp(
      '^error: account "alice" was deleted on 2026-01-04 00:00 UTC: the fakephone cloud shut down on 2026-01-04 00:00 UTC; ' +
        '`console service status` says what its purge deleted and what the cloud keeps\n$',
    ),
  )
  t.match((await cli('service', 'status')).out, /\n\nPurged alice: the service retired: deleted /, 'where the hint points')
})

t.test('M1: a retiring cloud registers no new account from its deadline on, and nothing once shut down (device add, import)', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  await addDevice(cloud, 'p-alice', 'alice')
  const cli = (...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args])
  const keys = t.testdir()
  const add = (id: string, account: string) =>
    run(['device', 'add', id, '--account', account, '--data', cloud.dataDir, '--keys', keys], clock)
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const importInto = (account: string) => api.request(`/api/accounts/${account}/import`, {})
  const planned = await cli('service', 'retire', '--announce', 'now', '--sync-off', '1d', '--migration-deadline', '2d', '--shutdown', '3d')
  t.equal(planned.code, 0, planned.err)

  // The migration window: a new account may still migrate by the deadline.
  clock.advance(2 * DAY - 1)
  t.equal((await add('p-early', 'early')).code, 0, 'a new account just before the deadline')
  t.match(await importInto('early2'), { imported: 1 })

  clock.advance(1)
  const late = await add('p-late', 'late')
  t.equal(late.code, 1)
  t.equal(
    late.err,
    'error: account "late" would be new, and the fakephone cloud is retiring: its migration deadline passed on 2026-01-03 00:00 UTC ' +
      'and it shuts down on 2026-01-04 00:00 UTC; register the account on the cloud it moves to\n',
  )
  await t.rejects(importInto('late'), { status: 410, message: /^account "late" would be new/ })
  t.equal((await add('p-early2', 'early')).code, 0, "an account's new phone: Find Device works for it to the shutdown")

  clock.advance(DAY - 1)
  t.equal((await add('p-early3', 'early')).code, 0, 'just before the shutdown')
  clock.advance(1)
  const gone = await add('p-early4', 'early')
  t.equal(gone.code, 1)
  t.equal(gone.err, 'error: the fakephone cloud service is gone: it shut down on 2026-01-04 00:00 UTC; it registers nothing\n')
  await t.rejects(importInto('after'), { status: 410, message: /shut down on 2026-01-04 00:00 UTC; it registers nothing$/ })
  t.same(
    (await runJson<{ devices: { id: string }[] }>(['device', 'list', '--data', cloud.dataDir, '--json'], clock)).devices.map((d) => d.id),
    ['p-alice', 'p-early', 'p-early2', 'p-early3'],
    'nothing registered after the refusals',
  )
})
