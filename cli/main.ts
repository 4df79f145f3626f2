#!/usr/bin/env node
/**
 * The `fakephone` command. `main(argv, io)` runs one subcommand and resolves
 * with its exit code; the process wiring (signals, stdout) is at the bottom,
 * so tests drive `main` in-process.
 */
import { Command, CommanderError } from 'commander'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline/promises'
import { SystemClock } from '../common/clock.js'
import { agentCommand, phoneCommand } from './agent-command.js'
import { brokerCommand, deviceCommand } from './broker-command.js'
import { configCommand } from './config-command.js'
import { consoleCommand } from './console-command.js'
import { bagCommand } from './transfer/transfer-commands.js'
import { demoCommand } from './demo-command.js'
import { fleetCommand } from './fleet-command.js'
import { installCommand } from './install-command.js'
import { FakephoneError } from '../common/errors.js'
import type { Io } from './io.js'
import { duration, formatDuration } from './options.js'

export function program(io: Io): Command {
  const root = new Command('fakephone')
    .description('Fake phones signed in to a simulated vendor cloud: broker, device agents and console')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
  const commands = [brokerCommand, deviceCommand, agentCommand, phoneCommand, consoleCommand, demoCommand, configCommand, installCommand]
  for (const make of [...commands, bagCommand, fleetCommand]) root.addCommand(make(io))
  const output = { writeOut: (s: string) => io.out(s), writeErr: (s: string) => io.err(s) }
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(output)
    // Help shows a duration's default as the flag takes it ("30s"), not as milliseconds.
    for (const option of cmd.options) {
      if (option.parseArg === duration && typeof option.defaultValue === 'number')
        option.defaultValueDescription = formatDuration(option.defaultValue)
    }
    cmd.commands.forEach(configure)
  }
  configure(root)
  return root
}

/** Commands that run until Ctrl-C and then stop cleanly by themselves (daemons, live views): they exit 0. */
const STOPS_ITSELF = new Set(['broker', 'agent', 'demo', 'console watch', 'console web', 'fleet run'])

/**
 * Resolves with exit code 130 once `io.signal` is aborted (Ctrl-C), unless the
 * running command waits on the signal to stop cleanly by itself: a one-shot
 * command (seed-data, a remote command waiting for its device) stops at once.
 */
function interruption(io: Io, running: () => string): { stopped: Promise<number>; dispose(): void } {
  let resolve!: (code: number) => void
  const stopped = new Promise<number>((r) => (resolve = r))
  const onAbort = (): void => {
    if (STOPS_ITSELF.has(running())) return
    io.err(`interrupted: fakephone ${running()} stopped before it finished\n`)
    resolve(130)
  }
  io.signal.addEventListener('abort', onAbort, { once: true })
  return { stopped, dispose: () => io.signal.removeEventListener('abort', onAbort) }
}

export async function main(argv: string[], io: Io): Promise<number> {
  const root = program(io)
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
  const interrupted = interruption(io, () => running)
  try {
    return await Promise.race([root.parseAsync(argv, { from: 'user' }).then(() => 0), interrupted.stopped]).finally(interrupted.dispose)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code.startsWith('commander.') && err.exitCode !== 0 && !err.message.startsWith('error:')) io.err(`error: ${err.message}\n`)
      return err.exitCode
    }
    if (err instanceof FakephoneError) {
      io.err(`error: ${err.message}\n`)
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
  const onSignal = (sig: NodeJS.Signals): void => {
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
  main(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`)
      process.exit(1)
    },
  )
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) runAsProcess()
/* c8 ignore stop */
