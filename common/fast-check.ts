/**
 * A plain-function check compiled from a zod schema, for the payloads checked
 * on every message (issue 14: the heartbeat, F1). The zod schema stays the one
 * source of truth: this reads its definition (`schema._zod.def`) and builds a
 * closure per field, so a change to the schema changes the check with it.
 * zod 4's `safeParse` builds a result, a copy of the object and an issue list
 * per call; for a strict object of numbers, booleans, enums and bounded
 * strings the answer is a handful of comparisons.
 *
 * Only what can be checked exactly is compiled: strict objects (and stripping
 * ones, for a value without unknown keys), arrays, nullables, numbers with
 * bounds and the integer check, booleans, enums, literals, null, optional fields,
 * strings with length bounds, regex checks and the uuid and base64 formats,
 * records with string keys, plain unions whose every option compiles, and
 * discriminated unions (the option a value's discriminator names, when that
 * option compiles; a push frame's `hello` and `welcome`, once per phone). Since
 * issue 14's command round trip the signed command and receipt compile too
 * (a uuid, a base64 signature, a receipt's data: known keys and a catchall): zod parsed each
 * four times per command. Anything else (other formats such as email, arrays
 * with length checks, exclusive unions, refinements, transforms, defaults)
 * makes `compileCheck` answer undefined for that schema, and the caller keeps
 * using zod. Inside a compiled schema, a scalar leaf that does not compile (a
 * string, number or boolean with another format or check: the devices
 * answer's `moved.to`, a z.url) is checked by zod's own parse of that leaf
 * alone, so the rest stays compiled (F1: the devices answer of 10,000 phones
 * went to zod whole for one such leaf, see docs/PERFORMANCE.md). A leaf that
 * zod may change (coerced, trimmed or lower-cased, a normalized URL) is not
 * delegated: its schema is left to zod whole. An accepted value is exactly
 * what zod would return for it (nothing is transformed or added); a refusal is
 * left to zod to explain (see decodeJson), so its path and message are zod's.
 */
import type { z } from 'zod'

/** True when `value` (as JSON.parse returned it) is accepted by the schema the check was compiled from. */
export type Check = (value: unknown) => boolean

interface Def {
  type: string
  checks?: readonly { _zod: { def: CheckDef } }[]
  shape?: Record<string, z.ZodType>
  catchall?: z.ZodType
  innerType?: z.ZodType
  /** An array's. */
  element?: z.ZodType
  keyType?: z.ZodType
  valueType?: z.ZodType
  /** A record's: 'loose' passes keys its key schema refuses. */
  mode?: string
  /** false on exclusive and discriminated unions. */
  inclusive?: boolean
  options?: readonly z.ZodType[]
  discriminator?: string
  entries?: Record<string, unknown>
  values?: readonly unknown[]
  /** Set when the schema is a check itself (see compileCheck). */
  check?: string
}

interface CheckDef {
  check: string
  format?: string
  value?: number
  inclusive?: boolean
  minimum?: number
  maximum?: number
  pattern?: RegExp
  when?: unknown
}

const LENGTH_CHECKS: ReadonlySet<string> = new Set(['min_length', 'max_length'])

// zod 4 keeps a schema's definition on its internal `_zod`, which its public types leave out.
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def

/** The types of the leaves zod's own parse may check inside a compiled schema (`zodLeaf`). */
const SCALARS: ReadonlySet<string> = new Set(['string', 'number', 'boolean', 'bigint', 'template_literal'])

/**
 * A part of a compiled schema: its compiled check, or else, for a scalar leaf, zod's parse of that leaf alone
 * (`zodLeaf`); undefined when neither (the whole schema is then zod's).
 */
function compilePart(schema: z.ZodType): Check | undefined {
  return compileCheck(schema) ?? zodLeaf(schema)
}

/**
 * A scalar leaf this does not compile (another string format, a refinement), checked by zod's own parse of it alone:
 * accepted exactly when zod accepts it and returns it as it is. A leaf zod may change (coerced, an overwrite check such
 * as trim, a URL it normalizes) is not delegated: in a union, an option that changed the value would be the one zod
 * picks, not the next option that takes it as it is.
 */
function zodLeaf(schema: z.ZodType): Check | undefined {
  const def = defOf(schema) as Def & { coerce?: boolean; normalize?: boolean }
  const changes = (d: { check?: string; normalize?: boolean }): boolean => d.check === 'overwrite' || d.normalize === true
  if (!SCALARS.has(def.type) || def.coerce === true || changes(def) || (def.checks ?? []).some((c) => changes(c._zod.def))) return undefined
  return (v) => {
    const parsed = schema.safeParse(v)
    return parsed.success && parsed.data === v
  }
}

/** The schema's check, or undefined when it uses anything this does not compile exactly. */
export function compileCheck(schema: z.ZodType): Check | undefined {
  const def = defOf(schema)
  // A schema can be a check itself (z.int() is a number with the safeint check): it comes first.
  const checks = [...(def.check === undefined ? [] : [def as CheckDef]), ...(def.checks ?? []).map((c) => c._zod.def)]
  // Checks with a condition of their own (`when`) are zod's business -- except the one zod puts on its length checks,
  // which skips inputs without a length: the string check below refuses those first.
  if (checks.some((c) => c.when !== undefined && !LENGTH_CHECKS.has(c.check))) return undefined
  switch (def.type) {
    case 'object':
      return checks.length === 0 ? objectCheck(def) : undefined
    case 'optional': {
      const inner = compilePart(def.innerType as z.ZodType)
      return inner && ((v) => v === undefined || inner(v))
    }
    case 'nullable': {
      const inner = compilePart(def.innerType as z.ZodType)
      return inner && ((v) => v === null || inner(v))
    }
    case 'array':
      return checks.length === 0 ? arrayCheck(def) : undefined
    case 'number':
      return numberCheck(checks)
    case 'string':
      return stringCheck(checks)
    case 'boolean':
      return checks.length === 0 ? (v) => typeof v === 'boolean' : undefined
    case 'enum':
      return oneOf(Object.values(def.entries as Record<string, unknown>))
    case 'literal':
      return oneOf(def.values as readonly unknown[])
    case 'null':
      return checks.length === 0 ? (v) => v === null : undefined
    case 'union':
      if (checks.length > 0) return undefined
      return def.discriminator === undefined ? unionCheck(def) : discriminatedCheck(def)
    case 'record':
      return checks.length === 0 ? recordCheck(def) : undefined
    default:
      return undefined
  }
}

/**
 * A discriminated union, as zod checks one: the option whose discriminator (a literal or an enum) the value names decides alone. A value
 * naming an option that does not compile (or none) is refused here and left to zod, which says why or accepts it.
 */
function discriminatedCheck(def: Def): Check | undefined {
  const key = def.discriminator as string
  const byValue = new Map<unknown, Check>()
  for (const option of def.options as readonly z.ZodType[]) {
    const optionDef = defOf(option)
    const tag = optionDef.type === 'object' ? optionDef.shape?.[key] : undefined
    const check = compilePart(option)
    const tagDef = tag && defOf(tag)
    // A literal's values, or an enum's (M2: a moved device's notice, `queued` or `expired`, is one option).
    const values =
      tagDef?.type === 'literal'
        ? tagDef.values
        : tagDef?.type === 'enum'
          ? Object.values(tagDef.entries as Record<string, unknown>)
          : undefined
    if (!values || !check) continue
    for (const value of values) {
      // Two options claiming one value: zod refuses the union itself at its first parse, so it is zod's to say.
      if (byValue.has(value)) return undefined
      byValue.set(value, check)
    }
  }
  if (byValue.size === 0) return undefined
  return (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
    const check = byValue.get((v as Record<string, unknown>)[key])
    return check !== undefined && check(v)
  }
}

/**
 * A plain union whose every option compiles: accepted when one option accepts. zod returns the first option that
 * succeeds, which is the value itself when nothing transforms. An exclusive union (z.xor: more than one match is a
 * refusal) is zod's.
 */
function unionCheck(def: Def): Check | undefined {
  if (def.inclusive === false) return undefined
  const options: Check[] = []
  for (const option of def.options as readonly z.ZodType[]) {
    const check = compilePart(option)
    if (!check) return undefined
    options.push(check)
  }
  return (v) => {
    for (let i = 0; i < options.length; i++) if ((options[i] as Check)(v)) return true
    return false
  }
}

/**
 * A record with string keys (z.record(z.string(), ...)): a plain object whose every own enumerable key and value pass.
 * zod leaves a `__proto__` key out of what it returns, so a value with one is left to zod; it also checks symbol keys,
 * which a string key schema refuses.
 */
function recordCheck(def: Def): Check | undefined {
  if (def.mode === 'loose') return undefined
  const keyType = def.keyType as z.ZodType
  if (defOf(keyType).type !== 'string') return undefined
  const key = compilePart(keyType)
  const value = compilePart(def.valueType as z.ZodType)
  if (!key || !value) return undefined
  return (v) => {
    if (!isPlainObject(v)) return false
    const obj = v as Record<PropertyKey, unknown>
    for (const k of Reflect.ownKeys(obj)) {
      if (!Object.prototype.propertyIsEnumerable.call(obj, k)) continue
      if (k === '__proto__' || !key(k) || !value(obj[k])) return false
    }
    return true
  }
}

/** zod's isPlainObject: an object, not an array, whose constructor (if a function) has a prototype of its own kind. */
function isPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const ctor = (v as { constructor?: unknown }).constructor
  if (typeof ctor !== 'function') return true
  const prototype = (ctor as { prototype?: unknown }).prototype
  return typeof prototype === 'object' && prototype !== null && !Array.isArray(prototype) && Object.hasOwn(prototype, 'isPrototypeOf')
}

function oneOf(values: readonly unknown[]): Check {
  const allowed = new Set(values)
  return (v) => allowed.has(v)
}

/**
 * An array without length checks: every element passes. An array of the console API's answers (F1, F2: up to 10,000
 * devices, a page of 1,000 phones' newest commands, read on every refresh of the web console's live feed) is checked
 * here rather than by zod, which copies every element.
 */
function arrayCheck(def: Def): Check | undefined {
  const element = compilePart(def.element as z.ZodType)
  return (
    element &&
    ((v) => {
      if (!Array.isArray(v)) return false
      for (let i = 0; i < v.length; i++) if (!element(v[i])) return false
      return true
    })
  )
}

/**
 * A strict object (unknown keys refused), or a stripping one (z.object: zod leaves unknown keys out of what it returns)
 * with no unknown key, which zod returns as it is: every key known and valid, every required key present. A stripping
 * object with an unknown key (a newer broker's field) is left to zod, which leaves the key out. One with a catchall that
 * compiles (a receipt's data: its `at` a time, any other key a number, string or boolean) takes any other key whose
 * value the catchall accepts, as zod keeps it; a loose one (a catchall of unknown) is zod's.
 */
function objectCheck(def: Def): Check | undefined {
  const catchall = def.catchall !== undefined && defOf(def.catchall).type !== 'never' ? def.catchall : undefined
  const other = catchall && compilePart(catchall)
  if (catchall && !other) return undefined
  const fields = new Map<string, { check: Check; required: boolean }>()
  let required = 0
  for (const [key, field] of Object.entries(def.shape as Record<string, z.ZodType>)) {
    const check = compilePart(field)
    if (!check) return undefined
    const isRequired = defOf(field).type !== 'optional'
    fields.set(key, { check, required: isRequired })
    if (isRequired) required++
  }
  return (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
    const obj = v as Record<string, unknown>
    let requiredPresent = 0
    for (const key of Object.keys(obj)) {
      const field = fields.get(key)
      if (!field) {
        // Another key: the catchall's (a receipt's data, F2), as zod keeps it; a `__proto__` key is left to zod.
        if (!other || key === '__proto__' || !other(obj[key])) return false
        continue
      }
      if (!field.check(obj[key])) return false
      if (field.required) requiredPresent++
    }
    return requiredPresent === required
  }
}

/**
 * True when every part holds. A plain loop over the parts: `parts.every((p) => p(v))` built a closure on every call, one
 * per field of every payload checked (issue 14: the heartbeat's nine fields, a thousand times a second).
 */
function allOf<T>(parts: readonly ((x: T) => boolean)[]): (x: T) => boolean {
  return (x) => {
    for (let i = 0; i < parts.length; i++) if (!(parts[i] as (x: T) => boolean)(x)) return false
    return true
  }
}

/**
 * A number's checks folded into one closure: the strictest lower and upper bound (a larger lower bound, a smaller upper
 * one, and at the same bound the exclusive one) and the integer check. Until issue 14 (2026-12-06) each check was a
 * closure of its own called through allOf: three or four calls per number, seven numbers per heartbeat.
 */
function numberCheck(checks: readonly CheckDef[]): Check | undefined {
  let integer = false
  let low = -Infinity
  let lowInclusive = true
  let high = Infinity
  let highInclusive = true
  for (const c of checks) {
    const bound = c.value as number
    const inclusive = c.inclusive === true
    if (c.check === 'number_format' && c.format === 'safeint') integer = true
    else if (c.check === 'greater_than') {
      if (bound > low || (bound === low && !inclusive)) [low, lowInclusive] = [bound, inclusive]
    } else if (c.check === 'less_than') {
      if (bound < high || (bound === high && !inclusive)) [high, highInclusive] = [bound, inclusive]
    } else return undefined
  }
  // JSON.parse gives Infinity for 1e400; zod refuses it, as it refuses NaN.
  return (v) =>
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (lowInclusive ? v >= low : v > low) &&
    (highInclusive ? v <= high : v < high) &&
    (!integer || Number.isSafeInteger(v))
}

function stringCheck(checks: readonly CheckDef[]): Check | undefined {
  const parts: ((s: string) => boolean)[] = []
  for (const c of checks) {
    if (c.check === 'min_length') parts.push((s) => s.length >= (c.minimum as number))
    else if (c.check === 'max_length') parts.push((s) => s.length <= (c.maximum as number))
    else if (c.check === 'string_format' && (c.format === 'regex' || c.format === 'uuid')) {
      // A uuid is its pattern alone in zod (the one its def carries), as a regex check is.
      const pattern = c.pattern as RegExp
      parts.push((s) => {
        pattern.lastIndex = 0
        return pattern.test(s)
      })
    } else if (c.check === 'string_format' && c.format === 'base64') parts.push(isBase64)
    else return undefined
  }
  const all = allOf(parts)
  return (v) => typeof v === 'string' && all(v)
}

/** zod's base64 check (its isValidBase64; the charset in its def is not what it tests): whole groups of four that atob decodes. */
function isBase64(s: string): boolean {
  if (s === '') return true
  if (/\s/.test(s) || s.length % 4 !== 0) return false
  try {
    atob(s)
    return true
  } catch {
    return false
  }
}
