/**
 * The cloud drive's commands (D1-D3, D5):
 *   fakephone console drive list|upload|download|share|unshare|delete <account> ...
 *   fakephone console drive token <account> --app NAME | revoke-token <account> <id>
 *   fakephone phone drive list|upload <file>|download <id> <dest>|share <id>|sync <on|off|now>
 * A download is checked against its SHA-256 and saved whole or not at all: a failed one (a full disk) leaves <dest> as
 * it was (common/save-file.ts).
 */
import type { Command } from 'commander'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { askControl, type ControlRequest } from '../agent/control.js'
import type { DriveListing, SyncReport } from '../agent/drive/phone-drive.js'
import type { ConsoleClient } from './console-client.js'
import { formatBytes } from '../common/format-bytes.js'
import { saveFile } from '../common/save-file.js'
import {
  DriveFileReplySchema,
  DriveListSchema,
  DriveRevokedSchema,
  DriveShareSchema,
  DriveTokenSchema,
  type DriveFile,
} from '../common/cloud/drive-api.js'
import type { Io } from './io.js'
import { plural, table } from './render.js'
import { UserError } from './io.js'
import { forTerminal, linesForTerminal, quoted } from '../common/terminal-text.js'
import { utcSeconds } from '../common/clock.js'

const path = (account: string, rest = ''): string => `/api/accounts/${encodeURIComponent(account)}/drive${rest}`

/** The drive's files as a table, or the reason there are none. */
export function renderDriveFiles(files: DriveFile[], notice?: string): string {
  if (notice !== undefined) return `${notice}\n`
  if (files.length === 0) return 'The drive is empty.\n'
  const rows = files.map((f) => [
    f.id,
    `${f.folder === '/' ? '' : f.folder}/${f.name}`,
    formatBytes(f.size),
    utcSeconds(f.updatedAt),
    f.uploadedBy,
  ])
  return table(['ID', 'FILE', 'SIZE', 'UPDATED (UTC)', 'BY'], rows)
}

export function addDriveConsoleCommands(parent: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  const cmd = parent.command('drive').description("an account's cloud drive: files, share links and SDK tokens for other apps (D1)")
  cmd
    .command('list <account>')
    .description("the account's drive files")
    .action(async (account: string) => {
      const { files } = await (await api()).read(DriveListSchema, 'GET', path(account, '/files'))
      print({ files }, renderDriveFiles(files))
    })
  cmd
    .command('upload <account> <file>')
    .description('upload a file to the drive (a file of the same name in that folder is replaced)')
    .option('--name <name>', 'its name in the drive (default: the file name)')
    .option('--folder <path>', 'the drive folder, e.g. /Documents', '/')
    .action(async (account: string, file: string, o: { name?: string; folder: string }) => {
      const bytes = await readLocal(file)
      const query = `?name=${encodeURIComponent(o.name ?? basename(file))}&folder=${encodeURIComponent(o.folder)}`
      const { file: stored } = await (await api()).readAfterBytes(DriveFileReplySchema, 'POST', path(account, `/files${query}`), bytes)
      print(stored, `Uploaded ${forTerminal(stored.name)} (${formatBytes(stored.size)}) as ${stored.id}.\n`)
    })
  cmd
    .command('download <account> <id> <dest>')
    .description('save a drive file')
    .action(async (account: string, id: string, dest: string) => {
      const client = await api()
      const bytes = await client.bytes('GET', path(account, `/files/${encodeURIComponent(id)}/content`))
      // Checked against the SHA-256 the drive lists it with, then saved whole or not at all (save-file.ts).
      const { files } = await client.read(DriveListSchema, 'GET', path(account, '/files'))
      const sha256 = createHash('sha256').update(bytes).digest('hex')
      if (files.find((f) => f.id === id)?.sha256 !== sha256)
        throw new UserError(
          `drive file ${quoted(id)} arrived damaged or changed while it was read; nothing was saved to ${forTerminal(dest)}`,
        )
      await saveFile(dest, bytes)
      print({ id, dest, size: bytes.length }, `Saved ${formatBytes(bytes.length)} to ${dest}.\n`)
    })
  cmd
    .command('share <account> <id>')
    .description('a public download link for a drive file, until revoked')
    .action(async (account: string, id: string) => {
      const link = await (await api()).read(DriveShareSchema, 'POST', path(account, `/files/${encodeURIComponent(id)}/shares`), {})
      print(link, `${link.url}\n(revoke with: console drive unshare ${account} ${link.token})\n`)
    })
  const revoke = (name: string, what: string, under: string, done: string): void => {
    cmd
      .command(`${name} <account> <id>`)
      .description(`revoke ${what}`)
      .action(async (account: string, id: string) => {
        const reply = await (await api()).read(DriveRevokedSchema, 'DELETE', path(account, `${under}/${encodeURIComponent(id)}`))
        print(reply, `${done}\n`)
      })
  }
  revoke('unshare', 'a share link', '/shares', 'Share link revoked.')
  cmd
    .command('delete <account> <id>')
    .description('delete a drive file')
    .action(async (account: string, id: string) => {
      const { file } = await (await api()).read(DriveFileReplySchema, 'DELETE', path(account, `/files/${encodeURIComponent(id)}`))
      print(file, `Deleted ${forTerminal(file.name)}.\n`)
    })
  cmd
    .command('token <account>')
    .description("issue a drive SDK token for a third-party app (shown once; send it as 'Authorization: Bearer TOKEN')")
    .requiredOption('--app <name>', 'the app it is for')
    .action(async (account: string, o: { app: string }) => {
      const token = await (await api()).read(DriveTokenSchema, 'POST', path(account, '/tokens'), { app: o.app })
      print(
        token,
        `${token.token}\nSDK token ${token.id} for ${o.app}; it is not shown again (revoke with: console drive revoke-token ` +
          `${account} ${token.id})\n`,
      )
    })
  revoke('revoke-token', 'a drive SDK token', '/tokens', 'SDK token revoked.')
}

export function addDrivePhoneCommands(parent: Command, io: Io): void {
  const ask = async (req: ControlRequest): Promise<{ result: unknown; json: boolean }> => {
    const o = parent.opts<{ data: string; json?: boolean }>()
    return { result: (await askControl(o.data, req)).result, json: o.json === true }
  }
  const show = async (req: ControlRequest, text: (result: never) => string): Promise<void> => {
    const { result, json } = await ask(req)
    io.out(json ? JSON.stringify(result) + '\n' : linesForTerminal(text(result as never)))
  }
  const cmd = parent.command('drive').description("the file manager's cloud drive and the sync of the phone's Drive folder (D1-D3)")
  cmd
    .command('list')
    .description('the drive files (none, and why, while the cloud service is off)')
    .action(() => show({ op: 'drive-list' }, (r: DriveListing) => renderDriveFiles(r.files, r.notice)))
  cmd
    .command('upload <file>')
    .description('upload a file to the drive')
    .option('--folder <path>', 'the drive folder, e.g. /Documents', '/')
    .action((file: string, o: { folder: string }) =>
      show(
        { op: 'drive-upload', path: resolve(file), folder: o.folder },
        (r: { file: DriveFile }) => `Uploaded ${forTerminal(r.file.name)} (${formatBytes(r.file.size)}) as ${r.file.id}.\n`,
      ),
    )
  cmd
    .command('download <id> <dest>')
    .description('save a drive file on the phone')
    .action((id: string, dest: string) =>
      show(
        { op: 'drive-download', id, dest: resolve(dest) },
        (r: { file: DriveFile; dest: string }) => `Saved ${forTerminal(r.file.name)} to ${forTerminal(r.dest)}.\n`,
      ),
    )
  cmd
    .command('share <id>')
    .description('a public download link for a drive file')
    .action((id: string) => show({ op: 'drive-share', id }, (r: { url: string }) => `${r.url}\n`))
  cmd
    .command('sync <on|off|now>')
    .description('switch the Drive folder sync (off deletes nothing), or sync it now')
    .action((v: string) => {
      if (!['on', 'off', 'now'].includes(v)) throw new UserError('drive sync takes on, off or now')
      const req: ControlRequest = v === 'now' ? { op: 'drive-sync' } : { op: 'drive-sync', on: v === 'on' }
      return show(req, (r: SyncReport & { sync: boolean }) => syncLine(v, r))
    })
}

/** D2: one sentence per answer -- the switch as it is now, and what the sync did (off deletes nothing, so it says so). */
function syncLine(asked: string, r: SyncReport & { sync: boolean }): string {
  if (r.sync) return `Drive sync is on; ${r.skipped ?? `${plural(r.uploaded.length, 'file')} uploaded`}.\n`
  return asked === 'off'
    ? 'Drive sync is off. Files already in the cloud drive stay there, with the same access.\n'
    : 'Drive sync is off, so nothing was uploaded (turn it on with: drive sync on).\n'
}

async function readLocal(file: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await readFile(file))
  } catch (err) {
    throw new UserError(`cannot read ${forTerminal(file)}: ${(err as NodeJS.ErrnoException).code}`)
  }
}
