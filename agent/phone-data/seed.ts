/**
 * Fills a phone with realistic data to sync, back up and migrate (S1-S4,
 * M2): photos taken around a city over the past months with the phone's
 * camera (and a few received from friends' phones), contacts with names,
 * mobile numbers from the range reserved for fiction and example.com
 * addresses, notes and short recordings. A seeded PRNG picks everything, so
 * the same seed on the same day gives the same files, byte for byte. It
 * writes through PhoneFiles (atomic, no `changed` events), adding to what
 * the phone already has, whether or not its agent is running.
 */
import { seededRandom } from '../../common/random.js'
import { makePhoto, splitCamera } from './photo.js'
import { fileStamp, type PhoneFiles } from './store.js'
import type { Category } from './types.js'
import { toNoteText } from './note.js'
import { toVcard } from './vcard.js'
import { makeWav } from './wav.js'

export type SeedCounts = Record<Category, number>

export interface SeedOptions {
  counts: SeedCounts
  seed: number
  /** Now: the items are dated over the months before the start of this day (UTC). */
  now: number
  /** Where the photos were taken around (default: Edinburgh). */
  near?: { lat: number; lon: number }
  /** Called after every 100th photo. */
  onProgress?: (done: number, total: number) => void
}

export interface SeedResult {
  counts: SeedCounts
  bytes: number
}

export const EDINBURGH = { lat: 55.9533, lon: -3.1883 }
const DAY = 86_400_000
/** How far back the items go. */
const SPAN_DAYS = 180

const FIRST = [
  'Alice',
  'Ben',
  'Chloe',
  'Daniel',
  'Emma',
  'Farah',
  'George',
  'Hannah',
  'Isaac',
  'Jia',
  'Kofi',
  'Laura',
  'Mateo',
  'Nadia',
  'Oliver',
  'Priya',
  'Quinn',
  'Rosa',
  'Samuel',
  'Tomasz',
  'Uma',
  'Victor',
  'Wen',
  'Yusuf',
  'Zoe',
  'Aoife',
  'Lukas',
  'Mei',
  'Ravi',
  'Sofia',
]
const LAST = [
  'Anderson',
  'Brown',
  'Campbell',
  'Douglas',
  'Evans',
  'Fraser',
  'Garcia',
  'Hughes',
  'Ibrahim',
  'Jones',
  'Kowalski',
  'Li',
  'MacDonald',
  'Murray',
  'Nowak',
  'Okafor',
  'Patel',
  'Reid',
  'Robertson',
  'Scott',
  'Singh',
  'Stewart',
  'Thomson',
  'Wang',
  'Wilson',
  'Young',
]
/** This phone's camera most of the time; friends' phones now and then (photos shared with the user). */
const CAMERAS = [
  'Xiaomi 13',
  'Xiaomi 13',
  'Xiaomi 13',
  'Xiaomi 13',
  'Xiaomi Redmi Note 12',
  'Google Pixel 7',
  'Samsung SM-S911B',
  'Apple iPhone 14',
]
const NOTES: [string, string][] = [
  ['Shopping list', 'milk\neggs\nbread\ncoffee'],
  ['Gate code', 'side gate: 4711, ask for the key at no. 12'],
  ['Books to read', 'The Left Hand of Darkness\nPiranesi\nKindred'],
  ['Packing', 'passport\ncharger\nrain jacket'],
  ['Meeting notes', 'budget agreed\nnext review in March'],
  ['Recipe: dal', 'red lentils, onion, garlic, cumin, turmeric; 25 min'],
  ['Gift ideas', 'scarf for Mum\nboard game for the twins'],
  ['Car', 'MOT due in May; tyre pressure 2.3 bar'],
  ['Wi-Fi at the cottage', 'network: Cottage-5G'],
  ['Running log', '5 km 27:40\n8 km 46:10'],
]

type Random = () => number

const pick = <T>(rand: Random, list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T
const digits = (rand: Random, n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('')

/** A version 4 UUID drawn from `rand`. */
function uuid(rand: Random): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16))
  hex[12] = '4'
  hex[16] = (8 + Math.floor(rand() * 4)).toString(16)
  const h = hex.join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** A moment in the past SPAN_DAYS days before `day`, in the waking hours (07:00-22:00 UTC), to the millisecond. */
const pastMoment = (rand: Random, day: number): number =>
  day - (1 + Math.floor(rand() * SPAN_DAYS)) * DAY + 7 * 3_600_000 + Math.floor(rand() * 15 * 3_600_000)

/** A point within a few kilometres of `near` (denser near the centre), to six decimals. */
function around(rand: Random, near: { lat: number; lon: number }): { lat: number; lon: number } {
  const km = 6 * rand() * rand()
  const angle = rand() * 2 * Math.PI
  const lat = near.lat + (km / 111.32) * Math.cos(angle)
  const lon = near.lon + (km / (111.32 * Math.cos((near.lat * Math.PI) / 180))) * Math.sin(angle)
  return { lat: Math.round(lat * 1e6) / 1e6, lon: Math.round(lon * 1e6) / 1e6 }
}

/** Seeds `data` with `opts.counts` new items and says how many bytes they took. */
export async function seedPhoneData(data: PhoneFiles, opts: SeedOptions): Promise<SeedResult> {
  const rand = seededRandom(opts.seed)
  const day = Math.floor(opts.now / DAY) * DAY
  const near = opts.near ?? EDINBURGH
  let bytes = 0
  /** Writes under the first candidate id not yet on the phone: `idFor(0)`, `idFor(1)`, ... */
  const put = async (
    category: Category,
    idFor: (attempt: number) => string,
    content: (id: string, attempt: number) => Buffer,
    modifiedAt: number,
  ): Promise<void> => {
    let attempt = 0
    let id = idFor(attempt)
    while ((await data.get(category, id)) !== undefined) id = idFor(++attempt)
    bytes += (await data.write(category, id, content(id, attempt), { modifiedAt })).size
  }

  for (let i = 0; i < opts.counts.photos; i++) {
    const takenAt = pastMoment(rand, day)
    const where = around(rand, near)
    const camera = splitCamera(pick(rand, CAMERAS))
    const scene = Math.floor(rand() * 2 ** 32)
    // A name taken already moves the capture time on by a millisecond, as a camera does.
    await put(
      'photos',
      (n) => `IMG_${fileStamp(takenAt + n)}.jpg`,
      (_, n) => makePhoto({ takenAt: takenAt + n, ...where, ...camera }, scene),
      takenAt,
    )
    if ((i + 1) % 100 === 0) opts.onProgress?.(i + 1, opts.counts.photos)
  }
  for (let i = 0; i < opts.counts.contacts; i++) {
    const first = pick(rand, FIRST)
    const last = pick(rand, LAST)
    // 07700 900000-900999: UK mobile numbers set aside for drama, never anyone's real phone.
    const phone = rand() < 0.9 ? `+44 7700 900${digits(rand, 3)}` : null
    const email = rand() < 0.6 ? `${first}.${last}@${pick(rand, ['example.com', 'example.org', 'example.net'])}`.toLowerCase() : null
    const rev = pastMoment(rand, day)
    const card = (id: string): Buffer =>
      Buffer.from(toVcard({ uid: id.slice(0, -'.vcf'.length), name: `${first} ${last}`, phone, email, rev }))
    await put('contacts', () => `${uuid(rand)}.vcf`, card, rev)
  }
  for (let i = 0; i < opts.counts.notes; i++) {
    const [title, body] = pick(rand, NOTES)
    await put(
      'notes',
      () => `${uuid(rand)}.txt`,
      () => Buffer.from(toNoteText({ title, body })),
      pastMoment(rand, day),
    )
  }
  for (let i = 0; i < opts.counts.recordings; i++) {
    const at = pastMoment(rand, day)
    const seconds = 2 + Math.floor(rand() * 28)
    const hz = 200 + Math.floor(rand() * 600)
    await put(
      'recordings',
      (n) => `REC_${fileStamp(at + n)}.wav`,
      () => makeWav(seconds, hz),
      at,
    )
  }
  return { counts: { ...opts.counts }, bytes }
}
