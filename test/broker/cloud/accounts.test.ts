/**
 * Accounts (A1-A3) on a real broker: quota, membership and its end, the
 * year of inactivity, the account's cloud service as its phones report it,
 * and the console's simulated clock -- through the console API and CLI.
 */
import t from 'tap'
import { DEFAULT_BROKER_OPTIONS } from '../../../broker/server.js'
import { ManualClock, SimulatedClock } from '../../../common/clock.js'
import { addDevice, connectDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { run } from '../../fixtures/io.js'
import { quotaBar } from '../../../cli/account-commands.js'
import { makeOwner, provision, signed } from '../../fixtures/owner.js'

const DAY = 86_400_000
const advance = (cloud: Cloud, ms: number): void => (cloud.clock as ManualClock).advance(ms)
const GB = 1024 ** 3

async function api(cloud: Cloud, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${cloud.consoleToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const consoleCli = (cloud: Cloud, ...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args])

/** A phone (raw MQTT client) that reports its switches on the status topic. */
async function reporter(t: Parameters<typeof connectDevice>[0], cloud: Cloud, id: string, account: string) {
  const secret = await addDevice(cloud, id, account)
  const client = await connectDevice(t, cloud, id, secret)
  let at = 0
  return (cloudService: boolean, findDevice = true) =>
    client.publishAsync(`fp/v1/${id}/status`, JSON.stringify({ cloudService, findDevice, at: ++at }), { qos: 1, retain: true })
}

t.test('A1: charges count against the quota; a store that would not fit is refused with the reason and nothing changes', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: 10 * 1024 } },
  })
  await addDevice(cloud, 'p1', 'alice')
  const accounts = cloud.broker.cloud.accounts
  accounts.charge('alice', 6 * 1024, 'a photo')
  t.throws(() => accounts.charge('alice', 5 * 1024, 'a backup'), {
    code: 'QUOTA_EXCEEDED',
    message: 'over quota: a backup needs 5.0 KB but 4.0 KB of 10 KB is free; nothing stored was touched',
  })
  t.equal(accounts.need('alice').usedBytes, 6 * 1024, 'the refused store changed nothing')
  accounts.release('alice', 7 * 1024)
  t.equal(accounts.need('alice').usedBytes, 0, 'use never goes below nothing')
  t.throws(() => accounts.need('nobody'), { code: 'NOT_FOUND' })
  t.throws(() => accounts.charge('nobody', 1, 'a photo'), { code: 'NOT_FOUND', message: 'account "nobody" not found' })
  const { out } = await consoleCli(cloud, 'accounts')
  t.match(out, /alice\s+free\s+\[-{20}\] 0% 0 B of 10 KB\s+on/)
  t.equal(accounts.get('alice')?.quotaBytes, 10 * 1024)
  t.equal(quotaBar(5, 0), '[####################] 100% 5 B of 0 B', 'a zero quota is full')
  await addDevice(cloud, 'gone', 'carol')
  cloud.broker.registry.remove('gone')
  t.match((await consoleCli(cloud, 'account', 'carol')).out, /devices\s+none/, 'an account outlives its devices')
})

t.test('A2: a membership raises the quota and the bin window; when it ends only those change back', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'p1', 'alice')
  cloud.broker.cloud.accounts.charge('alice', 3 * GB, 'photos')
  let res = await api(cloud, 'PUT', '/api/accounts/alice/membership', { tier: 'premium', days: 30 })
  t.equal(res.status, 200)
  t.match(res.body.account, { tier: 'premium', quotaBytes: 200 * GB, binMs: 180 * DAY, usedBytes: 3 * GB })
  advance(cloud, 30 * DAY - 1)
  t.equal(cloud.broker.cloud.accounts.need('alice').tier, 'premium', 'a millisecond before the end it is still premium')
  advance(cloud, 1)
  t.match(
    cloud.broker.cloud.accounts.need('alice'),
    { tier: 'free', quotaBytes: 5 * GB, binMs: 30 * DAY, usedBytes: 3 * GB, premiumUntil: null },
    'the end changes the window and quota, not the data',
  )
  const { out } = await consoleCli(cloud, 'account', 'alice')
  t.match(out, /membership ended: free tier, 30-day recycle bin, free quota; stored data unchanged/)
  t.match(out, /quota\s+\[#{12}-{8}\] 60% 3.0 GB of 5.0 GB/)
  res = await api(cloud, 'PUT', '/api/accounts/alice/membership', { tier: 'gold' })
  t.equal(res.status, 400)
  t.match((await consoleCli(cloud, 'membership', 'alice', 'premium')).out, /membership\s+premium\n/, 'open-ended until ended')
  t.match((await consoleCli(cloud, 'membership', 'alice', 'free')).out, /membership\s+free/)
  t.match((await consoleCli(cloud, 'membership', 'alice', 'gold')).err, /the tier is premium or free/)
  t.match((await consoleCli(cloud, 'membership', 'alice', 'free', '--days', '3')).err, /--days goes with premium/)
  t.match(JSON.parse((await consoleCli(cloud, '--json', 'membership', 'alice', 'premium', '--days', '7')).out), {
    tier: 'premium',
    premiumUntil: cloud.clock.now() + 7 * DAY,
  })
})

t.test(
  'A3: a year without activity freezes the account and clears its data, after a notice 30 days before; any activity resets the year',
  async (t) => {
    const cloud = await startCloud(t)
    const status = await reporter(t, cloud, 'p1', 'alice')
    const accounts = cloud.broker.cloud.accounts
    const cleared: string[] = []
    accounts.onFreeze('test-data', (account) => {
      cleared.push(account)
      return 42
    })
    const start = cloud.clock.now()
    advance(cloud, 300 * DAY)
    t.equal((await api(cloud, 'GET', '/api/accounts/alice')).status, 200, 'the owner opens the account in the console: a sign-in')
    t.match(accounts.need('alice'), { lastActivity: 'console-sign-in', lastActivityAt: start + 300 * DAY, freezesAt: start + 665 * DAY })
    advance(cloud, 335 * DAY - 1)
    t.equal(cloud.broker.framework.queue.counts('p1').queued, 0, 'no notice yet')
    advance(cloud, 1)
    const [notice] = cloud.broker.framework.queue.list('p1', 10)
    t.match(notice, { kind: 'cloud', title: 'Your cloud account will be frozen' }, '30 days before, the owner is told on the phone')
    await status(true, false)
    await status(true, true)
    t.equal(accounts.need('alice').lastActivity, 'find-device-on', 'switching Find Device on resets the year')
    t.equal(accounts.need('alice').lastActivityAt, cloud.clock.now())
    advance(cloud, 365 * DAY - 1)
    t.same(cleared, [], 'a millisecond short of a year: nothing happens')
    advance(cloud, 1)
    t.same(cleared, ['alice'], 'a year without activity: its cloud data is cleared')
    const frozen = accounts.need('alice')
    t.match(frozen, { frozenAt: cloud.clock.now(), freezesAt: null })
    t.throws(() => accounts.charge('alice', 1, 'a photo'), { code: 'FROZEN' })
    t.throws(() => accounts.assertServiceOn('alice'), { code: 'FROZEN' })
    t.match(
      (await consoleCli(cloud, 'accounts')).out,
      /FROZEN since \d{4}-\d\d-\d\d\s+find-device-on, 365d 0h ago\s+-/,
      'the console lists it frozen, with no freeze date ahead',
    )
    const shown = await consoleCli(cloud, 'account', 'alice')
    t.match(shown.out, /frozen\s+since \d{4}-\d\d-\d\d, cloud data cleared/, 'the owner sees it was frozen')
    t.match(
      shown.out,
      new RegExp(
        'inactivity-freeze\\s+44\\s+account frozen after a year without activity \\(the last: find-device-on on \\d{4}-\\d\\d-\\d\\d\\); ' +
          'cloud data cleared: .*test-data 42, .*notifications 2, ',
      ),
      'what the freeze cleared, kind by kind: the clearers, and the two notices on the phone',
    )
    t.equal(accounts.need('alice').frozenAt, null, 'signing in to the console brings the account back (empty)')
    t.match((await consoleCli(cloud, 'accounts')).out, /console-sign-in, 0s ago/)
  },
)

t.test('the account cloud service is off only when every phone of it has turned it off', async (t) => {
  const cloud = await startCloud(t)
  const one = await reporter(t, cloud, 'p1', 'alice')
  const two = await reporter(t, cloud, 'p2', 'alice')
  const accounts = cloud.broker.cloud.accounts
  const events: string[] = []
  accounts.on('service-off', (a) => events.push(`off ${a}`))
  accounts.on('service-on', (a) => events.push(`on ${a}`))
  // The broker takes a status in before it acknowledges the publish.
  await one(false)
  t.equal(accounts.need('alice').serviceOn, true, 'the other phone still has it on')
  const offAt = cloud.clock.now()
  await two(false)
  t.match(accounts.need('alice'), { serviceOn: false, serviceOffAt: offAt })
  t.match((await consoleCli(cloud, 'accounts')).out, /off for 0s/)
  await one(true)
  t.same(events, ['off alice', 'on alice'])
  const log = (await consoleCli(cloud, 'account', 'alice')).out
  t.match(log, /service-on\s+0\s+cloud service turned on on p1/)
  // The log's WHEN column reads as every other table's UTC column does, not as the raw ISO instant.
  t.match(log, /\nWHEN \(UTC\) +RULE +COUNT +WHAT\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +service-on /)
})

t.test('simulated time: `console clock advance` runs every rule that falls due, in order; real time refuses to move', async (t) => {
  const real = new ManualClock()
  const cloud = await startCloud(t, {}, new SimulatedClock(real))
  await addDevice(cloud, 'p1', 'alice')
  await api(cloud, 'PUT', '/api/accounts/alice/membership', { tier: 'premium', days: 3 })
  t.match((await consoleCli(cloud, 'clock')).out, /\(simulated, 0s ahead of real time\)/)
  const moved = await consoleCli(cloud, 'clock', 'advance', '73h')
  t.match(moved.out, 'On the way: 1 cloud-log entry (membership 1) for alice: `console account alice` shows them.\n')
  t.equal(cloud.broker.cloud.accounts.need('alice').tier, 'free', 'the membership ended inside the jump')
  t.match((await consoleCli(cloud, 'clock')).out, /\(simulated, 3d 1h ahead of real time\)/)
  t.match((await api(cloud, 'POST', '/api/clock/advance', { by: 'soon' })).body, { code: 'BAD_REQUEST', error: /not a duration/ })
  t.equal((await api(cloud, 'POST', '/api/clock/advance', { by: 3651 * 86_400_000 })).status, 400)
  t.equal((await api(cloud, 'POST', '/api/clock/advance', { by: 60_000 })).status, 200, 'milliseconds work too')
  const realCloud = await startCloud(t)
  t.equal(
    (await run(['console', '--api', realCloud.apiUrl, '--data', realCloud.dataDir, 'clock', 'advance', '1h'])).err,
    'error: the cloud runs on real time; start the broker with --simulated-time (or "simulatedTime": true in its --config file) ' +
      'to move its clock\n',
  )
  t.match((await run(['console', '--api', realCloud.apiUrl, '--data', realCloud.dataDir, 'clock'])).out, /\(real time\)/)
  t.match(JSON.parse((await run(['console', '--json', '--api', realCloud.apiUrl, '--data', realCloud.dataDir, 'accounts'])).out), {
    accounts: [],
  })
  t.match((await run(['console', '--api', realCloud.apiUrl, '--data', realCloud.dataDir, 'accounts'])).out, /No accounts yet/)
})

t.test('simulated time: a move writes in transactions, and two moves at once run one after the other', async (t) => {
  const cloud = await startCloud(t, {}, new SimulatedClock(new ManualClock()))
  const HOUR = 3_600_000
  const seen: { at: number; inTransaction: boolean }[] = []
  for (const h of [1, 3])
    cloud.clock.after(h * HOUR, () => seen.push({ at: cloud.clock.now(), inTransaction: cloud.broker.db.inTransaction }))
  const start = cloud.clock.now()
  const [first, second] = await Promise.all([
    api(cloud, 'POST', '/api/clock/advance', { by: '2h' }),
    api(cloud, 'POST', '/api/clock/advance', { by: '2h' }),
  ])
  t.same(
    seen.map((s) => s.inTransaction),
    [true, true],
    'each rule of the move runs inside a transaction (one per slice)',
  )
  t.same(
    seen.map((s) => s.at - start),
    [HOUR, 3 * HOUR],
    'each at its own time',
  )
  const [earlier, later] = [first.body, second.body].sort((a, b) => (a.from as number) - (b.from as number))
  t.equal(later?.from, earlier?.now, 'the later move starts where the earlier arrived')
  t.equal(cloud.broker.db.inTransaction, false, 'committed when the move is done')
})

t.test('simulated time: `clock advance` says what the rules did on the way, or that none had anything to do', async (t) => {
  const cloud = await startCloud(t, {}, new SimulatedClock(new ManualClock()))
  // An empty cloud: its rules still wake (a day at most apart, to look again), but none has anything to do.
  const empty = await consoleCli(cloud, 'clock', 'advance', '7d')
  t.match(
    empty.out,
    new RegExp(
      String.raw`^Moved the cloud clock from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.\n` +
        String.raw`No rule had anything to do on the way: nothing for the cloud log, no ` +
        String.raw`command or notification\.\n$`,
    ),
  )
  t.notMatch(empty.out, /timer/)
  const json = JSON.parse((await consoleCli(cloud, '--json', 'clock', 'advance', '7d')).out) as { fired: number; effects: unknown }
  t.ok(json.fired > 0, `${json.fired} timers fell due meanwhile, the JSON still counts them`)
  t.same(json.effects, { log: [], accounts: [], commandsExpired: 0, notificationsQueued: 0, notificationsExpired: 0 })

  const owner = makeOwner(t)
  await provision(cloud, owner, 'p1')
  await addDevice(cloud, 'p2', 'bob')
  for (const account of ['alice', 'bob']) await api(cloud, 'PUT', `/api/accounts/${account}/membership`, { tier: 'premium', days: 1 })
  t.equal((await api(cloud, 'POST', '/api/devices/p1/notifications', { title: 'soon gone', ttlMs: 3_600_000 })).status, 201)
  const ring = signed(owner, 'p1', 'ring', { seconds: 5 }, cloud.clock.now())
  t.equal((await api(cloud, 'POST', '/api/devices/p1/commands', ring)).status, 201)
  t.equal(
    (await consoleCli(cloud, 'clock', 'advance', '2d')).out.split('\n')[1],
    'On the way: 2 cloud-log entries (membership 2) for alice, bob: `console account NAME` shows them; 1 command expired; ' +
      '1 notification expired.',
  )
})
