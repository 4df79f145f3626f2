/**
 * App data sync and the recycle bin from the command line (S1-S4, R1-R3).
 * On `fakephone phone`: `sync <category> on|off`, `sync status`,
 * `gallery-backup on|off`, `album-sync on|off`. On `fakephone console`:
 * `items`, `delete`, `bin`, `restore`, `delete-forever`.
 */
import type { Command } from 'commander'
import { sendControl, type ControlRequest } from '../agent/control.js'
import type { SyncStatus } from '../agent/sync/engine.js'
import type { PhoneStatus } from '../common/phone-status.js'
import type { ConsoleClient } from './console-client.js'
import { formatBytes } from '../common/format-bytes.js'
import { formatAge } from '../common/clock.js'
import { utcDate, utcText } from '../common/format-time.js'
import { recordedClock } from '../common/cloud-time.js'
import {
  BinViewSchema,
  ItemReplySchema,
  ItemsViewSchema,
  PurgedSchema,
  SyncCategorySchema,
  type BinView,
  type ItemsView,
  type SyncCategory,
} from '../common/cloud/sync-api.js'
import { UserError, type Io } from './io.js'
import { onOff } from './options.js'
import { forTerminal, lineForTerminal, linesForTerminal, quoted } from '../common/terminal-text.js'
import { plural } from './render.js'
import { frozenLine } from './cloud-cleared.js'

function categoryArg(value: string): SyncCategory {
  const parsed = SyncCategorySchema.safeParse(value)
  if (!parsed.success) throw new UserError(`unknown category ${quoted(value)}: use ${SyncCategorySchema.options.join(', ')}`)
  return parsed.data
}

/**
 * An item id as `items` and `bin` print it, `notes/ID`, or bare: an id holds no `/`, so the category's own prefix is
 * dropped (copying the line's first column works); any other prefix is the server's to refuse, with the id rule.
 */
const itemIdArg = (category: SyncCategory, id: string): string => (id.startsWith(`${category}/`) ? id.slice(category.length + 1) : id)

/**
 * R1, R3: the item a command names: `CATEGORY ID`, `CATEGORY CATEGORY/ID`, or `CATEGORY/ID` alone -- the first column of
 * an `items` or `bin` line as it is copied.
 */
function itemArgs(category: string, id: string | undefined): [SyncCategory, string] {
  if (id !== undefined) {
    const c = categoryArg(category)
    return [c, itemIdArg(c, id)]
  }
  const slash = category.indexOf('/')
  if (slash < 0) throw new UserError(`say which ${category} item: CATEGORY ID, or CATEGORY/ID as \`items\` and \`bin\` list it`)
  return [categoryArg(category.slice(0, slash)), category.slice(slash + 1)]
}

const when = (at: number | null, now: number): string => (at === null ? 'never' : `${formatAge(now - at)} ago`)

/**
 * S1, S2, X1, M1: why a phone whose switches say "uploads on" syncs nothing now -- the cloud service shut down (its
 * `service-gone` notice), its cloud service is off (the data channel is cut) or it has no network -- or null when
 * nothing stops it. Said above the table, so that neither the switches nor an old "last sync" read as if sync went on.
 */
export function syncStopped(phone: Pick<PhoneStatus, 'cloudService' | 'network'> & Partial<Pick<PhoneStatus, 'framework'>>): string | null {
  const service = phone.framework?.notifications.service
  if (service?.state === 'gone')
    return (
      `the cloud service is gone (its notice of ${utcText(service.at)}, phone notifications), so nothing goes up or ` +
      'comes down any more; the photos, contacts, notes and recordings stay on this phone (phone export --out DIR ' +
      'makes a bag of them, M3)'
    )
  if (!phone.cloudService)
    return (
      'the cloud service is off, so nothing goes up or comes down until it is back on ' +
      '(phone cloud-service on); what the cloud kept stays there (S2)'
    )
  if (phone.network === 'none') return 'the phone has no network; it syncs once it has one (phone network wifi)'
  return null
}

/** A3: while the account is frozen, what goes up again once its owner signs in (the items of the categories that upload). */
function frozenLines(s: SyncStatus): string[] {
  return frozenLine(s.cloud, () => {
    const again = Object.values(s.categories).reduce((n, c) => n + (c.uploads ? c.pending : 0), 0)
    return `${plural(again, 'item')} will upload again after the owner signs in to the console`
  })
}

/** A1: the cloud had no room for some items (quota or disk full): when they are tried again. */
function fullLines(s: SyncStatus, now: number): string[] {
  if (s.retryAt === undefined || s.retryAt === null) return []
  return [`the cloud had no room for some items (quota or disk full): tried again in ${formatAge(s.retryAt - now)}`]
}

export function renderSyncStatus(s: SyncStatus | null, now: number, stopped: string | null = null): string {
  if (!s) return 'sync          unavailable: this phone has no cloud to talk to\n'
  const onoff = (v: boolean): string => (v ? 'on' : 'off')
  const lines = [
    `gallery auto-backup ${onoff(s.switches.galleryBackup)}, album sync ${onoff(s.switches.albumSync)}${s.running ? ', syncing now' : ''}`,
    // What the cloud did meanwhile (a clean-up, a freeze) the phone hears only once it syncs again.
    ...(stopped === null ? [] : [`not syncing: ${stopped}; "in cloud" is as of the last sync`]),
    ...frozenLines(s),
    ...fullLines(s, now),
    'category     switch  uploads  local  in cloud  pending  last sync',
  ]
  for (const [category, c] of Object.entries(s.categories)) {
    lines.push(
      `${category.padEnd(12)} ${onoff(c.sync).padEnd(7)} ${onoff(c.uploads).padEnd(8)} ${String(c.local).padStart(5)}  ` +
        `${String(c.inCloud).padStart(8)}  ${String(c.pending).padStart(7)}  ${when(c.lastSync, now)}` +
        (c.lastError === null ? '' : `\n             last error: ${lineForTerminal(c.lastError)}`),
    )
  }
  return lines.join('\n') + '\n'
}

/** With `only` (`--category`), the total of that category alone: the list under it is of that category too. */
export function renderItems(v: ItemsView, only?: SyncCategory): string {
  const lines = [`account ${forTerminal(v.account)}: what the cloud keeps${only === undefined ? '' : ` of ${only}`}`]
  for (const [category, t] of Object.entries(v.totals))
    if (only === undefined || category === only) {
      // The number right-aligned in six columns, its word agreed with it, the sizes in one column.
      const count = ' '.repeat(Math.max(0, 6 - String(t.count).length)) + plural(t.count, 'item')
      lines.push(`  ${category.padEnd(11)} ${count.padEnd(12)}  ${formatBytes(t.bytes)}`)
    }
  for (const i of v.items)
    lines.push(`${i.category}/${i.id}  ${formatBytes(i.size)}  changed by ${i.changedBy} ${formatAge(v.now - i.modifiedAt)} ago`)
  return lines.join('\n') + '\n'
}

export function renderBin(v: BinView): string {
  if (v.entries.length === 0) return `recently deleted of ${forTerminal(v.account)} is empty (entries stay ${v.windowDays} days)\n`
  const lines = [`recently deleted of ${forTerminal(v.account)} (entries stay ${v.windowDays} days):`]
  for (const e of v.entries)
    lines.push(
      `${e.category}/${e.id}  ${formatBytes(e.size)}  deleted ${formatAge(v.now - e.deletedAt)} ago  ${e.daysLeft} ` +
        `day${e.daysLeft === 1 ? '' : 's'} left (purged ${utcDate(e.purgeAt)})`,
    )
  return lines.join('\n') + '\n'
}

export function addSyncPhoneCommands(cmd: Command, io: Io): void {
  const send = async (req: ControlRequest): Promise<void> => {
    const o = cmd.opts<{ data: string; json?: boolean }>()
    const status = await sendControl(o.data, req)
    // Ages on the phone's clock, which follows the cloud's (kept in its data directory).
    io.out(
      o.json
        ? JSON.stringify({ sync: status.sync }) + '\n'
        : linesForTerminal(renderSyncStatus(status.sync, recordedClock(o.data, io.clock).now(), syncStopped(status))),
    )
  }
  cmd
    .command('sync <category|status|now> [on|off]')
    .description(
      'switch sync of one category (photos, contacts, notes, recordings) on or off, show what is synced, or sync now (and wait for it)',
    )
    .action((what: string, value: string | undefined) => {
      if (what === 'status') return send({ op: 'status' })
      if (what === 'now') return send({ op: 'sync-now', wait: true })
      const category = categoryArg(what)
      if (value === undefined) throw new UserError(`say on or off: fakephone phone sync ${category} on|off`)
      return send({ op: 'sync', category, on: onOff(value) })
    })
  cmd
    .command('gallery-backup <on|off>')
    .description("the gallery app's auto-backup (off: no photo goes up)")
    .action((v: string) => send({ op: 'photo-switch', name: 'galleryBackup', on: onOff(v) }))
  cmd
    .command('album-sync <on|off>')
    .description('the album switch on the cloud-service page (off: no photo goes up)')
    .action((v: string) => send({ op: 'photo-switch', name: 'albumSync', on: onOff(v) }))
}

export function addSyncConsoleCommands(cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  const path = (...parts: string[]): string => `/api/accounts/${parts.map(encodeURIComponent).join('/')}`
  cmd
    .command('items <account>')
    .description('what the cloud keeps of an account: counts and bytes per category, and each item')
    .option('--category <category>', 'one category only')
    .action(async (account: string, o: { category?: string }) => {
      const only = o.category === undefined ? undefined : categoryArg(o.category)
      const query = only === undefined ? '' : `?category=${only}`
      const view = await (await api()).read(ItemsViewSchema, 'GET', `${path(account, 'items')}${query}`)
      print(view, renderItems(view, only))
    })
  cmd
    .command('delete <account> <category> [id]')
    .description('delete a cloud item (CATEGORY ID, or CATEGORY/ID as `items` lists it): it goes to recently deleted')
    .action(async (account: string, category: string, id: string | undefined) => {
      const [c, itemId] = itemArgs(category, id)
      const { item } = await (await api()).read(ItemReplySchema, 'DELETE', path(account, 'items', c, itemId))
      print(item, `${item.category}/${item.id} moved to recently deleted\n`)
    })
  cmd
    .command('bin <account>')
    .description('recently deleted: each entry with the days it has left')
    .action(async (account: string) => {
      const view = await (await api()).read(BinViewSchema, 'GET', path(account, 'bin'))
      print(view, renderBin(view))
    })
  cmd
    .command('restore <account> <category> [id]')
    .description('bring an entry back from recently deleted; the phones pull it again')
    .action(async (account: string, category: string, id: string | undefined) => {
      const [c, itemId] = itemArgs(category, id)
      const { item } = await (await api()).read(ItemReplySchema, 'POST', path(account, 'bin', c, itemId, 'restore'))
      print(item, `${item.category}/${item.id} restored\n`)
    })
  cmd
    .command('delete-forever <account> <category> [id]')
    .description('delete an entry from recently deleted: gone for good, nothing brings it back')
    .action(async (account: string, category: string, id: string | undefined) => {
      const [c, itemId] = itemArgs(category, id)
      const { purged } = await (await api()).read(PurgedSchema, 'DELETE', path(account, 'bin', c, itemId))
      print(purged, `${purged.category}/${purged.id} deleted for good (${formatBytes(purged.size)} freed)\n`)
    })
}
