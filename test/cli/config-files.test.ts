/**
 * `fakephone config check` checks every file a config names, as the daemon will use it: the agent's device secret (a
 * file, the systemd credential, or the one its unit loads beside the config), its owner key (F2: without it the phone
 * refuses every remote command), its data folder and GPX track; the broker's data folder and console token. Each
 * problem names the setting and the path and says what to do.
 */
import t, { type Test } from 'tap'
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OwnerKeys } from '../../common/signing.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

const SECRET = 'a-device-secret-of-some-length\n'

/** `config check` and what it said. */
async function check(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const { code, out, err } = await run(['config', 'check', ...args], undefined, env)
  return { code, out, err }
}

/** An /etc/fakephone of the README's: a secret (0600) and the owner's public key, as `device add` and step 3 leave them. */
function etc(t: Test): { dir: string; secret: string; pub: string; config(name: string, value: unknown): string } {
  const dir = tempDir(t)
  const secret = join(dir, 'agent-kitchen-pi.secret')
  writeFileSync(secret, SECRET, { mode: 0o600 })
  const keys = new OwnerKeys(join(dir, 'keys'))
  keys.ensureSigningKey('me')
  const pub = join(dir, 'owner-me.pub')
  copyFileSync(keys.ownerKeyFile('me'), pub)
  return {
    dir,
    secret,
    pub,
    config: (name, value) => {
      const file = join(dir, name)
      writeFileSync(file, JSON.stringify(value))
      return file
    },
  }
}

t.test('F2 an agent config whose files are all there and right passes', async (t) => {
  const e = etc(t)
  const file = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: e.pub, dataDir: join(e.dir, 'state', 'phone') })
  t.same(await check([file]), { code: 0, out: `${file}: a valid agent config\n`, err: '' }, 'the secret beside it is checked too')
  const gpx = join(e.dir, 'walk.gpx')
  writeFileSync(gpx, '<gpx><trk><trkseg><trkpt lat="55.9" lon="-3.1"/><trkpt lat="55.91" lon="-3.1"/></trkseg></trk></gpx>')
  const own = e.config('agent-own.json', { id: 'kitchen-pi', secretFile: e.secret, ownerKey: e.pub, location: `gpx:${gpx}` })
  t.same(await check([own]), { code: 0, out: `${own}: a valid agent config\n`, err: '' })
  // Under systemd (or a test of the unit's environment) the credential is the secret.
  const creds = tempDir(t)
  writeFileSync(join(creds, 'device-secret'), SECRET, { mode: 0o644 })
  const phone = e.config('phone.json', { id: 'kitchen-pi', ownerKey: e.pub })
  t.same(await check([phone, '--kind', 'agent'], { CREDENTIALS_DIRECTORY: creds }), {
    code: 0,
    out: `${phone}: a valid agent config\n`,
    err: '',
  })
})

t.test('F2 an agent config without an owner key is valid, and config check says its phone will obey no one', async (t) => {
  // `fakephone install` writes one without it; "a valid agent config" alone let a phone start that refused every command.
  const e = etc(t)
  const file = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi' })
  t.same(await check([file]), {
    code: 0,
    out: `${file}: a valid agent config\n`,
    err:
      "note: no ownerKey: this phone will refuse every remote command (locate, ring, lock, wipe); give it the owner's public " +
      'key, DIR/NAME.pub of `fakephone device add ID --account NAME --keys DIR`, as "ownerKey"\n',
  })
})

t.test('F2 the owner key: missing (with the file of a similar name beside it), in no folder, not a key', async (t) => {
  const e = etc(t)
  const typo = join(e.dir, 'owner_me.pub')
  const file = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: typo })
  const r = await run(['config', 'check', file])
  t.equal(r.code, 1)
  t.equal(
    r.err,
    'error: invalid agent config (1 problem):\n' +
      `  ${file}: ownerKey: ${typo}: no such file; did you mean ${e.pub}? (\`fakephone device add ID --account NAME --keys DIR\` ` +
      "writes the owner's public key as DIR/NAME.pub: copy it here)\n",
  )
  const other = join(e.dir, 'somebody-else.pub')
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: other })
  t.match((await run(['config', 'check', file])).err, `ownerKey: ${other}: no such file (\`fakephone device add`)
  const nowhere = join(e.dir, 'keys-not-copied', 'me.pub')
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: nowhere })
  t.match((await run(['config', 'check', file])).err, `ownerKey: ${nowhere}: no such file, nor folder ${join(e.dir, 'keys-not-copied')}\n`)
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: e.secret })
  t.match((await run(['config', 'check', file])).err, `ownerKey: ${e.secret}: not an owner's public key: give the Ed25519 public key`)
  // Named by where it was set: the environment wins over the file, as for the daemon.
  const env = await run(['config', 'check', file], undefined, { FAKEPHONE_AGENT_OWNER_KEY: typo })
  t.match(env.err, `\n  FAKEPHONE_AGENT_OWNER_KEY: ${typo}: no such file; did you mean`)
})

t.test("the device secret: missing, empty, readable by every user; the unit's beside the config", async (t) => {
  const e = etc(t)
  const missing = join(e.dir, 'none.secret')
  const file = e.config('agent-a.json', { id: 'a', secretFile: missing })
  t.match(
    (await run(['config', 'check', file])).err,
    `secretFile: cannot read the secret file ${missing}: ENOENT (no such file): \`fakephone device add ID --secret-out FILE\` writes`,
  )
  writeFileSync(missing, '\n', { mode: 0o600 })
  t.match((await run(['config', 'check', file])).err, `secretFile: the secret file ${missing} is empty: put the device's secret in it`)
  chmodSync(e.secret, 0o644)
  e.config('agent-a.json', { id: 'a', secretFile: e.secret })
  t.match(
    (await run(['config', 'check', file])).err,
    `secretFile: ${e.secret} can be read by every user (mode 0644): chmod 600 ${e.secret}\n`,
  )
  // fakephone-agent@kitchen-pi loads /etc/fakephone/agent-kitchen-pi.secret: checked the same when it is there.
  const unit = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi' })
  t.match(
    (await run(['config', 'check', unit])).err,
    `\n  the device secret fakephone-agent@kitchen-pi loads: ${e.secret} can be read by every user (mode 0644): chmod 600`,
  )
  const attic = e.config('agent-attic.json', { id: 'attic', ownerKey: e.pub })
  t.same(await check([attic]), {
    code: 0,
    out: `${attic}: a valid agent config\n`,
    err:
      `note: the device secret fakephone-agent@attic loads, ${join(e.dir, 'agent-attic.secret')}, is not there yet: ` +
      '`fakephone device add attic --secret-out FILE` writes one (install it there, mode 0600)\n',
  })
  const phone = e.config('phone.json', { id: 'attic', ownerKey: e.pub })
  t.same(await check([phone, '--kind', 'agent']), {
    code: 0,
    out: `${phone}: a valid agent config\n`,
    err: 'note: the device secret is the systemd credential device-secret, read when the service starts: not checked\n',
  })
})

t.test('the data folder and the GPX track', async (t) => {
  const e = etc(t)
  const file = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', dataDir: e.pub })
  t.match((await run(['config', 'check', file])).err, `dataDir: ${e.pub} is a file, not a folder: give a folder, or move the file away\n`)
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', dataDir: join(e.pub, 'phone') })
  t.match((await run(['config', 'check', file])).err, `dataDir: ${join(e.pub, 'phone')} cannot be made: ${e.pub} is a file, not a folder\n`)
  const long = join(e.dir, 'x'.repeat(300))
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', dataDir: long })
  t.match((await run(['config', 'check', file])).err, /dataDir: ENAMETOOLONG: name too long, stat '.*x{300}'\n/)
  const none = await run(['config', 'check', file], undefined, { FAKEPHONE_AGENT_DATA_DIR: e.pub })
  t.match(none.err, `FAKEPHONE_AGENT_DATA_DIR: ${e.pub} is a file`)

  const gpx = join(e.dir, 'walk.gpx')
  e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', location: `gpx:${gpx}` })
  t.match((await run(['config', 'check', file])).err, `location: ${gpx}: no such file (give the GPX track's absolute path)\n`)
  writeFileSync(gpx, '<gpx></gpx>')
  t.match((await run(['config', 'check', file])).err, `location: ${gpx}: a GPX file needs at least two <trkpt> or <rtept> points\n`)
  // Every problem at once.
  const all = e.config('agent-kitchen-pi.json', { id: 'kitchen-pi', ownerKey: join(e.dir, 'no.pub'), location: `gpx:${gpx}` })
  t.match((await run(['config', 'check', all])).err, /^error: invalid agent config \(2 problems\):\n/)
})

t.test('F2 paths in a config relative to its own folder: config check and the agent say they are read from the cwd', async (t) => {
  // A hobbyist keeps agent-pi.json, pi.secret and keys/me.pub in one folder and starts the agent from its parent:
  // "no such file" of files they could see. Both now name where it looked and the path to give.
  const e = etc(t)
  mkdirSync(join(e.dir, 'walks'))
  writeFileSync(join(e.dir, 'walks', 'loop.gpx'), '<gpx></gpx>')
  const file = e.config('agent-pi.json', {
    id: 'pi',
    secretFile: 'agent-kitchen-pi.secret',
    ownerKey: 'keys/me.pub',
    location: 'gpx:walks/loop.gpx',
  })
  const give = (path: string): string =>
    `; a relative path is read from the folder the agent starts in (${process.cwd()}), not the config file's: give ${join(e.dir, path)}\n`
  const checked = await run(['config', 'check', file])
  t.equal(checked.code, 1)
  t.equal(
    checked.err,
    'error: invalid agent config (3 problems):\n' +
      `  ${file}: secretFile: cannot read the secret file agent-kitchen-pi.secret: ENOENT (no such file): ` +
      `\`fakephone device add ID --secret-out FILE\` writes a new device's secret${give('agent-kitchen-pi.secret')}` +
      `  ${file}: ownerKey: keys/me.pub: no such file, nor folder keys${give('keys/me.pub')}` +
      `  ${file}: location: walks/loop.gpx: no such file (give the GPX track's absolute path)${give('walks/loop.gpx')}`,
  )
  const started = await run(['agent', '--config', file])
  t.equal(started.code, 78, 'EX_CONFIG: a file its config names that it cannot use')
  t.equal(
    started.err,
    'error: cannot read the secret file agent-kitchen-pi.secret: ENOENT (no such file): `fakephone device add ID --secret-out FILE` ' +
      `writes a new device's secret${give('agent-kitchen-pi.secret')}`,
  )
  e.config('agent-pi.json', { id: 'pi', secretFile: e.secret, ownerKey: 'keys/me.pub' })
  t.equal(
    (await run(['agent', '--config', file])).err,
    `error: cannot read the owner key keys/me.pub: no such file, nor folder keys${give('keys/me.pub')}`,
  )
})

t.test("F2 the agent's start says a missing owner key as config check does", async (t) => {
  // It said Node's "ENOENT: no such file or directory, open 'owner_me.pub'" where config check named the file meant.
  const e = etc(t)
  const typo = join(e.dir, 'owner_me.pub')
  const file = e.config('agent-pi.json', { id: 'pi', secretFile: e.secret, ownerKey: typo })
  const started = await run(['agent', '--config', file])
  t.equal(started.code, 78, 'EX_CONFIG: a file its config names that it cannot use')
  t.equal(
    started.err,
    `error: cannot read the owner key ${typo}: no such file; did you mean ${e.pub}? (\`fakephone device add ID --account NAME ` +
      "--keys DIR` writes the owner's public key as DIR/NAME.pub: copy it here)\n",
  )
  const checked = await check([file])
  t.match(checked.err, `ownerKey: ${typo}: no such file; did you mean ${e.pub}? (`, 'config check in the same words')
})

t.test('the broker: its data folder and console token', async (t) => {
  const e = etc(t)
  const data = join(e.dir, 'data')
  const file = e.config('broker.json', { dataDir: data })
  t.same(await check([file]), { code: 0, out: `${file}: a valid broker config\n`, err: '' }, 'no folder yet: made at the start')
  mkdirSync(data, { mode: 0o700 })
  const token = join(data, 'console.token')
  writeFileSync(token, 'x'.repeat(43) + '\n', { mode: 0o600 })
  t.same(await check([file]), { code: 0, out: `${file}: a valid broker config\n`, err: '' })
  chmodSync(token, 0o644)
  t.match((await run(['config', 'check', file])).err, `dataDir: ${token} can be read by every user (mode 0644): chmod 600 ${token}\n`)
  writeFileSync(token, 'short\n')
  t.match(
    (await run(['config', 'check', file])).err,
    `dataDir: the console token ${token} holds 5 characters, fewer than the 16 a token needs: delete it and the broker makes`,
  )
  t.match(
    (await run(['config', 'check', file], undefined, { FAKEPHONE_BROKER_DATA_DIR: e.pub })).err,
    `FAKEPHONE_BROKER_DATA_DIR: ${e.pub} is a file`,
  )
})
