/**
 * Small files fakephone keeps (locks, tokens, secrets: common/small-file.ts) are read only when they are regular files
 * of at most the cap; anything else is one error naming the file, never a read that goes on for ever.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readSmallFileSync } from '../../common/small-file.js'
import { tempDir } from '../fixtures/scope.js'

t.test('a regular file is read whole, through a symlink too; one past the cap is refused', (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'token'), 'abc\n')
  symlinkSync(join(dir, 'token'), join(dir, 'link'))
  t.equal(readSmallFileSync(join(dir, 'token')), 'abc\n')
  t.equal(readSmallFileSync(join(dir, 'link')), 'abc\n')
  writeFileSync(join(dir, 'cap'), 'x'.repeat(8))
  t.equal(readSmallFileSync(join(dir, 'cap'), 8), 'xxxxxxxx', 'exactly the cap is read')
  writeFileSync(join(dir, 'big'), 'x'.repeat(9))
  t.throws(() => readSmallFileSync(join(dir, 'big'), 8), {
    code: 'NOT_A_SMALL_FILE',
    message: `${join(dir, 'big')} is larger than 8 bytes, too large for what it holds`,
  })
  t.throws(() => readSmallFileSync(join(dir, 'none')), { code: 'ENOENT' }, 'a missing file throws as fs does')
  t.end()
})

t.test('a link to /dev/zero or /dev/full, a FIFO or a directory is named and never read', (t) => {
  const dir = tempDir(t)
  symlinkSync('/dev/zero', join(dir, 'zero.lock'))
  symlinkSync('/dev/full', join(dir, 'console.token'))
  execFileSync('mkfifo', [join(dir, 'fifo')])
  mkdirSync(join(dir, 'folder'))
  for (const [name, kind] of [
    ['zero.lock', 'a character device'],
    ['console.token', 'a character device'],
    ['fifo', 'a FIFO'],
    ['folder', 'a directory'],
  ] as const)
    t.throws(() => readSmallFileSync(join(dir, name)), { message: `${join(dir, name)} is ${kind}, not a regular file` }, name)
  t.end()
})
