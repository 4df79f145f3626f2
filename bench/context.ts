/** What the runner hands every scenario. */
import type { Logger } from '../common/log.js'
import type { BenchArgs } from './args.js'

export interface ScenarioContext {
  args: BenchArgs
  /** For the broker and agents: warnings and errors to stderr. */
  log: Logger
  /** Tripped by Ctrl-C / SIGTERM. */
  signal: AbortSignal
  /** A progress line to stderr. */
  progress: (line: string) => void
}
