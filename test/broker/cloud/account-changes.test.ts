/**
 * The broker says to the console, as it happens, that an account's cloud data changed (S, R, B, D, A, M1): what the web
 * console's data panel follows. Only the console hears it -- a phone, even of that account, may not subscribe -- and a
 * burst of changes is said once.
 */
import t from 'tap'
import { CloudClient } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import { AccountChanges } from '../../../broker/cloud/account-changes.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { ManualClock, SimulatedClock } from '../../../common/clock.js'
import { ACCOUNT_CHANGES_FILTER, accountChangedTopic, type AccountChanged } from '../../../common/contract.js'
import { SYNC_PATH, ItemReplySchema } from '../../../common/cloud/sync-api.js'
import { addDevice, connectConsole, connectDevice, recordMessages, startCloud, subackCode } from '../../fixtures/cloud.js'

t.test("an account's changes reach the console: a phone's sync, the owner's actions, the clock and the retirement plan", async (t) => {
  const cloud = await startCloud(t, {}, new SimulatedClock(new ManualClock()))
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  await addDevice(cloud, 'phone-b', 'bob')
  const console_ = await connectConsole(t, cloud)
  t.equal(await subackCode(console_, ACCOUNT_CHANGES_FILTER), 1)
  const heard = recordMessages(console_)
  const next = (want: AccountChanged): Promise<unknown> =>
    heard.waitFor((topic, payload) => topic === accountChangedTopic(want.account) && JSON.stringify(payload) === JSON.stringify(want))
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)

  const phone = new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('phone-a', secret) })
  const bytes = Buffer.from('milk, eggs')
  const sha256 = await phone.upload(bytes)
  await phone.call('PUT', `${SYNC_PATH}/notes/n-1`, ItemReplySchema, { sha256, size: bytes.length, meta: {}, modifiedAt: 1 })
  t.same(await next({ account: 'alice', clock: false }), { account: 'alice', clock: false }, "a phone's sync: its account")
  t.equal(accountChangedTopic('alice'), 'fp/v1/accounts/alice/changed')

  await api.send('PUT', '/api/accounts/bob/membership', { tier: 'premium', days: 30 })
  t.ok(await next({ account: 'bob', clock: false }), "the owner's action on an account: that account")

  await api.send('POST', '/api/clock/advance', { by: '1d' })
  t.ok(await next({ account: null, clock: true }), 'the clock moved: every account, said with the move')
  t.equal(accountChangedTopic(null), 'fp/v1/accounts/*/changed')

  await api.send('PUT', '/api/service/retirement', { announce: '10d', syncOff: '20d', migrationDeadline: '30d', shutdown: '40d' })
  t.ok(await next({ account: null, clock: false }), 'the retirement plan: every account')
})

t.test("a phone may not hear its account's changes, not even its own account's", async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  t.equal(await subackCode(phone, accountChangedTopic('alice')), 128)
  t.equal(await subackCode(phone, ACCOUNT_CHANGES_FILTER), 128)
  t.equal(await subackCode(phone, 'fp/v1/#'), 128)
})

t.test('changes are gathered and said once per account; nothing is gathered while no console listens', async (t) => {
  const said: AccountChanged[] = []
  let listening = false
  let done: () => void = () => {}
  const changes = new AccountChanges(
    (c) => {
      said.push(c)
      done()
    },
    () => listening,
    1,
  )
  changes.touch('alice')
  changes.everything(true)
  changes.flush()
  t.same(said, [], 'no console: nothing said')
  listening = true
  const flushed = new Promise<void>((resolve) => (done = resolve))
  for (let i = 0; i < 1000; i++) changes.touch(i % 2 === 0 ? 'alice' : 'bob')
  await flushed
  t.same(said, [
    { account: 'alice', clock: false },
    { account: 'bob', clock: false },
  ])
  said.length = 0
  changes.touch('alice')
  changes.everything()
  changes.flush()
  t.same(said, [{ account: null, clock: false }], 'every account covers the one')
  said.length = 0
  changes.touch('alice')
  changes.stop()
  changes.flush()
  t.same(said, [], 'stopped: what was gathered is dropped')
  // A phone's upload answered while the broker stops, after its cloud part stopped: nothing is gathered any more, so no
  // timer says it once the broker is gone (its publish threw "the broker is not started", uncaught, in a timer).
  changes.touch('alice')
  changes.everything(true)
  changes.flush()
  t.same(said, [], 'stopped: a change that comes after is not gathered')
  changes.start()
  changes.touch('alice')
  changes.flush()
  t.same(said, [{ account: 'alice', clock: false }], 'started again: said as before')
})
