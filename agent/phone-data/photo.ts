/**
 * A photo the phone's camera takes (S1, S3): a real, decodable JPEG whose
 * pixels differ from photo to photo (a sky-and-ground scene with a sun and a
 * little sensor noise, drawn from a seed) and whose EXIF carries the capture
 * time, the GPS position and the camera.
 */
import { seededRandom } from '../../common/random.js'
import { encodeJpeg } from './jpeg-encoder.js'
import { withExif, type PhotoExif } from './exif.js'

const PHOTO_WIDTH = 256
const PHOTO_HEIGHT = 192

/** RGBA pixels of one scene: a sky gradient, a horizon, a ground gradient, a sun, and noise. */
function scene(seed: number): Uint8ClampedArray {
  const rand = seededRandom(seed)
  // A clamped array rounds and clips every value written to it to 0-255.
  const pixels = new Uint8ClampedArray(PHOTO_WIDTH * PHOTO_HEIGHT * 4)
  const sky = [rand() * 120, 80 + rand() * 120, 150 + rand() * 105] as const
  const ground = [40 + rand() * 120, 40 + rand() * 120, rand() * 80] as const
  const horizon = PHOTO_HEIGHT * (0.4 + rand() * 0.3)
  const sun = { x: rand() * PHOTO_WIDTH, y: rand() * horizon, r2: (12 + rand() * 30) ** 2 }
  const noise = seededRandom(seed ^ 0x9e3779b9)
  for (let y = 0; y < PHOTO_HEIGHT; y++) {
    const inSky = y < horizon
    const [r, g, b] = inSky ? sky : ground
    const shade = inSky ? 1 - (y / horizon) * 0.5 : 0.6 + ((y - horizon) / (PHOTO_HEIGHT - horizon)) * 0.4
    const dy2 = (y - sun.y) ** 2
    for (let x = 0; x < PHOTO_WIDTH; x++) {
      const at = (y * PHOTO_WIDTH + x) * 4
      const lit = (x - sun.x) ** 2 + dy2 < sun.r2
      const grain = (noise() - 0.5) * 40
      pixels[at] = lit ? 255 : r * shade + grain
      pixels[at + 1] = lit ? 230 : g * shade + grain
      pixels[at + 2] = lit ? 120 : b * shade + grain
      pixels[at + 3] = 255
    }
  }
  return pixels
}

/** The bytes of one photo: `seed` picks the scene, `exif` is what the camera wrote. */
export function makePhoto(exif: PhotoExif, seed: number): Buffer {
  const encoded = encodeJpeg(PHOTO_WIDTH, PHOTO_HEIGHT, scene(seed), 75)
  return withExif(encoded, exif)
}

/** "Xiaomi 13 Pro" → Make "Xiaomi", Model "13 Pro" (how the EXIF splits a camera name). */
export function splitCamera(camera: string): { make: string; model: string } {
  const [make = '', ...model] = camera.trim().split(/\s+/)
  return { make, model: model.join(' ') }
}
