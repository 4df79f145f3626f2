/**
 * Deterministic slices of one fleet: `--shard I/N` runs the phones whose
 * index in the fleet is I-1 modulo N, so N hosts together run every phone
 * once, each ramping up at 1/N of the scenario's rate, and each phone keeps
 * the plan it has in the whole fleet (fleet/plan.ts draws per phone index).
 * Worker w of K inside shard I/N is shard N·w + I of N·K: the same rule one
 * level down, so workers and shards are one mechanism.
 */
import { FakephoneError } from '../common/errors.js'
import type { FleetPlan } from './plan.js'

/** Shard `index` (1-based) of `count`. */
export interface Shard {
  index: number
  count: number
}

export const WHOLE: Shard = { index: 1, count: 1 }

export class ShardError extends FakephoneError {
  constructor(message: string) {
    super('SHARD', message)
  }
}

/** `I/N` with 1 ≤ I ≤ N. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text)
  const index = Number(m?.[1])
  const count = Number(m?.[2])
  if (!m || count < 1 || index < 1 || index > count) throw new ShardError(`--shard "${text}": expected I/N with 1 ≤ I ≤ N, e.g. 2/3`)
  return { index, count }
}

/** Whether phone `i` (0-based, in fleet order) belongs to the shard. */
export const inShard = (i: number, shard: Shard): boolean => i % shard.count === shard.index - 1

/** How many of a `count`-phone fleet's phones are in the shard. */
export const shardSize = (count: number, shard: Shard): number => Math.max(0, Math.ceil((count - shard.index + 1) / shard.count))

/** Worker `worker` (0-based) of `workers` inside `shard`, as a shard of the whole fleet. */
export const workerShard = (shard: Shard, worker: number, workers: number): Shard => ({
  index: shard.count * worker + shard.index,
  count: shard.count * workers,
})

/** The whole fleet's plan cut to the shard's phones, each with the plan it has in the whole fleet. */
export const slicePlan = (plan: FleetPlan, shard: Shard): FleetPlan => ({
  ...plan,
  phones: plan.phones.filter((p) => inShard(p.index, shard)),
})
