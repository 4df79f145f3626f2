/**
 * F1, issue 14: the checks compiled from the contract's zod schemas accept
 * exactly what zod accepts. Each schema is tried with a valid payload and
 * with every field of it missing, replaced by each of a list of awkward
 * values, or joined by an unknown key; the compiled check and zod's
 * safeParse must agree on every one.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import {
  BehaviourEventSchema,
  CloudTimeSchema,
  DeviceIdSchema,
  HeartbeatSchema,
  PresenceSchema,
  StatusSchema,
  decodeJson,
  decodeValue,
} from '../../common/contract.js'
import { compileCheck } from '../../common/fast-check.js'
import { ClientFrameSchema, PUSH_PROTOCOL_VERSION, ServerFrameSchema, encodeFrame } from '../../common/push-protocol.js'
import { heartbeat } from '../fixtures/cloud.js'

const AWKWARD: readonly unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  -0,
  -1,
  1,
  1.5,
  -90,
  -90.5,
  90,
  90.5,
  -180,
  181,
  100,
  100.5,
  1000,
  1001,
  100_000,
  2 ** 53,
  -(2 ** 53),
  Infinity,
  -Infinity,
  NaN,
  '',
  'x',
  'wifi',
  'online',
  'app-opened',
  'a'.repeat(201),
  'phone-1',
  '-phone',
  [],
  {},
  [1],
]

/** The valid payload, then every one-field change of it (missing, awkward value, unknown key), then awkward payloads. */
function variants(valid: Record<string, unknown>): unknown[] {
  const out: unknown[] = [valid, ...AWKWARD, { ...valid, extra: 1 }, { ...valid, __proto__: null }, JSON.parse('{"__proto__":1}')]
  for (const key of Object.keys(valid)) {
    const { [key]: _dropped, ...rest } = valid
    out.push(rest)
    for (const v of AWKWARD) out.push({ ...valid, [key]: v })
  }
  return out
}

function agree(t: Test, name: string, schema: z.ZodType, valid: Record<string, unknown>): void {
  const check = compileCheck(schema)
  if (!check) return void t.fail(`${name} compiles`)
  let accepted = 0
  const all = variants(valid)
  const disagreements = all.filter((v) => {
    const zod = schema.safeParse(v).success
    if (zod) accepted++
    return check(v) !== zod
  })
  t.same(disagreements, [], `${name}: the compiled check and zod agree on ${all.length} payloads`)
  t.ok(accepted > 1 && accepted < all.length, `${name}: some accepted, some refused`)
}

t.test('the contract payloads checked on every message: compiled check and zod agree', (t) => {
  agree(t, 'heartbeat', HeartbeatSchema, { ...heartbeat(1) })
  agree(t, 'presence', PresenceSchema, { state: 'online', at: 5 })
  agree(t, 'presence without its optional field', PresenceSchema, { state: 'offline' })
  agree(t, 'status', StatusSchema, { cloudService: true, findDevice: false, backup: true, at: 1 })
  agree(t, 'cloud time', CloudTimeSchema, { now: 1 })
  agree(t, 'behaviour event', BehaviourEventSchema, { seq: 1, at: 2, type: 'app-opened', detail: 'maps' })
  t.end()
})

t.test('every kind of field it compiles agrees with zod', (t) => {
  const everything = z.strictObject({
    id: DeviceIdSchema,
    short: z.string().min(1).max(3),
    sticky: z.string().regex(/x/g),
    yes: z.literal(true),
    positive: z.number().positive(),
    below: z.number().lt(90),
    maybe: z.number().int().optional(),
    whole: z.int(),
  })
  agree(t, 'synthetic', everything, { id: 'phone-1', short: 'x', sticky: 'x', yes: true, positive: 1, below: 1, maybe: 1, whole: 3 })
  const check = compileCheck(everything)
  t.ok(
    check?.({ id: 'phone-1', short: 'x', sticky: 'axb', yes: true, positive: 1, below: 1, whole: 0 }),
    'a global regex is reset each time',
  )
  t.ok(check?.({ id: 'phone-1', short: 'x', sticky: 'axb', yes: true, positive: 1, below: 1, whole: 0 }), '... so it matches again')
  // issue 14: a number's bounds are folded into one check: the strictest of several wins, at a tie the exclusive one.
  const bounds: [string, z.ZodType][] = [
    ['two lower bounds', z.number().min(0).gt(1)],
    ['a lower bound after a stricter one', z.number().gt(1).min(0)],
    ['the same lower bound, inclusive then exclusive', z.number().gte(1).gt(1)],
    ['the same lower bound, exclusive then inclusive', z.number().gt(1).gte(1)],
    ['two upper bounds', z.number().max(10).lt(5)],
    ['an upper bound after a stricter one', z.number().lt(5).max(10)],
    ['the same upper bound, inclusive then exclusive', z.number().lte(5).lt(5)],
    ['the same upper bound, exclusive then inclusive', z.number().lt(5).lte(5)],
    ['an integer between bounds', z.int().gt(0).lte(3)],
  ]
  const numbers = [-Infinity, -1, 0, 0.5, 1, 1.5, 2, 3, 4, 4.5, 5, 5.5, 10, 11, Infinity, NaN, 2 ** 53, '1', null]
  for (const [name, schema] of bounds) {
    const compiled = compileCheck(schema)
    t.same(
      numbers.filter((n) => compiled?.(n) !== schema.safeParse(n).success),
      [],
      `${name}: the compiled check and zod agree on ${numbers.length} values`,
    )
  }
  const optionalAlone = compileCheck(z.number().optional())
  t.ok(optionalAlone?.(undefined))
  t.notOk(optionalAlone?.('1'))
  t.end()
})

t.test('what cannot be compiled exactly is left to zod', (t) => {
  // zod 4 takes `when` on every check (not in its types for min): a check that runs only when a condition holds.
  const conditional = { message: 'conditional', when: () => true }
  const unsupported: [string, z.ZodType][] = [
    ['a stripping object', z.object({ a: z.number() })],
    ['an object with a refinement', z.strictObject({ a: z.number() }).refine(() => true)],
    ['an object with an unsupported field', z.strictObject({ a: z.uuid() })],
    ['a string format', z.uuid()],
    ['a string format on a string', z.string().email()],
    ['a string check other than length and regex', z.string().startsWith('a')],
    ['a number check other than bounds and integer', z.number().multipleOf(2)],
    ['another integer format', z.int32()],
    ['a conditional check', z.number().min(0, conditional)],
    ['a refined boolean', z.boolean().refine((b) => b)],
    ['an optional of something unsupported', z.uuid().optional()],
    ['an array', z.array(z.number())],
    ['a plain union', z.union([z.strictObject({ type: z.literal('a') }), z.strictObject({ type: z.literal('b') })])],
    ['a refined discriminated union', z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a') })]).refine(() => true)],
    [
      'a discriminated union with a value claimed twice',
      z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a') }), z.strictObject({ type: z.literal('a'), n: z.number() })]),
    ],
    [
      'a discriminated union with no option compiled',
      z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a'), id: z.uuid() })]),
    ],
  ]
  for (const [name, schema] of unsupported) t.equal(compileCheck(schema), undefined, name)
  t.end()
})

t.test('a discriminated union: the option its discriminator names decides, as in zod (push frames)', (t) => {
  agree(t, 'hello frame', ClientFrameSchema, { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: 'phone-1', secret: 's' })
  agree(t, 'welcome frame', ServerFrameSchema, { type: 'welcome', device: 'phone-1', at: 1 })
  const mixed = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('a'), n: z.number() }),
    z.strictObject({ type: z.enum(['b', 'c']), n: z.number() }),
    z.strictObject({ type: z.literal('d'), id: z.uuid() }),
    z.lazy(() => z.strictObject({ type: z.literal('e') })),
  ])
  agree(t, 'a compiled option among others', mixed, { type: 'a', n: 1 })
  const check = compileCheck(mixed)
  for (const left of [{ type: 'b', n: 1 }, { type: 'd', id: randomUUID() }, { type: 'e' }]) {
    t.equal(check?.(left), false, `${left.type}: an option not compiled is left to zod`)
    t.same(decodeValue(mixed, left), { ok: true, value: left }, '... which accepts it')
  }
  t.equal(
    encodeFrame(ClientFrameSchema, { type: 'ack', id: 'e3c4f0a2-5b1d-4c8e-9f00-0123456789ab' }).length > 0,
    true,
    'an ack frame (zod) is encoded',
  )
  const hello = { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: 'phone-1', secret: 's' } as const
  t.equal(encodeFrame(ClientFrameSchema, hello), JSON.stringify(hello), 'a hello frame (compiled check) is encoded as it is')
  const id = randomUUID()
  t.equal(encodeFrame(z.strictObject({ id: z.uuid() }), { id }), JSON.stringify({ id }), 'a schema with no compiled check: zod alone')
  t.throws(
    () => encodeFrame(ClientFrameSchema, { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: '-bad', secret: 's' }),
    'a bad frame is not',
  )
  t.end()
})

t.test('decodeJson returns what it parsed when the compiled check accepts it, and zod words a refusal', (t) => {
  const accepted = decodeJson(HeartbeatSchema, JSON.stringify(heartbeat(2)))
  t.same(accepted, { ok: true, value: heartbeat(2) })
  const refused = decodeJson(HeartbeatSchema, JSON.stringify({ ...heartbeat(2), lat: 91 }))
  t.match(refused, { ok: false, reason: /lat/ })
  const zodOnly = z.strictObject({ id: z.uuid() })
  t.match(decodeJson(zodOnly, '{"id":"x"}'), { ok: false, reason: /id/ }, 'a schema that does not compile is checked by zod')
  t.end()
})
