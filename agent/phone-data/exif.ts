/**
 * The EXIF block of a phone photo (S1-S3, M2: image metadata must survive
 * every trip): capture time (DateTimeOriginal with its UTC offset), GPS
 * position (latitude and longitude with their N/S and E/W refs) and the
 * camera (Make, Model), written as a standard TIFF structure in a JPEG APP1
 * segment that any EXIF reader understands. Reading goes through exifr
 * (common/photo-meta.ts).
 */

export interface PhotoExif {
  /** Capture time, ms since the epoch (UTC). */
  takenAt: number
  /** Degrees; null when the phone had no location fix (then no GPS IFD is written). */
  lat: number | null
  lon: number | null
  make: string
  model: string
}

/** The TIFF field types used here, and the bytes one value of each takes. */
const { BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED } = { BYTE: 1, ASCII: 2, SHORT: 3, LONG: 4, RATIONAL: 5, UNDEFINED: 7 } as const
const TYPE_SIZE: Record<number, number> = { [BYTE]: 1, [ASCII]: 1, [SHORT]: 2, [LONG]: 4, [RATIONAL]: 8, [UNDEFINED]: 1 }

interface Field {
  tag: number
  type: number
  /** ASCII text (NUL added), numbers for SHORT/LONG/BYTE/UNDEFINED, [numerator, denominator] pairs for RATIONAL. */
  value: string | number[] | [number, number][]
}

function count(f: Field): number {
  if (typeof f.value === 'string') return Buffer.byteLength(f.value, 'latin1') + 1
  return f.value.length
}

function encodeValue(f: Field): Buffer {
  const buf = Buffer.alloc(count(f) * (TYPE_SIZE[f.type] as number))
  if (typeof f.value === 'string') buf.write(f.value, 'latin1')
  else if (f.type === RATIONAL)
    (f.value as [number, number][]).forEach(([n, d], i) => (buf.writeUInt32BE(n, i * 8), buf.writeUInt32BE(d, i * 8 + 4)))
  else
    (f.value as number[]).forEach((v, i) =>
      f.type === SHORT ? buf.writeUInt16BE(v, i * 2) : f.type === LONG ? buf.writeUInt32BE(v, i * 4) : buf.writeUInt8(v, i),
    )
  return buf
}

/**
 * One IFD at `offset` (from the TIFF header): the entry table, the next-IFD
 * pointer (0) and then the values that do not fit in four bytes.
 */
function encodeIfd(fields: Field[], offset: number): Buffer {
  const sorted = [...fields].sort((a, b) => a.tag - b.tag)
  const tableSize = 2 + sorted.length * 12 + 4
  const table = Buffer.alloc(tableSize)
  const extra: Buffer[] = []
  let extraOffset = offset + tableSize
  table.writeUInt16BE(sorted.length, 0)
  sorted.forEach((f, i) => {
    const at = 2 + i * 12
    const value = encodeValue(f)
    table.writeUInt16BE(f.tag, at)
    table.writeUInt16BE(f.type, at + 2)
    table.writeUInt32BE(count(f), at + 4)
    if (value.length <= 4) value.copy(table, at + 8)
    else {
      table.writeUInt32BE(extraOffset, at + 8)
      // Values start on a word boundary.
      const padded = value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.alloc(1)])
      extra.push(padded)
      extraOffset += padded.length
    }
  })
  return Buffer.concat([table, ...extra])
}

/** Degrees as the three rationals EXIF wants: degrees, minutes, seconds (to 1/10000 s). */
function dms(degrees: number): [number, number][] {
  const abs = Math.abs(degrees)
  const d = Math.floor(abs)
  const minutes = (abs - d) * 60
  const m = Math.floor(minutes)
  const s = Math.round((minutes - m) * 60 * 10_000)
  return [
    [d, 1],
    [m, 1],
    [s, 10_000],
  ]
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** `YYYY:MM:DD HH:MM:SS` in UTC, EXIF's date format. */
export function exifDate(ms: number): string {
  const t = new Date(ms)
  return (
    `${t.getUTCFullYear()}:${pad(t.getUTCMonth() + 1)}:${pad(t.getUTCDate())} ` +
    `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}`
  )
}

const TAG = {
  make: 0x010f,
  model: 0x0110,
  orientation: 0x0112,
  dateTime: 0x0132,
  exifIfd: 0x8769,
  gpsIfd: 0x8825,
  exifVersion: 0x9000,
  dateTimeOriginal: 0x9003,
  offsetTimeOriginal: 0x9011,
  subSecTimeOriginal: 0x9291,
  gpsVersion: 0x0000,
  gpsLatRef: 0x0001,
  gpsLat: 0x0002,
  gpsLonRef: 0x0003,
  gpsLon: 0x0004,
} as const

/** The GPS IFD's fields: version, latitude and longitude with their hemispheres. */
function gpsFields(lat: number, lon: number): Field[] {
  return [
    { tag: TAG.gpsVersion, type: BYTE, value: [2, 3, 0, 0] },
    { tag: TAG.gpsLatRef, type: ASCII, value: lat < 0 ? 'S' : 'N' },
    { tag: TAG.gpsLat, type: RATIONAL, value: dms(lat) },
    { tag: TAG.gpsLonRef, type: ASCII, value: lon < 0 ? 'W' : 'E' },
    { tag: TAG.gpsLon, type: RATIONAL, value: dms(lon) },
  ]
}

/** The APP1 segment (marker included) carrying `exif`; no GPS IFD when the position is unknown. */
function exifSegment(exif: PhotoExif): Buffer {
  const date = exifDate(exif.takenAt)
  const headerSize = 8
  const gps = exif.lat === null || exif.lon === null ? null : gpsFields(exif.lat, exif.lon)
  // IFD0's size does not depend on the pointer values, so the sub-IFD offsets can be computed before they are laid out.
  const ifd0Fields = (exifAt: number, gpsAt: number): Field[] => [
    { tag: TAG.make, type: ASCII, value: exif.make },
    { tag: TAG.model, type: ASCII, value: exif.model },
    { tag: TAG.orientation, type: SHORT, value: [1] },
    { tag: TAG.dateTime, type: ASCII, value: date },
    { tag: TAG.exifIfd, type: LONG, value: [exifAt] },
    ...(gps ? [{ tag: TAG.gpsIfd, type: LONG, value: [gpsAt] }] : []),
  ]
  const exifAt = headerSize + encodeIfd(ifd0Fields(0, 0), headerSize).length
  const exifIfd = encodeIfd(
    [
      { tag: TAG.exifVersion, type: UNDEFINED, value: [...Buffer.from('0232')] },
      { tag: TAG.dateTimeOriginal, type: ASCII, value: date },
      { tag: TAG.offsetTimeOriginal, type: ASCII, value: '+00:00' },
      { tag: TAG.subSecTimeOriginal, type: ASCII, value: pad(exif.takenAt % 1000, 3) },
    ],
    exifAt,
  )
  const gpsAt = exifAt + exifIfd.length
  const tiffHeader = Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08])
  const tiff = Buffer.concat([
    tiffHeader,
    encodeIfd(ifd0Fields(exifAt, gpsAt), headerSize),
    exifIfd,
    ...(gps ? [encodeIfd(gps, gpsAt)] : []),
  ])
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff])
  const head = Buffer.alloc(4)
  head.writeUInt16BE(0xffe1, 0)
  head.writeUInt16BE(body.length + 2, 2)
  return Buffer.concat([head, body])
}

/**
 * `jpeg` as an EXIF JPEG, the way a camera writes one: the EXIF segment
 * right after the start-of-image marker, in place of a JFIF header.
 */
export function withExif(jpeg: Buffer, exif: PhotoExif): Buffer {
  const jfif = jpeg.readUInt16BE(2) === 0xffe0 ? 2 + jpeg.readUInt16BE(4) : 0
  return Buffer.concat([jpeg.subarray(0, 2), exifSegment(exif), jpeg.subarray(2 + jfif)])
}
