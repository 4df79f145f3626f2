/**
 * M1: retiring the service on a real broker (in process, ports chosen by the
 * OS) on a manual clock: the plan's validation, every phase boundary a
 * millisecond before and at it, staggered deadlines, the guarantee period
 * after a migration, purge batches, and the notices the phones get.
 */
import t from 'tap'
import { ConsoleClient } from '../../../cli/console-client.js'
import { createHash } from 'node:crypto'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import { DEFAULT_RETIREMENT_RULES } from '../../../broker/cloud/retirement.js'
import { resolveDate } from '../../../broker/cloud/retirement-plan.js'
import type { ManualClock } from '../../../common/clock.js'
import {
  addDevice,
  basicAuth,
  cloudCall,
  connectDevice,
  heartbeat,
  startCloud,
  storedHeartbeats,
  type Cloud,
  type CloudReply,
} from '../../fixtures/cloud.js'

const DAY = 86_400_000

const consoleAuth = (cloud: Cloud): string => `Bearer ${cloud.consoleToken}`
const api = (cloud: Cloud, method: string, path: string, body?: object): Promise<CloudReply> =>
  cloudCall(cloud, consoleAuth(cloud), method, path, body)

/** A phone's upload of a note: the blob, then the item. Answers both statuses. */
async function upload(cloud: Cloud, auth: string, id: string): Promise<[blob: CloudReply, item: CloudReply]> {
  const bytes = Buffer.from(`note ${id}`)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const blob = await cloudCall(cloud, auth, 'PUT', `/cloud/v1/blobs/${sha256}?size=${bytes.length}&offset=0`, bytes)
  const item = await cloudCall(cloud, auth, 'PUT', `/cloud/v1/sync/notes/${id}`, {
    sha256,
    size: bytes.length,
    meta: { title: id },
    modifiedAt: cloud.clock.now(),
  })
  return [blob, item]
}

const notices = (cloud: Cloud, deviceId: string): string[] =>
  cloud.broker.framework.queue.list(deviceId, 100).map((n) => `${n.kind}: ${n.title}`)
const rules = (cloud: Cloud, account: string): string[] =>
  cloud.broker.cloud.cloudLog
    .list(account, 100)
    .map((e) => e.rule)
    .reverse()

t.test('M1: a retirement plan is four dates in order, validated with the reason; shown by status; replaced until announced', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'p-alice', 'alice')
  const T0 = cloud.clock.now()
  let res = await api(cloud, 'GET', '/api/service')
  t.match(res.body, { phase: 'in-service', plan: null, next: null, accounts: [] })
  t.doesNotThrow(() => cloud.broker.cloud.retirement.assertAccountOpen('alice'), 'no plan, no refusal')
  res = await api(cloud, 'PUT', '/api/service/retirement/accounts/alice', { deadline: '20d' })
  t.match(res, { status: 409, body: { code: 'NO_PLAN' } }, 'no own deadline without a plan')
  const plan = (over: Record<string, string>) => ({ announce: '1d', syncOff: '10d', migrationDeadline: '40d', shutdown: '60d', ...over })
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({ syncOff: 'tomorrow' }))
  t.match(res, { status: 400, body: { error: /^sync-off: "tomorrow" is not a date; use an ISO date/ } })
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({ announce: '2025-12-31' }))
  t.match(res, {
    status: 400,
    body: { error: "announce (2025-12-31 00:00 UTC) is in the past: the cloud's clock says 2026-01-01 00:00 UTC" },
  })
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({ migrationDeadline: '10d' }))
  t.match(res, {
    status: 400,
    body: { error: 'migration-deadline (2026-01-11 00:00 UTC) must come after sync-off (2026-01-11 00:00 UTC)' },
  })
  res = await api(cloud, 'PUT', '/api/service/retirement', { announce: '1d' })
  t.match(res, { status: 400, body: { error: /^bad retirement plan: / } })
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({ announce: '2026-01-03', syncOff: '5d', shutdown: '2026-03-01T12:00Z' }))
  t.equal(res.status, 200)
  t.match(res.body, { plan: { announceAt: Date.UTC(2026, 0, 3), shutdownAt: Date.UTC(2026, 2, 1, 12) } })
  // Its sync-off reminder would fall before the announcement (which gives every date): there is none.
  // Replaced before the announcement: durations from now on the cloud's clock.
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({ announce: 'now' }))
  t.match(res.body, {
    phase: 'announced',
    plan: { announceAt: T0, syncOffAt: T0 + 10 * DAY, deadlineAt: T0 + 40 * DAY, shutdownAt: T0 + 60 * DAY },
    next: { phase: 'migration-window', at: T0 + 10 * DAY },
    accounts: [{ account: 'alice', deadlineAt: T0 + 40 * DAY, ownDeadline: false, access: 'full', migration: null }],
  })
  ;(cloud.clock as ManualClock).advance(0)
  t.same(notices(cloud, 'p-alice'), ['retirement: The fakephone cloud is closing'], 'an announcement due now goes out now')
  res = await api(cloud, 'PUT', '/api/service/retirement', plan({}))
  t.match(res, { status: 409, body: { code: 'ALREADY_ANNOUNCED', error: /announced on 2026-01-01 00:00 UTC: its dates no longer change/ } })
  for (const [deadline, error] of [
    ['5d', 'deadline (2026-01-06 00:00 UTC) must be from sync-off (2026-01-11 00:00 UTC) to shutdown (2026-03-02 00:00 UTC)'],
    ['61d', /^deadline \(2026-03-03 00:00 UTC\) must be from sync-off/],
    ['2025-06-01', /^deadline \(2025-06-01 00:00 UTC\) is in the past/],
  ] as const) {
    res = await api(cloud, 'PUT', '/api/service/retirement/accounts/alice', { deadline })
    t.match(res, { status: 400, body: { error } }, deadline)
  }
  res = await api(cloud, 'PUT', '/api/service/retirement/accounts/nobody', { deadline: '20d' })
  t.match(res, { status: 404 })
  t.equal(resolveDate('1d2h', 0, 'x'), DAY + 2 * 3_600_000)
  await cloud.restart()
  t.same(notices(cloud, 'p-alice'), ['retirement: The fakephone cloud is closing'], 'a restart sends nothing twice')
})

t.test('M1: every phase boundary, a millisecond before and at it: notices, read-only, 410 after a deadline, shutdown, purge', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, retirement: { ...DEFAULT_RETIREMENT_RULES, purgeBatch: 1, purgeGapMs: DAY } },
  })
  const clock = cloud.clock as ManualClock
  const T0 = clock.now()
  const to = (ms: number): void => clock.advance(T0 + ms - clock.now())
  const phone: Record<string, string> = {}
  let findSecret = ''
  for (const a of ['alice', 'bob', 'carol', 'dave']) phone[a] = basicAuth(`p-${a}`, await addDevice(cloud, `p-${a}`, a))
  const read = (a: string): Promise<CloudReply> => cloudCall(cloud, phone[a] as string, 'GET', '/cloud/v1/sync/notes/changes')
  const retirement = () => cloud.broker.cloud.retirement
  const token = (await api(cloud, 'POST', '/api/accounts/alice/drive/tokens', { app: 'gallery' })).body.token as string
  const sdk = (method: string, body?: Buffer): Promise<CloudReply> =>
    cloudCall(cloud, `Bearer ${token}`, method, '/sdk/v1/files?name=a.txt', body)

  await api(cloud, 'PUT', '/api/service/retirement', { announce: '1d', syncOff: '10d', migrationDeadline: '40d', shutdown: '60d' })
  t.equal((await api(cloud, 'PUT', '/api/service/retirement/accounts/carol', { deadline: '25d' })).status, 200)
  t.match(rules(cloud, 'carol'), ['retirement-deadline-set'], 'before the announcement an own deadline is only logged')
  retirement().markMigrated('dave', 'export')
  t.match(cloud.broker.cloud.cloudLog.list('dave', 1)[0], {
    rule: 'retirement-migrated',
    message: 'exported on 2026-01-01 00:00 UTC: its source data is kept until 2026-01-31 00:00 UTC at least',
  })

  t.test('announce', async (t) => {
    to(DAY - 1)
    t.same(notices(cloud, 'p-alice'), [], 'nothing a millisecond before')
    to(DAY)
    t.same(notices(cloud, 'p-alice'), ['retirement: The fakephone cloud is closing'])
    const carol = cloud.broker.framework.queue.list('p-carol', 1)[0]
    t.match(carol?.body, /Export or migrate it before 2026-01-26 00:00 UTC/, "carol's notice gives her own deadline")
    t.match(rules(cloud, 'alice'), ['retirement-announced'])
    t.equal((await api(cloud, 'PUT', '/api/service/retirement/accounts/carol', { deadline: '2026-01-21' })).status, 200)
    t.match(notices(cloud, 'p-carol'), ['retirement: The fakephone cloud is closing', 'retirement: Your data has a new deadline'])
    to(3 * DAY - 1)
    t.equal(notices(cloud, 'p-alice').length, 1)
    to(3 * DAY)
    t.same(notices(cloud, 'p-alice').slice(1), ['retirement: Sync stops on 2026-01-11 00:00 UTC'], 'reminded a week ahead')
  })

  t.test('sync-off: the migration window keeps the data read-only', async (t) => {
    to(10 * DAY - 1)
    const before = await upload(cloud, phone.alice as string, 'n1')
    t.same(
      before.map((r) => r.status),
      [201, 200],
      'uploads work a millisecond before',
    )
    t.same(
      (await upload(cloud, phone.bob as string, 'b1')).map((r) => r.status),
      [201, 200],
    )
    t.equal((await sdk('POST', Buffer.from('x'))).status, 201)
    to(10 * DAY)
    const [blob, item] = await upload(cloud, phone.alice as string, 'n2')
    t.match(blob, { status: 409, body: { code: 'UPLOADS_CLOSED', error: /^new uploads are refused: the fakephone cloud is retiring/ } })
    t.match(item, {
      status: 409,
      body: {
        code: 'SYNC_STOPPED',
        error:
          'sync has stopped: the fakephone cloud is retiring and keeps your data read-only since 2026-01-11 00:00 UTC; read, ' +
          'export or migrate it before 2026-02-10 00:00 UTC',
      },
    })
    t.match((await sdk('POST', Buffer.from('y'))).body, { code: 'UPLOADS_CLOSED' })
    t.equal((await sdk('GET')).status, 200, 'an SDK app still reads')
    t.match(await read('alice'), { status: 200, body: { changes: [{ id: 'n1' }] } }, 'reads still work')
    t.match(notices(cloud, 'p-alice').at(-1), 'retirement: Sync has stopped')
    const status = await api(cloud, 'GET', '/api/service')
    t.match(status.body, {
      phase: 'migration-window',
      next: { phase: 'deadline-passed', at: T0 + 40 * DAY },
      accounts: [
        { account: 'alice', access: 'read-only', ownDeadline: false },
        { account: 'bob' },
        { account: 'carol', ownDeadline: true, deadlineAt: T0 + 20 * DAY, phase: 'migration-window' },
        { account: 'dave', migration: { how: 'export', at: T0 } },
      ],
    })
  })

  t.test("an account's own deadline: sign-in and every cloud API answer 410 Gone with the reason and the date", async (t) => {
    to(13 * DAY)
    t.match(notices(cloud, 'p-carol').at(-1), 'retirement: Get your data out before 2026-01-21 00:00 UTC')
    to(20 * DAY - 1)
    t.equal((await read('carol')).status, 200)
    t.equal((await api(cloud, 'GET', '/api/accounts/carol')).status, 200)
    // M2: a transfer grant issued a millisecond before the deadline reads nothing after it.
    const grant = (await api(cloud, 'POST', '/api/accounts/carol/transfer-grants', {})).body as { token: string }
    const holder = new ConsoleClient(cloud.apiUrl, grant.token)
    const pull = async (): Promise<{ status: number; body: unknown }> => {
      const res = await holder.call('POST', '/api/accounts/carol/blobs/read', Buffer.from('{"sha256":[]}'), 'application/json')
      return { status: res.status, body: res.status === 200 ? null : JSON.parse(res.body.toString()) }
    }
    t.equal((await pull()).status, 200)
    to(20 * DAY)
    t.match(await pull(), { status: 410, body: { code: 'ACCOUNT_CLOSED' } }, "a transfer grant's reads")
    const gone = {
      status: 410,
      body: {
        code: 'ACCOUNT_CLOSED',
        error:
          'account "carol" lost access on 2026-01-21 00:00 UTC: the fakephone cloud is retiring and the account was not ' +
          'migrated or exported by its deadline',
        at: T0 + 20 * DAY,
        date: '2026-01-21T00:00:00.000Z',
      },
    }
    t.match(await read('carol'), gone, "the phone's reads")
    t.match(await api(cloud, 'GET', '/api/accounts/carol'), gone, 'the sign-in')
    t.match(await api(cloud, 'GET', '/api/accounts/carol/items'), gone, "the console's pages")
    t.match(notices(cloud, 'p-carol').at(-1), 'retirement: This account has lost access')
    t.equal((await read('alice')).status, 200, 'the others keep theirs')
    t.equal((await api(cloud, 'GET', '/api/accounts')).status, 200, 'the list of accounts is the operator’s')
    t.equal((await api(cloud, 'GET', '/api/accounts/nobody')).status, 404)
    t.match(await api(cloud, 'PUT', '/api/service/retirement/accounts/carol', { deadline: '30d' }), {
      status: 409,
      body: { code: 'DEADLINE_PASSED' },
    })
  })

  t.test('the deadline: accounts not migrated lose access, migrated ones keep reading; Find Device works on', async (t) => {
    to(33 * DAY)
    t.match(notices(cloud, 'p-alice').at(-1), 'retirement: Get your data out before 2026-02-10 00:00 UTC')
    t.notMatch(notices(cloud, 'p-dave').at(-1), /Get your data out/, 'no reminder for an account that exported')
    to(39 * DAY)
    retirement().markMigrated('bob', 'migrate', undefined, 'to http://127.0.0.1:9')
    to(40 * DAY - 1)
    t.equal((await read('alice')).status, 200)
    t.equal((await sdk('GET')).status, 200)
    to(40 * DAY)
    t.match(await read('alice'), { status: 410, body: { code: 'ACCOUNT_CLOSED', at: T0 + 40 * DAY } })
    t.match(await sdk('GET'), { status: 410, body: { code: 'ACCOUNT_CLOSED' } }, 'and for its SDK apps')
    t.equal((await read('bob')).status, 200, 'an account that migrated keeps reading')
    t.throws(() => retirement().assertAccountOpen('alice'), { status: 410, code: 'ACCOUNT_CLOSED' }, 'what M2/M3 routes elsewhere ask')
    t.doesNotThrow(() => retirement().assertAccountOpen('bob'))
    t.doesNotThrow(() => retirement().assertAccountOpen('nobody'), 'an account that does not exist is the route’s to refuse')
    t.equal((await api(cloud, 'GET', '/api/accounts/dave')).status, 200, 'so does one that exported')
    t.match(rules(cloud, 'bob').at(-1), 'retirement-deadline')
    t.match(
      cloud.broker.cloud.cloudLog.list('bob', 1)[0]?.message,
      /account migrated on 2026-02-09 00:00 UTC: its data stays readable until/,
    )
    // Find Device: heartbeats stored, commands taken (this one is malformed: refused by the commands, not by the retirement).
    findSecret = (await cloud.broker.registry.add('p-find', 'alice')).secret
    const client = await connectDevice(t, cloud, 'p-find', findSecret)
    const stored = storedHeartbeats(cloud, 1)
    await client.publishAsync('fp/v1/p-find/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
    await stored
    t.equal(cloud.broker.store.device('p-find')?.last?.seq, 1, 'Find Device keeps working after the deadline')
    t.equal((await api(cloud, 'POST', '/api/devices/p-find/commands', {})).status, 400)
    t.equal((await cloudCall(cloud, 'Basic x', 'GET', '/share/nothing')).status, 404)
    client.end(true)
  })

  t.test('shutdown: phones are told the service is gone; Find Device stops; migrated data stays readable', async (t) => {
    to(53 * DAY)
    t.match(notices(cloud, 'p-alice').at(-2), 'retirement: The fakephone cloud shuts down on 2026-03-02 00:00 UTC')
    t.match(notices(cloud, 'p-alice').at(-1), 'retirement: Your cloud data will be deleted')
    to(60 * DAY - 1)
    t.equal((await read('bob')).status, 200)
    t.equal(retirement().shutDown(), false)
    to(60 * DAY)
    const shutDown = {
      status: 410,
      body: {
        code: 'SERVICE_SHUT_DOWN',
        error: 'the fakephone cloud service is gone: it shut down on 2026-03-02 00:00 UTC',
        at: T0 + 60 * DAY,
      },
    }
    t.match(await read('bob'), shutDown, "a migrated account's phone")
    t.match(await api(cloud, 'POST', '/api/devices/p-find/commands', {}), shutDown, 'Find Device commands')
    t.match(await cloudCall(cloud, 'Basic x', 'GET', '/share/nothing'), shutDown, 'share links')
    t.equal((await api(cloud, 'GET', '/api/accounts/bob/items')).status, 200, 'the source of a migration stays readable to re-verify')
    for (const a of ['alice', 'bob', 'carol', 'dave']) {
      t.match(notices(cloud, `p-${a}`).at(-1), 'service-gone: The fakephone cloud service is gone', a)
    }
    // No phone registers any more (device add, fleet provision, an import: test/cli/retirement.test.ts).
    await t.rejects(cloud.broker.registry.add('p-late', 'alice'), { code: 'SERVICE_SHUT_DOWN' })
    const client = await connectDevice(t, cloud, 'p-find', findSecret)
    await client.publishAsync('fp/v1/p-find/heartbeat', JSON.stringify(heartbeat(2)), { qos: 1 })
    t.ok(cloud.logs.has('heartbeat ignored: the cloud service was shut down (M1)'), 'heartbeats are not stored')
    client.end(true)
  })

  t.test('purge: in batches after the shutdown; a migrated account 30 days after its migration', async (t) => {
    t.equal(cloud.broker.cloud.items.live('alice').items.length, 0, 'the first batch: alice')
    t.match(await api(cloud, 'GET', '/api/accounts/alice'), { status: 410, body: { code: 'ACCOUNT_PURGED', at: T0 + 60 * DAY } })
    const purge = cloud.broker.cloud.cloudLog.list('alice', 1)[0]
    t.match(purge, {
      rule: 'retirement-purge',
      message: /^the service retired: deleted drive files 1, items 1, backups 0, location fixes 1, .*drive SDK tokens 1, .*Kept: /,
    })
    t.equal(purge?.count, 13, 'its note, its drive file, the fix p-find sent after the deadline, its SDK token, 9 notices')
    t.same(cloud.broker.store.history('p-find', 10), [], "the phone's location history is deleted with the account")
    t.match(cloud.broker.store.device('p-find'), { id: 'p-find', last: null }, 'and its last known position')
    to(61 * DAY - 1)
    t.equal(
      retirement()
        .status()
        .accounts.find((a) => a.account === 'carol')?.access,
      'closed',
    )
    to(61 * DAY)
    t.equal(
      retirement()
        .status()
        .accounts.find((a) => a.account === 'carol')?.access,
      'purged',
      'the next batch a day later',
    )
    to(62 * DAY)
    t.equal(
      retirement()
        .status()
        .accounts.find((a) => a.account === 'dave')?.access,
      'purged',
    )
    t.match(notices(cloud, 'p-bob').at(-1), 'retirement: Your cloud data will be deleted')
    t.same(notices(cloud, 'p-bob').filter((n) => n.startsWith('retirement: The fakephone cloud is closing')).length, 1, 'every notice once')
    to(69 * DAY - 1)
    t.equal(cloud.broker.cloud.items.live('bob').items.length, 1, "bob's source data is kept for 30 days after his migration")
    to(69 * DAY)
    t.equal(cloud.broker.cloud.items.live('bob').items.length, 0)
    t.match(await api(cloud, 'GET', '/api/accounts/bob'), { status: 410, body: { code: 'ACCOUNT_PURGED' } })
    t.match(await read('bob'), { status: 410, body: { code: 'ACCOUNT_PURGED' } })
    t.match(retirement().status(), { phase: 'shut-down', next: null })
    t.same(notices(cloud, 'p-bob'), ['service-gone: The fakephone cloud service is gone'], 'the purge keeps only the service-gone notice')
  })
})
