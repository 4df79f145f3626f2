/**
 * Logging: one pino root logger per process, a child per module. JSON lines
 * to stdout (journald keeps them); human-readable when stdout is a terminal.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

export interface LogOptions {
  level?: string
  /** Where log lines go; defaults to stdout (pretty-printed on a TTY). */
  destination?: DestinationStream
}

/** Paths whose values never reach a log line. */
export const REDACT = ['secret', 'password', 'token', '*.secret', '*.password', '*.token', 'headers.authorization']

export function createLogger(opts: LogOptions = {}): Logger {
  const options = { level: opts.level ?? process.env['FAKEPHONE_LOG_LEVEL'] ?? 'info', redact: REDACT }
  const destination = opts.destination ?? (process.stdout.isTTY ? pretty({ colorize: true, destination: 2 }) : pino.destination(1))
  return pino(options, destination)
}
