/** What a CLI command may touch of its process, injected so tests can run commands in-process. */
import type { DestinationStream } from 'pino'
import type { Clock } from '../common/clock.js'
import { FakephoneError } from '../common/errors.js'
import type { ConnectionRoom } from '../common/open-files.js'

export interface Io {
  out(text: string): void
  err(text: string): void
  /** Aborted on SIGINT/SIGTERM (or by a test) to stop a long-running command. */
  signal: AbortSignal
  clock: Clock
  /** Where log lines go; stdout (pretty on a TTY) when absent. */
  logTo?: DestinationStream
  /** True when stdout is a terminal that a live view may redraw. */
  tty?: boolean
  /** True when stderr is a terminal: progress lines go there (M3). */
  errTty?: boolean
  /** Asks the person at the terminal; absent when nobody can answer (no TTY). */
  prompt?: (question: string) => Promise<string>
  /** The environment: config overrides, and systemd's NOTIFY_SOCKET, WATCHDOG_USEC and CREDENTIALS_DIRECTORY. */
  env: Readonly<Record<string, string | undefined>>
  /** This process's open-file room (common/open-files connectionRoom when absent); a test stands in a small one. */
  connectionRoom?: () => ConnectionRoom | undefined
}

/**
 * An error meant for the person at the terminal: printed without a stack, exit code 1 unless it names another; `kind`,
 * the `code` its `--json` form carries (cli/error-output.ts), ERROR unless it names one (a remote command's final state).
 */
export class UserError extends FakephoneError {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly kind?: string,
  ) {
    super('EUSER', message)
  }
}

/** `fleet report merge`'s exit code when nothing was lost but shards are missing: distinct from 1, "lost something". */
export const EXIT_INCOMPLETE = 3

/** Resolves when `signal` is aborted. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}
