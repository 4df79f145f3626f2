/** M3: BagIt 1.0 bags (RFC 8493) written and validated; every broken bag refused with its exact reason. */
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { appendFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { decodeManifestPath, encodeManifestPath, unsafePath } from '../../../common/bagit/paths.js'
import { BagWriter, formatBagInfo } from '../../../common/bagit/write.js'
import { parseBagInfo, validateBag } from '../../../common/bagit/validate.js'
import { tempDir } from '../../fixtures/scope.js'

const NOW = Date.UTC(2026, 11, 4, 9, 0)
const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

/** A small bag: three files, one of them with a space, a percent sign and a newline in its name. */
async function smallBag(t: Test): Promise<string> {
  const dir = join(tempDir(t), 'bag')
  const bag = await BagWriter.create(dir)
  await bag.add('a.txt', 'hello\n')
  await bag.add('photos/my photo 100%\nfinal.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xd9]))
  await bag.add('streamed.bin', Readable.from([Buffer.from('one'), Buffer.from('two')]))
  await bag.finish({ 'Source-Organization': 'fakephone', 'Fakephone-Account': 'alice' }, NOW)
  return dir
}

t.test('M3: a written bag has the RFC 8493 tag files and validates; odd file names are percent-encoded in its manifest', async (t) => {
  const dir = await smallBag(t)
  t.equal(readFileSync(join(dir, 'bagit.txt'), 'utf8'), 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')
  const manifest = readFileSync(join(dir, 'manifest-sha256.txt'), 'utf8')
  t.equal(
    manifest,
    `${sha('hello\n')}  data/a.txt\n` +
      `${sha(Buffer.from([0xff, 0xd8, 0xff, 0xd9]))}  data/photos/my photo 100%25%0Afinal.jpg\n` +
      `${sha('onetwo')}  data/streamed.bin\n`,
  )
  t.equal(
    readFileSync(join(dir, 'bag-info.txt'), 'utf8'),
    'Payload-Oxum: 16.3\nBagging-Date: 2026-12-04\nSource-Organization: fakephone\nFakephone-Account: alice\n',
  )
  const tags = readFileSync(join(dir, 'tagmanifest-sha256.txt'), 'utf8')
  t.equal(tags.split('\n').filter(Boolean).length, 3)
  t.match(tags, `${sha(manifest)}  manifest-sha256.txt`)
  const report = await validateBag(dir)
  t.same(report.problems, [])
  t.equal(report.valid, true)
  t.same(report.payload, { files: 3, bytes: 16 })
  t.same(report.info[0], ['Payload-Oxum', '16.3'])
  t.equal(report.manifest.get('data/photos/my photo 100%\nfinal.jpg'), sha(Buffer.from([0xff, 0xd8, 0xff, 0xd9])))
})

t.test('M3: one flipped byte is refused: the file, and both checksums', async (t) => {
  const dir = await smallBag(t)
  writeFileSync(join(dir, 'data/a.txt'), 'hellp\n')
  const { valid, problems } = await validateBag(dir)
  t.equal(valid, false)
  t.same(problems, [
    { path: 'data/a.txt', problem: `checksum mismatch: manifest-sha256.txt says ${sha('hello\n')}, the file hashes to ${sha('hellp\n')}` },
  ])
})

t.test('M3: one missing file is refused: missing, and the Oxum that no longer adds up', async (t) => {
  const dir = await smallBag(t)
  rmSync(join(dir, 'data/streamed.bin'))
  t.same((await validateBag(dir)).problems, [
    { path: 'bag-info.txt', problem: 'Payload-Oxum says 16 bytes in 3 files, but data/ holds 10 bytes in 2 files' },
    { path: 'data/streamed.bin', problem: 'missing: listed in manifest-sha256.txt but not in the bag' },
  ])
})

t.test('M3: one extra file is refused: not in the manifest, and the Oxum', async (t) => {
  const dir = await smallBag(t)
  writeFileSync(join(dir, 'data/extra.txt'), 'x')
  t.same((await validateBag(dir)).problems, [
    { path: 'bag-info.txt', problem: 'Payload-Oxum says 16 bytes in 3 files, but data/ holds 17 bytes in 4 files' },
    { path: 'data/extra.txt', problem: 'not listed in manifest-sha256.txt (a payload file the bag does not account for)' },
  ])
})

t.test('M3: a wrong Oxum is refused, and the tag manifest catches the edited bag-info.txt', async (t) => {
  const dir = await smallBag(t)
  const info = readFileSync(join(dir, 'bag-info.txt'), 'utf8')
  const edited = info.replace('16.3', '17.3')
  writeFileSync(join(dir, 'bag-info.txt'), edited)
  t.same((await validateBag(dir)).problems, [
    { path: 'bag-info.txt', problem: 'Payload-Oxum says 17 bytes in 3 files, but data/ holds 16 bytes in 3 files' },
    { path: 'bag-info.txt', problem: `checksum mismatch: tagmanifest-sha256.txt says ${sha(info)}, the file hashes to ${sha(edited)}` },
  ])
  writeFileSync(join(dir, 'bag-info.txt'), 'Payload-Oxum: lots\nbroken line\n')
  t.match((await validateBag(dir)).problems, [
    { path: 'bag-info.txt', problem: 'line 2 is not "Label: value": "broken line"' },
    { path: 'bag-info.txt', problem: 'Payload-Oxum "lots" is not "<bytes>.<files>"' },
    { path: 'bag-info.txt', problem: /checksum mismatch/ },
  ])
})

t.test('M3: bagit.txt must declare BagIt 1.0 in UTF-8, in two lines, without a byte-order mark', async (t) => {
  const dir = await smallBag(t)
  const problemsWith = async (text: string): Promise<string[]> => {
    writeFileSync(join(dir, 'bagit.txt'), text)
    return (await validateBag(dir)).problems
      .filter((p) => p.path === 'bagit.txt' && !p.problem.startsWith('checksum'))
      .map((p) => p.problem)
  }
  t.same(await problemsWith('\uFEFFBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n'), [
    'starts with a byte-order mark, which RFC 8493 forbids',
  ])
  t.same(await problemsWith('BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n'), ['declares BagIt 0.97; this reads BagIt 1.0'])
  t.same(await problemsWith('BagIt 1.0\nTag-File-Character-Encoding: ISO-8859-1\nmore\n'), [
    'first line must be "BagIt-Version: 1.0", not "BagIt 1.0"',
    'second line must be "Tag-File-Character-Encoding: UTF-8", not "Tag-File-Character-Encoding: ISO-8859-1"',
    'has 3 lines; it holds exactly two',
  ])
  t.same(await problemsWith(''), [
    'first line must be "BagIt-Version: 1.0", not ""',
    'second line must be "Tag-File-Character-Encoding: UTF-8", not ""',
  ])
  rmSync(join(dir, 'bagit.txt'))
  t.same((await validateBag(dir)).problems, [{ path: 'bagit.txt', problem: 'missing: this is not a bag (or not its base directory)' }])
})

t.test('M3: manifests: bad lines, paths outside data/ or the bag, duplicates, unknown algorithms, a second algorithm', async (t) => {
  const dir = await smallBag(t)
  const good = readFileSync(join(dir, 'manifest-sha256.txt'), 'utf8')
  appendFileSync(
    join(dir, 'manifest-sha256.txt'),
    `nothex  data/x\n${sha('a')}  bagit.txt\n${sha('a')}  data/../etc/passwd\n${sha('a')}  data/a.txt\n`,
  )
  writeFileSync(join(dir, 'manifest-crc32.txt'), '')
  writeFileSync(join(dir, 'manifest-md5.txt'), `${createHash('md5').update('hello\n').digest('hex')} *data/a.txt\n`)
  appendFileSync(join(dir, 'tagmanifest-sha256.txt'), `${sha('a')}  data/a.txt\n${sha('a')}  missing-tag.txt\n`)
  const problems = (await validateBag(dir)).problems.filter((p) => !p.problem.startsWith('checksum mismatch: tagmanifest'))
  t.same(problems, [
    {
      path: 'data/photos/my photo 100%\nfinal.jpg',
      problem: 'not listed in manifest-md5.txt (a payload file the bag does not account for)',
    },
    { path: 'data/streamed.bin', problem: 'not listed in manifest-md5.txt (a payload file the bag does not account for)' },
    { path: 'manifest-crc32.txt', problem: 'unknown algorithm "crc32": this reads md5, sha1, sha256, sha512' },
    { path: 'manifest-sha256.txt', problem: 'line 4 is not "<sha256 checksum> <path>": "nothex  data/x"' },
    { path: 'manifest-sha256.txt', problem: 'line 5 names "bagit.txt", outside data/ (a payload manifest lists payload only)' },
    { path: 'manifest-sha256.txt', problem: 'line 6 names a path that climbs out of the bag (".."): "data/../etc/passwd"' },
    { path: 'manifest-sha256.txt', problem: 'line 7 lists "data/a.txt" a second time' },
    { path: 'missing-tag.txt', problem: 'missing: listed in tagmanifest-sha256.txt but not in the bag' },
    { path: 'tagmanifest-sha256.txt', problem: 'line 4 names the payload file "data/a.txt" (a tag manifest lists tag files)' },
  ])
  writeFileSync(join(dir, 'manifest-sha256.txt'), good)
})

t.test('M3: no payload manifest, no data/, links and fetch.txt are refused', async (t) => {
  const dir = await smallBag(t)
  rmSync(join(dir, 'manifest-sha256.txt'))
  symlinkSync('/etc/hostname', join(dir, 'data/link'))
  writeFileSync(join(dir, 'fetch.txt'), 'http://example.com/x 1 data/x\n')
  t.match((await validateBag(dir)).problems, [
    { path: 'data/link', problem: 'not a regular file (a link or a device): a bag holds files only' },
    { path: 'fetch.txt', problem: /fetches nothing/ },
    { path: 'manifest-sha256.txt', problem: 'missing: a bag has at least one payload manifest' },
    { path: 'manifest-sha256.txt', problem: /^missing: listed in tagmanifest/ },
  ])
  rmSync(join(dir, 'data'), { recursive: true })
  t.same(
    (await validateBag(dir)).problems.find((p) => p.path === 'data/'),
    { path: 'data/', problem: 'missing: a bag keeps its payload in data/' },
  )
})

t.test('M3: a bag directory whose data/ or tag files are links elsewhere is refused, and what they point at is not read', async (t) => {
  // Outside the bag: a folder and a file the person validating the bag has, which the bag's maker must not get imported.
  const outside = join(tempDir(t), 'outside')
  mkdirSync(outside)
  writeFileSync(join(outside, 'id_rsa'), 'PRIVATE KEY\n')
  writeFileSync(join(outside, 'info'), 'Secret-Line: of the validator\n')
  const dir = join(tempDir(t), 'bag')
  mkdirSync(dir)
  writeFileSync(join(dir, 'bagit.txt'), 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')
  symlinkSync(outside, join(dir, 'data'))
  writeFileSync(join(dir, 'manifest-sha256.txt'), `${sha('PRIVATE KEY\n')}  data/id_rsa\n`)
  // Without the fix this bag was valid: data/ was walked through the link, id_rsa counted as its payload.
  t.same((await validateBag(dir)).problems, [
    {
      path: 'data/',
      problem: 'not a regular file (a link or a device): a bag holds files only; the 1 file the manifests list there is not read',
    },
  ])

  symlinkSync(join(outside, 'info'), join(dir, 'bag-info.txt'))
  symlinkSync(join(outside, 'info'), join(dir, 'tagmanifest-sha1.txt'))
  mkdirSync(join(dir, 'manifest-md5.txt'))
  writeFileSync(join(dir, 'tagmanifest-sha256.txt'), `${sha('x')}  bag-info.txt\n${sha('x')}  tags\n`)
  mkdirSync(join(dir, 'tags'))
  const report = await validateBag(dir)
  t.same(report.info, [], "the link's target is not read as bag-info.txt")
  t.same(
    report.problems.filter((p) => p.problem.startsWith('not a regular file')).map((p) => p.path),
    ['bag-info.txt', 'bag-info.txt', 'data/', 'manifest-md5.txt', 'tagmanifest-sha1.txt', 'tags'],
  )
  t.notMatch(JSON.stringify(report.problems), /Secret-Line/, 'nothing of the target is shown')
  symlinkSync(join(outside, 'info'), join(dir, 'bagit-link'))
  rmSync(join(dir, 'bagit.txt'))
  symlinkSync(join(dir, 'bagit-link'), join(dir, 'bagit.txt'))
  t.match((await validateBag(dir)).problems, [
    { path: 'bagit.txt', problem: 'not a regular file (a link or a device): a bag holds files only' },
    { path: 'bagit.txt', problem: /^missing/ },
  ])
})

t.test('M3: a tag-manifest entry under a folder of the bag that is a link is refused, and the file it reaches is not read', async (t) => {
  const outside = join(tempDir(t), 'outside')
  mkdirSync(outside)
  writeFileSync(join(outside, 'id_rsa'), 'PRIVATE KEY\n')
  const dir = await smallBag(t)
  // `sub -> outside`: the entry sub/id_rsa reached the validator's own file, hashed it and, listed with that hash, passed.
  symlinkSync(outside, join(dir, 'sub'))
  mkdirSync(join(dir, 'tags'))
  writeFileSync(join(dir, 'tags', 'file'), 'not a folder')
  appendFileSync(
    join(dir, 'tagmanifest-sha256.txt'),
    `${sha('PRIVATE KEY\n')}  sub/id_rsa\n${sha('x')}  tags/file/x\n${sha('x')}  gone/x\n`,
  )
  const report = await validateBag(dir)
  t.same(report.problems, [
    { path: 'gone/x', problem: 'missing: listed in tagmanifest-sha256.txt but not in the bag' },
    { path: 'sub/id_rsa', problem: 'under "sub", which is not a folder (a link or a file): not read' },
    { path: 'tags/file/x', problem: 'under "tags/file", which is not a folder (a link or a file): not read' },
  ])
  t.notMatch(JSON.stringify(report.problems), /checksum/, 'nothing outside the bag was hashed')
})

t.test('M3: a folder of data/ that is a link is one problem, not one "missing" per file the manifests list in it', async (t) => {
  const outside = join(tempDir(t), 'outside')
  mkdirSync(outside)
  const folder = join(tempDir(t), 'with-folder')
  const bag = await BagWriter.create(folder)
  for (const name of ['a.jpg', 'b.jpg', 'c.jpg']) await bag.add(`photos/${name}`, name)
  await bag.add('notes/n.txt', 'n')
  await bag.finish({}, NOW)
  // The photos folder moved out of the bag and linked back: a copy tool that kept links, or a bag made to read elsewhere.
  for (const name of ['a.jpg', 'b.jpg', 'c.jpg']) writeFileSync(join(outside, name), readFileSync(join(folder, 'data/photos', name)))
  rmSync(join(folder, 'data/photos'), { recursive: true })
  symlinkSync(outside, join(folder, 'data/photos'))
  // And a listed file that is a link itself.
  writeFileSync(join(outside, 'n.txt'), 'n')
  rmSync(join(folder, 'data/notes/n.txt'))
  symlinkSync(join(outside, 'n.txt'), join(folder, 'data/notes/n.txt'))
  t.same((await validateBag(folder)).problems, [
    { path: 'bag-info.txt', problem: 'Payload-Oxum says 16 bytes in 4 files, but data/ holds 0 bytes in 0 files' },
    {
      path: 'data/notes/n.txt',
      problem: 'not a regular file (a link or a device): a bag holds files only; the 1 file the manifests list there is not read',
    },
    {
      path: 'data/photos',
      problem: 'not a regular file (a link or a device): a bag holds files only; the 3 files the manifests list there are not read',
    },
  ])
})

t.test('M3: progress hears every payload byte hashed', async (t) => {
  const dir = await smallBag(t)
  let seen = 0
  await validateBag(dir, {
    onBytes: (n, total) => {
      seen += n
      t.equal(total, 16)
    },
  })
  t.equal(seen, 16)
})

t.test('M3: the writer refuses a used directory, unsafe or repeated paths and bad labels; info folds long values', async (t) => {
  const used = tempDir(t)
  writeFileSync(join(used, 'x'), '')
  await t.rejects(BagWriter.create(used), { code: 'BAG_EXISTS', message: /is not empty/ })
  const bag = await BagWriter.create(join(tempDir(t), 'b'))
  await t.rejects(bag.add('../x', 'x'), {
    code: 'BAD_PATH',
    message: 'cannot put "../x" in a bag: a path that climbs out of the bag ("..")',
  })
  await bag.add('x', 'x')
  await t.rejects(bag.add('x', 'y'), { code: 'DUPLICATE', message: '"data/x" is already in the bag' })
  await bag.addJson('j.json', { a: 1 })
  t.same(
    bag.written.map((f) => f.path),
    ['data/x', 'data/j.json'],
  )
  t.throws(() => formatBagInfo({ 'Bad: label': 'x' }), { code: 'BAD_INFO' })
  const text = formatBagInfo({ Note: 'one\ntwo', Tag: ['a', 'b'] })
  t.equal(text, 'Note: one\n  two\nTag: a\nTag: b\n')
  const problems: { path: string; problem: string }[] = []
  t.same(parseBagInfo(text, problems), [
    ['Note', 'one\ntwo'],
    ['Tag', 'a'],
    ['Tag', 'b'],
  ])
  t.same(problems, [])
})

t.test('M3: a bag-info value with LF, CR or CRLF in it is folded, reads back, and its bag validates (RFC 8493 2.2.2)', async (t) => {
  // A legacy account name (made before the name rule) may hold any of the three; it goes into External-Description.
  const value = 'one\ntwo\rthree\r\nfour \r'
  const dir = join(tempDir(t), 'bag')
  const bag = await BagWriter.create(dir)
  await bag.add('a.txt', 'a')
  await bag.finish({ 'External-Description': value, After: 'x' }, NOW)
  const text = readFileSync(join(dir, 'bag-info.txt'), 'utf8')
  t.equal(
    text.split('\n').slice(2).join('\n'),
    'External-Description: one\n  two\n  three\n  four \n  \nAfter: x\n',
    'every break folded, none left raw',
  )
  t.notMatch(text, /\r/)
  const report = await validateBag(dir)
  t.same(report.problems, [])
  t.same(report.info.slice(2), [
    ['External-Description', 'one\ntwo\nthree\nfour \n'],
    ['After', 'x'],
  ])
  // A reader takes all three line endings, and continuation lines (space or tab) after each.
  const problems: { path: string; problem: string }[] = []
  t.same(parseBagInfo('A: one\r  two\r\n\tthree\n  four\rB: b\r\nC: c', problems), [
    ['A', 'one\ntwo\nthree\nfour'],
    ['B', 'b'],
    ['C', 'c'],
  ])
  t.same(problems, [])
  t.same(parseBagInfo('A: a\rbroken\r\n', problems), [['A', 'a']])
  const broken = [{ path: 'bag-info.txt', problem: 'line 2 is not "Label: value": "broken"' }]
  t.same(problems, broken, 'a line after a lone CR is a line')
})

t.test('M3: manifest path encoding is exactly CR, LF and % (RFC 8493 2.1.3); unsafe paths are named', async (t) => {
  t.equal(encodeManifestPath('a\r\nb%c d'), 'a%0D%0Ab%25c d')
  t.equal(decodeManifestPath('a%0d%0Ab%25c%20d'), 'a\r\nb%c%20d', 'other escapes stay as they are')
  t.equal(decodeManifestPath(encodeManifestPath('x%0Ay')), 'x%0Ay')
  t.equal(unsafePath(''), 'an empty path')
  t.equal(unsafePath('/etc'), 'an absolute path')
  t.equal(unsafePath('C:/x'), 'an absolute path')
  t.equal(unsafePath('a\\b'), 'a path with "\\" (BagIt paths use "/")')
  t.equal(unsafePath('a\u0000'), 'a path with a NUL character')
  t.equal(unsafePath('a//b'), 'a path with an empty or "." segment')
  t.equal(unsafePath('a/./b'), 'a path with an empty or "." segment')
  t.equal(unsafePath('data/ok name'), null)
  mkdirSync(join(tempDir(t), 'unused'))
})
