/**
 * The console's account views and the cloud's clock (A1-A3, simulated time):
 *   console accounts                          every account: tier, quota bar, service, activity
 *   console account <id>                      one account (opening it is a console sign-in, A3) and what the rules did
 *   console membership <id> premium|free      start (for --days) or end a membership (A2)
 *   console clock                             the cloud's time
 *   console clock advance <duration>          simulated time only: run every rule that falls due, in order
 */
import type { Command } from 'commander'
import type { ConsoleClient } from './console-client.js'
import {
  AccountListSchema,
  AccountOneSchema,
  CloudLogViewSchema,
  type AccountView,
  type CloudLogEntry,
  type ListedAccount,
  type Tier,
} from '../common/cloud/account-api.js'
import { ClockAdvanceSchema, ClockViewSchema, type AdvanceEffects, type ClockView } from '../common/cloud/clock-api.js'
import { formatBytes } from '../common/format-bytes.js'
import { formatAge, utcDay, utcSeconds, utcText } from '../common/clock.js'
import { UserError, type Io } from './io.js'
import { positiveInt } from './options.js'
import { plural, table } from './render.js'
import { forTerminal, linesForTerminal } from '../common/terminal-text.js'

const BAR_WIDTH = 20

/** A1: "[#####---------------] 25% 1.2 GB of 5 GB". */
export function quotaBar(used: number, quota: number): string {
  const share = quota === 0 ? 1 : Math.min(1, used / quota)
  const filled = Math.round(share * BAR_WIDTH)
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${Math.floor(share * 100)}% ${formatBytes(used)} of ` +
    `${formatBytes(quota)}`
  )
}

function serviceCell(a: AccountView, now: number): string {
  if (a.frozenAt !== null) return `FROZEN since ${utcDay(a.frozenAt)}`
  return a.serviceOn ? 'on' : `off for ${formatAge(now - (a.serviceOffAt as number))}`
}

/** An account as `GET /api/accounts` lists it: with its place in the service's retirement (M1) once a plan is set. */
export type { ListedAccount }

/** M1: the phones' cloud service of a listed account, gone once the service shut down (its data purged, or not yet). */
function listedServiceCell(a: ListedAccount, now: number): string {
  if (a.retirement?.access === 'purged') return 'gone (purged)'
  if (a.retirement?.phase === 'shut-down') return 'gone (shut down)'
  return serviceCell(a, now)
}

/** A3's freeze date, unless M1 already closed or deleted the account: then that, since no year of activity matters. */
function freezesCell(a: ListedAccount): string {
  const r = a.retirement
  if (r?.access === 'purged') return `deleted ${utcDay(r.purgedAt as number)} (the service shut down)`
  if (r?.access === 'closed') return `closed ${utcDay(r.deadlineAt)} (migration deadline passed)`
  return a.freezesAt === null ? '-' : utcDay(a.freezesAt)
}

export function renderAccounts(accounts: ListedAccount[], now: number): string {
  if (accounts.length === 0) return 'No accounts yet: an account is made with its first device (fakephone device add ID --account NAME).\n'
  return table(
    ['ACCOUNT', 'TIER', 'QUOTA', 'SERVICE', 'LAST ACTIVITY', 'FREEZES'],
    accounts.map((a) => [
      a.id,
      a.tier,
      quotaBar(a.usedBytes, a.quotaBytes),
      listedServiceCell(a, now),
      `${a.lastActivity}, ${formatAge(now - a.lastActivityAt)} ago`,
      freezesCell(a),
    ]),
  )
}

export function renderAccount(a: AccountView, log: CloudLogEntry[], now: number): string {
  const lines = [
    `account        ${forTerminal(a.id)}`,
    `membership     ${a.tier}${a.premiumUntil === null ? '' : ` until ${utcDay(a.premiumUntil)}`}`,
    `quota          ${quotaBar(a.usedBytes, a.quotaBytes)}`,
    // A1: unfinished uploads count against the quota until they finish or are removed after 24 h without new bytes.
    ...(a.pendingBytes ? [`unfinished     ${formatBytes(a.pendingBytes)} held by uploads not finished (removed after 24 h idle)`] : []),
    `recycle bin    entries kept ${Math.round(a.binMs / 86_400_000)} days`,
    `cloud service  ${serviceCell(a, now)}`,
    `last activity  ${a.lastActivity}, ${formatAge(now - a.lastActivityAt)} ago`,
    `frozen         ${frozenCell(a)}`,
    ...(a.clearedAt === null ? [] : [`cloud data     ${clearedText(a.clearedAt)}`]),
    `devices        ${a.devices.map(forTerminal).join(', ') || 'none'}`,
  ]
  const history =
    log.length === 0
      ? ['', 'No rule has acted on this account yet.']
      : [
          '',
          'What the cloud did (newest first):',
          table(
            ['WHEN (UTC)', 'RULE', 'COUNT', 'WHAT'],
            log.map((e) => [utcSeconds(e.at), e.rule, String(e.count), e.message]),
          ).trimEnd(),
        ]
  return [...lines, ...history].join('\n') + '\n'
}

/**
 * The lead is shown to the nearest second: the cloud measures it against its own reading of real time a few
 * milliseconds apart, so after `clock advance 8d` it is 8d less a few ms, which whole units cut down to "7d 23h".
 */
export function renderClock(c: ClockView): string {
  if (!c.simulated) return `cloud time ${utcText(c.now)} (real time)\n`
  return `cloud time ${utcText(c.now)} (simulated, ${formatAge(Math.round(c.aheadMs / 1000) * 1000)} ahead of real time)\n`
}

export function addAccountCommands(cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  const path = (id: string, rest = ''): string => `/api/accounts/${encodeURIComponent(id)}${rest}`
  cmd
    .command('accounts')
    .description('every account: membership, quota use, cloud service, last activity and when a year without any freezes it')
    .action(async () => {
      const view = await (await api()).read(AccountListSchema, 'GET', '/api/accounts')
      print(view, renderAccounts(view.accounts, view.now))
    })
  cmd
    .command('account <id>')
    .description('one account and what the cloud rules did to its data (opening it counts as a console sign-in)')
    .option('--limit <n>', 'how many log entries', positiveInt, 20)
    .action(async (id: string, o: { limit: number }) => {
      const client = await api()
      const { now, account } = await client.read(AccountOneSchema, 'GET', path(id))
      const { log } = await client.read(CloudLogViewSchema, 'GET', path(id, `/log?limit=${o.limit}`))
      print({ now, account, log }, renderAccount(account, log, now))
    })
  cmd
    .command('membership <id> <tier>')
    .description('premium: a bigger quota and a 180-day recycle bin (for --days, or until ended); free: end it now')
    .option('--days <n>', 'how long the membership lasts', positiveInt)
    .action(async (id: string, tier: string, o: { days?: number }) => {
      if (tier !== 'premium' && tier !== 'free') throw new UserError('the tier is premium or free')
      if (tier === 'free' && o.days !== undefined) throw new UserError('--days goes with premium')
      const body: { tier: Tier; days?: number } = tier === 'premium' && o.days !== undefined ? { tier, days: o.days } : { tier }
      const { now, account } = await (await api()).read(AccountOneSchema, 'PUT', path(id, '/membership'), body)
      print(account, renderAccount(account, [], now).split('\n\n')[0] + '\n')
    })
  const clock = cmd.command('clock').description("the cloud's time (see `clock advance` for simulated time)")
  clock.action(async () => {
    const view = await (await api()).read(ClockViewSchema, 'GET', '/api/clock')
    print(view, renderClock(view))
  })
  clock
    .command('advance <duration>')
    .description('simulated time only: move the cloud clock forward, e.g. 73h or 7d, running every rule that falls due in order')
    .action(async (by: string) => {
      const view = await (await api()).read(ClockAdvanceSchema, 'POST', '/api/clock/advance', { by })
      print(view, renderAdvance(view.from, view.now, view.effects))
    })
}

/**
 * What `clock advance` did, in what a user can look up: the cloud log's new entries by rule and the accounts they are
 * about, and the commands and notifications that expired or were queued; or that none of the rules had anything to do
 * (the clock's count of timers is no measure: its rules also wake just to look again).
 */
export function renderAdvance(from: number, now: number, e: AdvanceEffects): string {
  const moved = `Moved the cloud clock from ${utcText(from)} to ${utcText(now)}.`
  const done: string[] = []
  if (e.log.length > 0) {
    const entries = e.log.reduce((n, r) => n + r.entries, 0)
    const rules = e.log.map((r) => `${r.rule} ${r.entries}`).join(', ')
    done.push(
      `${entries} cloud-log ${entries === 1 ? 'entry' : 'entries'} (${rules}) for ${e.accounts.join(', ')}: ` +
        `\`console account ${e.accounts.length === 1 ? e.accounts[0] : 'NAME'}\` shows them` +
        // M1: an account that lost access answers `console account` with 410; the purge's entry is in `service status`.
        (e.log.some((r) => r.rule.startsWith('retirement-'))
          ? ' while the account is open, `console service status` what each purge deleted and what the cloud keeps'
          : ''),
    )
  }
  if (e.commandsExpired > 0) done.push(`${plural(e.commandsExpired, 'command')} expired`)
  if (e.notificationsQueued > 0) done.push(`${plural(e.notificationsQueued, 'notification')} queued`)
  if (e.notificationsExpired > 0) done.push(`${plural(e.notificationsExpired, 'notification')} expired`)
  if (done.length === 0) return `${moved}\nNo rule had anything to do on the way: nothing for the cloud log, no command or notification.\n`
  return `${moved}\nOn the way: ${done.join('; ')}.\n`
}

/**
 * A3: whether the account is frozen, or when a year without activity freezes it. The view is the one `console account`
 * read, and reading it was the owner's sign-in: a frozen account is back from that moment on, which the line says.
 */
function frozenCell(a: { frozenAt: number | null; freezesAt: number | null }): string {
  if (a.frozenAt !== null)
    return `since ${utcDay(a.frozenAt)}, cloud data cleared; this sign-in brings it back, empty (its phones upload what they still hold)`
  return `no; a year without activity freezes it on ${utcDay(a.freezesAt as number)}`
}

/** A3: when the cloud last cleared the account, said as long as the account lives (signed in again, it is not frozen). */
function clearedText(at: number): string {
  return `cleared on ${utcDay(at)} (a year without activity, A3)`
}
