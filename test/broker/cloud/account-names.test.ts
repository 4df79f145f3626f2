/**
 * Account names made before the account-name rule (broker/cloud/account-names.ts). No code path makes such a name now,
 * so each test writes it into the database directly through SQLite, as an older fakephone left it: its owner is not
 * locked out -- the devices sign in, the console reads and exports the account (M3), OwnTracks locations arrive on an
 * encoded topic (F1) -- but the account gets no new device and is no import's target; the broker says at start how
 * many there are and what to do. Names no account has are refused with the rule, after the caller is known.
 */
import t from 'tap'
import { join } from 'node:path'
import { openDb } from '../../../broker/db.js'
import { hashSecret } from '../../../broker/devices/registry.js'
import { ACCOUNT_NAME_RULE } from '../../../common/contract.js'
import { owntracksTopic } from '../../../common/owntracks.js'
import { quoted } from '../../../common/terminal-text.js'
import { connectDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { rawRequest } from '../../fixtures/http.js'
import { run } from '../../fixtures/io.js'
import { tempDir } from '../../fixtures/scope.js'

/** A space and a `/`: a file name and a topic level it would break. */
const LEGACY = 'Bob Smith/phones'
const SECRET = 'secret-of-a-phone-registered-before-the-rule'

/** A data directory holding two accounts named before the rule and one device of the first, written through SQLite. */
function legacyDataDir(dir: string): string {
  const data = join(dir, 'cloud')
  const db = openDb(data)
  // Directly through SQLite: the registry refuses these names now, an older fakephone did not.
  const account = db.prepare('INSERT INTO accounts (id, last_activity_at, created_at) VALUES (?, 0, 0)')
  account.run(LEGACY)
  account.run('owner+1')
  db.prepare('INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, 0)').run('old-phone', LEGACY, hashSecret(SECRET))
  db.prepare('INSERT INTO device_state (device_id) VALUES (?)').run('old-phone')
  db.close()
  return data
}

const call = (cloud: Cloud, method: string, path: string, body?: unknown, auth = `Bearer ${cloud.consoleToken}`) =>
  rawRequest(cloud.apiUrl, method, path, { authorization: auth, body: body === undefined ? undefined : JSON.stringify(body) })

t.test('the broker says once at start how many accounts have names the rule refuses, and what their owners can do', async (t) => {
  const cloud = await startCloud(t, { dataDir: legacyDataDir(tempDir(t)) })
  const warned = cloud.logs.lines.filter((l) => /accounts with a name the account-name rule refuses/.test(l.msg))
  t.equal(warned.length, 1, 'one line')
  t.match(warned[0], {
    level: 40,
    accounts: 2,
    names: [LEGACY, 'owner+1'],
    rule: ACCOUNT_NAME_RULE,
    msg: /^2 accounts with a name .* get no new devices\. To give one a name that meets the rule, export it \(fakephone console/,
  })
  t.match(warned[0]?.msg, /and import it under a new name \(fakephone console import BAG --account NEW\)\.$/)
  await cloud.restart()
  t.equal(cloud.logs.lines.filter((l) => /with a name the account-name rule refuses/.test(l.msg)).length, 2, 'and once more at each start')
})

t.test('F1 M3 an account named before the rule keeps its devices signing in, is read and exported; no new device, no import', async (t) => {
  const dir = tempDir(t)
  const cloud = await startCloud(t, { dataDir: legacyDataDir(dir) })
  const path = `/api/accounts/${encodeURIComponent(LEGACY)}`

  // Its phone signs in, and its OwnTracks location arrives on the encoded topic, one level for the name.
  const phone = await connectDevice(t, cloud, 'old-phone', SECRET)
  const topic = owntracksTopic(LEGACY, 'old-phone')
  t.equal(topic, 'owntracks/~%42ob%20%53mith%2Fphones/old-phone')
  await phone.publishAsync(topic, JSON.stringify({ _type: 'location', tst: 2_000_000_000, lat: 1, lon: 2, batt: 50 }), { qos: 1 })
  cloud.broker.store.flush()
  t.equal(cloud.broker.store.history('old-phone', 10).length, 1, 'the location is stored')

  // The console reads it and exports it.
  t.match(await call(cloud, 'GET', path), { status: 200, body: { account: { id: LEGACY } } })
  t.match(await call(cloud, 'GET', `${path}/log`), { status: 200, body: { account: LEGACY } })
  t.match(await call(cloud, 'GET', `${path}/export`), { status: 200, body: { account: { id: LEGACY }, devices: [{ id: 'old-phone' }] } })
  const bag = join(dir, 'bag')
  const exported = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'export', LEGACY, '--out', bag])
  t.equal(exported.code, 0, exported.err)

  // It gets no new device, here or from the command line, and is no import's target.
  await t.rejects(cloud.broker.registry.add('another', LEGACY), { code: 'BAD_ACCOUNT' })
  const added = await run(['device', 'add', 'another', '--account', LEGACY, '--data', cloud.dataDir, '--keys', join(dir, 'keys')])
  t.equal(added.code, 1)
  t.equal(added.err, `error: option '--account <name>' argument '${LEGACY}' is invalid. ${ACCOUNT_NAME_RULE}\n`)
  t.match(await call(cloud, 'POST', `${path}/import`, {}), {
    status: 400,
    body: { code: 'BAD_REQUEST', error: `an import goes into an account whose name meets the rule: ✖ ${ACCOUNT_NAME_RULE}` },
  })
  // Under a name that meets the rule the bag goes in: the way to a new name.
  const imported = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'import', bag, '--account', 'bob-smith'])
  t.equal(imported.code, 1, 'its device (and with it its history) stays with the old account here')
  t.match(imported.out, /old-phone.*registered to account .+ on this cloud: import into that account, or remove/)
  t.match(await call(cloud, 'GET', '/api/accounts/bob-smith'), { status: 200, body: { account: { id: 'bob-smith' } } })
})

t.test('a name no account has and the rule refuses is a 400 naming the rule, once the caller is known', async (t) => {
  const cloud = await startCloud(t, { dataDir: legacyDataDir(tempDir(t)) })
  for (const name of ['a/b', 'Bob Smith', '.hidden', 'x'.repeat(65), 'tab\there']) {
    const path = `/api/accounts/${encodeURIComponent(name)}`
    t.same(
      await call(cloud, 'GET', path),
      { status: 400, body: { error: `bad account ${quoted(name)}: ✖ ${ACCOUNT_NAME_RULE}`, code: 'BAD_REQUEST' } },
      JSON.stringify(name),
    )
    t.equal((await call(cloud, 'POST', `${path}/import`, {})).status, 400, 'an import does not make it')
    t.equal((await call(cloud, 'GET', path, undefined, 'Bearer wrong')).status, 401, 'without credentials: 401, not whether it exists')
  }
  t.equal((await call(cloud, 'PUT', `/api/service/retirement/accounts/${encodeURIComponent('a b')}`, {})).status, 400)
  t.equal((await call(cloud, 'GET', '/api/accounts/nobody')).status, 404, 'a name the rule accepts that no account has: 404 as before')
  t.equal((await call(cloud, 'GET', '/api/accounts')).status, 200)
  t.equal(cloud.broker.registry.list().length, 1, 'nothing was made')
})
