/**
 * The cloud's clock as the console reads it (simulated time, A1-A3, B3, D4,
 * R2, M1: the rules that fall due on it), documented in docs/CONTRACT.md
 * ("Console API"): `GET /api/clock` and `POST /api/clock/advance`. The
 * broker's answers are these schemas' types, so the two cannot drift apart.
 * Objects are not strict: a newer cloud may add a field, an older client
 * leaves it.
 */
import { z } from 'zod'

const time = z.number().int()
const count = z.number().int().nonnegative()

/** `GET /api/clock`: the cloud's time, whether it is simulated, and how far ahead of real time. */
export const ClockViewSchema = z.object({ now: time, simulated: z.boolean(), aheadMs: z.number() })
export type ClockView = z.infer<typeof ClockViewSchema>

/** What fell due and did something between `from` and `now` of an advance. */
export const AdvanceEffectsSchema = z.object({
  /** The cloud log's new entries, by rule, in the order they first came. */
  log: z.array(z.object({ rule: z.string(), entries: count })),
  /** The accounts those entries are about, by name. */
  accounts: z.array(z.string()),
  commandsExpired: count,
  notificationsQueued: count,
  notificationsExpired: count,
})
export type AdvanceEffects = z.infer<typeof AdvanceEffectsSchema>

/** `POST /api/clock/advance`: the clock after the jump, where it came from, the timers that fired and what they did. */
export const ClockAdvanceSchema = ClockViewSchema.extend({ from: time, fired: count, effects: AdvanceEffectsSchema })
export type ClockAdvance = z.infer<typeof ClockAdvanceSchema>
