/**
 * M1: the steps of the service's retirement for each account, and what each
 * tells the account's owner -- a notice on every phone (push, kind
 * `retirement`; the shutdown's kind `service-gone`) -- or only writes in its
 * cloud log (an account that migrated needs no deadline reminder).
 */
import type { NotificationKind } from '../../common/push-protocol.js'
import { utcDate } from '../../common/clock.js'
import type { AccountMigration, RetirementPlan } from './retirement-plan.js'

/** Each account's steps, in the order they run when due at the same time. */
export const STEPS = [
  'announce',
  'remind-sync-off',
  'sync-off',
  'remind-deadline',
  'deadline',
  'remind-shutdown',
  'shutdown',
  'purge-notice',
  'purge',
] as const
export type Step = (typeof STEPS)[number]

/** What a step needs to know of its account. */
export interface StepContext {
  plan: RetirementPlan
  deadlineAt: number
  migration: AccountMigration | null
  purgeAt: number
}

export type StepOutcome =
  { rule: string; notice: { kind: NotificationKind; title: string; body: string } } | { rule: string; message: string }

const notice = (rule: string, title: string, body: string, kind: NotificationKind = 'retirement'): StepOutcome => ({
  rule,
  notice: { kind, title, body },
})

/** What one step (the purge aside: it deletes, see ServiceRetirement) says, and to whom. */
export function stepOutcome(step: Exclude<Step, 'purge'>, c: StepContext): StepOutcome {
  const { plan, migration } = c
  const deadline = utcDate(c.deadlineAt)
  const shutdown = utcDate(plan.shutdownAt)
  switch (step) {
    case 'announce':
      return notice(
        'retirement-announced',
        'The fakephone cloud is closing',
        `Sync stops on ${utcDate(plan.syncOffAt)}; your data stays readable. Export or migrate it before ${deadline}: after that ` +
          `this account loses access. The service shuts down on ${shutdown}; Find Device works until then.`,
      )
    case 'remind-sync-off':
      return notice(
        'retirement-reminder',
        `Sync stops on ${utcDate(plan.syncOffAt)}`,
        `From then on the cloud keeps your data read-only. Export or migrate it before ${deadline}.`,
      )
    case 'sync-off':
      return notice(
        'retirement-sync-off',
        'Sync has stopped',
        `The cloud keeps your data read-only: nothing new is uploaded. Read, export or migrate it before ${deadline}.`,
      )
    case 'remind-deadline':
      if (migration) return { rule: 'retirement-reminder', message: 'no deadline reminder: the account migrated' }
      return notice(
        'retirement-reminder',
        `Get your data out before ${deadline}`,
        `Export or migrate this account's data before ${deadline}: after that it loses access.`,
      )
    case 'deadline':
      if (migration) {
        return {
          rule: 'retirement-deadline',
          message:
            `deadline passed; the account ${migration.how === 'migrate' ? 'migrated' : 'exported'} on ${utcDate(migration.at)}: ` +
            `its data stays readable until ${utcDate(c.purgeAt)}`,
        }
      }
      return notice(
        'retirement-deadline',
        'This account has lost access',
        `The deadline ${deadline} passed without an export or a migration: sign-in and every cloud request now answer 410 Gone. ` +
          `Find Device works until ${shutdown}.`,
      )
    case 'remind-shutdown':
      return notice(
        'retirement-reminder',
        `The fakephone cloud shuts down on ${shutdown}`,
        'Sync, backup, drive and Find Device stop working then.',
      )
    case 'shutdown':
      return notice(
        'retirement-shutdown',
        'The fakephone cloud service is gone',
        `It shut down on ${shutdown}: sync, backup, drive and Find Device no longer work.`,
        'service-gone',
      )
    case 'purge-notice':
      return notice(
        'retirement-purge-notice',
        'Your cloud data will be deleted',
        `On ${utcDate(c.purgeAt)} this account's data on the fakephone cloud is deleted for good.`,
      )
  }
}
