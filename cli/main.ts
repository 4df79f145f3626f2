#!/usr/bin/env node
/**
 * The `fakephone` command. `main(argv, io)` runs one subcommand and resolves
 * with its exit code; the process wiring (signals, stdout) is at the bottom,
 * so tests drive `main` in-process.
 */
import { Command, CommanderError, Help } from 'commander'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline/promises'
import { SystemClock } from '../common/clock.js'
import { FakephoneError } from '../common/errors.js'
import { storageFailure } from '../common/storage-errors.js'
import { UserError, type Io } from './io.js'
import { duration, formatDuration } from './duration-option.js'
import { forTerminal, linesForTerminal } from '../common/terminal-text.js'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { USAGE, errorKind, errorLine, jsonRequested } from './error-output.js'

/** A command group for the command line `argv` (what follows the command's name; a group may load less for it). */
type MakeCommand = (io: Io, argv: readonly string[]) => Command | Promise<Command>

/**
 * Each top-level command's module, in the order the help lists them, loaded when it is needed: a command line that
 * names one loads that module only (the broker's, the agent's, the console's code each take a good part of a second of
 * CPU to load, and the tests run the CLI as a child process dozens of times).
 */
const COMMANDS = new Map<string, () => Promise<MakeCommand>>([
  ['broker', async () => (await import('./broker-command.js')).brokerCommand],
  ['device', async () => (await import('./device-command.js')).deviceCommand],
  ['agent', async () => (await import('./agent-command.js')).agentCommand],
  ['phone', async () => (await import('./phone-command.js')).phoneCommand],
  ['console', async () => (await import('./console-command.js')).consoleCommand],
  ['demo', async () => (await import('./demo-command.js')).demoCommand],
  ['config', async () => (await import('./config-command.js')).configCommand],
  ['install', async () => (await import('./install-command.js')).installCommand],
  ['bag', async () => (await import('./transfer/transfer-commands.js')).bagCommand],
  ['fleet', async () => (await import('./fleet-command.js')).fleetCommand],
])

/**
 * The command tree for `argv`: only the command it names when it names one (that command's help, errors and action
 * are the same either way); every command when a later word names one (`help console`, `--help console`); otherwise
 * (the top-level help, `--version`, an unknown command and its "did you mean") each command as its summary only, its
 * name and description (command-summaries.ts), which is all the top-level help and commander's errors show of it, and
 * no command's module loaded. A summary is never run: commander runs a command only when the command line names it.
 */
export async function program(io: Io, argv: readonly string[]): Promise<Command> {
  const root = new Command('fakephone')
    .description('Fake phones signed in to a simulated vendor cloud: broker, device agents and console')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    // `-V`/`--version` is fakephone's own option, before the command only: commander otherwise looks for it in every
    // word, an option's value too, so a console token that happened to begin `-V` (1 in 4096 of them) printed the
    // version, exit 0, in place of the command (`fleet run --json` gave "0.1.0" for its report).
    .enablePositionalOptions()
  const named = COMMANDS.get(argv[0] ?? '')
  if (named) root.addCommand(await (await named())(io, argv.slice(1)))
  else if (argv.some((word) => COMMANDS.has(word))) {
    const makers = await Promise.all([...COMMANDS.values()].map((load) => load()))
    for (const cmd of await Promise.all(makers.map(async (make) => make(io, [])))) root.addCommand(cmd)
  } else summaries(root)
  const json = jsonRequested(argv)
  const output = {
    writeOut: (s: string) => io.out(s),
    writeErr: (s: string) => io.err(s),
    outputError: (s: string, write: (s: string) => void) =>
      write(
        json
          ? errorLine(
              commanderError(s)
                .replace(/^error: /, '')
                .trimEnd(),
              USAGE,
              true,
            )
          : commanderError(s),
      ),
  }
  const configure = (cmd: Command): void => {
    cmd.exitOverride(cmd.parent === root && DAEMONS.has(cmd.name()) ? daemonUsage : undefined).configureOutput(output)
    // Help shows a duration's default as the flag takes it ("30s"), not as milliseconds.
    for (const option of cmd.options) {
      if (option.parseArg === duration && typeof option.defaultValue === 'number' && option.defaultValueDescription === undefined)
        option.defaultValueDescription = formatDuration(option.defaultValue)
    }
    cmd.commands.forEach(configure)
  }
  configure(root)
  return root
}

/** Each command as the top-level help lists it, from its summary: `NAME [options]` when it takes options, and its description. */
function summaries(root: Command): void {
  const takesOptions = new Set<Command>()
  for (const [name, summary] of Object.entries(COMMAND_SUMMARIES)) {
    const cmd = new Command(name).description(summary.description)
    if (summary.options) takesOptions.add(cmd)
    root.addCommand(cmd)
  }
  const help = new Help()
  root.configureHelp({ subcommandTerm: (cmd) => (takesOptions.has(cmd) ? `${cmd.name()} [options]` : help.subcommandTerm(cmd)) })
}

/**
 * One of commander's errors (an unknown option or command, a missing or invalid argument) as the terminal shows it:
 * it quotes what was typed, which may be a name from others pasted in (`console locate $'\e[31mx'`), so it is escaped as
 * every such name is (common/terminal-text). The one line commander adds of its own, a "did you mean" of the names it
 * knows, stays a line; a line break that was typed is shown `\x0A`.
 */
function commanderError(text: string): string {
  // Every commander error text ends in a line break, which is all the pattern needs to match: a match, never null.
  const [, said, suggestion] = /^([\s\S]*?)(\n\(Did you mean [^\n]*\?\))?\n$/.exec(text) as unknown as [string, string, string?]
  return `${forTerminal(said)}${suggestion ?? ''}\n`
}

/** Node's codes for a path this user may not use: the person's to fix (another user, sudo), not a bug. */
const NOT_PERMITTED: ReadonlySet<unknown> = new Set(['EACCES', 'EPERM'])

/**
 * Node's codes for a path that cannot be used as given: missing, a file where a folder must be or the reverse, a folder
 * that takes no new entry (under /proc: ENOENT), a link loop, a name too long. From a file-system call (the error
 * carries the path, which Node's words name) it is the person's to fix, not a bug.
 */
const PATH_UNUSABLE: ReadonlySet<unknown> = new Set(['ENOENT', 'ENOTDIR', 'EEXIST', 'EISDIR', 'ELOOP', 'ENAMETOOLONG'])

/**
 * A daemon whose config cannot be used exits 78, EX_CONFIG (sysexits.h; systemctl status says `status=78/CONFIG`): the
 * units' RestartPreventExitStatus=78 then leaves it failed at once, instead of starting it again every 5 s, to the
 * start limit, with the same error ten times in the journal. `config check` answers 1, as for any invalid input.
 */
const EX_CONFIG = 78
/**
 * What a restart cannot mend either, so a daemon exits EX_CONFIG for it too: a config it cannot use, a database a newer
 * fakephone wrote, one whose version an older build wrote over, one that is damaged or not a database at all
 * (broker/db.ts), a phone's file a newer one wrote (common/json-file.ts).
 */
const NOT_RESTARTABLE: ReadonlySet<string> = new Set(['ECONFIG', 'DB_TOO_NEW', 'DB_VERSION_LOST', 'DB_UNUSABLE', 'DATA_TOO_NEW'])
const DAEMONS = new Set(['broker', 'agent'])

/**
 * A daemon's command line it cannot use (an unknown or misspelt flag, a bad value, a missing argument) exits 78 as a
 * config it cannot use does: under systemd the command line is the unit's ExecStart, a config like any other, and
 * starting it again every 5 s would not fix it. Help (exit 0) and the daemons' own subcommands (`agent seed-data`, a
 * command a person runs) keep commander's exit code, 1 for a usage error.
 */
function daemonUsage(err: CommanderError): never {
  if (err.exitCode !== 0) err.exitCode = EX_CONFIG
  throw err
}

/**
 * Commands that stop cleanly by themselves on Ctrl-C: the daemons and live views, which run until then (exit 0), and
 * `console migrate` (M2), which stops between blobs and saves its job as cancelled, to resume (exit 130, saying so).
 */
const STOPS_ITSELF = new Set(['broker', 'agent', 'demo', 'console watch', 'console web', 'fleet run', 'console migrate'])

/**
 * Resolves with exit code 130 once `io.signal` is aborted (Ctrl-C), unless the
 * running command waits on the signal to stop cleanly by itself: a one-shot
 * command (seed-data, a remote command waiting for its device) stops at once.
 */
function interruption(io: Io, running: () => string, json: boolean): { stopped: Promise<number>; dispose(): void } {
  let resolve!: (code: number) => void
  const stopped = new Promise<number>((r) => (resolve = r))
  const onAbort = (): void => {
    if (STOPS_ITSELF.has(running())) return
    const said = `interrupted: fakephone ${running()} stopped before it finished`
    io.err(json ? errorLine(said, { code: 'INTERRUPTED' }, true) : `${said}\n`)
    resolve(130)
  }
  io.signal.addEventListener('abort', onAbort, { once: true })
  return { stopped, dispose: () => io.signal.removeEventListener('abort', onAbort) }
}

export async function main(argv: string[], io: Io): Promise<number> {
  const root = await program(io, argv)
  // Bare `fakephone` is a question, not a mistake: the help, exit 0.
  if (argv.length === 0) {
    root.outputHelp()
    return 0
  }
  let running = argv.join(' ')
  root.hook('preAction', (_root, action) => {
    const names: string[] = []
    for (let cmd: Command | null = action; cmd && cmd !== root; cmd = cmd.parent) names.unshift(cmd.name())
    running = names.join(' ')
  })
  const json = jsonRequested(argv)
  const interrupted = interruption(io, () => running, json)
  const say = (text: string, err: unknown): void => io.err(errorLine(text, errorKind(err), json))
  try {
    return await Promise.race([root.parseAsync(argv, { from: 'user' }).then(() => 0), interrupted.stopped]).finally(interrupted.dispose)
  } catch (err) {
    if (err instanceof CommanderError) {
      // A group named without its subcommand (`fakephone console`) has had its help printed: that is the whole answer.
      if (err.code === 'commander.help') return err.exitCode
      if (err.code.startsWith('commander.') && err.exitCode !== 0 && !err.message.startsWith('error:'))
        io.err(errorLine(linesForTerminal(err.message), USAGE, json))
      return err.exitCode
    }
    if (err instanceof FakephoneError) {
      // A message may carry a name someone else chose (a legacy account name): its control characters are shown, not obeyed.
      say(linesForTerminal(err.message), err)
      if (NOT_RESTARTABLE.has(err.code) && DAEMONS.has(running)) return EX_CONFIG
      return err instanceof UserError ? err.exitCode : 1
    }
    // A full or failing disk is the user's to fix, not a bug: the reason and Node's own words (which name the file).
    const storage = storageFailure(err)
    if (storage) {
      say(`${storage}: ${forTerminal((err as Error).message)}`, err)
      return 1
    }
    // A path given that cannot be used (`--data /dev/null/x`, `--keys /proc/x`): Node's words name it and say why. Node's
    // words are one line that quotes the path, which may be a name from others (a file in a bag): shown escaped.
    const fsError = err as { code?: unknown; path?: unknown } | null
    if (PATH_UNUSABLE.has(fsError?.code) && typeof fsError?.path === 'string') {
      say(forTerminal((err as Error).message), err)
      return 1
    }
    // A path this user may not use (`fakephone install` without sudo) is the user's to fix too: Node's words name it.
    if (NOT_PERMITTED.has((err as { code?: unknown } | null)?.code)) {
      say(`${forTerminal((err as Error).message)}: run it as a user who may (e.g. with sudo)`, err)
      return 1
    }
    /* c8 ignore next 2 -- anything else is a bug: runAsProcess prints its stack and exits 1 */
    throw err
  }
}

/* c8 ignore start -- process wiring: exercised by the end-to-end test that spawns the built CLI, whose coverage is not collected */
function runAsProcess(): void {
  const controller = new AbortController()
  let first: number | undefined
  // SIGHUP (a terminal that hung up, or `kill -HUP` meant as "reload") stops as SIGTERM does, cleanly, but exits 129
  // (128 + 1, as a process it killed): under systemd, Restart=on-failure then starts the daemon again, reading its
  // config anew, where a daemon killed by SIGHUP stopped uncleanly and stayed down (systemd counts SIGHUP as clean).
  let hungUp = false
  const onSignal = (sig: NodeJS.Signals): void => {
    hungUp ||= sig === 'SIGHUP'
    // One Ctrl-C under `npm start` arrives twice at once (the terminal signals the whole group and npm
    // forwards its own copy): only a second press, later, forces the exit.
    if (first !== undefined) {
      if (performance.now() - first > 500) process.exit(130)
      return
    }
    first = performance.now()
    process.stderr.write(`\n${sig}: stopping (again to force)\n`)
    controller.abort()
    setTimeout(() => process.exit(1), 10_000).unref()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    signal: controller.signal,
    clock: new SystemClock(),
    tty: process.stdout.isTTY,
    errTty: process.stderr.isTTY,
    prompt: process.stdin.isTTY
      ? async (question) => {
          const rl = createInterface({ input: process.stdin, output: process.stderr })
          const answer = await rl.question(question)
          rl.close()
          return answer
        }
      : undefined,
    env: process.env,
  }
  // Over a pipe, process.exit drops what stdout has not written yet (a `--json` answer past 64 KiB came out cut): exit
  // once both streams have written what they were given.
  const exit = (code: number): void => {
    let open = 2
    const drained = (): void => void (--open === 0 && process.exit(code))
    process.stdout.write('', drained)
    process.stderr.write('', drained)
  }
  main(process.argv.slice(2), io).then(
    (code) => exit(hungUp && code === 0 ? 129 : code),
    (err: unknown) => {
      process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`)
      process.exit(1)
    },
  )
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) runAsProcess()
/* c8 ignore stop */
