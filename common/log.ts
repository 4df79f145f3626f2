/**
 * Logging: one pino root logger per process, a child per module. JSON lines
 * to stdout (journald keeps them); human-readable when stdout is a terminal.
 */
import { createRequire } from 'node:module'
import { pino, type Logger, type DestinationStream } from 'pino'
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
}

/** Paths whose values never reach a log line. */
export const REDACT = ['secret', 'password', 'token', '*.secret', '*.password', '*.token', 'headers.authorization']

export function createLogger(opts: LogOptions = {}): Logger {
  const options = { level: opts.level ?? 'info', redact: REDACT }
  const human = opts.pretty ?? Boolean(process.stdout.isTTY)
  const pretty = (): DestinationStream => (require('pino-pretty') as typeof PinoPretty)({ colorize: true, destination: 2 })
  const destination = opts.destination ?? (human ? pretty() : pino.destination(1))
  return pino(options, destination)
}
