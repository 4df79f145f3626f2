/**
 * The console token (broker/console-token.ts): made whole on the first start; a token file that holds no usable token
 * (empty, blank, too short) or is no file to read (a link to /dev/full) refuses the start with one line naming it and
 * saying to delete it. The console's --token-file, migrate's --to-token-file and the agent's secret file are read the
 * same way: a link to /dev/zero is named, never read for ever.
 */
import t from 'tap'
import { readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONSOLE_TOKEN_FILE, ensureConsoleToken } from '../../broker/console-token.js'
import { readDeviceSecret } from '../../agent/secret.js'
import { run } from '../fixtures/io.js'
import { newBroker } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the first start makes a 0600 token of 256 random bits, and later starts use it', (t) => {
  const dir = join(tempDir(t), 'new')
  const token = ensureConsoleToken(dir)
  t.match(token, /^[A-Za-z0-9_-]{43}$/)
  t.equal(readFileSync(join(dir, CONSOLE_TOKEN_FILE), 'utf8'), token + '\n')
  t.equal(statSync(join(dir, CONSOLE_TOKEN_FILE)).mode & 0o777, 0o600)
  t.same(readdirSync(dir), [CONSOLE_TOKEN_FILE], 'nothing written aside is left')
  t.equal(ensureConsoleToken(dir), token)
  t.end()
})

t.test('a broker whose console.token is empty, blank or too short refuses to start, naming it and what to do', async (t) => {
  for (const [text, says] of [
    ['', 'is empty'],
    [' \n\t\n', 'is empty'],
    ['short\n', 'holds 5 characters, fewer than the 16 a token needs'],
  ] as const) {
    const dataDir = tempDir(t)
    const file = join(dataDir, CONSOLE_TOKEN_FILE)
    writeFileSync(file, text)
    const broker = newBroker(t, { dataDir })
    await t.rejects(broker.start(), {
      code: 'CONSOLE_TOKEN',
      message: `the console token ${file} ${says}: delete it and the broker makes a new one on its next start`,
    })
    t.equal(readFileSync(file, 'utf8'), text, 'the file is left as it was')
  }
  const dataDir = tempDir(t)
  writeFileSync(join(dataDir, CONSOLE_TOKEN_FILE), 'sixteen-chars-ok\n')
  t.equal(ensureConsoleToken(dataDir), 'sixteen-chars-ok', 'a token of 16 characters is one')
})

t.test('a console.token that is a link to /dev/full, or to nothing, refuses the start with one line', (t) => {
  const dir = tempDir(t)
  const file = join(dir, CONSOLE_TOKEN_FILE)
  symlinkSync('/dev/full', file)
  t.throws(() => ensureConsoleToken(dir), {
    code: 'CONSOLE_TOKEN',
    message:
      `cannot read the console token ${file}: ${file} is a character device, not a regular file; ` +
      'move it away and the broker makes a new one',
  })
  const dangling = tempDir(t)
  symlinkSync(join(dangling, 'gone'), join(dangling, CONSOLE_TOKEN_FILE))
  t.throws(() => ensureConsoleToken(dangling), { message: /^cannot read the console token .*: ENOENT: no such file or directory, open / })
  t.end()
})

t.test('the console, migrate and the agent name a token or secret file that is a link to /dev/zero, never reading it', async (t) => {
  const dir = tempDir(t)
  const zero = join(dir, 'zero')
  symlinkSync('/dev/zero', zero)
  const console = await run(['console', '--api', 'http://127.0.0.1:1', '--token-file', zero, 'devices'])
  t.equal(console.err, `error: cannot read the console token: ${zero} is a character device, not a regular file\n`)
  writeFileSync(join(dir, CONSOLE_TOKEN_FILE), 'a-token-for-the-source\n')
  const migrate = await run([
    ...['console', '--api', 'http://127.0.0.1:1', '--data', dir, 'migrate', 'alice'],
    ...['--to', 'http://127.0.0.1:1', '--to-token-file', zero, '--job', join(dir, 'job.json')],
  ])
  t.equal(migrate.err, `error: cannot read the other cloud's console token: ${zero} is a character device, not a regular file\n`)
  await t.rejects(readDeviceSecret({ secretFile: zero, secretCredential: 'x' }, {}), {
    code: 'ESECRET',
    message: `cannot read the secret file: ${zero} is a character device, not a regular file`,
  })
})
