/**
 * A long-running command's root logger (pino), where its Io says. A module of its own, apart from io.ts, which nearly
 * every command loads: a command that does not log (`console migrate`, M2) does not load pino (~40 ms of CPU).
 */
import { createLogger, type Logger } from '../common/log.js'
import type { Io } from './io.js'

/** Human-readable on stderr when stdout is a terminal (as the fleet's, and `agent`'s start-up lines), JSON lines on stdout otherwise. */
export function logger(io: Io, level: string | undefined): Logger {
  return createLogger({ level, pretty: io.tty === true, destination: io.logTo })
}
