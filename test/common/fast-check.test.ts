/**
 * F1, issue 14: the checks compiled from the contract's zod schemas accept
 * exactly what zod accepts. Each schema is tried with a valid payload and
 * with every field of it missing, replaced by each of a list of awkward
 * values, or joined by an unknown key; the compiled check and zod's
 * safeParse must agree on every one. A leaf that does not compile is checked
 * by zod's parse of it alone: over thousands of seeded random changes of a
 * devices answer (F1, M2's `moved`) and of a schema of such leaves, what
 * decodeValue says -- accepted or refused, the value, the path and message --
 * is what zod's safeParse says.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import {
  BehaviourEventSchema,
  CloudTimeSchema,
  CommandSchema,
  DeviceIdSchema,
  HeartbeatSchema,
  MAX_TIME_MS,
  PresenceSchema,
  ResultSchema,
  StatusSchema,
  UnsignedResultSchema,
  decodeJson,
  decodeValue,
} from '../../common/contract.js'
import { JournalEntrySchema } from '../../agent/journal.js'
import { compileCheck } from '../../common/fast-check.js'
import { DevicesReplySchema } from '../../common/console-api.js'
import { seededRandom } from '../../common/random.js'
import { canonical } from '../../common/signing.js'
import { ClientFrameSchema, PUSH_PROTOCOL_VERSION, ServerFrameSchema, encodeFrame } from '../../common/push-protocol.js'
import { deviceView, heartbeat } from '../fixtures/cloud.js'

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
  'e3c4f0a2-5b1d-4c8e-9f00-0123456789ab',
  'E3C4F0A2-5B1D-4C8E-9F00-0123456789AB',
  'e3c4f0a2-5b1d-0c8e-9f00-0123456789ab',
  'e3c4f0a25b1d4c8e9f000123456789ab',
  '00000000-0000-0000-0000-000000000000',
  'YWJj',
  'YWI=',
  'YQ==',
  'YWJ',
  'YW J',
  'Y===',
  '====',
  'ab=c',
  'YWJj\n',
  'YW-_',
  [],
  {},
  [1],
  { a: 1, b: 'x', c: true },
  { a: null },
  { a: {} },
  { a: [1] },
  JSON.parse('{"__proto__":1}'),
  Object.assign(Object.create(null), { a: 1 }),
  { [Symbol('s')]: 1 },
  new (class Point {
    x = 1
  })(),
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

/**
 * Whether zod accepts `v` and returns it as it is (the same fields and values): what a compiled check must say yes to. A
 * record with an own `__proto__` key is the one thing zod accepts and changes (it leaves the key out): a check leaves it
 * to zod.
 */
function unchanged(schema: z.ZodType, v: unknown): boolean {
  const parsed = schema.safeParse(v)
  return parsed.success && canonical(parsed.data) === canonical(v)
}

function agree(t: Test, name: string, schema: z.ZodType, valid: Record<string, unknown>): void {
  const check = compileCheck(schema)
  if (!check) return void t.fail(`${name} compiles`)
  let accepted = 0
  const all = variants(valid)
  const disagreements = all.filter((v) => {
    const zod = schema.safeParse(v).success
    if (zod) accepted++
    return check(v) !== unchanged(schema, v)
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
  agree(t, 'cloud time answering a subscription (F1)', CloudTimeSchema, { now: 1, heartbeatSeq: 5 })
  agree(t, 'cloud time answering a subscription, no seq held', CloudTimeSchema, { now: 1, heartbeatSeq: null })
  agree(t, 'cloud time answering a subscription (F1, X2)', CloudTimeSchema, { now: 1, heartbeatSeq: 5, logSeq: 7 })
  agree(t, 'cloud time answering a subscription, no log seq held', CloudTimeSchema, { now: 1, heartbeatSeq: 5, logSeq: null })
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

t.test('what cannot be compiled exactly is left to zod: a whole schema, or a scalar leaf inside a compiled one', (t) => {
  // zod 4 takes `when` on every check (not in its types for min): a check that runs only when a condition holds.
  const conditional = { message: 'conditional', when: () => true }
  const unsupported: [string, z.ZodType][] = [
    ['a loose object', z.looseObject({ a: z.number() })],
    ['an array with a length check', z.array(z.number()).min(1)],
    ['an array of something unsupported', z.array(z.strictObject({ a: z.number() }).refine(() => true))],
    ['a nullable of something unsupported', z.looseObject({ a: z.number() }).nullable()],
    ['an object with a refinement', z.strictObject({ a: z.number() }).refine(() => true)],
    ['an object with an unsupported field', z.strictObject({ a: z.looseObject({}) })],
    // A leaf zod changes is not zod's to check alone: the whole schema is zod's.
    ['an object with a trimmed string', z.strictObject({ a: z.string().trim() })],
    ['an object with a lower-cased string', z.strictObject({ a: z.string().toLowerCase() })],
    ['an object with a normalized URL', z.strictObject({ a: z.url({ normalize: true }) })],
    ['a union whose first option trims', z.union([z.string().trim(), z.string()])],
    ['an object with a coerced number of a check not compiled', z.strictObject({ a: z.coerce.number().multipleOf(2) })],
    ['a refined null', z.null().refine(() => true)],
    ['a string format', z.email()],
    ['a base64url string', z.base64url()],
    ['a string format on a string', z.string().email()],
    ['a string check other than length and regex', z.string().startsWith('a')],
    ['a number check other than bounds and integer', z.number().multipleOf(2)],
    ['another integer format', z.int32()],
    ['a conditional check', z.number().min(0, conditional)],
    ['a refined boolean', z.boolean().refine((b) => b)],
    ['an optional of something unsupported', z.looseObject({}).optional()],
    ['a plain union with an option not compiled', z.union([z.number(), z.looseObject({})])],
    ['an exclusive union', z.xor([z.number(), z.string()])],
    ['a refined union', z.union([z.number(), z.string()]).refine(() => true)],
    ['a record of values not compiled', z.record(z.string(), z.looseObject({}))],
    ['a record with an enum for keys', z.record(z.enum(['a', 'b']), z.number())],
    ['a loose record', z.looseRecord(z.string().min(2), z.number())],
    ['a refined record', z.record(z.string(), z.number()).refine(() => true)],
    ['a refined discriminated union', z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a') })]).refine(() => true)],
    [
      'a discriminated union with a value claimed twice',
      z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a') }), z.strictObject({ type: z.literal('a'), n: z.number() })]),
    ],
    [
      'a discriminated union with no option compiled',
      z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a'), id: z.looseObject({}) })]),
    ],
  ]
  for (const [name, schema] of unsupported) t.equal(compileCheck(schema), undefined, name)
  // Inside a compiled schema, a scalar leaf that does not compile is zod's parse of that leaf alone: the rest compiles.
  const leaves: [string, z.ZodType][] = [
    ['an array of emails', z.array(z.email())],
    ['a nullable email', z.email().nullable()],
    ['an object with an email', z.strictObject({ a: z.email() })],
    ['a plain union with an email', z.union([z.number(), z.email()])],
    ['a record of emails', z.record(z.string(), z.email())],
    ['a record with email keys', z.record(z.email(), z.number())],
    ['a discriminated union with an email', z.discriminatedUnion('type', [z.strictObject({ type: z.literal('a'), id: z.email() })])],
    ['the devices answer (F1, M2: its `moved.to` is a z.url)', DevicesReplySchema],
  ]
  for (const [name, schema] of leaves) t.type(compileCheck(schema), 'function', name)
  t.end()
})

/** `value` with the part at a random path (an object's key, an array's index, however deep) changed by `change`. */
function changedAt(value: unknown, random: () => number, change: (old: unknown) => unknown): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  // Stop here one time in four, or at a leaf; else go one level down.
  const children: (string | number)[] = Array.isArray(value)
    ? value.map((_, i) => i)
    : value !== null && typeof value === 'object'
      ? Object.keys(value)
      : []
  if (children.length === 0 || random() < 0.25) return change(value)
  const at = pick(children)
  if (Array.isArray(value)) return (value as unknown[]).map((v, i) => (i === at ? changedAt(v, random, change) : v))
  const obj = value as Record<string, unknown>
  return { ...obj, [at]: changedAt(obj[at], random, change) }
}

/** Seeded random changes of `valid`, one to three each: a part replaced by an awkward value, left out, or joined by a key. */
function randomVariants(valid: unknown, seed: number, count: number, awkward: readonly unknown[]): unknown[] {
  const random = seededRandom(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  const changes: ((old: unknown) => unknown)[] = [
    () => pick(awkward),
    (old) => (old !== null && typeof old === 'object' && !Array.isArray(old) ? { ...old, extra: pick(awkward) } : pick(awkward)),
    (old) => {
      if (old === null || typeof old !== 'object' || Array.isArray(old)) return old
      const { [pick(Object.keys(old))]: _, ...rest } = old as Record<string, unknown>
      return rest
    },
  ]
  return Array.from({ length: count }, () => {
    let v = valid
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) v = changedAt(v, random, pick(changes))
    return v
  })
}

/** Where decodeValue and zod's own safeParse differ on `values`: accepted or refused, the value, the refusal's wording. */
function differences(schema: z.ZodType, values: readonly unknown[]): unknown[] {
  return values.filter((v) => {
    const zod = schema.safeParse(v)
    const expected = zod.success ? { ok: true, value: zod.data } : { ok: false, reason: z.prettifyError(zod.error).replace(/\n+/g, '; ') }
    return canonical(decodeValue(schema, v)) !== canonical(expected)
  })
}

t.test('F1, M2: a leaf left to zod inside a compiled check: decodeValue says what zod says, over many random changes', (t) => {
  const to = 'https://cloud.example.org'
  const moved = [
    { to, account: 'alice', at: 5, notice: 'delivered', deliveredAt: 6 },
    { to, account: 'alice', at: 5, notice: 'queued', deliveredAt: null },
  ]
  const lostMode = { on: true, message: 'call me', phone: '+44 1', at: 3 }
  const answer = {
    now: 10,
    devices: [
      deviceView({ moved: moved[0] as never }),
      deviceView({ id: 'phone-b', moved: moved[1] as never, lostMode, last: { ...heartbeat(1), receivedAt: 2 } }),
      deviceView({ id: 'phone-c' }),
    ],
  }
  const urls = ['https://other.example.org', 'http://127.0.0.1:8080', 'ftp://x', 'not a url', 'HTTPS://A.ORG', 'https://', 'http://a b']
  const awkward = [...AWKWARD, ...urls]
  const check = compileCheck(DevicesReplySchema)
  t.ok(check?.(answer), 'a devices answer with phones that moved is accepted by the compiled check, not left to zod')
  const values = randomVariants(answer, 14, 3000, awkward)
  const accepted = values.filter((v) => DevicesReplySchema.safeParse(v).success).length
  t.same(differences(DevicesReplySchema, values), [], `the devices answer: decodeValue and zod agree on ${values.length} random changes`)
  t.ok(accepted > 100 && accepted < values.length - 100, `some accepted (${accepted}), some refused`)
  t.same(
    values.filter((v) => check?.(v) === true && !unchanged(DevicesReplySchema, v)),
    [],
    'the compiled check accepts nothing zod refuses or changes',
  )

  // A schema of leaves zod checks alone, in every place one can be: a field, optional, nullable, an array's element, a
  // record's keys and values, a union's option, a discriminated union's option.
  const leaves = z.strictObject({
    email: z.email(),
    url: z.url({ protocol: /^https?$/ }),
    prefix: z.string().startsWith('a'),
    even: z.number().multipleOf(2),
    int32: z.int32(),
    yes: z.boolean().refine((b) => b, { message: 'must be true' }),
    maybe: z.email().optional(),
    orNull: z.email().nullable(),
    list: z.array(z.string().endsWith('x')),
    byEmail: z.record(z.email(), z.number().multipleOf(3)),
    either: z.union([z.number().int(), z.email()]),
    tagged: z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('a'), id: z.email() }),
      z.strictObject({ kind: z.literal('b'), n: z.number() }),
    ]),
  })
  const valid = {
    email: 'a@example.org',
    url: to,
    prefix: 'abc',
    even: 4,
    int32: 7,
    yes: true,
    maybe: 'b@example.org',
    orNull: null,
    list: ['x', 'ax'],
    byEmail: { 'c@example.org': 3 },
    either: 'd@example.org',
    tagged: { kind: 'a', id: 'e@example.org' },
  }
  t.type(compileCheck(leaves), 'function', 'a schema of such leaves compiles')
  const more = [...awkward, 'a@example.org', 'abc', 'ax', 3, 4, 6, 2 ** 31, -(2 ** 31), { kind: 'a', id: 'x' }, { kind: 'b', n: 1 }]
  const tried = randomVariants(valid, 3, 3000, more)
  t.same(differences(leaves, tried), [], `leaves zod checks alone: decodeValue and zod agree on ${tried.length} random changes`)
  t.ok(tried.some((v) => leaves.safeParse(v).success) && tried.some((v) => !leaves.safeParse(v).success), 'some accepted, some refused')
  const refused = decodeValue(leaves, { ...valid, tagged: { kind: 'a', id: 'nope' } })
  t.same(refused, {
    ok: false,
    reason: z.prettifyError(leaves.safeParse({ ...valid, tagged: { kind: 'a', id: 'nope' } }).error as z.ZodError).replace(/\n+/g, '; '),
  })
  t.match(refused, { ok: false, reason: /tagged\.id/ }, "a refusal's path is zod's: the leaf's place in the whole")
  // Leaves zod changes (left to zod whole): what decodeValue returns is zod's changed value, in a union's first option too.
  const changing = [
    z.strictObject({ a: z.string().trim() }),
    z.strictObject({ a: z.url({ normalize: true }) }),
    z.union([z.string().trim(), z.string()]),
    z.array(z.union([z.string().toLowerCase(), z.string()])),
  ]
  const texts = [' x ', 'X', 'x', 'HTTPS://A.ORG', 'https://a.org/', 1]
  const inputs = texts.flatMap((x) => [x, { a: x }, [x]])
  for (const schema of changing) t.same(differences(schema, inputs), [], 'a leaf zod changes: decodeValue returns what zod does')
  t.end()
})

t.test('F2 the signed command, the receipt and the journal entry compile, and agree with zod (issue 14)', (t) => {
  const id = randomUUID()
  const sig = Buffer.alloc(64, 7).toString('base64')
  const command = { id, device: 'phone-1', issuedAt: 1, expiresAt: 2, seq: 3, sig }
  for (const check of [CommandSchema, ResultSchema, UnsignedResultSchema, JournalEntrySchema]) t.ok(compileCheck(check))
  agree(t, 'locate', CommandSchema, { ...command, type: 'locate', args: {} })
  agree(t, 'ring', CommandSchema, { ...command, type: 'ring', args: { seconds: 5 } })
  agree(t, 'lock', CommandSchema, { ...command, type: 'lock', args: { message: 'm', phone: 'p' } })
  agree(t, 'lost mode on', CommandSchema, { ...command, type: 'lost-mode', args: { on: true, message: 'm', phone: 'p' } })
  agree(t, 'lost mode off', CommandSchema, { ...command, type: 'lost-mode', args: { on: false } })
  agree(t, 'wipe', CommandSchema, { ...command, type: 'wipe', args: { eraseSdcard: true, keepFindDevice: false } })
  const receipt = { command: id, device: 'phone-1', state: 'succeeded', at: 4, data: { lat: 1.5, source: 'gps', fix: true, at: 4 }, sig }
  agree(t, 'receipt', ResultSchema, receipt)
  agree(t, 'receipt with a reason', ResultSchema, { ...receipt, state: 'failed', reason: 'no fix' })
  const { sig: _sig, ...unsignedReceipt } = receipt
  agree(t, 'unsigned receipt', UnsignedResultSchema, unsignedReceipt)
  agree(t, 'journal entry', JournalEntrySchema, {
    step: 'done',
    command: { ...command, type: 'locate', args: {} },
    result: unsignedReceipt,
    reported: false,
  })
  t.end()
})

t.test("F2: a receipt's data, its `at` a time no later than a Date holds, compiles and agrees with zod", (t) => {
  const data = ResultSchema.shape.data.unwrap()
  agree(t, "a locate's data", data, { lat: 1.5, lon: -3, accuracy: 12, at: 4 })
  agree(t, "a wipe's data", data, { files: 3, bytes: 10, sdcardKept: true, findDeviceKept: false })
  const check = compileCheck(data)
  const withProto = JSON.parse('{"lat":1,"__proto__":2}') as unknown
  for (const v of [{ at: MAX_TIME_MS }, { at: MAX_TIME_MS + 1 }, { at: 1.5 }, { at: -1 }, { at: 'now' }, { lat: {} }, withProto])
    t.equal(check?.(v), unchanged(data, v), `${canonical(v)}: as zod says`)
  t.notOk(data.safeParse({ lat: 1, at: MAX_TIME_MS + 1 }).success, 'a fix stamped past what a Date holds is refused')
  t.equal(compileCheck(z.looseObject({ a: z.number() })), undefined, 'a loose object (a catchall of anything) is left to zod')
  t.end()
})

t.test('uuids, base64, records and plain unions: compiled check and zod agree', (t) => {
  const values = [
    ...AWKWARD,
    randomUUID(),
    'YWJjZA==',
    'YWJjZA=',
    'YWJj=A==',
    'Y',
    '+/+/',
    '*abc',
    { on: true },
    { n: 1 },
    { on: true, n: 1 },
    Object.defineProperty({ a: 1 }, 'hidden', { value: 'x', enumerable: false }),
    { constructor: () => 1 },
  ]
  const shapes: [string, z.ZodType][] = [
    ['a uuid', z.uuid()],
    ['a uuid on a string', z.string().uuid()],
    ['a uuid with a length', z.uuid().max(36)],
    ['base64', z.base64()],
    ['a record', z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]))],
    ['a record with checked keys', z.record(z.string().min(2), z.number())],
    ['a union of numbers and strings', z.union([z.number().int(), z.string().max(1)])],
    ['a union of one', z.union([z.literal('x')])],
    ['a union of strict objects', z.union([z.strictObject({ on: z.literal(true) }), z.strictObject({ n: z.number() })])],
  ]
  for (const [name, schema] of shapes) {
    const check = compileCheck(schema)
    if (!check) {
      t.fail(`${name} compiles`)
      continue
    }
    const accepted = values.filter((v) => schema.safeParse(v).success)
    t.same(
      values.filter((v) => check(v) !== unchanged(schema, v)),
      [],
      `${name}: the compiled check and zod agree on ${values.length} values`,
    )
    t.ok(accepted.length > 0 && accepted.length < values.length, `${name}: some accepted, some refused`)
  }
  const union = z.union([z.strictObject({ on: z.literal(true) }), z.strictObject({ n: z.number() })])
  t.same(decodeValue(union, { n: 1 }), { ok: true, value: { n: 1 } }, 'a union: what zod returns')
  const record = z.record(z.string(), z.number())
  const withProto = JSON.parse('{"a":1,"__proto__":2}') as unknown
  t.equal(compileCheck(record)?.(withProto), false, 'a record with an own __proto__ key is left to zod')
  t.same(decodeValue(record, withProto), { ok: true, value: { a: 1 } }, '... which leaves that key out')
  t.end()
})

t.test('F1, F2: stripping objects, arrays and nullables (the console API answers) agree with zod; an unknown key is left to zod', (t) => {
  const answer = z.object({
    now: z.int(),
    next: z.string().nullable(),
    devices: z.array(z.object({ id: DeviceIdSchema, at: z.int().nullable(), last: HeartbeatSchema.nullable() })),
  })
  const device = { id: 'phone-1', at: null, last: { ...heartbeat(1) } }
  agree(t, 'an answer', answer, { now: 1, next: null, devices: [device, { ...device, at: 5, last: null }] })
  agree(t, 'an answer with no devices', answer, { now: 1, next: 'phone-1', devices: [] })
  agree(t, 'a device', answer.shape.devices.element, device)
  const check = compileCheck(answer)
  t.notOk(check?.({ now: 1, next: null, devices: [{ ...device, newer: 1 }] }), "a newer broker's field: zod's")
  t.same(
    decodeValue(answer, { now: 1, next: null, devices: [{ ...device, newer: 1 }] }),
    { ok: true, value: { now: 1, next: null, devices: [device] } },
    '... which reads the answer without it',
  )
  t.end()
})

t.test('a discriminated union: the option its discriminator names decides, as in zod (push frames)', (t) => {
  agree(t, 'hello frame', ClientFrameSchema, { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: 'phone-1', secret: 's' })
  agree(t, 'welcome frame', ServerFrameSchema, { type: 'welcome', device: 'phone-1', at: 1 })
  const mixed = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('a'), n: z.number() }),
    z.strictObject({ type: z.enum(['b', 'c']), n: z.number() }),
    z.strictObject({ type: z.literal('d'), id: z.email() }),
    z.lazy(() => z.strictObject({ type: z.literal('e') })),
  ])
  agree(t, 'a compiled option among others', mixed, { type: 'a', n: 1 })
  agree(t, 'an option named by an enum', mixed, { type: 'b', n: 1 })
  agree(t, 'an option with a leaf zod checks', mixed, { type: 'd', id: 'a@example.org' })
  const check = compileCheck(mixed)
  t.equal(check?.({ type: 'b', n: 1 }), true, 'an option named by an enum is compiled')
  t.equal(check?.({ type: 'd', id: 'a@example.org' }), true, 'an option with an email (zod checks the leaf) is compiled')
  t.equal(check?.({ type: 'e' }), false, 'an option not compiled (lazy) is left to zod')
  t.same(decodeValue(mixed, { type: 'e' }), { ok: true, value: { type: 'e' } }, '... which accepts it')
  t.equal(
    encodeFrame(ClientFrameSchema, { type: 'ack', id: 'e3c4f0a2-5b1d-4c8e-9f00-0123456789ab' }).length > 0,
    true,
    'an ack frame (zod) is encoded',
  )
  const hello = { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: 'phone-1', secret: 's' } as const
  t.equal(encodeFrame(ClientFrameSchema, hello), JSON.stringify(hello), 'a hello frame (compiled check) is encoded as it is')
  const id = 'a@example.org'
  t.equal(encodeFrame(z.strictObject({ id: z.email() }), { id }), JSON.stringify({ id }), 'a schema with no compiled check: zod alone')
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
  const zodOnly = z.strictObject({ id: z.email() })
  t.match(decodeJson(zodOnly, '{"id":"x"}'), { ok: false, reason: /id/ }, 'a schema that does not compile is checked by zod')
  t.end()
})
