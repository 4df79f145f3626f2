/** Seeding a phone with realistic data (S1-S4, M2): deterministic for a seed, realistic values, adds to what is there. */
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import { EDINBURGH, seedPhoneData } from '../../agent/phone-data/seed.js'
import { PhoneFiles } from '../../agent/phone-data/store.js'
import { CATEGORIES } from '../../agent/phone-data/types.js'
import { tempDir } from '../fixtures/scope.js'

const NOW = Date.UTC(2026, 2, 15, 16, 30)
const DAY = 86_400_000
const counts = { photos: 6, contacts: 8, notes: 4, recordings: 2 }

/** Every file under `dir`: relative path → [bytes, mtime]. */
function snapshot(dir: string): Map<string, [Buffer, number]> {
  const files = new Map<string, [Buffer, number]>()
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else files.set(relative(dir, p), [readFileSync(p), statSync(p).mtimeMs])
    }
  }
  walk(dir)
  return files
}

t.test('M2: the same seed on the same day gives the same files, byte for byte; another seed other files', async (t) => {
  const dirs = [tempDir(t), tempDir(t), tempDir(t)]
  const seeds = [7, 7, 8]
  for (const [i, dir] of dirs.entries()) {
    // A later hour of the same day changes nothing.
    const clock = new ManualClock(NOW + i * 3_600_000)
    const result = await seedPhoneData(new PhoneFiles({ dataDir: dir, clock }), { counts, seed: seeds[i] as number, now: clock.now() })
    t.same(result.counts, counts)
    t.equal(
      result.bytes,
      [...snapshot(dir).values()].reduce((n, [b]) => n + b.length, 0),
      'bytes counted',
    )
  }
  const [a, b, c] = dirs.map(snapshot) as [Map<string, [Buffer, number]>, Map<string, [Buffer, number]>, Map<string, [Buffer, number]>]
  t.equal(a.size, 20)
  t.same([...a.keys()].sort(), [...b.keys()].sort())
  for (const [path, [bytes, mtime]] of a)
    t.ok(bytes.equals((b.get(path) as [Buffer, number])[0]) && mtime === (b.get(path) as [Buffer, number])[1], `${path} identical`)
  t.notOk(
    [...c.keys()].some((path) => a.has(path)),
    'another seed, other files',
  )
})

t.test('S1: seeded items look like a real phone: photos around the city over past months, named contacts, notes, recordings', async (t) => {
  const clock = new ManualClock(NOW)
  const data = new PhoneFiles({ dataDir: tempDir(t), clock })
  await seedPhoneData(data, { counts: { photos: 12, contacts: 20, notes: 5, recordings: 3 }, seed: 3, now: NOW })
  const photos = await data.list('photos')
  t.equal(photos.length, 12)
  for (const p of photos) {
    const { takenAt, lat, lon, camera } = p.meta as { takenAt: number; lat: number; lon: number; camera: string }
    t.ok(takenAt < Date.UTC(2026, 2, 15) && takenAt > NOW - 182 * DAY, `${p.id} taken in the past months`)
    t.equal(
      p.id,
      `IMG_${new Date(takenAt).toISOString().replace(/[-:]/g, '').replace('T', '_').replace('.', '_').slice(0, 19)}.jpg`,
      'named after its capture time',
    )
    t.equal(p.modifiedAt, takenAt, 'the file dates from the photo')
    t.ok(Math.abs(lat - EDINBURGH.lat) < 0.06 && Math.abs(lon - EDINBURGH.lon) < 0.1, `${lat},${lon} within a few km of Edinburgh`)
    t.match(camera, /^(Xiaomi|Google|Samsung|Apple) /)
  }
  t.ok(new Set(photos.map((p) => p.sha256)).size === 12, 'every photo differs')
  const contacts = await data.list('contacts')
  t.equal(contacts.length, 20)
  for (const c of contacts) {
    t.match(c.meta.name, /^[A-Z][a-z]+ [A-Z][A-Za-z]+$/)
    if (c.meta.phone !== null) t.match(c.meta.phone, /^\+44 7700 900\d{3}$/, 'numbers from the range reserved for fiction')
    if (c.meta.email !== null) t.match(c.meta.email, /^[a-z]+\.[a-z]+@example\.(com|org|net)$/)
    t.match(readFileSync(c.path, 'utf8'), new RegExp(`UID:${c.id.replace('.vcf', '')}\r\n`))
  }
  t.ok(contacts.some((c) => c.meta.email === null) && contacts.some((c) => c.meta.email !== null), 'some with email, some without')
  t.ok((await data.list('notes')).every((n) => typeof n.meta.title === 'string' && n.meta.title.length > 0))
  t.ok((await data.list('recordings')).every((r) => typeof r.meta.durationS === 'number' && r.meta.durationS >= 2 && r.meta.durationS < 30))

  const paris = new PhoneFiles({ dataDir: tempDir(t), clock })
  await seedPhoneData(paris, {
    counts: { photos: 2, contacts: 0, notes: 0, recordings: 0 },
    seed: 3,
    now: NOW,
    near: { lat: 48.8566, lon: 2.3522 },
  })
  t.ok((await paris.list('photos')).every((p) => Math.abs((p.meta.lat as number) - 48.8566) < 0.06))
})

t.test('seeding adds to what the phone has, even with the same seed, and reports every 100th photo', async (t) => {
  const clock = new ManualClock(NOW)
  const data = new PhoneFiles({ dataDir: tempDir(t), clock })
  const mine = await data.add({ category: 'contacts', name: 'Me Myself' })
  const small = { photos: 2, contacts: 3, notes: 2, recordings: 2 }
  await seedPhoneData(data, { counts: small, seed: 5, now: NOW })
  await seedPhoneData(data, { counts: small, seed: 5, now: NOW })
  for (const category of CATEGORIES)
    t.equal((await data.list(category)).length, small[category] * 2 + (category === 'contacts' ? 1 : 0), category)
  t.ok(await data.get('contacts', mine.id), 'nothing there before is touched')
  const photos = (await data.list('photos')).map((p) => p.meta.takenAt as number).sort()
  t.equal(new Set(photos).size, 4, 'a taken name moves the capture time on by a millisecond')

  const progress: string[] = []
  await seedPhoneData(new PhoneFiles({ dataDir: tempDir(t), clock }), {
    counts: { photos: 100, contacts: 0, notes: 0, recordings: 0 },
    seed: 1,
    now: NOW,
    onProgress: (done, total) => progress.push(`${done}/${total}`),
  })
  t.same(progress, ['100/100'])
})
