/**
 * `fakephone console ...`: the owner's view of the cloud, through the console API. Each group of subcommands is in a
 * module of its own, loaded when a command line names one of its subcommands (as cli/main.ts loads the command groups):
 * `console migrate` loads the migration's code, not the web console's, the bags' or the remote commands' (~25 ms of
 * CPU a command, measured: most of a command's start-up is zod, which the groups share); a command line that names none
 * (help, a typo) loads none, listing them from console-summaries.ts; `console help SUBCOMMAND` loads them all.
 */
import { Command, Help } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { CONSOLE_SUMMARIES } from './console-summaries.js'
import { join } from 'node:path'
import { ConsoleClient } from './console-client.js'
import { readConsoleTokenFile } from './console-token-file.js'
import { CONSOLE_TOKEN_FILE } from '../broker/console-token.js'
import { untilAborted, UserError, type Io } from './io.js'
import { duration, httpUrl, positiveInt } from './options.js'
import { renderDevices, renderHistory } from './render.js'
import { forTerminal, linesForTerminal } from '../common/terminal-text.js'
import { utcText } from '../common/clock.js'

export interface ConsoleOptions {
  api: string
  data: string
  tokenFile?: string
  json?: boolean
}

/** Said when the broker cannot be reached: the console's default address is not where every broker listens. */
const API_HINT = '; is the broker running? If it listens elsewhere, give its HTTP address with --api URL'

/** The file the console token is read from: --token-file, else the broker's data directory's console.token. */
const tokenFileOf = (o: ConsoleOptions): string => o.tokenFile ?? join(o.data, CONSOLE_TOKEN_FILE)

/**
 * Said when the broker refuses the console token (its API or, for `console web`, its live feed): a refused token is most
 * often another broker's (the console's default --data is ./data), so it says where the token was read.
 */
function tokenRefusedHint(o: ConsoleOptions): string {
  return (
    `${forTerminal(o.api)} did not take the token in ${forTerminal(tokenFileOf(o))}; give that ` +
    "broker's data directory with --data DIR (it holds console.token), or the token's file with --token-file FILE"
  )
}

/**
 * What the console CLI adds to a refusal of the broker, by its code: where its operator looks next. The broker's own
 * words name no command (its API has other readers: scripts, the web console's page).
 */
const REFUSAL_HINTS: Record<string, string> = {
  // M1: the account's own routes answer 410 once purged; the purge's record stays in the service's status.
  ACCOUNT_PURGED: '; `console service status` says what its purge deleted and what the cloud keeps',
}

async function client(o: ConsoleOptions): Promise<ConsoleClient> {
  return new ConsoleClient(o.api, await readToken(o), undefined, {
    from: '--api',
    unreachable: API_HINT,
    unauthorized: `: ${tokenRefusedHint(o)}`,
    refusals: REFUSAL_HINTS,
  })
}

/** The console options that find the console token, as a command line gives them (`--token-file F`, else `--data D`). */
export function tokenFlags(o: ConsoleOptions): string {
  return o.tokenFile !== undefined ? `--token-file ${o.tokenFile}` : `--data ${o.data}`
}

/** The console token from --token-file or the broker's data directory. */
// eslint-disable-next-line @typescript-eslint/require-await -- async so that a refusal reaches callers as a rejection, as before
async function readToken(o: ConsoleOptions): Promise<string> {
  // Most often the broker runs with another --data (`broker --data cloud`) than the console's default ./data: say how to give it.
  return readConsoleTokenFile(tokenFileOf(o), {
    unreadable:
      "; the broker writes it in its data directory on first start: give that broker's data directory with --data DIR, " +
      "or the token's file with --token-file FILE",
  })
}

/**
 * What a live view prints when stdout is not a terminal (a log file, `npm start > demo.log`, a service's journal):
 * the table and the guide under it when first drawn, then each again only when it changed (a table when what the
 * cloud reports changed, as a new fix, not its ages alone; the guide when, say, the demo's sign-in link was used).
 * Reprinting the same screen every second filled a log with copies of an unchanged table and guide.
 */
export class PlainFrames {
  private state: string | undefined
  private guide: string | undefined

  /**
   * The text to print for this draw, or undefined when all of it would repeat what was printed. `state` is what the
   * table shows, without the time it is read at (its ages grow every second; a new fix is a change).
   */
  frame(header: string, view: string, guide: string, state = view): string | undefined {
    const newState = state !== this.state
    const newGuide = guide !== this.guide
    if (!newState && !newGuide) return undefined
    this.state = state
    this.guide = guide
    return (newState ? header + view : '') + (newGuide ? '\n' + guide : '')
  }
}

/**
 * Redraws the device table every `everyMs` until aborted, headed by the cloud's
 * time, with `guide` (where things are, what to try) under it. On a TTY it repaints in place: cursor home,
 * each line cleared to its end, the rest of the screen cleared; the screen is
 * wiped once, at the start, so redraws never flood the scrollback. Elsewhere it prints as PlainFrames says.
 */
export async function watchDevices(api: ConsoleClient, io: Io, everyMs: number, guide: string | (() => string) = ''): Promise<void> {
  let first = true
  const plain = new PlainFrames()
  const draw = async (): Promise<void> => {
    // The cloud's time heads the table, as its ages are counted from it (simulated time runs ahead of this machine's).
    const { now, view, state } = await api.devices().then(
      ({ now, devices }) => ({ now, view: renderDevices(devices, now), state: JSON.stringify(devices) }),
      // The broker's refusal may quote a name from others: shown as the other commands' errors are (cli/main).
      (err: Error) => ({ now: io.clock.now(), view: `${linesForTerminal(err.message)}\n`, state: err.message }),
    )
    const under = typeof guide === 'string' ? guide : guide()
    const header = `fakephone console -- ${utcText(now)} (Ctrl-C to stop)\n\n`
    if (!io.tty) {
      const text = plain.frame(header, view, under, state)
      if (text !== undefined) io.out(text)
      return
    }
    io.out((first ? '\x1b[2J' : '') + '\x1b[H' + (header + view + '\n' + under).replaceAll('\n', '\x1b[K\n') + '\x1b[J')
    first = false
  }
  await draw()
  const timer = setInterval(() => void draw(), everyMs)
  await untilAborted(io.signal)
  clearInterval(timer)
}

/** What a group of subcommands is given: the console command to add them to, and its client and options. */
interface Wiring {
  cmd: Command
  io: Io
  client: () => Promise<ConsoleClient>
  opts: () => ConsoleOptions
  json: () => boolean
}

/** A group of console subcommands: the names it adds (the first word of each), and its module, loaded on use. */
interface Group {
  names: readonly string[]
  load(): Promise<(w: Wiring) => void>
}

/** Most groups' way in: `add(cmd, io, client, json)`, as the group's module exports it. */
type AddListing = (cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean) => void
const listing =
  (load: () => Promise<AddListing>): Group['load'] =>
  async () => {
    const add = await load()
    return (w) => add(w.cmd, w.io, w.client, w.json)
  }

/** The groups in the order the help lists them (after devices, history and watch, which are here). */
export const CONSOLE_GROUPS: readonly Group[] = [
  {
    names: ['locate', 'ring', 'lock', 'lost-mode', 'wipe', 'commands', 'cancel'],
    load: async () => {
      const { addRemoteCommands } = await import('./remote-commands.js')
      return (w) => addRemoteCommands(w.cmd, w.io, w.client)
    },
  },
  {
    names: ['web', 'web-link'],
    load: async () => {
      const { addWebCommand, addWebLinkCommand } = await import('./web/web-command.js')
      return (w) => {
        addWebCommand(
          w.cmd,
          w.io,
          async () => ({ apiUrl: w.opts().api, consoleToken: await readToken(w.opts()) }),
          () => tokenFlags(w.opts()),
          () => tokenRefusedHint(w.opts()),
        )
        addWebLinkCommand(w.cmd, w.io, () => readToken(w.opts()), w.json)
      }
    },
  },
  {
    names: ['device', 'notify', 'notifications', 'logs'],
    load: listing(async () => (await import('./framework-commands.js')).addFrameworkConsoleCommands),
  },
  {
    names: ['accounts', 'account', 'membership', 'clock'],
    load: listing(async () => (await import('./account-commands.js')).addAccountCommands),
  },
  {
    names: ['drive'],
    load: listing(async () => (await import('./drive-commands.js')).addDriveConsoleCommands),
  },
  {
    names: ['items', 'delete', 'bin', 'restore', 'delete-forever'],
    load: listing(async () => (await import('./sync-commands.js')).addSyncConsoleCommands),
  },
  {
    names: ['backups', 'backup'],
    load: listing(async () => (await import('./backup-commands.js')).addBackupConsoleCommands),
  },
  {
    names: ['service'],
    load: listing(async () => (await import('./retirement-commands.js')).addRetirementCommands),
  },
  {
    names: ['migrate'],
    load: async () => {
      const { addMigrateCommand } = await import('./transfer/migrate-command.js')
      return (w) => addMigrateCommand(w.cmd, w.io, w.client, w.opts)
    },
  },
  {
    names: ['export', 'import'],
    load: async () => {
      const { addTransferConsoleCommands } = await import('./transfer/transfer-commands.js')
      return (w) => addTransferConsoleCommands(w.cmd, w.io, w.client, w.opts)
    },
  },
]

/**
 * The subcommand `argv` (what follows `console`) names: its first word that is not an option or an option's value
 * (the console's own options come before it: `console --api URL migrate ...`); undefined when there is none.
 */
export function subcommandOf(cmd: Command, argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') return argv[i + 1]
    if (!arg.startsWith('-')) return arg
    const option = cmd.options.find((o) => o.long === arg || o.short === arg)
    if (option !== undefined && (option.required || option.optional)) i++
  }
  return undefined
}

/**
 * `fakephone console` for the command line `argv` (what follows `console`): its own subcommands, and the group that
 * adds the subcommand argv names; every group when it names none of theirs but not one of the console's own either
 * (the help, `help`, an unknown subcommand and its "did you mean": the same as with every group loaded).
 */
export async function consoleCommand(io: Io, argv: readonly string[] = []): Promise<Command> {
  const cmd = new Command('console')
    .description(COMMAND_SUMMARIES.console.description)
    .option('--api <url>', "the broker's HTTP address, http://HOST:PORT", httpUrl, 'http://127.0.0.1:8080')
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
        `Console token: ${tokenFileOf(o2)}\n` + `Try, in another terminal: fakephone console history ID, fakephone console locate ID\n`
      await watchDevices(await client(o2), io, o.every, guide)
    })
  const named = subcommandOf(cmd, argv)
  const own = cmd.commands.some((c) => c.name() === named)
  const wanted = own ? [] : CONSOLE_GROUPS.filter((g) => g.names.includes(named as string))
  // The help, a typo and its "did you mean" need only the subcommands' names and summaries; `help SUBCOMMAND` its module.
  if (!own && wanted.length === 0 && named !== 'help') return summaries(cmd)
  const wiring: Wiring = { cmd, io, client: () => client(opts()), opts, json: () => opts().json === true }
  const groups = await Promise.all((own || wanted.length > 0 ? wanted : CONSOLE_GROUPS).map((g) => g.load()))
  for (const add of groups) add(wiring)
  return cmd
}

/**
 * The groups' subcommands as the console's help lists them, from console-summaries.ts, with no group's module loaded. A
 * summary is never run: commander runs a subcommand only when the command line names it, and then its group is loaded.
 */
function summaries(cmd: Command): Command {
  const terms = new Map<Command, string>()
  for (const [term, description] of CONSOLE_SUMMARIES) {
    const sub = new Command(term.split(' ')[0]).description(description)
    terms.set(sub, term)
    cmd.addCommand(sub)
  }
  const help = new Help()
  return cmd.configureHelp({ subcommandTerm: (sub) => terms.get(sub) ?? help.subcommandTerm(sub) })
}
