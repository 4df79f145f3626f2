/**
 * `mkdir -p` that always ends (common/make-dirs.ts): where Node's `recursive` spins (a folder under /proc, which
 * exists but refuses a new entry), it throws Node's own error naming the folder. The paths fail for any user.
 */
import t from 'tap'
import { mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDirsSync } from '../../common/make-dirs.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the folders that are missing are made, with the mode; one that is there is fine', (t) => {
  const dir = tempDir(t)
  const deep = join(dir, 'a', 'b', 'c')
  t.same(makeDirsSync(deep, 0o700), [join(dir, 'a'), join(dir, 'a', 'b'), deep], 'the folders made, topmost first')
  t.ok(statSync(deep).isDirectory())
  t.equal(statSync(join(dir, 'a')).mode & 0o777, 0o700)
  t.same(makeDirsSync(deep), [], 'none made: it was there')
  t.same(makeDirsSync(join(deep, 'd')), [join(deep, 'd')])
  t.ok(statSync(join(deep, 'd')).isDirectory())
  makeDirsSync(dir)
  mkdirSync(join(dir, 'plain'))
  makeDirsSync(join(dir, 'plain'))
  t.ok(statSync(join(dir, 'plain')).isDirectory())
  t.end()
})

t.test('a folder that refuses a new entry (/proc), a file in the way or at the path throws at once, naming it', (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'file')
  writeFileSync(file, '')
  t.throws(() => makeDirsSync('/proc/self/x/etc/fakephone'), { code: 'ENOENT', message: /mkdir '\/proc\/self\/x'/ })
  t.throws(() => makeDirsSync('/proc/x'), { code: 'ENOENT', message: /mkdir '\/proc\/x'/ })
  t.throws(() => makeDirsSync(join(file, 'x', 'y')), { code: 'ENOTDIR' })
  t.throws(
    () => makeDirsSync(file),
    { code: 'EEXIST', message: `${file} is a file, not a folder: give a folder, or move the file away` },
    'a data folder given as a file: said so, not "file already exists, mkdir"',
  )
  t.end()
})
