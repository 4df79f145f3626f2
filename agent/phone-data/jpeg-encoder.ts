/**
 * S1, S3: one reusable JPEG encoder for the photos the phone takes and seeds.
 *
 * jpeg-js exports only `encode()`, which builds a new `JPEGEncoder` for every
 * image: its Huffman and category tables (two 65,535-entry arrays) cost about
 * 60 ms, the encoding of a 256×192 photo about 4 ms. Reusing one encoder
 * makes seeding 1,000 photos take seconds instead of a minute, with the same
 * bytes (test/agent/phone-data-formats.test.ts compares them with `encode()`).
 * jpeg-js's encoder file declares `JPEGEncoder` at its top level and exports
 * it to no one, so it is compiled here as a function that returns it.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { compileFunction } from 'node:vm'

/** The part of jpeg-js's JPEGEncoder used here: RGBA pixels in, JPEG bytes out, at a quality of 1-100. */
interface Encoder {
  encode(image: { width: number; height: number; data: Uint8ClampedArray }, quality: number): Buffer
}

let shared: Encoder | undefined

function encoder(): Encoder {
  if (shared === undefined) {
    const file = createRequire(import.meta.url).resolve('jpeg-js/lib/encoder.js')
    // The file exports into a module of its own (and so answers Buffers, as under require) and returns its constructor.
    const make = compileFunction(`${readFileSync(file, 'utf8')}\nreturn JPEGEncoder`, ['module'], { filename: file }) as (module: {
      exports: unknown
    }) => new (quality: number) => Encoder
    const JPEGEncoder = make({ exports: {} })
    shared = new JPEGEncoder(75)
  }
  return shared
}

/** JPEG bytes of RGBA `data`, as jpeg-js's `encode(image, quality).data` gives them. */
export function encodeJpeg(width: number, height: number, data: Uint8ClampedArray, quality: number): Buffer {
  return encoder().encode({ width, height, data }, quality)
}
