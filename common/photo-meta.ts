/**
 * What a photo's EXIF says (S1-S3, M2: image metadata must survive every
 * trip): capture time, GPS position and camera, read through exifr (loaded
 * on first use). The phone reads its photos with it (agent/phone-data/) and
 * the cloud reads a migrated photo's with it to verify the copy (M2,
 * broker/transfer/blob-batch-routes.ts); agent/phone-data/exif.ts writes them.
 */

/** What exifr hands back for the tags read here (raw values: dates are read as UTC below). */
interface RawTags {
  Make?: string
  Model?: string
  DateTimeOriginal?: string
  OffsetTimeOriginal?: string
  SubSecTimeOriginal?: string
  latitude?: number
  longitude?: number
}

/** `YYYY:MM:DD HH:MM:SS` plus an optional `±HH:MM` offset and sub-seconds → ms since the epoch. */
function parseExifDate(date: string, offset: string | undefined, subSec: string | undefined): number | null {
  const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(date.trim())
  if (!m) return null
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[]
  let ms = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s)
  const off = offset === undefined ? null : /^([+-])(\d{2}):(\d{2})$/.exec(offset.trim())
  if (off) ms -= (off[1] === '-' ? -1 : 1) * (Number(off[2]) * 60 + Number(off[3])) * 60_000
  if (subSec !== undefined && /^\d+$/.test(subSec.trim())) ms += Math.round(Number(`0.${subSec.trim()}`) * 1000)
  return ms
}

export interface PhotoMeta {
  takenAt: number | null
  lat: number | null
  lon: number | null
  camera: string | null
  [key: string]: string | number | null
}

/**
 * exifr's options, one object for every read: exifr keeps the options it was given in a Map keyed by the object, for
 * good, so a fresh literal per call grew that Map by one set-up (with its Sets) per photo read (M2's verification read
 * 1,000 photos per migration: ~6 MB of allocations and a heap that only grew).
 */
const EXIFR_OPTIONS = { reviveValues: false, tiff: true, exif: true, gps: true, pick: undefined }

/** What a JPEG's EXIF says; every field null when it says nothing (or is no JPEG at all). */
export async function readPhotoMeta(bytes: Buffer): Promise<PhotoMeta> {
  // exifr is loaded on first use: a tenth of a second of CPU that every CLI start-up paid.
  const { default: exifr } = await import('exifr')
  let tags: RawTags | undefined
  try {
    tags = (await exifr.parse(bytes, EXIFR_OPTIONS)) as RawTags | undefined
  } catch {
    tags = undefined
  }
  const round = (v: number | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : null)
  const camera = [tags?.Make, tags?.Model].filter((s): s is string => typeof s === 'string' && s.trim() !== '').map((s) => s.trim())
  return {
    takenAt:
      typeof tags?.DateTimeOriginal === 'string'
        ? parseExifDate(tags.DateTimeOriginal, tags.OffsetTimeOriginal, tags.SubSecTimeOriginal)
        : null,
    lat: round(tags?.latitude),
    lon: round(tags?.longitude),
    camera: camera.length === 0 ? null : camera.join(' '),
  }
}
