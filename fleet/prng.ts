/**
 * The fleet's seeded randomness: mulberry32, a small 32-bit generator, with
 * one independent stream per (seed, device index, purpose), so a phone's
 * route does not change when another phone or another purpose draws more
 * numbers. The same seed gives the same numbers on every machine.
 */
import { seededRandom, seedOf } from '../common/random.js'

/** FNV-1a over the string, then a murmur3 finaliser: a well-mixed 32-bit seed from any label. */
export function hash32(text: string): number {
  let h = seedOf(text)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A seeded stream with the draws the fleet needs. */
export class Rng {
  readonly next: () => number

  constructor(seed: number) {
    this.next = seededRandom(seed)
  }

  /** The stream for one purpose of one device: independent of every other (seed, index, purpose). */
  static stream(seed: string, index: number, purpose: string): Rng {
    return new Rng(hash32(`${seed}/${index}/${purpose}`))
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** Exponentially distributed with this mean (times between events of a Poisson process). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** An index into `weights`, each chosen in proportion to its weight (the weights sum above 0). */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0)
    let left = this.next() * total
    for (let i = 0; i < weights.length; i++) {
      left -= weights[i] as number
      if (left < 0) return i
    }
    // Rounding can leave a sliver above the last bucket: it belongs to the last weight above 0.
    let last = weights.length - 1
    while ((weights[last] as number) <= 0) last--
    return last
  }
}
