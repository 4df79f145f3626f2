/**
 * Logging: one pino root logger per process, a child per module. JSON lines
 * to stdout (journald keeps them); human-readable when stdout is a terminal.
 */
import { fstatSync } from 'node:fs'
import { createRequire } from 'node:module'
import { pino, type Bindings, type ChildLoggerOptions, type Logger, type DestinationStream } from 'pino'
import type PinoPretty from 'pino-pretty'

export type { Logger }

/** pino-pretty is loaded only for a terminal: every process that logs JSON (daemons, tests, CLI children) skips its load. */
const require = createRequire(import.meta.url)

export interface LogOptions {
  level?: string
  /** Human-readable lines on stderr; defaults to whether stdout is a terminal. */
  pretty?: boolean
  /** Where log lines go; defaults to stdout (pretty-printed on a TTY). */
  destination?: DestinationStream
  /** Without `destination`, where JSON lines go: 1, stdout (journald keeps them), unless a command's stdout is its output (2). */
  jsonFd?: 1 | 2
  /** The environment, for $JOURNAL_STREAM; this process's by default. */
  env?: Readonly<Record<string, string | undefined>>
}

/**
 * Whether `fd` is systemd's journal stream: $JOURNAL_STREAM names its device and inode (`DEV:INO`), and only the very
 * stream systemd connected counts (a child of the unit whose output was redirected inherits the variable, not the
 * stream).
 */
export function onJournal(fd: number, env: Readonly<Record<string, string | undefined>>): boolean {
  const [dev, ino] = (env.JOURNAL_STREAM ?? '').split(':')
  if (!dev || !ino) return false
  try {
    const stat = fstatSync(fd, { bigint: true })
    return String(stat.dev) === dev && String(stat.ino) === ino
  } catch {
    return false // the stream is closed: nothing to write to, journal or not
  }
}

/** pino's levels as syslog priorities (fatal: crit, error: err, warn: warning, info, debug and trace: debug). */
const PRIORITY: Readonly<Record<string, number>> = { 60: 2, 50: 3, 40: 4, 30: 6, 20: 7, 10: 7 }

/**
 * A JSON line for the journal, led by its priority as `<N>` (systemd's SyslogLevelPrefix=, on by default, reads it and
 * takes it off): `journalctl -p warning` then finds the warnings and errors, and `systemctl status` shows them
 * highlighted, where every line was info. The line itself, `journalctl -o cat` shows as it was written.
 */
export function journalLine(line: string): string {
  const priority = PRIORITY[/^\{"level":(\d+)/.exec(line)?.[1] ?? '']
  return priority === undefined ? line : `<${String(priority)}>${line}`
}

/** Paths whose values never reach a log line. */
const REDACT = ['secret', 'password', 'token', '*.secret', '*.password', '*.token', 'headers.authorization']

export function createLogger(opts: LogOptions = {}): Logger {
  const human = opts.pretty ?? Boolean(process.stdout.isTTY)
  const fd = opts.jsonFd ?? 1
  const journal = opts.destination === undefined && !human && onJournal(fd, opts.env ?? process.env)
  const options = { level: opts.level ?? 'info', redact: REDACT, ...(journal && { hooks: { streamWrite: journalLine } }) }
  const destination = opts.destination ?? (human ? prettyLines(2, true) : pino.destination(fd))
  return pino(options, destination)
}

/**
 * Who said a line, before what it says: `agent pi2: agent started`, `worker 2 fleet: …` (a fleet's worker process); a
 * root logger's line is its message alone.
 */
function saidBy(line: Record<string, unknown>, messageKey: string): string {
  const worker = typeof line.worker === 'number' ? `worker ${line.worker}` : undefined
  const who = [worker, line.module, line.device].filter((x) => typeof x === 'string').join(' ')
  const said = String(line[messageKey])
  return who === '' ? said : `${who}: ${said}`
}

/**
 * A terminal's log lines: one line per entry, `[time] LEVEL: module device: message {other fields}` (pino-pretty's
 * default gives each field a line of its own, so a start-up entry took seven). An error's stack still takes its lines.
 * On a terminal (`terminal`, coloured) each line first clears the line it starts on: a live one-line view (a fleet's
 * progress, redrawn in place without a newline) is wiped, not continued, and is drawn again at its next tick.
 */
export function prettyLines(destination: 2 | NodeJS.WritableStream, terminal: boolean): DestinationStream {
  return (require('pino-pretty') as typeof PinoPretty)({
    colorize: terminal,
    destination,
    singleLine: true,
    ignore: 'pid,hostname,worker,module,device',
    messageFormat: saidBy,
    // pino-pretty hands the time prettifier the time it formatted (a string).
    ...(terminal && { customPrettifiers: { time: (time) => `\r\x1b[K[${time as string}]` } }),
  })
}

/** What a lazy child holds until it is first used: its parent (itself maybe lazy), its bindings, and then the pino child made. */
interface LazyLogger {
  parent: Logger
  bindings: Bindings
  made: Logger | undefined
}

/** A lazy child answers this key with its state; a pino logger answers undefined. */
const STATE = Symbol('a lazy child logger')

function stateOf(log: Logger): LazyLogger | undefined {
  return (log as Logger & { [STATE]?: LazyLogger })[STATE]
}

function realOf(log: Logger): Logger {
  const lazy = stateOf(log)
  return lazy ? made(lazy) : log
}

function made(lazy: LazyLogger): Logger {
  return (lazy.made ??= realOf(lazy.parent).child(lazy.bindings))
}

/** Whether `log` writes lines of `level`, asked of the nearest logger up its line that was made (none is made for it). */
function writes(log: Logger, level: string): boolean {
  for (let lazy = stateOf(log); lazy; lazy = stateOf(log)) {
    if (lazy.made) return lazy.made.isLevelEnabled(level)
    log = lazy.parent
  }
  return log.isLevelEnabled(level)
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
const dropped = (): void => {}

/** `child` of a lazy child not made yet: another lazy child, so a phone's parts' loggers cost nothing until one logs. */
function lazyChildOf(this: Logger, bindings: Bindings, options?: ChildLoggerOptions): Logger {
  return options === undefined ? lazyChild(this, bindings) : realOf(this).child(bindings, options)
}

/** One handler for every lazy child (its state is the proxy's target): each costs a proxy and a small record, no closure. */
const LAZY: ProxyHandler<LazyLogger> = {
  get(lazy, key) {
    if (key === STATE) return lazy
    if (lazy.made === undefined) {
      if (key === 'child') return lazyChildOf
      // A line below the level (a fleet logs at error; each phone says "push connected" at info) makes no child.
      if (typeof key === 'string' && LEVELS.has(key) && !writes(lazy.parent, key)) return dropped
    }
    const real = made(lazy)
    const value: unknown = Reflect.get(real, key)
    // pino's methods read their state from `this`: they run on the child they belong to.
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(real) : value
  },
  set: (lazy, key, value) => Reflect.set(made(lazy), key, value),
  has: (lazy, key) => Reflect.has(made(lazy), key),
}

/**
 * `parent.child(bindings)`, made when first used: a line at a level the parent writes, a level asked or set, a child
 * with options. Its lines are the eager child's, byte for byte (a child takes its parent's level when made: levels are
 * set once, at the root, here). pino's `child` runs the redaction paths over every binding and concatenates the
 * bindings' JSON: ~1.3 KB of garbage and ~0.2 KB kept per child, six per fleet phone (the phone's and five of its
 * parts'), which mostly never log (a fleet logs at level error).
 */
export function lazyChild(parent: Logger, bindings: Bindings): Logger {
  // The target is the proxy's state, not a Logger: every key a Logger has is answered by the trap, from the pino child.
  return new Proxy<LazyLogger>({ parent, bindings, made: undefined }, LAZY) as unknown as Logger
}
