/**
 * M1: what the retirement's purge leaves of an account. An account is given
 * one of everything the cloud keeps, over the paths a phone, an SDK app and
 * the console use (a real broker and a real agent on a manual clock); the
 * service retires and the account is purged. Then every table of the schema
 * (read from sqlite_master, so a table added later is read too) is checked:
 * a table with an `account` or `device_id` column holds none of the
 * account's rows, but those the purge keeps on purpose (KEPT, as
 * broker/cloud/retirement-purge.ts and README's M1 section say), and a table
 * with neither column must be named in NOT_BY_OWNER with how it is checked.
 * The blobs on disk are checked too; another account's data is untouched.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { ManualClock } from '../../../common/clock.js'
import {
  addDevice,
  connectDevice,
  firstFix,
  heartbeat,
  startAgent,
  startCloud,
  storedHeartbeats,
  type Cloud,
  basicAuth,
  cloudCall,
} from '../../fixtures/cloud.js'
import { backupReady, HOUR, nextBackup } from '../../fixtures/backup.js'
import { notify } from '../../fixtures/framework.js'
import { closedPort } from '../../fixtures/ports.js'
import { listening, makeOwner, provision, run, signed } from '../../fixtures/owner.js'

const DAY = 86_400_000
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A phone's synced note: its blob, then the item. */
async function putNote(cloud: Cloud, auth: string, id: string): Promise<string> {
  const bytes = Buffer.from(`alice's private note ${id}`)
  const sha256 = sha(bytes)
  t.equal((await cloudCall(cloud, auth, 'PUT', `/cloud/v1/blobs/${sha256}?size=${bytes.length}&offset=0`, bytes)).status, 201)
  const item = await cloudCall(cloud, auth, 'PUT', `/cloud/v1/sync/notes/${id}`, {
    sha256,
    size: bytes.length,
    meta: { title: id },
    modifiedAt: cloud.clock.now(),
  })
  t.equal(item.status, 200, `note ${id} synced`)
  return sha256
}

/**
 * What the purge keeps of the account, by table, as the module says: the rows of the account left in it must all pass.
 * Every other table with an `account` or `device_id` column must hold none of its rows.
 */
const KEPT: Record<string, { why: string; where: string }> = {
  devices: { why: 'a phone that signs in is told the service is gone', where: '1' },
  device_state: {
    why: 'presence and the switches the phone last reported; no fix, no lost mode',
    where: `seq IS NULL AND at IS NULL AND lat IS NULL AND lon IS NULL AND accuracy IS NULL AND speed IS NULL AND battery IS NULL
      AND charging IS NULL AND network IS NULL AND received_at IS NULL AND lost_mode IS NULL AND lost_message IS NULL
      AND lost_phone IS NULL AND lost_mode_at IS NULL`,
  },
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
  // Content-addressed: alice's blobs (no other account holds them) must be gone, rows and files.
  blobs: 'sha256 IN (SELECT value FROM json_each(@blobs))',
  // Share links by file: every file they pointed at was alice's.
  drive_shares: '1',
}

t.test('M1: the purge leaves nothing of an account but what it keeps on purpose, table by table and on disk', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const db = cloud.broker.db
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'p-alice', 'alice')
  const phone = basicAuth('p-alice', secret)
  const secret2 = await addDevice(cloud, 'p-alice-2', 'alice')
  const bob = basicAuth('p-bob', await addDevice(cloud, 'p-bob', 'bob'))

  // Find Device: a real phone's fixes (location history, last known position), its switches, and lost mode with its receipt.
  const agent = await startAgent(t, cloud, 'p-alice', secret, { ownerKey: owner.publicKey, systemProfile: true })
  await firstFix(cloud, agent)
  await listening(cloud, 'p-alice')
  await backupReady(cloud, 'p-alice')
  const lost = await run(
    cloud,
    signed(owner, 'p-alice', 'lost-mode', { on: true, message: 'Lost! Call Alice', phone: '555-0100' }, clock.now()),
  )
  t.equal(lost.state, 'succeeded')
  t.match(cloud.broker.store.device('p-alice')?.lostMode, { on: true, message: 'Lost! Call Alice', phone: '555-0100' })
  // B1: the 03:00 plan and the backup the phone makes for it.
  const made = nextBackup(agent)
  clock.advance(3 * HOUR)
  const backup = await made
  // X2 behaviour logs, and a fix of the second phone.
  const second = await connectDevice(t, cloud, 'p-alice-2', secret2)
  await second.publishAsync('fp/v1/p-alice-2/status', JSON.stringify({ cloudService: true, findDevice: true, at: clock.now() }), {
    qos: 1,
    retain: true,
  })
  await second.publishAsync('fp/v1/p-alice-2/logs', JSON.stringify({ events: [{ seq: 0, at: 1, type: 'screen-on', detail: '' }] }), {
    qos: 1,
  })
  const stored = storedHeartbeats(cloud, 1)
  await second.publishAsync('fp/v1/p-alice-2/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  await stored
  // A2: a member, so recently deleted keeps its note 180 days, past the purge. S1, R1: a synced note and one deleted.
  const member = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'PUT', '/api/accounts/alice/membership', {
    tier: 'premium',
    days: 365,
  })
  t.equal(member.status, 200)
  const blobs = [backup.sha256, await putNote(cloud, phone, 'kept'), await putNote(cloud, phone, 'binned')]
  t.equal((await cloudCall(cloud, phone, 'DELETE', '/cloud/v1/sync/notes/binned')).status, 200)
  await putNote(cloud, bob, 'bobs')
  // D1: a drive file from an SDK app (its token), shared by a link.
  const token = (await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'POST', '/api/accounts/alice/drive/tokens', { app: 'gallery' }))
    .body.token as string
  const file = Buffer.from("alice's tax return")
  blobs.push(sha(file))
  const put = await cloudCall(cloud, `Bearer ${token}`, 'POST', '/sdk/v1/files?name=tax.txt', file)
  const fileId = (put.body.file as { id: string }).id
  const shared = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'POST', `/api/accounts/alice/drive/files/${fileId}/shares`)
  t.equal(shared.status, 201)
  // S3: an upload cut short (a partial file on disk) and bytes no item claimed (a proof, a blob no one holds): upload-expiry.ts
  // removes both a day later, long before the purge; the checks below show nothing of them is left.
  const partial = Buffer.from('a photo never finished')
  t.equal(
    (await cloudCall(cloud, phone, 'PUT', `/cloud/v1/blobs/${sha(partial)}?size=${partial.length + 10}&offset=0`, partial)).status,
    200,
  )
  const unclaimed = Buffer.from('bytes no item claimed')
  blobs.push(sha(unclaimed))
  t.equal(
    (await cloudCall(cloud, phone, 'PUT', `/cloud/v1/blobs/${sha(unclaimed)}?size=${unclaimed.length}&offset=0`, unclaimed)).status,
    201,
  )
  // X3: a notification with a body of the owner's.
  notify(cloud, 'p-alice-2', { title: 'Private', body: "alice's secret text" })
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

  const ofAlice = (table: string, columns: Set<string>): string =>
    columns.has('account') ? 'account = @account' : 'device_id IN (SELECT id FROM devices WHERE account = @account)'
  const tables = db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all()
    .map(({ name }) => ({
      name,
      columns: new Set(
        db
          .prepare<[], { name: string }>(`PRAGMA table_info("${name}")`)
          .all()
          .map((c) => c.name),
      ),
    }))
  const count = (table: string, where: string): number =>
    db.prepare<[{ account: string; blobs: string }], { n: number }>(`SELECT COUNT(*) AS n FROM "${table}" WHERE ${where}`).get({
      account: 'alice',
      blobs: JSON.stringify(blobs),
    })?.n as number
  const byOwner = tables.filter((tb) => tb.columns.has('account') || tb.columns.has('device_id'))
  const seeded = Object.fromEntries(byOwner.map((tb) => [tb.name, count(tb.name, ofAlice(tb.name, tb.columns))]))
  for (const name of [
    'locations',
    'commands',
    'behaviour_logs',
    'notifications',
    'sync_items',
    'sync_counters',
    'drive_files',
    'drive_tokens',
  ]) {
    t.ok((seeded[name] as number) > 0, `seeded: ${name}`)
  }
  for (const name of ['backups', 'backup_plans', 'backup_devices', 'blob_refs', 'blob_uploads', 'blob_proofs', 'device_moves']) {
    t.ok((seeded[name] as number) > 0, `seeded: ${name}`)
  }
  t.ok(count('drive_shares', '1') > 0, 'seeded: a share link')
  // Bob's data, the control (the retirement's own tables and its notices change for him too).
  const data = byOwner.filter((tb) => !['cloud_log', 'notifications', 'retirement_steps', 'account_migrations'].includes(tb.name))
  const bobBefore = Object.fromEntries(
    data.map((tb) => [tb.name, count(tb.name, ofAlice(tb.name, tb.columns).replace('@account', "'bob'"))]),
  )

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

  for (const { name, columns } of tables) {
    if (columns.has('account') || columns.has('device_id')) {
      const kept = KEPT[name]
      const where = ofAlice(name, columns)
      t.equal(
        count(name, kept ? `${where} AND NOT (${kept.where})` : where),
        0,
        kept ? `${name}: only ${kept.why}` : `${name}: none of alice's`,
      )
      continue
    }
    t.ok(name in NOT_BY_OWNER, `${name}: a table with no account or device_id column is named in NOT_BY_OWNER`)
    const where = NOT_BY_OWNER[name]
    if (where) t.equal(count(name, where), 0, `${name}: none of alice's`)
  }
  t.same(
    Object.keys(KEPT).filter((name) => !byOwner.some((tb) => tb.name === name)),
    [],
    'every table KEPT names exists',
  )
  t.match(cloud.broker.cloud.accounts.get('alice'), { id: 'alice', usedBytes: 0 }, "the account's row stays, its quota use at 0")
  t.equal(
    count('notifications', "kind = 'service-gone' AND " + ofAlice('notifications', new Set())),
    2,
    'each phone keeps its service-gone notice',
  )
  t.equal(count('notifications', `${ofAlice('notifications', new Set())} AND body LIKE '%secret%'`), 0, 'no notice body of the owner')

  // On disk: no blob of alice's, no partial upload.
  for (const b of blobs) t.notOk(existsSync(join(cloud.dataDir, 'blobs', b.slice(0, 2), b)), `blob ${b.slice(0, 8)} gone from disk`)
  t.same(readdirSync(join(cloud.dataDir, 'blobs', 'incoming')), [], 'no partial upload left')

  // Bob's data is as it was.
  const bobAfter = Object.fromEntries(
    data.map((tb) => [tb.name, count(tb.name, ofAlice(tb.name, tb.columns).replace('@account', "'bob'"))]),
  )
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
  t.match(await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/accounts/alice'), {
    status: 410,
    body: { code: 'ACCOUNT_PURGED', error: /; `console service status` says what its purge deleted and what the cloud keeps$/ },
  })
  t.notMatch((await cloudCall(cloud, phone, 'GET', '/cloud/v1/sync/notes/changes?since=0')).body.error, /console/, 'not to a phone')
})
