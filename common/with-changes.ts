/**
 * A copy of an object with some of its properties changed: what
 * `{ ...base, ...change }` says, for objects a process keeps thousands of
 * (issue 12: a fleet's phones each keep their settings and their behaviour
 * log's state). V8 (Node 20) gives every object made by a spread followed by
 * more properties a hidden class of its own, ~300 bytes each, where copies
 * made by `Object.assign` onto a new object share one. For plain data whose
 * keys are known (schema-checked or typed): a `__proto__` key would set the
 * copy's prototype here, where a spread makes it a property.
 */
export function withChanges<T extends object>(base: T, change: Partial<T>): T {
  return Object.assign({}, base, change)
}
