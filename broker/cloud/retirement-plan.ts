/**
 * M1: what a retirement plan is -- its four dates, the phases they make, an
 * account's place in them -- and how the console's dates are read: `now`,
 * a duration from now on the cloud's clock (`7d`), or an ISO date or time.
 */
import type { z } from 'zod'
import type { Db } from '../db.js'
import {
  type ACCESS,
  PHASES,
  type AccountRetirementSchema,
  type RetirementPlanSchema,
  type RetirementStatusSchema,
} from '../../common/cloud/account-api.js'
import { parseDuration } from '../../common/clock.js'
import { HttpError } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'

/** The plan's four dates; its schema is the console client's (common/cloud/account-api.ts). */
export type RetirementPlan = z.infer<typeof RetirementPlanSchema>

/** The phases in order; `in-service` is a cloud with no retirement plan. */
export { PHASES }
export type Phase = (typeof PHASES)[number]

export type MigrationHow = 'migrate' | 'export'

export interface AccountMigration {
  how: MigrationHow
  at: number
  /** Where to, or which bag: what M2/M3 say. */
  detail: string
}

/** What the account's owner may still do: everything, read (and export, migrate), nothing, or nothing is left. */
export type Access = (typeof ACCESS)[number]

/** An account's place in the retirement; its schema is the console client's (common/cloud/account-api.ts). */
export type AccountRetirement = z.infer<typeof AccountRetirementSchema>

/** The service's retirement as the console reads it (GET /api/service); its schema is the console client's. */
export type RetirementStatus = z.infer<typeof RetirementStatusSchema>

/** The dates as given: ISO dates or times, durations from now on the cloud's clock (`7d`), or `now`. */
export interface PlanInput {
  announce: string
  syncOff: string
  migrationDeadline: string
  shutdown: string
}

/** A date as the console gives it: `now`, a duration from now (7d, 36h), or an ISO date or time; else a 400 naming it. */
export function resolveDate(value: string, now: number, what: string): number {
  if (value === 'now') return now
  if (/^(\d+(ms|s|m|h|d))+$/.test(value)) return now + parseDuration(value)
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN
  if (Number.isNaN(at)) {
    throw new HttpError(
      400,
      'BAD_REQUEST',
      `${what}: ${quoted(value)} is not a date; use an ISO date (2027-03-01 or 2027-03-01T12:00Z), a duration from now on the ` +
        `cloud's clock (7d, 36h) or now`,
    )
  }
  return at
}

/** The stored plan, or null (ServiceRetirement keeps it in memory; `device add` and `fleet provision` read it once). */
export function storedPlan(db: Db): RetirementPlan | null {
  return planOf(db.prepare<[], PlanRow>(PLAN_SQL).get())
}

export const PLAN_SQL = 'SELECT * FROM service_retirement WHERE id = 1'

/** A row of service_retirement. */
export interface PlanRow {
  announce_at: number
  sync_off_at: number
  deadline_at: number
  shutdown_at: number
  created_at: number
  last_purge_at: number | null
}

export function planOf(r: PlanRow | undefined): RetirementPlan | null {
  if (!r) return null
  return {
    announceAt: r.announce_at,
    syncOffAt: r.sync_off_at,
    deadlineAt: r.deadline_at,
    shutdownAt: r.shutdown_at,
    createdAt: r.created_at,
  }
}

/** The phase of an account with deadline `deadlineAt` (the service's own: the plan's deadline). */
export function phaseAt(plan: RetirementPlan, deadlineAt: number, now: number): Phase {
  if (now < plan.announceAt) return 'planned'
  if (now < plan.syncOffAt) return 'announced'
  if (now < deadlineAt) return 'migration-window'
  if (now < plan.shutdownAt) return 'deadline-passed'
  return 'shut-down'
}
