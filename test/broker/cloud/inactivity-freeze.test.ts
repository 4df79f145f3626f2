/**
 * A3 on a real broker, a real agent and the CLI, on the cloud's manual clock:
 * a year without activity freezes an account and clears exactly what
 * broker/cloud/account-clearing.ts lists (every table of the schema read from
 * sqlite_master, as M1's purge test reads them, and the blobs on disk); each
 * activity the behaviour names resets the year; a frozen account signed in
 * again works and starts empty, its old SDK token refused and its phones'
 * change feeds going on from where they stood; an account M1 purged is left
 * alone.
 */
import t from 'tap'
import { once } from 'node:events'
import type { Heartbeat } from '../../../common/contract.js'
import { utcSeconds, type ManualClock } from '../../../common/clock.js'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import {
  addDevice,
  basicAuth,
  cloudCall,
  connectDevice,
  firstFix,
  heartbeat,
  startAgent,
  startCloud,
  storedHeartbeats,
  type Cloud,
} from '../../fixtures/cloud.js'
import { backupReady, nextBackup } from '../../fixtures/backup.js'
import { run } from '../../fixtures/io.js'
import { FREEZE_NOTICE_TITLE } from '../../../broker/cloud/accounts.js'
import { assertClearedBut, assertSeeded, BY_CONTENT, type Kept, NO_FIX, putNote, rowsOf, seedAccount } from '../../fixtures/account-data.js'

const DAY = 86_400_000
const YEAR = 365 * DAY

const consoleCli = (cloud: Cloud, ...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args])
const asConsole = (cloud: Cloud): string => `Bearer ${cloud.consoleToken}`

/** What the freeze keeps of the account, by table, as account-clearing.ts says: so it can come back by signing in. */
const KEPT: Kept = {
  devices: { why: 'its phones sign in as before', where: '1' },
  device_state: { why: 'presence and the switches the phone last reported; no fix, no lost mode', where: NO_FIX },
  backup_devices: { why: "each phone's backup switch, for the schedule once the account is back", where: '1' },
  backup_retention: { why: "B3's state of the cloud-service switch", where: '1' },
  sync_counters: { why: "where the phones' change feeds stand", where: '1' },
  cloud_log: { why: "the freeze's record: its warning and its entry", where: "rule IN ('freeze-warning', 'inactivity-freeze')" },
  notifications: { why: "each phone's notice of the freeze, sent after the clearing", where: `title = '${FREEZE_NOTICE_TITLE}'` },
}

/** Tables with neither an `account` nor a `device_id` column, and how the account's rows in them are found (or why none are). */
const NOT_BY_OWNER: Record<string, string | null> = {
  // The account's own row stays: its name and membership, and when it was frozen.
  accounts: null,
  // The retirement's plan: the service's, not an account's.
  service_retirement: null,
  ...BY_CONTENT,
}

t.test('A3: a year without activity freezes the account and clears exactly the listed data, table by table and on disk', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const { agent, second, blobs } = await seedAccount(t, cloud)
  await agent.stop()
  await second.endAsync()
  assertSeeded(t, cloud)
  const bobsData = (): Record<string, number> => rowsOf(cloud, 'bob', ['cloud_log', 'notifications'])
  const bobBefore = bobsData()
  const accounts = cloud.broker.cloud.accounts
  const { lastActivityAt, freezesAt } = accounts.need('alice')
  t.equal(freezesAt, lastActivityAt + YEAR)

  // Bob signs in to the console on day 200: his year starts again, so he is the control.
  clock.advance(200 * DAY)
  t.equal((await cloudCall(cloud, asConsole(cloud), 'GET', '/api/accounts/bob')).status, 200)
  clock.advance((freezesAt as number) - clock.now() - 1)
  t.equal(accounts.need('alice').frozenAt, null, 'a millisecond short of the year: not frozen')
  t.ok(rowsOf(cloud, 'alice', [])['locations'], 'and its location history is there')
  clock.advance(1)
  t.match(accounts.need('alice'), { frozenAt: clock.now(), freezesAt: null, usedBytes: 0 }, 'frozen at the year, its quota use at 0')
  // The backups clearer sweeps the blobs no one holds once the freeze's transaction is in (setImmediate); the same sweep, awaited.
  await cloud.broker.cloud.blobs.sweep()

  assertClearedBut(t, cloud, blobs, KEPT, NOT_BY_OWNER)
  t.same(bobsData(), bobBefore, "bob's rows stay")
  t.equal(accounts.need('bob').frozenAt, null, 'bob is not frozen')
  const left = rowsOf(cloud, 'alice', [])
  for (const name of ['devices', 'device_state', 'backup_devices', 'sync_counters', 'cloud_log']) {
    t.ok(left[name], `${name}: kept (${KEPT[name]?.why})`)
  }

  const [record] = cloud.broker.cloud.cloudLog.list('alice', 1)
  t.match(record, {
    rule: 'inactivity-freeze',
    message: new RegExp(
      '^account frozen after a year without activity \\(the last: drive on \\d{4}-\\d\\d-\\d\\d\\); cloud data cleared: ' +
        'drive files 1, items 1, backups 1, location fixes [1-9]\\d*, remote commands 1, notifications [1-9]\\d*, ' +
        'behaviour-log events [1-9]\\d*, backup plans [1-9]\\d*, drive SDK tokens 1, cloud-log entries [1-9]\\d*; with them the recycle ' +
        "bin, share links, command receipts, and its phones' last known position and lost mode\\. Kept: the account's name, " +
        "membership and this record, its phones' registration and switches, and where their sync feeds stand: any activity " +
        '\\(a console sign-in, say\\) brings the account back, empty\\.$',
    ),
  })
  t.equal(
    record?.count,
    [...(record?.message.matchAll(/ (\d+)[,;]/g) ?? [])].reduce((n, m) => n + Number(m[1]), 0),
    'its count is every row it names',
  )
})

t.test('A3: each activity the behaviour names resets the year: console sign-in, Find Device on, backup, sync, delete', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const accounts = cloud.broker.cloud.accounts
  const auth = async (account: string): Promise<string> => basicAuth(`p-${account}`, await addDevice(cloud, `p-${account}`, account))
  const start = clock.now()
  for (const account of ['idle', 'signs-in']) await addDevice(cloud, `p-${account}`, account)
  const syncs = await auth('syncs')
  const deletes = await auth('deletes')
  await putNote(t, cloud, deletes, 'old')
  /** A raw phone of `account` that says its switches on its status topic. */
  const reporter = async (account: string) => {
    const id = `p-${account}`
    const secret = await addDevice(cloud, id, account)
    const client = await connectDevice(t, cloud, id, secret)
    const say = (switches: { findDevice: boolean; backup?: boolean }) =>
      client.publishAsync(`fp/v1/${id}/status`, JSON.stringify({ cloudService: true, ...switches, at: clock.now() }), {
        qos: 1,
        retain: true,
      })
    return { client, secret, say }
  }
  // Find Device off at first: the phone switches it on on day 300.
  const finds = await reporter('finds')
  await finds.say({ findDevice: false })
  // Find Device on from day 0 (a phone's first status with it on counts as switching it on), backup off: no plan meanwhile.
  const backsUp = await reporter('backs-up')
  await backsUp.say({ findDevice: true, backup: false })
  await backsUp.client.endAsync()
  t.same(
    accounts.list().map((a) => [a.id, a.lastActivityAt === start]),
    ['backs-up', 'deletes', 'finds', 'idle', 'signs-in', 'syncs'].map((id) => [id, true]),
    'every account starts its year now',
  )

  clock.advance(300 * DAY)
  t.equal((await cloudCall(cloud, asConsole(cloud), 'GET', '/api/accounts/signs-in')).status, 200)
  await finds.say({ findDevice: true })
  await putNote(t, cloud, syncs, 'new')
  t.equal((await cloudCall(cloud, deletes, 'DELETE', '/cloud/v1/sync/notes/old')).status, 200)
  const active = clock.now()
  // The phone, back with its backup switch on, makes the 03:00 backup.
  const agent = await startAgent(t, cloud, 'p-backs-up', backsUp.secret, { systemProfile: true })
  await backupReady(cloud, 'p-backs-up')
  const made = nextBackup(agent)
  clock.advance(DAY)
  await made
  await agent.stop()
  const backedUpAt = accounts.need('backs-up').lastActivityAt
  t.ok(backedUpAt > active, 'the backup came after the others')

  clock.advance(start + YEAR - clock.now())
  t.match(accounts.need('idle'), { frozenAt: clock.now() }, 'the account with no activity is frozen at the year')
  const expected: [string, string, number][] = [
    ['signs-in', 'console-sign-in', active],
    ['finds', 'find-device-on', active],
    ['syncs', 'sync', active],
    ['deletes', 'delete', active],
    ['backs-up', 'backup', backedUpAt],
  ]
  for (const [account, activity, at] of expected) {
    t.match(
      accounts.need(account),
      { frozenAt: null, lastActivity: activity, lastActivityAt: at, freezesAt: at + YEAR },
      `${activity} on day 300 starts ${account}'s year again`,
    )
  }
  t.match(
    (await consoleCli(cloud, 'accounts')).out,
    /\nidle .* FROZEN since \d{4}-\d\d-\d\d .* -\n/,
    'the console lists the idle account frozen, the others with their new freeze date',
  )
})

t.test('A3: a frozen account signed in again works, starts empty and says when it was cleared; its phones sync on', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'p1', 'alice')
  const phone = basicAuth('p1', secret)
  await putNote(t, cloud, phone, 'one')
  await putNote(t, cloud, phone, 'two')
  const feed = (since: number) => cloudCall(cloud, phone, 'GET', `/cloud/v1/sync/notes/changes?since=${since}`)
  const { cursor } = (await feed(0)).body as { cursor: number }
  t.equal(cursor, 2, "the phone's change feed stands at 2")
  const token = (await cloudCall(cloud, asConsole(cloud), 'POST', '/api/accounts/alice/drive/tokens', { app: 'gallery' })).body
    .token as string
  t.equal((await cloudCall(cloud, `Bearer ${token}`, 'POST', '/sdk/v1/files?name=a.txt', Buffer.from('a file'))).status, 201)
  const fix = async (seq: number): Promise<void> => {
    const mqtt = await connectDevice(t, cloud, 'p1', secret)
    const stored = storedHeartbeats(cloud, 1)
    await mqtt.publishAsync('fp/v1/p1/heartbeat', JSON.stringify(heartbeat(seq)), { qos: 1 })
    await stored
    await mqtt.endAsync()
  }
  await fix(1)

  clock.advance(YEAR)
  // Find Device is not the cloud data the freeze cleared: a fix the phone sends while frozen is stored as before.
  await fix(2)
  const { clearedAt } = cloud.broker.cloud.accounts.need('alice')
  t.match(
    await feed(0),
    {
      status: 403,
      body: { code: 'FROZEN', error: /frozen after a year without activity and its cloud data cleared; sign in/, clearedAt },
    },
    'the phone is told the account is frozen, and when its data was cleared: the value its feed says once the account is back',
  )
  t.type(clearedAt, 'number')
  t.match((await consoleCli(cloud, 'accounts')).out, /\nalice .* FROZEN since /)
  const shown = (await consoleCli(cloud, 'account', 'alice')).out
  t.match(
    shown,
    /\nfrozen\s+since \d{4}-\d\d-\d\d, cloud data cleared; this sign-in brings it back, empty \(its phones upload what they still hold\)\n/,
    'A3: the owner signs in, sees the account was frozen, and that this sign-in brought it back',
  )
  t.match(
    shown,
    new RegExp(
      'inactivity-freeze\\s+6\\s+account frozen .* cloud data cleared: drive files 1, items 2, backups 0, location fixes 1, ' +
        'remote commands 0, notifications 1, behaviour-log events 0, backup plans 0, drive SDK tokens 1, cloud-log entries 0; ',
    ),
    'and what the freeze cleared, kind by kind (the notice of it on the phone among them)',
  )

  t.match(cloud.broker.cloud.accounts.need('alice'), { frozenAt: null, lastActivity: 'console-sign-in', usedBytes: 0 }, 'signed in again')
  // Back, the account is no longer frozen: the view still says when the cloud cleared it, in words and in --json.
  const clearedOn = (/\nfrozen\s+since (\S+),/.exec(shown) as RegExpExecArray)[1] as string
  const again = (await consoleCli(cloud, 'account', 'alice')).out
  t.match(again, /\nfrozen\s+no; a year without activity freezes it on /, 'not frozen any more')
  t.match(again, `\ncloud data     cleared on ${clearedOn} (a year without activity, A3)\n`, 'and cleared when the year ran out')
  const json = JSON.parse((await consoleCli(cloud, '--json', 'account', 'alice')).out) as { account: { clearedAt: number } }
  t.equal(new Date(json.account.clearedAt).toISOString().slice(0, 10), clearedOn, 'its --json has clearedAt')
  t.match(await feed(0), { status: 200, body: { changes: [], cursor: 0 } }, 'no item is left')
  t.match((await cloudCall(cloud, asConsole(cloud), 'GET', '/api/accounts/alice/bin')).body, { entries: [] }, 'the recycle bin is empty')
  t.match(await cloudCall(cloud, asConsole(cloud), 'GET', '/api/accounts/alice/drive/files'), { status: 200, body: { files: [] } })
  t.equal((await cloudCall(cloud, `Bearer ${token}`, 'GET', '/sdk/v1/files')).status, 401, 'the old SDK token is refused')
  const history = (await consoleCli(cloud, 'history', 'p1')).out
  t.same(
    history
      .split('\n')
      .slice(1, -1)
      .map((row) => row.split(' ')[0]),
    ['2'],
    'the location history holds only the fix sent after the freeze',
  )

  await putNote(t, cloud, phone, 'three')
  t.match(
    (await feed(cursor)).body,
    { changes: [{ id: 'three' }], cursor: 3 },
    'a note synced after the sign-in reaches the phone whose feed stood at 2',
  )
  t.ok(cloud.broker.cloud.accounts.need('alice').usedBytes > 0, 'the account stores again')
})

t.test('A3, M1: an account the retirement purged is never warned of a freeze nor frozen: nothing can bring it back', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  await addDevice(cloud, 'p1', 'alice')
  const start = clock.now()
  const plan = { announce: 'now', syncOff: '7d', migrationDeadline: '30d', shutdown: '60d' }
  t.equal((await cloudCall(cloud, asConsole(cloud), 'PUT', '/api/service/retirement', plan)).status, 200)
  clock.advance(61 * DAY)
  t.equal(cloud.broker.cloud.retirement.accountNow('alice')?.access, 'purged')
  clock.advance(start + YEAR - 1 - clock.now())
  t.notOk(
    cloud.broker.framework.queue.list('p1', 50).some((n) => n.title === 'Your cloud account will be frozen'),
    'its phone is not told to sign in to keep it',
  )
  clock.advance(YEAR)
  t.match(cloud.broker.cloud.accounts.need('alice'), { frozenAt: null }, 'not frozen')
  t.same(
    cloud.broker.cloud.cloudLog.list('alice', 50).filter((e) => !e.rule.startsWith('retirement-')),
    [],
    'its log holds its retirement only: no freeze warning, no freeze',
  )
})

t.test(
  'A3, F1: Find Device keeps working on a frozen account: a fix its phone sends is stored without bringing the account ' +
    'back, and the owner who signs in finds the last known position and the trail since the freeze',
  async (t) => {
    const accounts = { ...DEFAULT_CLOUD_DATA_OPTIONS.accounts, inactivityMs: 2 * DAY, freezeWarningMs: DAY }
    const cloud = await startCloud(t, { cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts } })
    const clock = cloud.clock as ManualClock
    // A fix every three days: none falls due while the year (two days here) runs out. The first is awaited from before
    // the agent starts: it is sent as soon as its channel is up.
    let stored: Promise<Heartbeat> | undefined
    const agent = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'), { heartbeatMs: 3 * DAY }, (a) => {
      stored = firstFix(cloud, a)
    })
    const first = await (stored as Promise<Heartbeat>)
    clock.advance(2 * DAY)
    const { frozenAt, lastActivity } = cloud.broker.cloud.accounts.need('alice')
    t.equal(frozenAt, clock.now(), 'frozen')
    t.match((await consoleCli(cloud, 'history', 'phone-a')).out, /^No locations recorded for phone-a\./, 'the freeze cleared the trail')

    // Acknowledged by the cloud, stored or not; the console's reads write what the cloud took in before they answer.
    const acked = once(agent, 'heartbeatAcked')
    clock.advance(DAY)
    await acked
    t.match(cloud.broker.cloud.accounts.need('alice'), { frozenAt, lastActivity }, 'a fix is no activity: the account stays frozen')
    t.match(
      (await consoleCli(cloud, 'devices')).out,
      /\nphone-a +alice +online +55\.948\d*,-3\.199\d* +0s /,
      'the console shows where the phone is, and that the fix is fresh',
    )
    t.equal((await consoleCli(cloud, 'account', 'alice')).code, 0, 'the owner signs in')
    t.equal(cloud.broker.cloud.accounts.need('alice').frozenAt, null, 'back')
    const history = (await consoleCli(cloud, 'history', 'phone-a')).out
    // An agent's seqs are a time in ms (F1): the table counts them from the lowest shown, which the line above it gives.
    t.match(history, new RegExp(`^SEQ \\+N is seq ${first.seq + 1} \\+ N `), 'the fix sent while frozen is the next seq')
    t.match(history, new RegExp(`\\n\\+0 +${utcSeconds(clock.now())} +0s +55\\.948`), 'the fix sent while frozen is there')
    t.equal(history.trim().split('\n').length, 3, 'alone (below the line and the header): the one before the freeze went with it')
  },
)
