/** `fakephone fleet provision`: bulk registration in one transaction and the credentials file (issue 12). */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDb } from '../../broker/db.js'
import { DeviceRegistry } from '../../broker/devices/registry.js'
import { CREDENTIALS_MAX_BYTES, readCredentials } from '../../fleet/credentials.js'
import { fleetIds, fleetTaken } from '../../fleet/provision.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

t.test('fleet provision registers N devices, writes their credentials 0600 and the owner keys', async (t) => {
  const dir = tempDir(t)
  const data = join(dir, 'cloud')
  const out = join(dir, 'fleet.json')
  const keys = join(dir, 'keys')
  const result = await run([
    'fleet',
    'provision',
    '--count',
    '30',
    '--account-prefix',
    'qa',
    '--accounts',
    '3',
    '--data',
    data,
    '--keys',
    keys,
    '--out',
    out,
  ])
  t.equal(result.code, 0, result.err)
  t.match(result.out, /Registered 30 devices in \d+\.\d s; credentials in .*fleet\.json \(mode 0600\)/)
  t.equal(statSync(out).mode & 0o777, 0o600)
  const credentials = readCredentials(out)
  t.equal(credentials.devices.length, 30)
  t.same(
    credentials.devices.slice(0, 4).map((d) => [d.id, d.account]),
    [
      ['qa-00001', 'qa-owner-001'],
      ['qa-00002', 'qa-owner-002'],
      ['qa-00003', 'qa-owner-003'],
      ['qa-00004', 'qa-owner-001'],
    ],
  )
  t.equal(credentials.keysDir, keys)
  t.ok(existsSync(join(keys, 'qa-owner-002.key')), "each account's owner key")
  t.ok(existsSync(join(keys, 'devices', 'qa-00030.pub')), "each device's receipt key")
  const db = openDb(data)
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 0)
  t.equal(registry.list().length, 30)
  const last = credentials.devices[29]!
  t.ok(await registry.verify(last.id, last.secret), 'the secret in the file is the one the broker checks')

  const again = await run(['fleet', 'provision', '--count', '2', '--account-prefix', 'qb', '--data', data, '--keys', keys, '--out', out])
  t.equal(again.code, 1)
  t.match(
    again.err,
    /^error: --out .*fleet\.json: the file exists and is not replaced \(a secret in it may be the only copy\); no device was registered\n$/,
  )
  t.equal(registry.list().length, 30, 'a refused credentials file registers no device whose secret would be nowhere')
  const clash = join(dir, 'clash.json')
  const taken = await run(['fleet', 'provision', '--count', '1', '--account-prefix', 'qa', '--data', data, '--keys', keys, '--out', clash])
  t.equal(taken.code, 1)
  t.match(taken.err, /--account-prefix "qa" is taken in .*: 30 devices \(qa-00001 \.\.\. qa-00030\)/)
  t.notOk(existsSync(clash), 'a refused registration leaves no credentials file behind')
  const noKeys = await run([
    'fleet',
    'provision',
    '--count',
    '2',
    '--account-prefix',
    'qc',
    '--data',
    data,
    '--keys',
    join(out, 'keys'),
    '--out',
    join(dir, 'qc.json'),
  ])
  t.equal(noKeys.code, 1)
  t.match(noKeys.err, /^error: ENOTDIR: not a directory, mkdir '.*fleet\.json\/keys\/devices'\n$/)
  t.equal(registry.list().length, 30, 'a keys folder that cannot be made registers no device (its credentials file is removed)')
})

t.test('bulk registration is all or none; bad ids and prefixes are refused with the reason', async (t) => {
  const dir = tempDir(t)
  const db = openDb(join(dir, 'cloud'))
  t.teardown(() => db.close())
  const registry = new DeviceRegistry(db, () => 7)
  await registry.add('qa-00002', 'x')
  t.throws(
    () =>
      registry.addMany([
        { id: 'qa-00001', account: 'a' },
        { id: 'qa-00002', account: 'a' },
      ]),
    { code: 'EXISTS' },
  )
  t.same(
    registry.list().map((d) => d.id),
    ['qa-00002'],
    'nothing of a refused batch is registered',
  )
  t.throws(() => registry.addMany([{ id: 'Bad Id', account: 'a' }]), { code: 'BAD_ID', message: /invalid device id "Bad Id"/ })
  const bad = await run([
    'fleet',
    'provision',
    '--count',
    '1',
    '--account-prefix',
    '-x',
    '--data',
    join(dir, 'c2'),
    '--out',
    join(dir, 'f'),
  ])
  t.equal(bad.code, 1)
  t.match(bad.err, /--account-prefix "-x": 1-41 of a-z/)
  t.equal(fleetIds('w', 100_000)[0], 'w-000001', 'ids widen with the count, so they stay sortable')
})

t.test(
  'F1 a credentials file that is missing, not JSON (never quoted: it may be a secret) or of the wrong shape is named with the reason',
  async (t) => {
    const dir = tempDir(t)
    t.throws(() => readCredentials(join(dir, 'none.json')), { code: 'CREDENTIALS', message: /cannot read .*none\.json/ })
    writeFileSync(join(dir, 'a.json'), '{')
    t.throws(() => readCredentials(join(dir, 'a.json')), {
      message:
        /a\.json is not a fleet credentials file: not JSON \(at position 1.*\); give the file `fakephone fleet provision --out` wrote$/,
    })
    // A broker's console.token given by mistake: the parser would quote its first characters, which no error may show.
    const token = 'rR8Zvm8VnnSecretSecretSecretSecret'
    writeFileSync(join(dir, 'console.token'), token)
    t.throws(() => readCredentials(join(dir, 'console.token')), {
      message:
        `${join(dir, 'console.token')} is not a fleet credentials file: not JSON; ` +
        'give the file `fakephone fleet provision --out` wrote',
    })
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ version: 1, keysDir: 'k', devices: [{ id: 'x', account: 'a' }] }))
    t.throws(() => readCredentials(join(dir, 'b.json')), { message: /b\.json is not a fleet credentials file: devices\.0\.secret/ })
    writeFileSync(join(dir, 'c.json'), '[]')
    t.throws(() => readCredentials(join(dir, 'c.json')), { message: /: \(top\): / })
    // A link to /dev/zero or a FIFO given by mistake is refused naming it, not read for ever; so is a file past the cap.
    symlinkSync('/dev/zero', join(dir, 'zero.json'))
    execFileSync('mkfifo', [join(dir, 'fifo.json')])
    const over = join(dir, 'over.json')
    writeFileSync(over, '')
    truncateSync(over, CREDENTIALS_MAX_BYTES + 1)
    for (const [name, what] of [
      ['zero.json', 'is a character device, not a regular file'],
      ['fifo.json', 'is a FIFO, not a regular file'],
      ['over.json', `is larger than ${CREDENTIALS_MAX_BYTES} bytes, too large for what it holds`],
    ] as const)
      t.throws(() => readCredentials(join(dir, name)), {
        code: 'CREDENTIALS',
        message: `cannot read the fleet's credentials: ${join(dir, name)} ${what}`,
      })
    t.equal(CREDENTIALS_MAX_BYTES, 64 * 1024 * 1024, 'room for 10,000 devices many times over')
    await t.rejects(
      import('../../fleet/credentials.js').then((m) =>
        m.writeCredentialsOf(join(dir, 'no', 'such', 'dir.json'), { version: 1, keysDir: 'k', devices: [] }, () =>
          t.fail('nothing registered'),
        ),
      ),
      { message: /dir\.json: cannot write it: ENOENT.*; no device was registered$/ },
    )
  },
)

t.test('a prefix whose devices or accounts are registered already is refused, saying what is there and what to do', async (t) => {
  const dir = tempDir(t)
  const data = join(dir, 'cloud')
  const keys = join(dir, 'keys')
  const provisionRun = (prefix: string, count: string, out: string) =>
    run(['fleet', 'provision', '--count', count, '--account-prefix', prefix, '--data', data, '--keys', keys, '--out', join(dir, out)])
  t.equal((await provisionRun('qa', '3', 'first.json')).code, 0)
  const again = await provisionRun('qa', '5', 'second.json')
  t.equal(again.code, 1)
  t.equal(
    again.err,
    `error: --account-prefix "qa" is taken in ${data}: 3 devices (qa-00001 ... qa-00003) and 3 accounts (qa-owner-001 ... qa-owner-003) ` +
      'of it are registered already. Give another --account-prefix for a new fleet; to run the fleet provisioned then, give ' +
      '`fleet run` its credentials file (--credentials FILE); to start again, remove those devices (fakephone device remove ID) ' +
      'or use a new --data directory.\n',
  )
  t.notOk(existsSync(join(dir, 'second.json')), 'no credentials file')
  t.equal((await provisionRun('qab', '1', 'other.json')).code, 0, 'another prefix, even one that starts the same, is free')

  // Its devices removed, the accounts stay: a new fleet of the prefix would slip into them.
  for (const id of ['qa-00001', 'qa-00002', 'qa-00003']) t.equal((await run(['device', 'remove', id, '--data', data])).code, 0)
  t.match((await provisionRun('qa', '1', 'third.json')).err, /"qa" is taken in .*: 3 accounts \(qa-owner-001 \.\.\. qa-owner-003\) of it/)
  // A device of the prefix registered by hand, in another account: one device, named.
  t.equal((await run(['device', 'add', 'zz-00007', '--account', 'carol', '--data', data, '--keys', keys])).code, 0)
  t.match((await provisionRun('zz', '1', 'fourth.json')).err, /"zz" is taken in .*: 1 device \(zz-00007\) of it are registered/)
  t.equal((await run(['device', 'add', 'solo', '--account', 'yy-owner-001', '--data', data, '--keys', keys])).code, 0)
  t.match((await provisionRun('yy', '1', 'fifth.json')).err, /: 1 account \(yy-owner-001\) of it/)
  const db = openDb(data)
  t.teardown(() => db.close())
  t.same(fleetTaken(db, 'qab'), { devices: ['qab-00001'], accounts: ['qab-owner-001'] })
})
