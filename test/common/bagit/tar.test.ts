/** M3: the single-file form of a bag: a ustar/pax archive written and read back byte for byte, bad archives refused. */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BagWriter } from '../../../common/bagit/write.js'
import { validateBag } from '../../../common/bagit/validate.js'
import { paxRecords, readTar, writeTar } from '../../../common/bagit/tar.js'
import { tempDir } from '../../fixtures/scope.js'

const NOW = Date.UTC(2026, 11, 4)
const LONG = `${'deep/'.repeat(40)}${'n'.repeat(120)} %\n.txt`

t.test('M3: a bag goes into a tar and comes out identical and valid, long and odd names included', async (t) => {
  const root = tempDir(t)
  const bag = await BagWriter.create(join(root, 'bag'))
  let added = 0
  await bag.add('big.bin', Buffer.alloc(70_000, 7), (n) => (added += n))
  t.equal(added, 70_000)
  await bag.add(LONG, 'long name')
  await bag.add(`${'p'.repeat(150)}/short`, 'prefix split')
  await bag.add('empty', '')
  await bag.finish({}, NOW)
  let bytes = 0
  await writeTar(join(root, 'bag'), join(root, 'bag.tar'), 'alice-bag', NOW, (n) => (bytes += n))
  t.ok(bytes > 70_000)
  t.equal(readFileSync(join(root, 'bag.tar')).length % 512, 0)
  const out = join(root, 'out')
  t.same(await readTar(join(root, 'bag.tar'), out), ['alice-bag'])
  t.equal(readFileSync(join(out, 'alice-bag/data', LONG), 'utf8'), 'long name')
  t.same(readFileSync(join(out, 'alice-bag/data/big.bin')), Buffer.alloc(70_000, 7))
  t.same((await validateBag(join(out, 'alice-bag'))).problems, [])
  await t.rejects(writeTar(join(root, 'bag'), join(root, 'bag.tar'), 'x', NOW), { code: 'EEXIST' })
  // A failure part-way (here the progress callback's; a full disk's ENOSPC takes the same path) leaves no tar cut short.
  const failing = writeTar(join(root, 'bag'), join(root, 'cut.tar'), 'x', NOW, () => {
    throw new Error('stopped part-way')
  })
  await t.rejects(failing, { message: 'stopped part-way' })
  t.notOk(existsSync(join(root, 'cut.tar')), 'the part written is removed')
})

t.test('M3: damaged, truncated, linking or escaping archives are refused', async (t) => {
  const root = tempDir(t)
  const bag = await BagWriter.create(join(root, 'bag'))
  await bag.add('a', 'abc')
  await bag.finish({}, NOW)
  await writeTar(join(root, 'bag'), join(root, 'good.tar'), 'b', NOW)
  const good = readFileSync(join(root, 'good.tar'))
  const at = (name: string, bytes: Buffer): string => {
    writeFileSync(join(root, name), bytes)
    return join(root, name)
  }
  const damaged = Buffer.from(good)
  damaged[0] = 0x41
  await t.rejects(readTar(at('damaged.tar', damaged), join(root, 'o1')), { code: 'BAD_TAR', message: /offset 0 fails its checksum/ })
  await t.rejects(readTar(at('short.tar', good.subarray(0, 1024 + 100)), join(root, 'o2')), { message: /the archive ends early/ })
  /** The first header, re-typed and renamed, with its checksum fixed. */
  const entry = (type: string, name: string): Buffer => {
    const h = Buffer.from(good.subarray(0, 512))
    h.fill(0, 0, 100)
    h.write(name, 0)
    h.write(type, 156)
    h.write('        ', 148)
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
    return h
  }
  const end = Buffer.alloc(1024)
  await t.rejects(readTar(at('link.tar', Buffer.concat([entry('2', 'b/link'), end])), join(root, 'o3')), {
    message: 'the archive holds "b/link" of type "2": a bag archive holds only files and directories',
  })
  await t.rejects(readTar(at('escape.tar', Buffer.concat([entry('5', '../up/'), end])), join(root, 'o4')), {
    message: 'the archive holds "../up/": a path that climbs out of the bag ("..")',
  })
  const globalPax = Buffer.concat([entry('g', 'pax_global_header'), entry('5', 'ok/'), end])
  t.same(await readTar(at('global.tar', globalPax), join(root, 'o5')), ['ok'], 'a global pax header is skipped')
  const oldStyle = entry('\u0000', 'old/file')
  oldStyle.write('00000000000\u0000', 124)
  oldStyle.write('        ', 148)
  let sum = 0
  for (const b of oldStyle) sum += b
  oldStyle.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148)
  t.same(await readTar(at('old.tar', Buffer.concat([oldStyle, end])), join(root, 'o6')), ['old'], 'type NUL is a regular file')
  t.same(
    paxRecords(Buffer.from('8 a=b\nc\n12 path=x y\n')),
    new Map([
      ['a', 'b\nc'],
      ['path', 'x y'],
    ]),
  )
  t.throws(() => paxRecords(Buffer.from('99 path=x\n')), { message: 'a pax header record is malformed' })
  t.throws(() => paxRecords(Buffer.from('nolength')), { message: 'a pax header record is malformed' })
})
