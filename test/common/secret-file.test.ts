/**
 * A file for secrets that may be their only copy (common/secret-file.ts): made 0600 before the devices are
 * registered, never replacing one that exists, removed again when the registration fails.
 */
import t from 'tap'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeNewSecretFile } from '../../common/secret-file.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the secrets go to a new 0600 file, written after the registration that made them', async (t) => {
  const file = join(tempDir(t), 'hall.secret')
  const made = await writeNewSecretFile(
    file,
    `--secret-out ${file}`,
    () => {
      t.ok(existsSync(file), 'the file is there before anything is registered')
      return Promise.resolve({ secret: 's3cret' })
    },
    (r) => r.secret + '\n',
  )
  t.same(made, { secret: 's3cret' })
  t.equal(readFileSync(file, 'utf8'), 's3cret\n')
  t.equal(statSync(file).mode & 0o777, 0o600)
})

t.test('a file that exists or cannot be made refuses before anything is registered, naming it as the user did', async (t) => {
  const dir = tempDir(t)
  const taken = join(dir, 'taken.json')
  writeFileSync(taken, 'the only copy')
  const register = () => t.fail('nothing is registered')
  await t.rejects(writeNewSecretFile(taken, `--out ${taken}`, register, String), {
    code: 'SECRET_FILE',
    message: `--out ${taken}: the file exists and is not replaced (a secret in it may be the only copy); no device was registered`,
  })
  t.equal(readFileSync(taken, 'utf8'), 'the only copy')
  await t.rejects(writeNewSecretFile(join(taken, 'x'), 'x', register, String), {
    message: /^x: cannot write it: ENOTDIR: .*; no device was registered$/,
  })
})

t.test('a registration that fails leaves no file behind, so the same command can run again', async (t) => {
  const file = join(tempDir(t), 'fleet.json')
  await t.rejects(
    writeNewSecretFile(file, file, () => Promise.reject(new Error('taken')), String),
    { message: 'taken' },
  )
  t.notOk(existsSync(file))
})
