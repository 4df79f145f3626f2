/**
 * The phone's data as real files (S1-S4): add, list, edit, delete, cloud writes, ids, errors, mtimes from the clock, listing 1,000 photos.
 */
import t, { type Test } from 'tap'
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import { categoryDir, checkCategory, fileStamp, PhoneFiles } from '../../agent/phone-data/store.js'
import type { Category, ItemInput } from '../../agent/phone-data/types.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

const START = Date.UTC(2026, 0, 1)

function phone(t: Test): { data: PhoneFiles; clock: ManualClock; dir: string; changes: string[] } {
  const dir = tempDir(t, 'fakephone-data-')
  const clock = new ManualClock(START)
  const data = new PhoneFiles({ dataDir: dir, clock })
  const changes: string[] = []
  data.on('changed', (category, id, kind) => changes.push(`${kind} ${category}/${id}`))
  return { data, clock, dir, changes }
}

t.test('S1: the user adds a contact, a note, a photo and a recording; each is a real file in the documented layout', async (t) => {
  const { data, clock, dir, changes } = phone(t)
  t.same(await data.list('contacts'), [], 'a new phone has nothing')

  clock.advance(1234)
  const contact = await data.add({ category: 'contacts', name: ' Alice Smith ', phone: '+44 7700 900123', email: '' })
  t.match(contact, {
    category: 'contacts',
    id: /^[0-9a-f-]{36}\.vcf$/,
    meta: { name: 'Alice Smith', phone: '+44 7700 900123', email: null },
    modifiedAt: START + 1234,
  })
  t.equal(contact.path, join(dir, 'contacts', contact.id))
  t.match(readFileSync(contact.path, 'utf8'), /^BEGIN:VCARD\r\nVERSION:3\.0\r\nUID:[0-9a-f-]{36}\r\nFN:Alice Smith\r\n/)
  t.equal(Math.round(statSync(contact.path).mtimeMs), START + 1234, "the file's mtime is the phone's clock")

  const note = await data.add({ category: 'notes', title: 'Shopping', body: 'milk\neggs' })
  t.match(note, { id: /^[0-9a-f-]{36}\.txt$/, meta: { title: 'Shopping' } })
  t.equal(readFileSync(join(dir, 'notes', note.id), 'utf8'), 'Shopping\nmilk\neggs\n')

  const photo = await data.add({ category: 'photos', lat: 55.9486, lon: -3.1999 })
  t.equal(photo.id, 'IMG_20260101_000001_234.jpg', 'named like a phone camera names it, from the clock')
  t.equal(photo.path, join(dir, 'sdcard', 'DCIM', 'Camera', photo.id))
  t.same(photo.meta, { takenAt: START + 1234, lat: 55.9486, lon: -3.1999, camera: 'Xiaomi 13' })
  const older = await data.add({ category: 'photos', takenAt: START - 86_400_000, camera: 'Google Pixel 8' })
  t.same(older.meta, { takenAt: START - 86_400_000, lat: null, lon: null, camera: 'Google Pixel 8' })

  const rec = await data.add({ category: 'recordings', durationS: 1.5 })
  t.equal(rec.id, 'REC_20260101_000001_234.wav')
  t.equal(rec.path, join(dir, 'sdcard', 'Recordings', rec.id))
  t.same(rec.meta, { durationS: 1.5 })
  t.same((await data.add({ category: 'recordings' })).meta, { durationS: 5 }, 'five seconds unless told')

  t.equal((await data.read('notes', note.id)).toString(), 'Shopping\nmilk\neggs\n')
  t.same(await data.get('photos', photo.id), photo)
  t.equal(photo.sha256, (await import('node:crypto')).createHash('sha256').update(readFileSync(photo.path)).digest('hex'))
  t.same(
    (await data.list('photos')).map((p) => p.id),
    [older.id, photo.id].sort(),
    'listed by id',
  )
  t.equal(changes.length, 6)
  t.same(changes.slice(0, 2), [`added contacts/${contact.id}`, `added notes/${note.id}`])
  t.same(readdirSync(join(dir, 'contacts')), [contact.id], 'no temporary files left behind')
})

t.test('two photos taken in the same millisecond get different names', async (t) => {
  const { data } = phone(t)
  const photos = await Promise.all([1, 2, 3].map(() => data.add({ category: 'photos' })))
  t.same(
    photos.map((p) => p.id),
    ['IMG_20260101_000000_000.jpg', 'IMG_20260101_000000_001.jpg', 'IMG_20260101_000000_002.jpg'],
  )
  t.equal((await data.add({ category: 'photos' })).id, 'IMG_20260101_000000_003.jpg', 'a name on disk is taken too')
  t.equal(fileStamp(Date.UTC(2025, 11, 31, 23, 59, 58, 7)), '20251231_235958_007')
})

t.test('S1: the user edits a contact and a note; a field left out keeps its value, an empty one clears it', async (t) => {
  const { data, clock, dir, changes } = phone(t)
  const contact = await data.add({ category: 'contacts', name: 'Bob Jones', phone: '111', email: 'bob@example.com' })
  clock.advance(60_000)
  const renamed = await data.edit('contacts', contact.id, { category: 'contacts', name: 'Robert Jones' })
  t.same(renamed.meta, { name: 'Robert Jones', phone: '111', email: 'bob@example.com' })
  t.equal(renamed.modifiedAt, START + 60_000)
  t.match(
    readFileSync(renamed.path, 'utf8'),
    new RegExp(`UID:${contact.id.replace('.vcf', '')}\r\n[\\s\\S]*REV:2026-01-01T00:01:00Z`),
    'same UID, new REV',
  )
  const cleared = await data.edit('contacts', contact.id, { category: 'contacts', name: 'Robert Jones', phone: '222', email: ' ' })
  t.same(cleared.meta, { name: 'Robert Jones', phone: '222', email: null })

  const note = await data.add({ category: 'notes', title: 'Todo', body: 'call mum' })
  t.equal((await data.edit('notes', note.id, { category: 'notes', title: 'To do' })).meta.title, 'To do')
  t.equal(readFileSync(note.path, 'utf8'), 'To do\ncall mum\n', 'the body kept')
  await data.edit('notes', note.id, { category: 'notes', title: 'To do', body: '' })
  t.equal(readFileSync(note.path, 'utf8'), 'To do\n')
  t.same(changes.slice(-2), [`edited notes/${note.id}`, `edited notes/${note.id}`])

  // A vCard from elsewhere without a UID gets its file name's.
  writeFileSync(join(categoryDir(dir, 'contacts'), 'imported.vcf'), 'BEGIN:VCARD\r\nFN:Old\r\nEND:VCARD\r\n')
  await data.edit('contacts', 'imported.vcf', { category: 'contacts', name: 'New' })
  t.match(readFileSync(join(categoryDir(dir, 'contacts'), 'imported.vcf'), 'utf8'), /UID:imported\r\n/)
})

t.test('S4: deleting is a user change; write and remove (from the cloud) are not', async (t) => {
  const { data, changes } = phone(t)
  const contact = await data.add({ category: 'contacts', name: 'Carol' })
  t.equal(await data.delete('contacts', contact.id), true)
  t.equal(await data.delete('contacts', contact.id), false, 'nothing to delete the second time')
  t.equal(await data.get('contacts', contact.id), undefined)
  t.same(changes, [`added contacts/${contact.id}`, `deleted contacts/${contact.id}`])

  const bytes = await (async () => {
    const other = new PhoneFiles({ dataDir: tempDir(t), clock: new ManualClock() })
    return other.read('photos', (await other.add({ category: 'photos', lat: 1, lon: 2 })).id)
  })()
  const pulled = await data.write('photos', 'IMG_20251201_101010_000.jpg', bytes, { modifiedAt: START - 5000 })
  t.match(pulled, { size: bytes.length, modifiedAt: START - 5000, meta: { lat: 1, lon: 2 } })
  const restored = await data.write('notes', 'restored.txt', Buffer.from('From the cloud\n'))
  t.equal(restored.modifiedAt, START, "the clock's now unless told")
  t.equal(await data.remove('photos', pulled.id), true)
  t.equal(await data.remove('photos', pulled.id), false)
  t.equal(changes.length, 2, 'no changed events for cloud writes')
})

t.test("a change listener that throws is logged and does not undo the user's change", async (t) => {
  const logs = new LogCapture()
  const dir = tempDir(t)
  const data = new PhoneFiles({ dataDir: dir, clock: new ManualClock(), log: logs.logger() })
  data.on('changed', () => {
    throw new Error('sync is broken')
  })
  const note = await data.add({ category: 'notes', title: 'Kept' })
  t.match(logs.lines, [{ msg: 'a listener of phone data changes failed', err: { message: 'sync is broken' }, kind: 'added' }])
  t.equal(await data.delete('notes', note.id), true)
  const quiet = new PhoneFiles({ dataDir: dir, clock: new ManualClock() })
  quiet.on('changed', () => {
    throw new Error('no log to tell')
  })
  t.match((await quiet.add({ category: 'notes', title: 'Also kept' })).meta, { title: 'Also kept' })
})

t.test('bad input gets a clear error with a code, and the store keeps working', async (t) => {
  const { data, dir } = phone(t)
  const photo = await data.add({ category: 'photos' })
  const rec = await data.add({ category: 'recordings' })
  const contact = await data.add({ category: 'contacts', name: 'Dan' })
  await t.rejects(data.edit('photos', photo.id, { category: 'photos' }), {
    code: 'NOT_EDITABLE',
    message: 'photos cannot be edited on the phone, only taken and deleted',
  })
  await t.rejects(data.edit('recordings', rec.id, { category: 'recordings' }), { code: 'NOT_EDITABLE' })
  await t.rejects(data.edit('contacts', 'nobody.vcf', { category: 'contacts', name: 'X' }), {
    code: 'NOT_FOUND',
    message: 'no contacts item "nobody.vcf" on this phone',
  })
  await t.rejects(data.read('notes', 'nothing.txt'), { code: 'NOT_FOUND' })
  await t.rejects(data.edit('contacts', contact.id, { category: 'notes', title: 'x' }), {
    code: 'BAD_INPUT',
    message: 'the changes are for notes, not contacts',
  })
  for (const id of ['../x.vcf', 'a/b.vcf', '.hidden.vcf', 'x.jpg', '', 'x'.repeat(200) + '.vcf', '..'])
    await t.rejects(
      data.get('contacts', id),
      { code: 'BAD_ID', message: /an id is a file name in the contacts folder, like <uuid>\.vcf/ },
      `id ${JSON.stringify(id).slice(0, 20)}`,
    )
  await t.rejects(data.read('photos', '../../settings.json'), { code: 'BAD_ID', message: /like IMG_20260101_120000_000\.jpg/ })
  await t.rejects(data.list('videos' as Category), {
    code: 'BAD_CATEGORY',
    message: 'unknown category "videos": use one of photos, contacts, notes, recordings',
  })
  t.throws(() => checkCategory('music'), { code: 'BAD_CATEGORY' })
  const bad: [ItemInput, RegExp][] = [
    [{ category: 'photos', lat: 91, lon: 0 }, /latitude 91 is not between -90 and 90/],
    [{ category: 'photos', lat: 0, lon: -181 }, /longitude -181/],
    [{ category: 'photos', lat: 0 }, /needs both latitude and longitude/],
    [{ category: 'photos', lat: Number.NaN, lon: 0 }, /latitude NaN/],
    [{ category: 'photos', camera: ' ' }, /camera name is empty/],
    [{ category: 'recordings', durationS: 0 }, /0\.1 to 3600 seconds, not 0/],
    [{ category: 'recordings', durationS: 4000 }, /not 4000/],
    [{ category: 'contacts', name: '  ' }, /a contact needs a name/],
    [{ category: 'contacts', name: 'x'.repeat(201) }, /a contact needs a name/],
    [{ category: 'notes', title: '' }, /a note needs a title/],
    [{ category: 'notes', title: 'two\nlines' }, /on one line/],
    [{ category: 'notes', title: 'x'.repeat(201) }, /a note needs a title/],
    [{ category: 'movies' } as unknown as ItemInput, /unknown category "movies"/],
  ]
  for (const [input, message] of bad) await t.rejects(data.add(input), { message }, message.source)
  await t.rejects(data.edit('notes', 'x.txt', { category: 'notes', title: '' }), { code: 'BAD_INPUT' })
  t.equal((await data.list('contacts')).length, 1, 'still working')
  t.notOk(
    readdirSync(join(dir, 'sdcard', 'DCIM', 'Camera')).some((n) => n.startsWith('.')),
    'no temporary files',
  )
})

t.test('listing skips what is not an item and notices files changed behind its back', async (t) => {
  const { data, dir } = phone(t)
  const note = await data.add({ category: 'notes', title: 'First' })
  const notes = join(dir, 'notes')
  writeFileSync(join(notes, '.half-written.txt.tmp'), 'x')
  writeFileSync(join(notes, 'readme.md'), 'x')
  mkdirSync(join(notes, 'folder.txt'))
  t.same(
    (await data.list('notes')).map((n) => n.id),
    [note.id],
  )
  t.equal(await data.get('notes', 'folder.txt'), undefined, 'a folder is no item')

  writeFileSync(note.path, 'Changed elsewhere\n')
  utimesSync(note.path, new Date(START + 9000), new Date(START + 9000))
  t.match(await data.get('notes', note.id), { meta: { title: 'Changed elsewhere' }, modifiedAt: START + 9000 })
})

t.test('filesystem failures other than a missing file are reported, and a failed write leaves no temporary file', async (t) => {
  const { data, dir } = phone(t)
  writeFileSync(join(dir, 'notes'), 'a file where the folder should be')
  await t.rejects(data.list('notes'), { code: 'ENOTDIR' })
  await t.rejects(data.get('notes', 'a.txt'), { code: 'ENOTDIR' })
  await t.rejects(data.read('notes', 'a.txt'), { code: 'ENOTDIR' })
  await t.rejects(data.remove('notes', 'a.txt'), { code: 'ENOTDIR' })
  mkdirSync(join(dir, 'contacts', 'taken.vcf'), { recursive: true })
  await t.rejects(data.write('contacts', 'taken.vcf', Buffer.from('x')), { code: 'EISDIR' })
  t.same(readdirSync(join(dir, 'contacts')), ['taken.vcf'])
})

t.test('S1: listing 1,000 photos is fast once their metadata is read', async (t) => {
  const { data: writer, dir, clock } = phone(t)
  const source = new PhoneFiles({ dataDir: tempDir(t), clock: new ManualClock() })
  const bytes = await source.read('photos', (await source.add({ category: 'photos', lat: 10, lon: 20 })).id)
  for (let i = 0; i < 1000; i++) await writer.write('photos', `IMG_20250101_000000_${String(i).padStart(3, '0')}.jpg`, bytes)
  // A phone that has not read these files yet (as after a restart).
  const data = new PhoneFiles({ dataDir: dir, clock })
  const first = performance.now()
  t.equal((await data.list('photos')).length, 1000)
  const cold = performance.now() - first
  const second = performance.now()
  const again = await data.list('photos')
  const warm = performance.now() - second
  t.equal(again.length, 1000)
  t.match(again[999], { meta: { lat: 10, lon: 20 } })
  t.ok(warm < 2000, `listed 1,000 photos in ${Math.round(cold)} ms cold, ${Math.round(warm)} ms warm`)
})
