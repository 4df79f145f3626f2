/**
 * The console's account views (A1-A3, M1), as the cloud answers them and
 * the console client parses them; documented in docs/CONTRACT.md ("Console
 * API"): `GET /api/accounts`, `GET /api/accounts/<id>`, `PUT
 * /api/accounts/<id>/membership` and `GET /api/accounts/<id>/log`; the service's retirement (M1): `GET
 * /api/service`, `PUT /api/service/retirement[/accounts/<id>]`. The
 * broker's AccountView is this schema's type, so the two cannot drift apart.
 * Objects are not strict: a newer cloud may add a field, an older client
 * leaves it.
 */
import { z } from 'zod'

const time = z.number().int()
const count = z.number().int().nonnegative()

export const TierSchema = z.enum(['free', 'premium'])
export type Tier = z.infer<typeof TierSchema>

export const AccountViewSchema = z.object({
  id: z.string(),
  tier: TierSchema,
  premiumUntil: time.nullable(),
  quotaBytes: count,
  usedBytes: count,
  /**
   * A1: bytes the account's unfinished uploads hold, counted against the quota until they finish or are removed after
   * 24 h without new bytes; in the one-account view only (GET /api/accounts/:account).
   */
  pendingBytes: count.optional(),
  /** R2: how long a deleted item stays in the recycle bin, ms. */
  binMs: count,
  lastActivityAt: time,
  lastActivity: z.string(),
  /** A3: when the account will be frozen without further activity (null once frozen). */
  freezesAt: time.nullable(),
  frozenAt: time.nullable(),
  /** A3: when a freeze last cleared the account's cloud data; stays once the account is signed in again. */
  clearedAt: time.nullable(),
  /** True while at least one of its phones has the cloud service on (or none has said). */
  serviceOn: z.boolean(),
  /** When the last phone with the cloud service on turned it off. */
  serviceOffAt: time.nullable(),
  devices: z.array(z.string()),
})
export type AccountView = z.infer<typeof AccountViewSchema>

/** M1: the phases of a service's retirement in order; `in-service` is a cloud with no retirement plan. */
export const PHASES = ['in-service', 'planned', 'announced', 'migration-window', 'deadline-passed', 'shut-down'] as const
/** M1: what the account's owner may still do: everything, read (and export, migrate), nothing, or nothing is left. */
export const ACCESS = ['full', 'read-only', 'closed', 'purged'] as const

/** M1: one account's place in the service's retirement. */
export const AccountRetirementSchema = z.object({
  account: z.string(),
  deadlineAt: time,
  /** True when the account has a deadline of its own (a staggered notice). */
  ownDeadline: z.boolean(),
  phase: z.enum(PHASES),
  access: z.enum(ACCESS),
  /** M2/M3: how and when it left, and where to or which bag. */
  migration: z.object({ how: z.enum(['migrate', 'export']), at: time, detail: z.string() }).nullable(),
  /** When its data is purged: at shutdown, or after a migration not before the guarantee period ends. */
  purgeAt: time,
  purgedAt: time.nullable(),
  /** Once purged: what the purge deleted (how many of each kind) and what the cloud keeps, as its cloud-log entry says. */
  purged: z.string().nullable(),
})

/** M1: the retirement plan's four dates, as the console set them, and when it was set. */
export const RetirementPlanSchema = z.object({ announceAt: time, syncOffAt: time, deadlineAt: time, shutdownAt: time, createdAt: time })

/**
 * M1: `GET /api/service` and `PUT /api/service/retirement`: the phase now, the next one and when, every account's place.
 * The broker's RetirementStatus is this schema's type.
 */
export const RetirementStatusSchema = z.object({
  now: time,
  plan: RetirementPlanSchema.nullable(),
  phase: z.enum(PHASES),
  /** The next phase of the service and when it starts. */
  next: z.object({ phase: z.enum(PHASES), at: time }).nullable(),
  accounts: z.array(AccountRetirementSchema),
})
/** M1: `PUT /api/service/retirement/accounts/<id>`: the account's place with its own deadline. */
export const AccountDeadlineSchema = z.object({ now: time, account: AccountRetirementSchema })

/** An account as `GET /api/accounts` lists it: with its place in the service's retirement (M1), null while no plan is set. */
export const ListedAccountSchema = AccountViewSchema.extend({ retirement: AccountRetirementSchema.nullable().optional() })
export type ListedAccount = z.infer<typeof ListedAccountSchema>

/** `GET /api/accounts`. */
export const AccountListSchema = z.object({ now: time, accounts: z.array(ListedAccountSchema) })
/** `GET /api/accounts/<id>` (opening it is a console sign-in, A3) and `PUT /api/accounts/<id>/membership`. */
export const AccountOneSchema = z.object({ now: time, account: AccountViewSchema })

/** One line of what the cloud's rules did to an account's data. */
export const CloudLogEntrySchema = z.object({
  seq: count,
  account: z.string(),
  at: time,
  /** The rule that acted: bin-purge, backup-read-only, drive-cleanup, inactivity-freeze, ... */
  rule: z.string(),
  message: z.string(),
  /** How many entries it removed or changed. */
  count,
})
export type CloudLogEntry = z.infer<typeof CloudLogEntrySchema>

/** `GET /api/accounts/<id>/log?limit=N`: newest first. */
export const CloudLogViewSchema = z.object({ now: time, account: z.string(), log: z.array(CloudLogEntrySchema) })
