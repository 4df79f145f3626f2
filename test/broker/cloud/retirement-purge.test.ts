/**
 * M1: what the retirement's purge leaves of an account. An account is given
 * one of everything the cloud keeps, over the paths a phone, an SDK app and
 * the console use (a real broker and a real agent on a manual clock); the
 * service retires and the account is purged. Then every table of the schema
 * (read from sqlite_master, so a table added later is read too) is checked:
 * a table with an `account` or `device_id` column holds none of the
 * account's rows, but those the purge keeps on purpose (KEPT, as
 * broker/cloud/account-clearing.ts and README's M1 section say), and a table
 * with neither column must be named in NOT_BY_OWNER with how it is checked.
 * The blobs on disk are checked too; another account's data is untouched.
 */
import t from 'tap'
import { utcDate, type ManualClock } from '../../../common/clock.js'
import { connectDevice, heartbeat, startCloud, cloudCall } from '../../fixtures/cloud.js'
import { closedPort } from '../../fixtures/ports.js'
import {
  assertClearedBut,
  assertSeeded,
  BY_CONTENT,
  type Kept,
  NO_FIX,
  ofAccount,
  rowCounter,
  rowsOf,
  seedAccount,
} from '../../fixtures/account-data.js'

const DAY = 86_400_000

/**
 * What the purge keeps of the account, by table, as the module says: the rows of the account left in it must all pass.
 * Every other table with an `account` or `device_id` column must hold none of its rows.
 */
const KEPT: Kept = {
  devices: { why: 'a phone that signs in is told the service is gone', where: '1' },
  device_state: { why: 'presence and the switches the phone last reported; no fix, no lost mode', where: NO_FIX },

  notifications: {
    why: 'the service-gone notice, and the cloud-moved one a device_moves row points at',
    where: "kind = 'service-gone' OR id IN (SELECT notice FROM device_moves)",
  },
  device_moves: { why: 'where a migrated phone went', where: '1' },
  cloud_log: { why: "the retirement's record, this purge's entry among them", where: "rule LIKE 'retirement-%'" },
  retirement_steps: { why: "the retirement's record: the purge's date for the 410", where: '1' },
  retirement_deadlines: { why: "the retirement's record", where: '1' },
  account_migrations: { why: "the retirement's record", where: '1' },
}

/** Tables with neither an `account` nor a `device_id` column, and how the account's rows in them are found (or why none are). */
const NOT_BY_OWNER: Record<string, string | null> = {
  // The account's own row stays: its name, so every request of it answers 410 ACCOUNT_PURGED.
  accounts: null,
  // The retirement's plan: the service's, not an account's.
  service_retirement: null,
  ...BY_CONTENT,
}

t.test('M1: the purge leaves nothing of an account but what it keeps on purpose, table by table and on disk', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const { agent, second, secret2, phone, bob, blobs } = await seedAccount(t, cloud)
  // M2: the account migrated and its phones were told where to (device_moves, a cloud-moved notice).
  // Somewhere nothing listens (a port the OS chose and closed): the agent, told to move, may try it before it stops.
  const away = `127.0.0.1:${await closedPort()}`
  cloud.broker.cloud.retirement.markMigrated('alice', 'migrate', clock.now(), `to http://${away}`)
  const to = { mqtt: `mqtt://${away}`, push: `ws://${away}/push`, cloud: `http://${away}` }
  t.equal(
    (await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'POST', '/api/accounts/alice/moved', { account: 'alice', to })).status,
    200,
  )
  // Every phone off: what arrives after the purge is new data, not what the purge left.
  await agent.stop()
  await second.endAsync()

  assertSeeded(t, cloud, ['device_moves'])
  // Bob's data, the control (the retirement's own tables and its notices change for him too).
  const bobsData = (): Record<string, number> =>
    rowsOf(cloud, 'bob', ['cloud_log', 'notifications', 'retirement_steps', 'account_migrations'])
  const bobBefore = bobsData()

  // The retirement, on the cloud's clock: alice's purge at the shutdown (the guarantee after her migration ends before it);
  // bob exported on day 40, so his data is kept 30 days past that, beyond this test's end.
  cloud.broker.cloud.retirement.markMigrated('bob', 'export', clock.now() + 40 * DAY)
  const plan = { announce: 'now', syncOff: '7d', migrationDeadline: '30d', shutdown: '60d' }
  t.equal((await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'PUT', '/api/service/retirement', plan)).status, 200)
  clock.advance(61 * DAY)
  t.equal(cloud.broker.cloud.retirement.accountNow('alice')?.access, 'purged')
  // The backups clearer sweeps the blobs no one holds once the purge's transaction is in (setImmediate); the same sweep, awaited.
  await cloud.broker.cloud.blobs.sweep()
  // A phone of the account that comes back after the purge: its logs, status and fix write nothing of the account's.
  const back = await connectDevice(t, cloud, 'p-alice-2', secret2)
  await back.publishAsync('fp/v1/p-alice-2/logs', JSON.stringify({ events: [{ seq: 5, at: 5, type: 'screen-on', detail: '' }] }), {
    qos: 1,
  })
  await back.publishAsync('fp/v1/p-alice-2/status', JSON.stringify({ cloudService: false, findDevice: true, at: clock.now() }), {
    qos: 1,
    retain: true,
  })
  await back.publishAsync('fp/v1/p-alice-2/heartbeat', JSON.stringify(heartbeat(9)), { qos: 1 })
  t.ok(cloud.logs.has('behaviour logs ignored: the cloud service was shut down (M1)'), 'its logs are not stored')
  await back.endAsync()

  assertClearedBut(t, cloud, blobs, KEPT, NOT_BY_OWNER)
  t.match(cloud.broker.cloud.accounts.get('alice'), { id: 'alice', usedBytes: 0 }, "the account's row stays, its quota use at 0")
  const count = rowCounter(cloud.broker.db, blobs)
  const notices = ofAccount(new Set(['device_id']))
  t.equal(count('notifications', `kind = 'service-gone' AND ${notices}`), 2, 'each phone keeps its service-gone notice')
  t.equal(count('notifications', `${notices} AND body LIKE '%secret%'`), 0, 'no notice body of the owner')

  // Bob's data is as it was.
  const bobAfter = bobsData()
  t.same(bobAfter, bobBefore, "bob's rows stay")
  t.ok(bobBefore['sync_items'], 'bob has a note')
  t.match(await cloudCall(cloud, bob, 'GET', '/cloud/v1/sync/notes/changes?since=0'), { status: 410 }, 'the service is gone for bob too')

  // What the purge says it did, and what `console service status` shows of it.
  const record = cloud.broker.cloud.cloudLog.list('alice', 1)[0]
  t.match(record, {
    rule: 'retirement-purge',
    message: new RegExp(
      '^the service retired: deleted drive files 1, items 2, backups 1, location fixes \\d+, remote commands 1, ' +
        'notifications \\d+, behaviour-log events \\d+, backup plans \\d+, drive SDK tokens 1, cloud-log entries \\d+; ' +
        ".* Kept: the account's name and its retirement's record",
    ),
  })
  t.equal(cloud.broker.cloud.retirement.accountNow('alice')?.purged, record?.message)
  t.equal(cloud.broker.cloud.retirement.accountNow('bob')?.purged, null, 'bob is not purged yet')
  // The API's readers (a script, the web console's page) get the reason and the date, and no command of the CLI.
  const purged = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/accounts/alice')
  const on = cloud.broker.cloud.retirement.accountNow('alice')?.purgedAt as number
  const shutdownAt = ((await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/service')).body.plan as { shutdownAt: number })
    .shutdownAt
  t.same(purged, {
    status: 410,
    body: {
      code: 'ACCOUNT_PURGED',
      error: `account "alice" was deleted on ${utcDate(on)}: the fakephone cloud shut down on ${utcDate(shutdownAt)}`,
      at: on,
      date: new Date(on).toISOString(),
    },
  })
  t.notMatch((await cloudCall(cloud, phone, 'GET', '/cloud/v1/sync/notes/changes?since=0')).body.error, /console/, 'not to a phone')
})
