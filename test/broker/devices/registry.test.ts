import t from 'tap'
import Database from 'better-sqlite3'
import { DB_FILE, SCHEMA_VERSION, openDb, schemaVersion } from '../../../broker/db.js'
import { DeviceRegistry, hashSecret, verifySecret } from '../../../broker/devices/registry.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

t.test('a device secret is shown once and stored only as a salted scrypt hash', async (t) => {
  const dir = t.testdir()
  const db = openDb(dir)
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 42)
  const { device, secret } = await registry.add('pi-kitchen', 'bob')
  t.same(device, { id: 'pi-kitchen', account: 'bob', createdAt: 42 })
  t.ok(secret.length >= 40, 'a long random secret')
  const stored = db.prepare('SELECT secret_hash FROM devices').pluck().get() as string
  t.match(stored, /^scrypt\$1024\$/)
  t.notMatch(stored, secret)
  db.pragma('wal_checkpoint(FULL)')
  t.notMatch(readFileSync(join(dir, 'cloud.sqlite')).toString('latin1'), secret, 'the secret is nowhere in the database file')
  t.ok(await registry.verify('pi-kitchen', secret))
  t.notOk(await registry.verify('pi-kitchen', secret + 'x'))
  t.notOk(await registry.verify('nobody', secret))
  t.not(await hashSecret('s'), await hashSecret('s'), 'salted: the same secret hashes differently')
  t.ok(await verifySecret('s', await hashSecret('s')))
})

t.test('registry errors carry a code and say what is wrong', async (t) => {
  const db = openDb(t.testdir())
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, Date.now)
  await registry.add('a', 'x')
  await t.rejects(registry.add('a', 'x'), { code: 'EXISTS', message: 'device "a" is already registered' })
  await t.rejects(registry.add('Bad/Id', 'x'), { code: 'BAD_ID', message: /invalid device id "Bad\/Id"/ })
  t.throws(() => registry.remove('zzz'), { code: 'NOT_FOUND' })
  registry.remove('a')
  t.same(registry.list(), [])
  t.equal(registry.get('a'), undefined)
})

t.test('opening the database twice keeps the schema and its data', (t) => {
  const dir = t.testdir()
  const first = openDb(dir)
  const version = first.pragma('user_version', { simple: true }) as number
  first.close()
  t.equal(
    version,
    11,
    'every migration ran: commands (F2), the push queue and behaviour logs (X2, X3), accounts and blobs (A1-A3), the drive ' +
      "(D1-D5), synced items and the bin (S, R), backups (B1-B4), the unused secrets table dropped, the service's retirement (M1)",
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
  old.pragma('user_version = 9')
  old.close()
  const db = openDb(dir)
  t.notOk(tables(db).includes('secrets'))
  t.equal(schemaVersion(db), SCHEMA_VERSION)
  db.close()
  t.end()
})
