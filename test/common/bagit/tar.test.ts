/** M3: the single-file form of a bag: a ustar/pax archive written and read back byte for byte, bad archives refused. */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BagWriter } from '../../../common/bagit/write.js'
import { validateBag } from '../../../common/bagit/validate.js'
import { paxRecords, readTar, writeTar } from '../../../common/bagit/tar.js'
import { tempDir } from '../../fixtures/scope.js'

const NOW = Date.UTC(2026, 11, 4)
/** A ustar header with its checksum field set as POSIX says: the sum of its bytes, the field counted as spaces. */
function withChecksum(h: Buffer): Buffer {
  h.write('        ', 148)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148)
  return h
}
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
    return withChecksum(h)
  }
  const end = Buffer.alloc(1024)
  await t.rejects(readTar(at('link.tar', Buffer.concat([entry('2', 'b/link'), end])), join(root, 'o3')), {
    message: 'the archive holds "b/link", a symbolic link: a bag archive holds only files and directories',
  })
  await t.rejects(readTar(at('odd.tar', Buffer.concat([entry('Z', 'b/odd'), end])), join(root, 'o3z')), {
    message: 'the archive holds "b/odd", an entry of type "Z": a bag archive holds only files and directories',
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

t.test(
  'M3: an archive whose headers lie about sizes, or hold a name twice, is refused with a reason, never read forever',
  { timeout: 30_000 },
  async (t) => {
    const root = tempDir(t)
    const at = (name: string, bytes: Buffer): string => {
      writeFileSync(join(root, name), bytes)
      return join(root, name)
    }
    /** A ustar header for `name` of `type` whose size field is `size` as written, with its checksum right. */
    const header = (type: string, name: string, size: string): Buffer => {
      const h = Buffer.alloc(512)
      h.write(name, 0)
      h.write('0000644\u0000', 100)
      h.write(size.padEnd(11, '\u0000') + '\u0000', 124)
      h.write(type, 156)
      h.write('ustar\u000000', 257)
      return withChecksum(h)
    }
    const end = Buffer.alloc(1024)
    // parseInt('-1000', 8) is -512: the next header was this one again, for ever.
    await t.rejects(readTar(at('negative.tar', Buffer.concat([header('g', 'pax_global_header', '-1000'), end])), join(root, 'o1')), {
      code: 'BAD_TAR',
      message: 'the header at offset 0 gives its size as "-1000", not an octal number',
    })
    await t.rejects(readTar(at('nan.tar', Buffer.concat([header('5', 'b/', 'zz'), end])), join(root, 'o2')), {
      code: 'BAD_TAR',
      message: 'the header at offset 0 gives its size as "zz", not an octal number',
    })
    // 8 GiB claimed by a 1.5 KiB file: refused before a buffer of that size is asked for.
    await t.rejects(readTar(at('huge-pax.tar', Buffer.concat([header('x', 'PaxHeader', '77777777777'), end])), join(root, 'o3')), {
      code: 'BAD_TAR',
      message: `the pax header at offset 0 is ${0o77777777777} bytes; at most 1048576 are read`,
    })
    const file = (name: string): Buffer => Buffer.concat([header('0', name, '1'), Buffer.from('x'.padEnd(512, '\u0000'))])
    await t.rejects(readTar(at('twice.tar', Buffer.concat([file('b/a'), file('b/a'), end])), join(root, 'o4')), {
      code: 'BAD_TAR',
      message: 'the archive holds "b/a", which cannot be unpacked: an earlier entry is already there (a name given twice)',
    })
    await t.rejects(readTar(at('under-file.tar', Buffer.concat([file('b/a'), header('5', 'b/a/c/', '0'), end])), join(root, 'o5')), {
      code: 'BAD_TAR',
      message: 'the archive holds "b/a/c/", which cannot be unpacked: an earlier entry is already there (a name given twice)',
    })
    const long = `b/${'n'.repeat(300)}`
    const pax = Buffer.from(`${long.length + 10} path=${long}\n`) // 3 digits, a space, "path=", the name, a newline
    const longTar = Buffer.concat([
      header('x', 'PaxHeader', pax.length.toString(8)),
      pax,
      Buffer.alloc(512 - pax.length),
      file('b/stub'),
      end,
    ])
    await t.rejects(readTar(at('long.tar', longTar), join(root, 'o6')), {
      code: 'BAD_TAR',
      message: /^the archive holds "b\/n{300}", which cannot be unpacked: ENAMETOOLONG/,
    })
  },
)
