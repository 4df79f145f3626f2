import t from 'tap'
import Database from 'better-sqlite3'
import { DB_FILE, SCHEMA_VERSION, openDb, schemaVersion } from '../../../broker/db.js'
import { DeviceRegistry, hashSecret, verifySecret } from '../../../broker/devices/registry.js'
import { StateStore } from '../../../broker/devices/state-store.js'
import { ACCOUNT_NAME_RULE } from '../../../common/contract.js'
import { createHash, randomBytes, scryptSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Db } from '../../../broker/db.js'
import { addDevice, connectDevice, startCloud } from '../../fixtures/cloud.js'

const verifierOf = (db: Db, id: string): string => db.prepare('SELECT secret_hash FROM devices WHERE id = ?').pluck().get(id) as string

/** A verifier as earlier builds stored it: salted scrypt, N = 1024. */
function scryptVerifier(secret: string): string {
  const salt = randomBytes(16)
  const key = scryptSync(secret, salt, 32, { N: 1024, r: 8, p: 1 })
  return `scrypt$1024$${salt.toString('base64')}$${key.toString('base64')}`
}

t.test('a device secret is shown once and stored only as its SHA-256 verifier', async (t) => {
  const dir = t.testdir()
  const db = openDb(dir)
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 42)
  const { device, secret } = await registry.add('pi-kitchen', 'bob')
  t.same(device, { id: 'pi-kitchen', account: 'bob', createdAt: 42 })
  t.ok(secret.length >= 40, 'a long random secret')
  const stored = verifierOf(db, 'pi-kitchen')
  t.equal(stored, `sha256$${createHash('sha256').update(secret).digest('base64')}`)
  db.pragma('wal_checkpoint(FULL)')
  t.notMatch(readFileSync(join(dir, 'cloud.sqlite')).toString('latin1'), secret, 'the secret is nowhere in the database file')
  t.ok(await registry.verify('pi-kitchen', secret))
  t.notOk(await registry.verify('pi-kitchen', secret + 'x'))
  t.notOk(await registry.verify('pi-kitchen', stored), 'the verifier is not a secret that logs in')
  t.notOk(await registry.verify('nobody', secret))
  // Issue 14: the connect path gets its answer at once, no promise, for a SHA-256 verifier.
  t.equal(registry.verifiedAccountNow('pi-kitchen', secret), 'bob', 'answered at once with the account')
  t.equal(registry.verifiedAccountNow('pi-kitchen', secret + 'x'), undefined, 'a wrong secret at once too')
  t.equal(registry.verifiedAccountNow('nobody', secret), undefined, 'and an unknown device')
  t.equal(await verifySecret('s', 'sha256$AAAA'), false, 'a verifier of the wrong length never matches')
  t.equal(await verifySecret('s', 'md5$x'), false, 'an unknown scheme never matches')
})

t.test('a device registered with an older scrypt verifier still logs in, and its verifier is replaced by the new one', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 42)
  const { secret } = await registry.add('old-phone', 'bob')
  const old = scryptVerifier(secret)
  db.prepare('UPDATE devices SET secret_hash = ? WHERE id = ?').run(old, 'old-phone')
  t.type(registry.verifiedAccountNow('old-phone', secret + 'x'), Promise, 'a scrypt verifier is checked off the event loop')
  t.notOk(await registry.verify('old-phone', secret + 'x'), 'a wrong secret is refused')
  t.equal(verifierOf(db, 'old-phone'), old, 'and changes nothing')
  t.equal(await registry.verifiedAccount('old-phone', secret), 'bob')
  t.equal(verifierOf(db, 'old-phone'), hashSecret(secret), 'migrated on the first successful login')
  t.ok(await registry.verify('old-phone', secret), 'and the new verifier works')
})

t.test('registry errors carry a code and say what is wrong', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, Date.now)
  await registry.add('a', 'x')
  await t.rejects(registry.add('a', 'x'), { code: 'EXISTS', message: 'device "a" is already registered' })
  await t.rejects(registry.add('Bad/Id', 'x'), { code: 'BAD_ID', message: /invalid device id "Bad\/Id"/ })
  // Its MQTT user name would be the console's: the broker asked it for the console token, and it never connected.
  await t.rejects(registry.add('console', 'x'), {
    code: 'BAD_ID',
    message: /^invalid device id "console": it is the console's MQTT user name/,
  })
  t.throws(() => registry.addMany([{ id: 'console', account: 'x' }]), { code: 'BAD_ID' }, 'nor in a fleet')
  t.throws(() => registry.remove('zzz'), { code: 'NOT_FOUND' })
  registry.remove('a')
  t.same(registry.list(), [])
  t.equal(registry.get('a'), undefined)
})

t.test('a device is registered only to an account whose name meets the rule; a refused one leaves nothing behind', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 1)
  const rule = /account name: 1-64 of a-z, 0-9, "\.", "_", "-" and "@", not starting with "\." or "-"/
  for (const bad of ['a/b', '../keys', 'Bob Smith', 'owner+1', 'x#', '.hidden', 'x'.repeat(300), 'bell\u0007']) {
    await t.rejects(registry.add('p-1', bad), { code: 'BAD_ACCOUNT', message: rule }, JSON.stringify(bad))
    t.throws(() => registry.addMany([{ id: 'p-2', account: bad }]), { code: 'BAD_ACCOUNT', message: rule })
  }
  await t.rejects(registry.add('p-1', 'bell\u0007'), { message: 'invalid account name "bell\\x07": ' + ACCOUNT_NAME_RULE })
  t.same(registry.list(), [], 'no device')
  t.equal(db.prepare('SELECT COUNT(*) FROM accounts').pluck().get(), 0, 'no account')
  await registry.add('p-1', 'alice@example.com')
  registry.addMany([{ id: 'qa-fleet-0001', account: 'qa-owner-001' }])
  t.same(
    registry.list().map((d) => d.account),
    ['alice@example.com', 'qa-owner-001'],
  )
})

t.test('a secret check that fails (the database closed) reaches its caller as a rejection', async (t) => {
  const db = openDb(t.testdir())
  const registry = new DeviceRegistry(db, Date.now)
  const { secret } = await registry.add('a', 'x')
  db.close()
  await t.rejects(registry.verifiedAccount('a', secret), { message: /not open/ })
})

t.test('opening the database twice keeps the schema and its data', (t) => {
  const dir = t.testdir()
  const first = openDb(dir)
  const version = first.pragma('user_version', { simple: true }) as number
  first.close()
  t.equal(
    version,
    21,
    'every migration ran: commands (F2), the push queue and behaviour logs (X2, X3), accounts and blobs (A1-A3), the drive ' +
      "(D1-D5), synced items and the bin (S, R), backups (B1-B4), the unused secrets table dropped, the service's retirement (M1), " +
      "lost mode as device state (F2), devices indexed by account, a blob's pack (M2), " +
      'open commands indexed by device (F2), unfinished uploads (A1, S3), proofs of uploaded bytes (D1, S1, B1), ' +
      "the devices told to follow a migration (M2), each device's succeeded locates indexed (F2), " +
      "when an account was last cleared (A3), when the owner was told of each bin entry's purge (R2)",
  )
  const db = openDb(dir)
  t.equal(db.pragma('user_version', { simple: true }), version, 'a second open runs none again')
  db.close()
  t.end()
})

t.test('a database newer than this code is refused, naming both versions, and left as it was', (t) => {
  const dir = t.testdir()
  openDb(dir).close()
  const raw = new Database(join(dir, DB_FILE))
  raw.pragma(`user_version = ${SCHEMA_VERSION + 3}`)
  raw.close()
  t.throws(() => openDb(dir), {
    code: 'DB_TOO_NEW',
    message: new RegExp(`schema version ${SCHEMA_VERSION + 3}, newer than this build of fakephone understands \\(${SCHEMA_VERSION}\\)`),
  })
  const after = new Database(join(dir, DB_FILE))
  t.equal(schemaVersion(after), SCHEMA_VERSION + 3, 'not downgraded')
  after.close()
  t.end()
})

t.test('the unused secrets table is dropped from an older database; a new one never has it', (t) => {
  const tables = (db: Database.Database): string[] =>
    db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((r) => r.name)
  const fresh = openDb(t.testdir())
  t.notOk(tables(fresh).includes('secrets'))
  fresh.close()
  const dir = t.testdir()
  const old = openDb(dir)
  // A database of version 9, the last before the drop: the secrets table back, the tables of the later migrations gone.
  old.exec('CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)')
  for (const table of ['service_retirement', 'retirement_deadlines', 'account_migrations', 'retirement_steps'])
    old.exec(`DROP TABLE ${table}`)
  for (const column of ['lost_mode', 'lost_message', 'lost_phone', 'lost_mode_at'])
    old.exec(`ALTER TABLE device_state DROP COLUMN ${column}`)
  old.exec('DROP INDEX devices_by_account')
  old.exec('DROP INDEX blobs_by_pack')
  old.exec('DROP INDEX commands_open_by_device')
  old.exec('DROP TABLE blob_uploads')
  old.exec('DROP TABLE blob_proofs')
  old.exec('DROP TABLE device_moves')
  old.exec('DROP INDEX commands_located_by_device')
  for (const column of ['pack', 'pack_offset']) old.exec(`ALTER TABLE blobs DROP COLUMN ${column}`)
  old.exec('ALTER TABLE accounts DROP COLUMN cleared_at')
  old.exec('ALTER TABLE sync_items DROP COLUMN bin_noticed_at')
  old.exec('CREATE TABLE bin_notices (account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE, noticed_until INTEGER NOT NULL)')
  old.exec("INSERT INTO accounts (id, last_activity_at, created_at, frozen_at) VALUES ('idle', 0, 0, 7), ('active', 0, 0, NULL)")
  old.pragma('user_version = 9')
  old.close()
  const db = openDb(dir)
  t.notOk(tables(db).includes('secrets'))
  t.equal(schemaVersion(db), SCHEMA_VERSION)
  t.ok(
    (db.pragma('table_info(device_state)') as { name: string }[]).some((c) => c.name === 'lost_mode_at'),
    'F2: the lost-mode columns are added to an older database',
  )
  t.ok(
    db
      .prepare("EXPLAIN QUERY PLAN SELECT id FROM devices WHERE account = 'a' ORDER BY id")
      .all()
      .some((r) => JSON.stringify(r).includes('devices_by_account')),
    "an account's devices are found by the index added to an older database",
  )
  t.ok(
    (db.pragma('table_info(blobs)') as { name: string }[]).some((c) => c.name === 'pack_offset'),
    "M2: a blob's pack is added to an older database",
  )
  t.ok(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).some(
      (r) => r.name === 'commands_open_by_device',
    ),
    "F2: the open commands' index is added to an older database",
  )
  t.ok(tables(db).includes('blob_uploads'), 'A1, S3: unfinished uploads are tracked in an older database')
  t.ok(tables(db).includes('blob_proofs'), 'D1, S1, B1: proofs of uploaded bytes are kept in an older database')
  t.ok(tables(db).includes('device_moves'), 'M2: the devices told to follow a migration are kept in an older database')
  t.ok(
    db
      .prepare(
        "EXPLAIN QUERY PLAN SELECT rowid FROM commands WHERE device_id = 'a' AND type = 'locate' AND state = 'succeeded' " +
          'ORDER BY created_at DESC',
      )
      .all()
      .some((r) => JSON.stringify(r).includes('commands_located_by_device')),
    "F2: a device's newest succeeded locate is found by the index added to an older database",
  )
  t.same(
    db.prepare('SELECT id, cleared_at FROM accounts ORDER BY id').all(),
    [
      { id: 'active', cleared_at: null },
      { id: 'idle', cleared_at: 7 },
    ],
    "A3: an account an older database froze was cleared then, as its phones' change feeds now say",
  )
  t.ok(
    (db.pragma('table_info(sync_items)') as { name: string }[]).some((c) => c.name === 'bin_noticed_at'),
    "R2: an older database's bin entries say when the owner was told of their purge",
  )
  t.notOk(tables(db).includes('bin_notices'), "R2: the account's one told-until time is gone with it")
  db.close()
  t.end()
})

t.test(
  'a device with an older scrypt verifier connects over MQTT after an upgrade, is migrated, and a wrong secret is refused',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'old-phone')
    const db = openDb(cloud.dataDir) // as an older build left it: another connection to the same database
    t.teardown(() => db.close())
    db.prepare('UPDATE devices SET secret_hash = ? WHERE id = ?').run(scryptVerifier(secret), 'old-phone')
    const refused = await connectDevice(t, cloud, 'old-phone', secret + 'x').then(
      () => null,
      (e: { code?: number }) => e.code,
    )
    t.equal(refused, 4, 'a wrong secret gets CONNACK 4')
    t.ok(await connectDevice(t, cloud, 'old-phone', secret), 'the right one connects')
    t.equal(verifierOf(db, 'old-phone'), hashSecret(secret), 'and the stored verifier is now the SHA-256 one')
  },
)

t.test("M2: an older database's cloud-moved notices say which devices moved where, the newest for each", (t) => {
  const dir = t.testdir()
  const old = openDb(dir)
  old.exec('DROP TABLE device_moves')
  old.exec('DROP INDEX commands_located_by_device')
  old.exec('ALTER TABLE accounts DROP COLUMN cleared_at')
  old.exec('ALTER TABLE sync_items DROP COLUMN bin_noticed_at')
  old.exec('CREATE TABLE bin_notices (account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE, noticed_until INTEGER NOT NULL)')
  const body = (device: string, cloud: string, account = 'alice'): string =>
    JSON.stringify({ v: 1, device, account, to: { mqtt: 'ws://x/mqtt', push: 'ws://x/push', cloud }, at: 1, sig: 's' })
  old.exec(`INSERT INTO accounts (id, last_activity_at, created_at) VALUES ('alice', 0, 0), ('bob', 0, 0);
    INSERT INTO devices (id, account, secret_hash, created_at) VALUES ('a', 'alice', 'h', 0), ('b', 'alice', 'h', 0),
      ('c', 'alice', 'h', 0), ('d', 'bob', 'h', 0);
    INSERT INTO device_state (device_id) VALUES ('a'), ('b'), ('c'), ('d');
    INSERT INTO account_migrations (account, how, at) VALUES ('alice', 'migrate', 5), ('bob', 'export', 5);`)
  const notice = old.prepare<[id: string, device: string, body: string, at: number]>(
    "INSERT INTO notifications (id, device_id, kind, title, body, created_at, expires_at) VALUES (?, ?, 'cloud-moved', 't', ?, ?, 99)",
  )
  notice.run('n1', 'a', body('a', 'http://first'), 10)
  notice.run('n2', 'a', body('a', 'http://second'), 20)
  notice.run('n3', 'b', 'not json', 10)
  notice.run('n4', 'c', body('b', 'http://other-device'), 10)
  notice.run('n5', 'd', body('d', 'http://exported'), 10)
  old.pragma(`user_version = ${SCHEMA_VERSION - 4}`)
  old.close()
  const db = openDb(dir)
  t.same(db.prepare('SELECT * FROM device_moves ORDER BY device_id').all(), [
    { device_id: 'a', notice: 'n2', cloud: 'http://second', account: 'alice', at: 20 },
  ])
  // The device views say so; a stored move that breaks the contract is left out, never served.
  db.prepare("INSERT INTO device_moves VALUES ('b', 'n3', 'not a url', 'alice', 10)").run()
  const store = new StateStore(db)
  t.same(
    store.devices().map((d) => [d.id, d.moved]),
    [
      ['a', { to: 'http://second', account: 'alice', at: 20, notice: 'queued', deliveredAt: null }],
      ['b', null],
      ['c', null],
      ['d', null],
    ],
  )
  t.match(store.device('a'), { moved: { to: 'http://second', notice: 'queued' } }, 'one device alone, the same')
  t.match(store.device('c'), { moved: null })
  db.close()
  t.end()
})

t.test('M1: fleet provision (addMany) on a retiring cloud: no new account from the deadline on, nothing once shut down', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  let now = 0
  const registry = new DeviceRegistry(db, () => now)
  await registry.add('p-old', 'old')
  db.prepare(
    'INSERT INTO service_retirement (id, announce_at, sync_off_at, deadline_at, shutdown_at, created_at) VALUES (1, 0, 10, 20, 30, 0)',
  ).run()
  now = 20
  t.throws(
    () =>
      registry.addMany([
        { id: 'p-1', account: 'old' },
        { id: 'p-2', account: 'new' },
      ]),
    {
      code: 'NEW_ACCOUNTS_CLOSED',
      message: /^account "new" would be new, and the fakephone cloud is retiring: its migration deadline passed on 1970-01-01 00:00 UTC/,
    },
  )
  t.same(
    registry.addMany([{ id: 'p-1', account: 'old' }]).map((r) => r.device.id),
    ['p-1'],
    "an account's phones still: all or none",
  )
  now = 30
  t.throws(() => registry.addMany([{ id: 'p-3', account: 'old' }]), { code: 'SERVICE_SHUT_DOWN', message: /it registers nothing$/ })
  t.same(
    registry.list().map((d) => d.id),
    ['p-1', 'p-old'],
  )
})
