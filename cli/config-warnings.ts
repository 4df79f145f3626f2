/**
 * F1: what a valid config most likely did not mean (common/config's notes: `"interval": 30` is 30 ms), as one `warning:`
 * line each on stderr: `config check` and the daemons at their start say it in these words, and a daemon logs it too.
 */
import type { Logger } from '../common/log.js'
import { forTerminal } from '../common/terminal-text.js'
import type { Io } from './io.js'

export function sayConfigWarnings(io: Io, notes: string[], log?: Logger): void {
  for (const note of notes) {
    io.err(`warning: ${forTerminal(note)}\n`)
    log?.warn(note)
  }
}
