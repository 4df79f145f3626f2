/**
 * M1: the service's retirement from the console:
 *   console service status                          the phase now, the next one and when, every account's deadline and access
 *   console service retire --announce D --sync-off D --migration-deadline D --shutdown D
 *                                                   the plan (ISO dates, or durations from now on the cloud's clock: 7d)
 *   console service retire --account NAME --deadline D
 *                                                   an account's own deadline (staggered notices)
 */
import type { Command } from 'commander'
import type { ConsoleClient } from './console-client.js'
import { utcDate } from '../common/clock.js'
import type { AccountRetirement, RetirementStatus } from '../broker/cloud/retirement-plan.js'
import { AccountDeadlineSchema, RetirementStatusSchema } from '../common/cloud/account-api.js'
import { formatAge } from '../common/clock.js'
import { UserError, type Io } from './io.js'
import { table } from './render.js'
import { forTerminal, linesForTerminal } from '../common/terminal-text.js'

interface RetireOptions {
  announce?: string
  syncOff?: string
  migrationDeadline?: string
  shutdown?: string
  account?: string
  deadline?: string
}

const ACCESS: Record<AccountRetirement['access'], string> = {
  full: 'full',
  'read-only': 'read-only',
  closed: 'CLOSED (410)',
  purged: 'PURGED',
}

function migrationCell(a: AccountRetirement): string {
  if (!a.migration) return '-'
  return `${a.migration.how === 'migrate' ? 'migrated' : 'exported'} ${utcDate(a.migration.at)}`
}

export function renderRetirement(s: RetirementStatus): string {
  const plan = s.plan
  if (!plan) return `cloud time ${utcDate(s.now)}: the service runs as usual; no retirement is planned.\n`
  const next = s.next ? `${s.next.phase} on ${utcDate(s.next.at)} (in ${formatAge(s.next.at - s.now)})` : 'none: the service is gone'
  const lines = [
    `cloud time          ${utcDate(s.now)}`,
    `phase               ${s.phase}`,
    `next                ${next}`,
    `announce            ${utcDate(plan.announceAt)}`,
    `sync off            ${utcDate(plan.syncOffAt)} (the migration window: read-only, uploads refused)`,
    `migration deadline  ${utcDate(plan.deadlineAt)} (accounts not migrated or exported lose access: 410 Gone)`,
    `shutdown            ${utcDate(plan.shutdownAt)} (Find Device stops; phones are told the service is gone)`,
  ]
  const accounts =
    s.accounts.length === 0
      ? 'No accounts.\n'
      : table(
          ['ACCOUNT', 'DEADLINE', 'PHASE', 'ACCESS', 'MIGRATION', 'PURGE'],
          s.accounts.map((a) => [
            a.account,
            `${utcDate(a.deadlineAt)}${a.ownDeadline ? ' (own)' : ''}`,
            a.phase,
            ACCESS[a.access],
            migrationCell(a),
            a.purgedAt === null ? utcDate(a.purgeAt) : `done ${utcDate(a.purgedAt)}`,
          ]),
        )
  // M1: what each purge deleted and what the cloud keeps, as the purge's cloud-log entry says it (`console account` is 410).
  const purged = s.accounts.filter((a) => a.purged !== null).map((a) => `\nPurged ${a.account}: ${a.purged as string}\n`)
  return lines.join('\n') + '\n\n' + accounts + purged.join('')
}

export function addRetirementCommands(cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  const service = cmd.command('service').description("the cloud service's retirement (M1): its plan and phases")
  service
    .command('status')
    .description('the phase now, the next one and when, and every account: its deadline, access, migration and purge date')
    .action(async () => {
      const status = await (await api()).read(RetirementStatusSchema, 'GET', '/api/service')
      print(status, renderRetirement(status))
    })
  service
    .command('retire')
    .description(
      'retire the service on four dates in order (ISO dates, or durations from now on the cloud clock like 7d); ' +
        'or give one account its own deadline with --account and --deadline',
    )
    .option('--announce <date>', 'every account is told the dates')
    .option('--sync-off <date>', 'sync stops: the data is kept read-only, uploads are refused (the migration window)')
    .option('--migration-deadline <date>', 'accounts that did not migrate or export lose access (410 Gone)')
    .option('--shutdown <date>', 'the service is gone; data is purged from then on, in batches')
    .option('--account <name>', 'with --deadline: this account gets its own deadline')
    .option('--deadline <date>', "with --account: the account's deadline")
    .action(async (o: RetireOptions) => {
      const client = await api()
      const planFlags = [o.announce, o.syncOff, o.migrationDeadline, o.shutdown]
      if (o.account !== undefined || o.deadline !== undefined) {
        if (o.account === undefined || o.deadline === undefined) throw new UserError('--account and --deadline go together')
        if (planFlags.some((f) => f !== undefined)) throw new UserError("give either the plan's four dates or --account with --deadline")
        const { account } = await client.read(
          AccountDeadlineSchema,
          'PUT',
          `/api/service/retirement/accounts/${encodeURIComponent(o.account)}`,
          { deadline: o.deadline },
        )
        return print(account, `Account ${forTerminal(account.account)} now has its own deadline: ${utcDate(account.deadlineAt)}.\n`)
      }
      if (planFlags.some((f) => f === undefined)) {
        throw new UserError('the plan needs all four dates: --announce, --sync-off, --migration-deadline and --shutdown')
      }
      const status = await client.read(RetirementStatusSchema, 'PUT', '/api/service/retirement', {
        announce: o.announce,
        syncOff: o.syncOff,
        migrationDeadline: o.migrationDeadline,
        shutdown: o.shutdown,
      })
      print(status, 'The service will retire:\n' + renderRetirement(status))
    })
}
