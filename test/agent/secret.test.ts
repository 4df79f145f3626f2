/** The device secret comes from a file or a systemd credential, with a clear word when it cannot be had. */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readDeviceSecret } from '../../agent/secret.js'
import { tempDir } from '../fixtures/scope.js'

t.test('secret from a file, else from $CREDENTIALS_DIRECTORY/NAME; the file wins when both are there', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'kitchen.secret'), '  s3cret-from-file\n')
  writeFileSync(join(dir, 'device-secret'), 's3cret-from-systemd\n')
  const env = { CREDENTIALS_DIRECTORY: dir }
  t.equal(
    await readDeviceSecret({ secretFile: join(dir, 'kitchen.secret'), secretCredential: 'device-secret' }, env),
    's3cret-from-file',
    'trimmed',
  )
  t.equal(await readDeviceSecret({ secretCredential: 'device-secret' }, env), 's3cret-from-systemd')
})

t.test('no secret, an unreadable one or an empty one is an error that says what to do', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'empty'), '\n')
  await t.rejects(readDeviceSecret({ secretCredential: 'device-secret' }, {}), {
    code: 'ESECRET',
    message:
      'no device secret: set secretFile in the config (or --secret-file), or run under systemd with LoadCredential=device-secret:FILE',
  })
  await t.rejects(readDeviceSecret({ secretCredential: 'phone' }, { CREDENTIALS_DIRECTORY: dir }), {
    message:
      `cannot read the secret file ${join(dir, 'phone')}: ENOENT (no such file): ` +
      "`fakephone device add ID --secret-out FILE` writes a new device's secret",
  })
  writeFileSync(join(dir, 'plain'), 'x')
  await t.rejects(readDeviceSecret({ secretFile: join(dir, 'plain', 'secret'), secretCredential: 'x' }, {}), {
    message: `cannot read the secret file ${join(dir, 'plain', 'secret')}: ENOTDIR`,
  })
  // A file this user may not read, root too (a sysctl that is only written): who may read it is the fix.
  const denied = '/proc/sys/vm/drop_caches'
  await t.rejects(readDeviceSecret({ secretFile: denied, secretCredential: 'x' }, {}), {
    message: `cannot read the secret file ${denied}: EACCES: let the agent's user read it (its owner, mode 0600)`,
  })
  await t.rejects(readDeviceSecret({ secretFile: join(dir, 'empty'), secretCredential: 'x' }, {}), {
    message: `the secret file ${join(dir, 'empty')} is empty: put the device's secret in it (\`device add --secret-out\` wrote it)`,
  })
})
