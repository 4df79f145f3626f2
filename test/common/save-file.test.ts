/**
 * D1: a download saved at a path the user gave is whole or not there (save-file.ts). The full disk is real: the
 * temporary file beside the target is a symlink to /dev/full, which takes no byte (ENOSPC).
 */
import t from 'tap'
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DOWNLOAD_SUFFIX, saveFile } from '../../common/save-file.js'
import { tempDir } from '../fixtures/scope.js'

t.test('D1: a save that meets a full disk leaves the file there as it was and nothing beside it; one with room replaces it', async (t) => {
  const dir = tempDir(t)
  const dest = join(dir, 'report.pdf')
  writeFileSync(dest, 'the old report')
  symlinkSync('/dev/full', `${dest}${DOWNLOAD_SUFFIX}`)
  await t.rejects(saveFile(dest, Buffer.from('the new report')), { code: 'ENOSPC' })
  t.equal(readFileSync(dest, 'utf8'), 'the old report')
  t.same(readdirSync(dir), ['report.pdf'])
  await saveFile(dest, Buffer.from('the new report'))
  t.equal(readFileSync(dest, 'utf8'), 'the new report')
  t.same(readdirSync(dir), ['report.pdf'])
})

t.test('D1: a path that is a symlink saves to the file it names; a directory is refused and left alone', async (t) => {
  const dir = tempDir(t)
  const real = join(dir, 'real.txt')
  writeFileSync(real, 'old')
  symlinkSync(real, join(dir, 'link.txt'))
  await saveFile(join(dir, 'link.txt'), Buffer.from('new'))
  t.equal(readFileSync(real, 'utf8'), 'new')
  t.ok(lstatSync(join(dir, 'link.txt')).isSymbolicLink(), 'the link stays a link')
  mkdirSync(join(dir, 'folder'))
  await t.rejects(saveFile(join(dir, 'folder'), Buffer.from('x')), { code: 'EISDIR' })
  t.same(readdirSync(dir).sort(), ['folder', 'link.txt', 'real.txt'])
})
