/**
 * M1: the refusals of a retiring service, checked on every route of the
 * broker's one router once the caller is known (HttpRouter.guard):
 *   - phones and SDK apps: 410 once their account lost access (its deadline
 *     passed without a migration or an export) or the service shut down;
 *     from sync-off on, anything but a read is 409 (SYNC_STOPPED for sync,
 *     UPLOADS_CLOSED for the rest);
 *   - the console: an account's pages (its sign-in first) answer 410 once it
 *     lost access; after the shutdown, Find Device commands and share links too;
 *   - another cloud pulling with a transfer grant (M2): 410 as the console's pages.
 * And what no longer registers (registrationRefusal): devices and accounts, once the service shut down; new
 * accounts, from the migration deadline on.
 * A 410's body gives the reason, `at` (ms) and `date` (ISO): words for anyone who calls the API, no command of the CLI.
 */
import { HttpError, type GuardedRequest } from '../http/router.js'
import { utcDate } from '../../common/clock.js'
import type { AccountRetirement, RetirementPlan } from './retirement-plan.js'
import { quoted } from '../../common/terminal-text.js'

export interface GuardContext {
  plan: RetirementPlan
  now: number
  /** The account's place in the retirement; undefined when there is no such account. */
  account(id: string): AccountRetirement | undefined
}

const FIND_DEVICE_COMMAND = /^\/api\/devices\/[^/]+\/commands$/

/** Why the request is refused, or undefined when it may go on. */
export function refusal(req: GuardedRequest, c: GuardContext): HttpError | undefined {
  const { principal, method, path } = req
  const { plan, now } = c
  if (principal.kind === 'device' || principal.kind === 'sdk') {
    // A phone's or an app's account exists: it came with the device or the token.
    const view = c.account(principal.account) as AccountRetirement
    const refused = accessRefusal(plan, view, now, true)
    if (refused || method === 'GET' || now < plan.syncOffAt) return refused
    return readOnly(plan, view, path)
  }
  if (now >= plan.shutdownAt && (principal.kind === 'public' || (method === 'POST' && FIND_DEVICE_COMMAND.test(path)))) {
    return shutDownError(plan)
  }
  // The console's account pages, and an M2 transfer grant's reads (issued before the deadline, used after it).
  const pages = (principal.kind === 'console' || principal.kind === 'grant') && path.startsWith('/api/accounts/')
  const view = pages ? c.account(req.params.account as string) : undefined
  return view && accessRefusal(plan, view, now, false)
}

/** Why the account may not be used (by one of its phones: `phone`), or undefined. */
export function accessRefusal(plan: RetirementPlan, view: AccountRetirement, now: number, phone: boolean): HttpError | undefined {
  const account = view.account
  if (view.purgedAt !== null) {
    return gone(
      'ACCOUNT_PURGED',
      // The reason and the date, for whoever reads the API (a phone, an app, a script, the web console's page): the
      // console CLI adds where its operator reads the purge's record (cli/console-command.ts, REFUSAL_HINTS).
      `account ${quoted(account)} was deleted on ${utcDate(view.purgedAt)}: the fakephone cloud shut down on ${utcDate(plan.shutdownAt)}`,
      view.purgedAt,
    )
  }
  if (phone && now >= plan.shutdownAt) return shutDownError(plan)
  if (view.access !== 'closed') return undefined
  return gone(
    'ACCOUNT_CLOSED',
    `account ${quoted(account)} lost access on ${utcDate(view.deadlineAt)}: the fakephone cloud is retiring and the account was not ` +
      `migrated or exported by its deadline`,
    view.deadlineAt,
  )
}

/**
 * Why a retiring cloud takes no new device or account now (`device add`, `fleet provision`, an account's import: each
 * registers phones), or undefined. Once the service shut down, nothing: no phone could use it. From the migration
 * deadline on, no new account: it would lose access the moment it was made, never able to migrate or export by a
 * deadline already passed. Until then a new one may still migrate, and Find Device works for an account's new phones
 * to the shutdown. A cloud without a plan (a migration's destination among them) takes everything.
 */
export function registrationRefusal(plan: RetirementPlan | null, account: string, isNew: boolean, now: number): HttpError | undefined {
  if (!plan) return undefined
  const shutdown = utcDate(plan.shutdownAt)
  if (now >= plan.shutdownAt) {
    return gone(
      'SERVICE_SHUT_DOWN',
      `the fakephone cloud service is gone: it shut down on ${shutdown}; it registers nothing`,
      plan.shutdownAt,
    )
  }
  if (!isNew || now < plan.deadlineAt) return undefined
  return gone(
    'NEW_ACCOUNTS_CLOSED',
    `account ${quoted(account)} would be new, and the fakephone cloud is retiring: its migration deadline passed on ` +
      `${utcDate(plan.deadlineAt)} and it shuts down on ${shutdown}; register the account on the cloud it moves to`,
    plan.deadlineAt,
  )
}

function readOnly(plan: RetirementPlan, view: AccountRetirement, path: string): HttpError {
  const deadline = utcDate(view.deadlineAt)
  const since = utcDate(plan.syncOffAt)
  if (path.startsWith('/cloud/v1/sync/')) {
    return new HttpError(
      409,
      'SYNC_STOPPED',
      `sync has stopped: the fakephone cloud is retiring and keeps your data read-only since ${since}; read, export or migrate it ` +
        `before ${deadline}`,
      { since: plan.syncOffAt },
    )
  }
  return new HttpError(
    409,
    'UPLOADS_CLOSED',
    `new uploads are refused: the fakephone cloud is retiring (migration window since ${since}); your data can still be read, ` +
      `exported or migrated before ${deadline}`,
    { since: plan.syncOffAt },
  )
}

function gone(code: string, message: string, at: number): HttpError {
  return new HttpError(410, code, message, { at, date: new Date(at).toISOString() })
}

function shutDownError(plan: RetirementPlan): HttpError {
  return gone('SERVICE_SHUT_DOWN', `the fakephone cloud service is gone: it shut down on ${utcDate(plan.shutdownAt)}`, plan.shutdownAt)
}
