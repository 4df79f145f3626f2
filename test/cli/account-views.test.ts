/**
 * The console's account views (A1-A3) read with their schema (common/cloud/account-api.ts): a real broker's answers
 * parse, a frozen account's among them, and an answer this console cannot read -- another version's broker -- is a
 * clear error that names what is wrong, not a table of half-read values.
 */
import t from 'tap'
import type { ManualClock } from '../../common/clock.js'
import { AccountListSchema, AccountOneSchema } from '../../common/cloud/account-api.js'
import { deviceOnDisk, startCloud } from '../fixtures/cloud.js'
import { run } from '../fixtures/io.js'
import { otherVersionBroker } from '../fixtures/http.js'

t.test(
  'A3, A1: `console accounts` and `console account` read a real broker, a frozen account with its clearing too (the view as ' +
    'found: opening it signs in)',
  async (t) => {
    const cloud = await startCloud(t)
    await deviceOnDisk(t, cloud)
    const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
    const clock = cloud.clock as ManualClock
    clock.advance((cloud.broker.cloud.accounts.need('alice').freezesAt as number) - clock.now())
    const listed = await run([...api, '--json', 'accounts'])
    t.equal(listed.code, 0)
    t.match(AccountListSchema.parse(JSON.parse(listed.out)).accounts, [{ id: 'alice', frozenAt: clock.now(), clearedAt: clock.now() }])
    t.match((await run([...api, 'accounts'])).out, /\nalice .* FROZEN since 2027-01-01/)
    const one = await run([...api, '--json', 'account', 'alice'])
    t.equal(one.code, 0)
    t.match(AccountOneSchema.parse(JSON.parse(one.out)), {
      account: { id: 'alice', frozenAt: clock.now(), clearedAt: clock.now() },
    })
  },
)

t.test('A3: an account list this console cannot read is refused with what is wrong; nothing half-read is shown', async (t) => {
  // A broker of another version: no quota fields.
  const { url, console: api } = await otherVersionBroker(t, (_method, path) =>
    path === '/api/accounts'
      ? { now: 0, accounts: [{ id: 'alice', tier: 'free', lastActivity: 'sync', devices: ['phone-a'] }] }
      : { now: 0, account: { id: 'alice', tier: 'gold' } },
  )

  const listed = await run([...api, 'accounts'])
  t.equal(listed.code, 1, 'it fails')
  t.equal(listed.out, '', 'no table of half-read accounts')
  t.match(
    listed.err,
    new RegExp(
      `^error: ${url} answered GET /api/accounts with what this console cannot read \\(.*quotaBytes.*\\): is it a fakephone ` +
        `broker of another version\\?`,
    ),
    'saying which field it could not read',
  )
  const one = await run([...api, 'account', 'alice'])
  t.equal(one.code, 1)
  t.match(one.err, /answered GET \/api\/accounts\/alice with what this console cannot read \(.*tier/, 'one account too')
})
