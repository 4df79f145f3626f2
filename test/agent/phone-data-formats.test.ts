/**
 * The phone's file formats (S1, M2, M3): EXIF JPEG photos read back by an independent reader, vCard 3.0 contacts, notes, WAV recordings.
 */
import t from 'tap'
import exifr from 'exifr'
import jpeg from 'jpeg-js'
import { encodeJpeg } from '../../agent/phone-data/jpeg-encoder.js'
import { exifDate, withExif } from '../../agent/phone-data/exif.js'
import { readPhotoMeta } from '../../common/photo-meta.js'
import { makePhoto, splitCamera } from '../../agent/phone-data/photo.js'
import { seededRandom, seedOf } from '../../common/random.js'
import { parseNote, toNoteText } from '../../agent/phone-data/note.js'
import { parseVcard, toVcard } from '../../agent/phone-data/vcard.js'
import { makeWav, SAMPLE_RATE, wavDuration } from '../../agent/phone-data/wav.js'

const TAKEN = Date.UTC(2025, 5, 3, 14, 7, 9, 250)

t.test(
  'S1/M2: a photo is a decodable JPEG whose EXIF time, GPS position and camera an independent reader (exifr) reads back',
  async (t) => {
    const photo = makePhoto({ takenAt: TAKEN, lat: 55.948612, lon: -3.199935, make: 'Xiaomi', model: '13 Pro' }, 7)
    t.same([...photo.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xe1], 'an EXIF JPEG: APP1 right after the start of image')
    const pixels = jpeg.decode(photo)
    t.equal(pixels.width, 256)
    t.equal(pixels.height, 192)
    t.ok(photo.length > 8_000 && photo.length < 60_000, `a phone-sized small photo (${photo.length} bytes)`)

    const raw = await exifr.parse(photo, { reviveValues: false })
    t.match(raw, {
      Make: 'Xiaomi',
      Model: '13 Pro',
      DateTimeOriginal: '2025:06:03 14:07:09',
      OffsetTimeOriginal: '+00:00',
      SubSecTimeOriginal: '250',
      GPSLatitudeRef: 'N',
      GPSLongitudeRef: 'W',
    })
    const gps = await exifr.gps(photo)
    t.ok(Math.abs(gps.latitude - 55.948612) < 1e-6 && Math.abs(gps.longitude + 3.199935) < 1e-6, 'GPS to well under a metre')
    t.same(await readPhotoMeta(photo), { takenAt: TAKEN, lat: 55.948612, lon: -3.199935, camera: 'Xiaomi 13 Pro' })

    const south = makePhoto({ takenAt: TAKEN, lat: -33.8688, lon: 151.2093, make: 'Google', model: 'Pixel 8' }, 8)
    t.match(await exifr.parse(south, { reviveValues: false }), { GPSLatitudeRef: 'S', GPSLongitudeRef: 'E' })
    t.match(await readPhotoMeta(south), { lat: -33.8688, lon: 151.2093, camera: 'Google Pixel 8' })
    t.not(jpeg.decode(south).data.compare(pixels.data), 0, 'each photo has its own pixels')
  },
)

t.test('S1: the reused JPEG encoder gives the bytes jpeg-js encode() gives, photo after photo', async (t) => {
  for (const seed of [1, 2, 3]) {
    const pixels = new Uint8ClampedArray(32 * 24 * 4).map((_, i) => (i * seed * 37) % 256)
    const ours = encodeJpeg(32, 24, pixels, 75)
    t.ok(Buffer.isBuffer(ours), 'a Buffer, as encode() gives')
    t.ok(ours.equals(jpeg.encode({ width: 32, height: 24, data: pixels }, 75).data), `image ${seed}: the same bytes`)
  }
})

t.test('a photo taken without a location fix has no GPS in its EXIF', async (t) => {
  const photo = makePhoto({ takenAt: TAKEN, lat: null, lon: null, make: 'Xiaomi', model: '' }, 1)
  t.equal(await exifr.gps(photo), undefined)
  t.same(await readPhotoMeta(photo), { takenAt: TAKEN, lat: null, lon: null, camera: 'Xiaomi' })
})

t.test('a JPEG without EXIF, or no JPEG at all, has null metadata', async (t) => {
  const plain = jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(256, 200) }, 80).data
  const none = { takenAt: null, lat: null, lon: null, camera: null }
  t.same(await readPhotoMeta(plain), none)
  t.same(await readPhotoMeta(Buffer.from('not a picture')), none)
  // withExif also handles a JPEG that has no JFIF header to replace.
  const bare = Buffer.concat([plain.subarray(0, 2), plain.subarray(4 + plain.readUInt16BE(4) - 2)])
  t.match(await readPhotoMeta(withExif(bare, { takenAt: TAKEN, lat: 1, lon: 2, make: 'A', model: 'B' })), {
    takenAt: TAKEN,
    lat: 1,
    lon: 2,
  })
})

/** The photo's bytes with one ASCII run replaced by another of the same length. */
const patched = (bytes: Buffer, from: string | Buffer, to: string | Buffer): Buffer => {
  const copy = Buffer.from(bytes)
  const at = copy.indexOf(from)
  if (at < 0) throw new Error(`${from.toString()} not found`)
  Buffer.from(to).copy(copy, at)
  return copy
}

t.test("capture times written by other cameras: another zone's offset, no offset, no sub-seconds, a broken date", async (t) => {
  const photo = makePhoto({ takenAt: TAKEN, lat: 1, lon: 1, make: 'X', model: 'Y' }, 2)
  t.equal((await readPhotoMeta(patched(photo, '+00:00', '-05:30'))).takenAt, TAKEN + 5.5 * 3_600_000)
  t.equal((await readPhotoMeta(patched(photo, '+00:00', '+01:00'))).takenAt, TAKEN - 3_600_000)
  t.equal((await readPhotoMeta(patched(photo, '+00:00', 'local!'))).takenAt, TAKEN, 'an unreadable offset is taken as UTC')
  // Renaming the tags (0x9011 OffsetTimeOriginal, 0x9291 SubSecTimeOriginal) to unknown ones hides them from readers.
  const noOffset = patched(photo, Buffer.from([0x90, 0x11, 0x00, 0x02]), Buffer.from([0x90, 0x1f, 0x00, 0x02]))
  t.equal((await readPhotoMeta(noOffset)).takenAt, TAKEN)
  const noSubSec = patched(photo, Buffer.from([0x92, 0x91, 0x00, 0x02]), Buffer.from([0x92, 0x9f, 0x00, 0x02]))
  t.equal((await readPhotoMeta(noSubSec)).takenAt, TAKEN - 250)
  t.equal((await readPhotoMeta(patched(photo, '250\0', 'abc\0'))).takenAt, TAKEN - 250)
  const brokenDate = patched(patched(photo, exifDate(TAKEN), '2025-06-03T14:07:09'), exifDate(TAKEN), '2025-06-03T14:07:09')
  t.equal((await readPhotoMeta(brokenDate)).takenAt, null)
})

t.test('photo helpers: the seeded PRNG repeats, camera names split into make and model', async (t) => {
  const a = seededRandom(42)
  const b = seededRandom(42)
  t.same([a(), a(), a()], [b(), b(), b()])
  t.not(seedOf('IMG_1.jpg'), seedOf('IMG_2.jpg'))
  t.same(splitCamera('  Xiaomi  13 Pro '), { make: 'Xiaomi', model: '13 Pro' })
})

t.test('M3: a contact is a vCard 3.0 any address book reads, and it reads back', async (t) => {
  const rev = Date.UTC(2026, 0, 2, 3, 4, 5)
  const card = toVcard({ uid: 'u-1', name: 'Ana María de la Cruz', phone: '+34 600 123 456', email: 'ana@example.com', rev })
  t.equal(
    card,
    'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u-1\r\nFN:Ana María de la Cruz\r\nN:Cruz;Ana María de la;;;\r\n' +
      'TEL;TYPE=CELL:+34 600 123 456\r\nEMAIL;TYPE=INTERNET:ana@example.com\r\nREV:2026-01-02T03:04:05Z\r\nEND:VCARD\r\n',
  )
  t.same(parseVcard(card), { uid: 'u-1', name: 'Ana María de la Cruz', phone: '+34 600 123 456', email: 'ana@example.com', rev })

  const odd = { uid: 'u-2', name: 'Smith, John; Jr\\II\nSecond', phone: null, email: null, rev }
  const oddCard = toVcard(odd)
  t.match(oddCard, /FN:Smith\\, John\\; Jr\\\\II\\nSecond\r\n/)
  t.notMatch(oddCard, /TEL|EMAIL/, 'no empty fields')
  t.same(parseVcard(oddCard), odd)
  t.match(toVcard({ ...odd, name: 'Cher' }), /N:;Cher;;;/, 'a single name is a given name')

  // What other address books write: folded lines, lower-case names, parameters, a second TEL.
  const foreign = 'BEGIN:VCARD\nversion:3.0\nfn:Bob\n  Builder\nTEL;TYPE=HOME:1\nTEL;TYPE=WORK:2\nnote without colon\nEND:VCARD\n'
  t.same(parseVcard(foreign), { uid: '', name: 'Bob Builder', phone: '1', email: null, rev: NaN })
  t.same(parseVcard('FN:\nREV:2026-01-01T00:00:00Z'), { uid: '', name: '', phone: null, email: null, rev: Date.UTC(2026, 0, 1) })
})

t.test('a note is text whose first line is its title', async (t) => {
  t.equal(toNoteText({ title: 'Shopping', body: '' }), 'Shopping\n')
  t.equal(toNoteText({ title: 'Shopping', body: 'milk\neggs' }), 'Shopping\nmilk\neggs\n')
  t.equal(toNoteText({ title: 'Shopping', body: 'milk\n' }), 'Shopping\nmilk\n')
  t.same(parseNote('Shopping\nmilk\neggs\n'), { title: 'Shopping', body: 'milk\neggs' })
  t.same(parseNote('  Just a title  '), { title: 'Just a title', body: '' })
})

t.test('a recording is a valid 16-bit PCM mono WAV whose duration is read back from its header', async (t) => {
  const wav = makeWav(2.5, 440)
  t.equal(wav.toString('latin1', 0, 4), 'RIFF')
  t.equal(wav.readUInt32LE(4), wav.length - 8, 'RIFF size')
  t.equal(wav.toString('latin1', 8, 16), 'WAVEfmt ')
  t.same(
    [wav.readUInt16LE(20), wav.readUInt16LE(22), wav.readUInt32LE(24), wav.readUInt32LE(28), wav.readUInt16LE(32), wav.readUInt16LE(34)],
    [1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16],
  )
  t.equal(wav.toString('latin1', 36, 40), 'data')
  t.equal(wav.readUInt32LE(40), 2.5 * SAMPLE_RATE * 2)
  t.equal(wavDuration(wav), 2.5)
  t.ok(Math.abs(wav.readInt16LE(44 + 2 * 1001)) > 0, 'there is sound in it')

  // Chunks other players write before the data (an odd-sized one is padded), and broken files.
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0')])
  const withList = Buffer.concat([wav.subarray(0, 36), list, wav.subarray(36)])
  t.equal(wavDuration(withList), 2.5)
  t.equal(wavDuration(Buffer.from('RIFF....WAVE')), null, 'no data chunk')
  t.equal(wavDuration(Buffer.concat([wav.subarray(0, 12), wav.subarray(36)])), null, 'no fmt chunk')
  t.equal(wavDuration(Buffer.from('MThd')), null, 'not a WAV')
  t.equal(wavDuration(patched(wav, 'WAVE', 'AVI ')), null, 'a RIFF of another kind')
})
