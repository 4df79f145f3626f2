/** `fakephone console ...`: the owner's view of the cloud, through the console API. */
import { Command } from 'commander'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConsoleClient } from './console-client.js'
import { CONSOLE_TOKEN_FILE } from '../broker/console-token.js'
import { addAccountCommands } from './account-commands.js'
import { addDriveConsoleCommands } from './drive-commands.js'
import { addBackupConsoleCommands } from './backup-commands.js'
import { addFrameworkConsoleCommands } from './framework-commands.js'
import { untilAborted, UserError, type Io } from './io.js'
import { duration, positiveInt } from './options.js'
import { renderDevices, renderHistory } from './render.js'
import { addRemoteCommands } from './remote-commands.js'
import { addSyncConsoleCommands } from './sync-commands.js'
import { addRetirementCommands } from './retirement-commands.js'
import { addWebCommand } from './web/web-command.js'
import { addTransferConsoleCommands } from './transfer/transfer-commands.js'

export interface ConsoleOptions {
  api: string
  data: string
  tokenFile?: string
  json?: boolean
}

async function client(o: ConsoleOptions): Promise<ConsoleClient> {
  return new ConsoleClient(o.api, await readToken(o))
}

/** The console token from --token-file or the broker's data directory. */
export async function readToken(o: ConsoleOptions): Promise<string> {
  const file = o.tokenFile ?? join(o.data, CONSOLE_TOKEN_FILE)
  let token: string
  try {
    token = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new UserError(
      `cannot read the console token ${file} (${(err as NodeJS.ErrnoException).code}); the broker writes it on first start`,
    )
  }
  return token
}

/**
 * Redraws the device table every `everyMs` until aborted, with `guide` (where
 * things are, what to try) under it. On a TTY it repaints in place: cursor home,
 * each line cleared to its end, the rest of the screen cleared; the screen is
 * wiped once, at the start, so redraws never flood the scrollback.
 */
export async function watchDevices(api: ConsoleClient, io: Io, everyMs: number, guide = ''): Promise<void> {
  let first = true
  const draw = async (): Promise<void> => {
    const view = await api.devices().then(
      ({ now, devices }) => renderDevices(devices, now),
      (err: Error) => `${err.message}\n`,
    )
    const screen = `fakephone console -- ${new Date(io.clock.now()).toISOString()} (Ctrl-C to stop)\n\n` + view + '\n' + guide
    if (!io.tty) return io.out(screen)
    io.out((first ? '\x1b[2J' : '') + '\x1b[H' + screen.replaceAll('\n', '\x1b[K\n') + '\x1b[J')
    first = false
  }
  await draw()
  const timer = setInterval(() => void draw(), everyMs)
  await untilAborted(io.signal)
  clearInterval(timer)
}

export function consoleCommand(io: Io): Command {
  const cmd = new Command('console')
    .description("the owner's console: devices, their positions and history")
    .option('--api <url>', 'the broker HTTP address', 'http://127.0.0.1:8080')
    .option('--data <dir>', 'broker data directory, where the console token is', './data')
    .option('--token-file <file>', 'console token file (default: DATA/console.token)')
    .option('--json', 'machine-readable output')
  const opts = (): ConsoleOptions => cmd.opts<ConsoleOptions>()
  cmd
    .command('devices')
    .description('every device: online/offline, last position and its age, battery, network')
    .action(async () => {
      const { now, devices } = await (await client(opts())).devices()
      io.out(opts().json ? JSON.stringify({ now, devices }) + '\n' : renderDevices(devices, now))
    })
  cmd
    .command('history <id>')
    .description("a device's location history, newest first")
    .option('--limit <n>', 'how many fixes', positiveInt, 20)
    .action(async (id: string, o: { limit: number }) => {
      const { now, history } = await (await client(opts())).history(id, o.limit)
      io.out(opts().json ? JSON.stringify({ now, device: id, history }) + '\n' : renderHistory(id, history, now))
    })
  cmd
    .command('watch')
    .description('a live device table, redrawn until Ctrl-C')
    .option('--every <duration>', 'redraw interval', duration, 1000)
    .action(async (o: { every: number }) => {
      if (opts().json) throw new UserError('watch has no --json form; poll `console devices --json` instead')
      const o2 = opts()
      const guide =
        `Console token: ${o2.tokenFile ?? join(o2.data, CONSOLE_TOKEN_FILE)}\n` +
        `Try, in another terminal: fakephone console history ID, fakephone console locate ID\n`
      await watchDevices(await client(o2), io, o.every, guide)
    })
  addRemoteCommands(cmd, io, () => client(opts()))
  addWebCommand(cmd, io, async () => ({ apiUrl: opts().api, consoleToken: await readToken(opts()) }))
  addFrameworkConsoleCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addAccountCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addDriveConsoleCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addSyncConsoleCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addBackupConsoleCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addRetirementCommands(
    cmd,
    io,
    () => client(opts()),
    () => opts().json === true,
  )
  addTransferConsoleCommands(cmd, io, () => client(opts()), opts)
  return cmd
}
