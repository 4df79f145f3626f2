/**
 * A file for secrets that may be their only copy (common/secret-file.ts): written whole (0600) before the devices are
 * registered, never replacing one that exists, removed again when the registration fails.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeNewSecretFile } from '../../common/secret-file.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the secrets are in a new 0600 file, whole, before the registration that uses them runs', async (t) => {
  const file = join(tempDir(t), 'hall.secret')
  const made = await writeNewSecretFile(file, `--secret-out ${file}`, 's3cret\n', () => {
    t.equal(readFileSync(file, 'utf8'), 's3cret\n', 'the file holds the secret before anything is registered')
    return Promise.resolve({ secret: 's3cret' })
  })
  t.same(made, { secret: 's3cret' })
  t.equal(readFileSync(file, 'utf8'), 's3cret\n')
  t.equal(statSync(file).mode & 0o777, 0o600)
})

t.test('a file that exists or cannot be made refuses before anything is registered, naming it as the user did', async (t) => {
  const dir = tempDir(t)
  const taken = join(dir, 'taken.json')
  writeFileSync(taken, 'the only copy')
  const register = () => t.fail('nothing is registered')
  await t.rejects(writeNewSecretFile(taken, `--out ${taken}`, 'new', register), {
    code: 'SECRET_FILE',
    message: `--out ${taken}: the file exists and is not replaced (a secret in it may be the only copy); no device was registered`,
  })
  t.equal(readFileSync(taken, 'utf8'), 'the only copy')
  await t.rejects(writeNewSecretFile(join(taken, 'x'), 'x', 'new', register), {
    message: /^x: cannot write it: ENOTDIR: .*; no device was registered$/,
  })
})

t.test('a registration that fails leaves no file behind, so the same command can run again', async (t) => {
  const file = join(tempDir(t), 'fleet.json')
  await t.rejects(
    writeNewSecretFile(file, file, 'secrets', () => Promise.reject(new Error('taken'))),
    { message: 'taken' },
  )
  t.notOk(existsSync(file))
})

t.test('a write the disk refuses (the kernel says EFBIG) refuses with nothing registered and no file left', async (t) => {
  // The file-size limit of this very process, lowered for the one call by util-linux's prlimit (any user may lower a
  // soft limit and raise it back): a real refused write, for any user. test/cli/secrets-full-disk.test.ts fills a real
  // disk (ENOSPC), where mounting one is allowed.
  const file = join(tempDir(t), 'fleet.json')
  const limit = (fsize: string): void => void execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${fsize}`])
  const [was, hard] = execFileSync('prlimit', ['--pid', String(process.pid), '--fsize', '--noheadings', '--output=SOFT,HARD'], {
    encoding: 'utf8',
  })
    .trim()
    .split(/\s+/)
  // Heard, the signal the kernel sends with EFBIG does not end the process: the write fails as a full disk's does.
  const heard = (): void => {}
  process.on('SIGXFSZ', heard)
  limit(`4:${hard}`)
  const written = writeNewSecretFile(file, `--out ${file}`, 'more than four bytes of secrets', () =>
    t.fail('nothing is registered'),
  ).finally(() => limit(`${was}:${hard}`))
  await t.rejects(written, { code: 'SECRET_FILE', message: /^--out .*: cannot write it: EFBIG: .*; no device was registered$/ })
  t.notOk(existsSync(file), "the part written is removed: it holds no registered device's secret")
})
