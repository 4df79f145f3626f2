/**
 * `node dist/bench/devices-check.js [--phones 10000] [--rounds 31]`: what checking one devices answer (F1, GET
 * /api/devices, what the web console's live feed reads each time devices change) costs the console, parsed from its
 * JSON text each round: `zod`, the schema's safeParse of the whole answer (what decodeValue ran until 2026-12-07, when
 * one z.url leaf, a moved phone's `moved.to`, kept the answer from compiling), and `decodeValue`, the compiled check
 * (common/fast-check.ts) with zod's parse of that leaf alone. Two answers: no phone moved, and one phone in ten moved
 * (M2; half told, half queued). Three rounds first are not counted (the JIT). Prints one JSON line per answer: median,
 * least and most ms of each.
 */
import { parseArgs } from 'node:util'
import { DevicesReplySchema, type DeviceView } from '../common/console-api.js'
import { decodeValue } from '../common/contract.js'

const { values } = parseArgs({ options: { phones: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '31' } } })
const phones = Number(values.phones)
const rounds = Number(values.rounds)

/** A phone of the fleet as the console API shows it: online or not, a fix, lost mode on one phone in 50. */
function device(i: number, moved: boolean): DeviceView {
  const to = { to: 'https://new.example.org', account: 'fleet', at: 7 }
  return {
    id: `phone-${String(i).padStart(5, '0')}`,
    account: 'fleet',
    online: i % 3 !== 0,
    presenceAt: 1_000_000 + i,
    cloudService: true,
    findDevice: true,
    locationOffAt: null,
    lostMode: i % 50 === 0 ? { on: true, message: 'lost', phone: '+44 1', at: 5 } : null,
    last: {
      seq: i,
      at: 1_000_000 + i,
      lat: 55.9 + i / 1e6,
      lon: -3.2,
      accuracy: 8,
      speed: 1.4,
      battery: 80,
      charging: false,
      network: 'wifi',
      receivedAt: 1_000_001 + i,
    },
    moved: !moved ? null : i % 2 === 0 ? { ...to, notice: 'delivered', deliveredAt: 8 } : { ...to, notice: 'queued', deliveredAt: null },
  }
}

/** Median, least and most ms of `check` over the rounds, each on the answer parsed again from `text`. */
function measure(text: string, check: (value: unknown) => boolean): { median: number; min: number; max: number } {
  const ms: number[] = []
  for (let round = -3; round < rounds; round++) {
    const value: unknown = JSON.parse(text)
    const start = process.hrtime.bigint()
    if (!check(value)) throw new Error('the answer was refused')
    if (round >= 0) ms.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  ms.sort((a, b) => a - b)
  const round2 = (n: number): number => Math.round(n * 100) / 100
  return { median: round2(ms[Math.floor(ms.length / 2)] as number), min: round2(ms[0] as number), max: round2(ms[ms.length - 1] as number) }
}

for (const [answer, every] of [
  ['no phone moved', 0],
  ['one phone in ten moved', 10],
] as const) {
  const devices = Array.from({ length: phones }, (_, i) => device(i, every > 0 && i % every === 0))
  const text = JSON.stringify({ now: 2_000_000, devices })
  const zod = measure(text, (v) => DevicesReplySchema.safeParse(v).success)
  const compiled = measure(text, (v) => decodeValue(DevicesReplySchema, v).ok)
  console.log(JSON.stringify({ answer, phones, bytes: text.length, rounds, zodMs: zod, decodeValueMs: compiled }))
}
