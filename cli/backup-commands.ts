/**
 * Cloud backup's subcommands (B1-B4): `fakephone phone backup ...` (the
 * phone's backup screen: status, on/off [--delete-data], now, list,
 * restore) and `fakephone console backups <account>` / `console backup
 * show|delete|delete-device`.
 */
import { recordedClock } from '../common/cloud-time.js'
import type { Command } from 'commander'
import { askControl, type ControlRequest } from '../agent/control.js'
import type { BackupStatus } from '../agent/backup/phone-backup.js'
import type { ConsoleClient } from './console-client.js'
import { formatAge, utcSeconds, utcText } from '../common/clock.js'
import {
  BackupDeletedSchema,
  BackupOneSchema,
  ConsoleBackupListSchema,
  type BackupView,
  type PlanView,
  type RetentionView,
} from '../common/cloud/backup-api.js'
import { UserError, type Io } from './io.js'
import { plural, table } from './render.js'
import { frozenLine } from './cloud-cleared.js'
import { forTerminal, lineForTerminal, linesForTerminal } from '../common/terminal-text.js'

/** A time as the CLI says it, to the second (the cloud's rules count seconds; --json keeps the milliseconds). */
const when = (at: number | null): string => (at === null ? '-' : utcText(at))

function renderBackups(backups: readonly BackupView[], now: number): string {
  if (backups.length === 0) return 'No backups.\n'
  return table(
    ['BACKUP', 'DEVICE', 'CREATED (UTC)', 'SIZE', 'PARTS'],
    backups.map((b) => [
      b.id,
      b.device,
      `${utcSeconds(b.createdAt)} (${formatAge(now - b.createdAt)} ago)`,
      `${b.size} B`,
      b.manifest.parts.map((p) => `${p.name}:${p.count}`).join(' '),
    ]),
  )
}

function renderRetention(r: RetentionView): string {
  const lines = [`state           ${r.state}`]
  if (r.serviceOffAt !== null) {
    lines.push(
      `service off at  ${when(r.serviceOffAt)}`,
      `read-only from  ${when(r.readOnlyAt)}`,
      `cleaning from   ${when(r.cleaningFrom)}`,
      `next batch at   ${when(r.nextBatchAt)}`,
    )
  }
  return lines.join('\n') + '\n'
}

function renderPlans(plans: readonly PlanView[]): string {
  if (plans.length === 0) return 'No backup plans yet.\n'
  return table(
    ['PLAN', 'DEVICE', 'PLANNED (UTC)', 'STATE', 'REASON'],
    plans.map((p) => [p.id, p.device, utcSeconds(p.plannedAt), p.state, [p.reason, p.backupId].filter((x) => x !== null).join(' ')]),
  )
}

/** A3: the freeze took the account's backups; what the phone does about it once its owner signs in. */
const afterSignIn = (on: boolean) => (): string =>
  on
    ? 'no backup of the account is left; this phone makes a fresh one once the owner signs in to the console'
    : 'no backup of the account is left; with cloud backup off, this phone makes none after the sign-in'

function renderPhoneStatus(s: BackupStatus): string {
  return (
    [
      `cloud backup  ${s.on ? 'on' : 'off'}`,
      ...frozenLine(s.cloud, afterSignIn(s.on)),
      `last backup   ${s.lastBackupId === null ? 'never' : `${s.lastBackupId} at ${when(s.lastBackupAt)}`}`,
      ...(s.lastError === null ? [] : [`last error    ${lineForTerminal(s.lastError)}`]),
      `plans refused ${s.plansRefused} this run`,
    ].join('\n') + '\n'
  )
}

export function addBackupPhoneCommands(phone: Command, io: Io): void {
  const cmd = phone.command('backup').description('cloud backup on this phone: status, on/off, back up now, list and restore')
  /** `shape` makes the --json output an object where the result is not one. */
  const send = async (
    req: Extract<ControlRequest, { op: 'backup' }>['backup'],
    text: (result: unknown) => string,
    shape = (result: unknown): unknown => result,
  ): Promise<void> => {
    const o = phone.opts<{ data: string; json?: boolean }>()
    const { result } = await askControl(o.data, { op: 'backup', backup: req })
    io.out(o.json ? JSON.stringify(shape(result)) + '\n' : linesForTerminal(text(result)))
  }
  cmd
    .command('status')
    .description('the backup switch and the last backup')
    .action(() => send({ action: 'status' }, (r) => renderPhoneStatus(r as BackupStatus)))
  cmd
    .command('on')
    .description('turn cloud backup on: the cloud plans backups again')
    .action(() => send({ action: 'switch', on: true, deleteData: false }, () => 'Cloud backup is on.\n'))
  cmd
    .command('off')
    .description('turn cloud backup off: pending plans are dropped and no new backup is made')
    .option('--delete-data', "also delete this phone's backups from the cloud, at once and for good (B4)")
    .action((o: { deleteData?: boolean }) =>
      send({ action: 'switch', on: false, deleteData: o.deleteData === true }, (r) => {
        const d = (r as { deleted: { deleted: number; releasedBytes: number } | null }).deleted
        if (!d) return 'Cloud backup is off. Existing backups stay in the cloud.\n'
        const freed = `${plural(d.deleted, 'backup')} deleted from the cloud (${d.releasedBytes} bytes freed)`
        return `Cloud backup is off. ${freed}, for good: nothing deleted can be recovered.\n`
      }),
    )
  cmd
    .command('now')
    .description('make a backup now and upload it')
    .action(() => send({ action: 'now' }, (r) => `Backup ${(r as BackupView).id} stored (${(r as BackupView).size} bytes).\n`))
  cmd
    .command('list')
    .description("the account's backups in the cloud, newest first")
    // Ages on the phone's clock, which follows the cloud's (kept in its data directory).
    .action(() =>
      send(
        { action: 'list' },
        (r) => renderBackups(r as BackupView[], recordedClock(phone.opts<{ data: string }>().data, io.clock).now()),
        (backups) => ({ backups }),
      ),
    )
  cmd
    .command('restore [id]')
    .description("put a backup back onto this phone (default: this phone's latest)")
    .action((id: string | undefined) =>
      send({ action: 'restore', ...(id === undefined ? {} : { id }) }, (r) => {
        const { backup, files } = r as { backup: BackupView; files: number }
        const from = `backup ${backup.id} of ${forTerminal(backup.device)} (${when(backup.createdAt)})`
        return `Restored ${from}: ${plural(files, 'file')} put back.\n`
      }),
    )
}

export function addBackupConsoleCommands(cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  cmd
    .command('backups <account>')
    .description("an account's backups: state (active / read-only / cleaning) with its dates, the backups, recent plans")
    .action(async (account: string) => {
      const view = await (await api()).read(ConsoleBackupListSchema, 'GET', `/api/accounts/${encodeURIComponent(account)}/backups`)
      // B2 (and A3): no plan comes, and the cloud says why.
      const next = view.nextPlanAt === null ? `none: ${String(view.noPlanBecause)}` : when(view.nextPlanAt)
      print(
        view,
        `${renderRetention(view.retention)}next plan at    ${next}\n\n${renderBackups(view.backups, view.now)}\n${renderPlans(view.plans)}`,
      )
    })
  const backup = cmd.command('backup').description('one backup: show its manifest, delete it, or delete all of a device')
  backup
    .command('show <id>')
    .description("a backup's manifest: parts, sizes, counts, when it was made")
    .action(async (id: string) => {
      const view = await (await api()).read(BackupOneSchema, 'GET', `/api/backups/${encodeURIComponent(id)}`)
      const b = view.backup
      print(
        view,
        `backup   ${b.id}\ndevice   ${forTerminal(b.device)} (account ${forTerminal(b.account)})\n` +
          `created  ${when(b.createdAt)}\nsize     ${b.size} B\n` +
          `sha256   ${b.sha256}\nstate    ${view.retention.state}\n\n` +
          table(
            ['PART', 'FILES', 'BYTES', 'COUNT'],
            b.manifest.parts.map((p) => [p.name, String(p.files), String(p.bytes), String(p.count)]),
          ),
      )
    })
  backup
    .command('delete <id>')
    .description('delete one backup for good (refused once backups are read-only)')
    .action(async (id: string) => {
      const r = await (await api()).read(BackupDeletedSchema, 'DELETE', `/api/backups/${encodeURIComponent(id)}`)
      print(r, `Deleted backup ${id} (${r.releasedBytes} bytes freed); it cannot be recovered.\n`)
    })
  backup
    .command('off <device>')
    .description("turn a device's cloud backup off and delete all its backups at once (B4)")
    .option('--delete-data', 'required: say that the backup data goes too')
    .action(async (device: string, o: { deleteData?: boolean }) => {
      if (!o.deleteData)
        throw new UserError(
          'from the console, backup off always deletes the data: add --delete-data to confirm (to keep it, turn backup off on the phone)',
        )
      const r = await (await api()).read(BackupDeletedSchema, 'DELETE', `/api/devices/${encodeURIComponent(device)}/backups`)
      print(r, `Cloud backup of ${device} is off; ${plural(r.deleted, 'backup')} deleted (${r.releasedBytes} bytes freed), for good.\n`)
    })
}
