/**
 * The console token: made on the broker's first start and kept in
 * `<data>/console.token` (mode 0600). Whoever can read that file is the
 * console; `fakephone console` reads it from there by default.
 *
 * A new token appears whole: written aside, fsynced, then linked into place (which fails when another starter made
 * one meanwhile; theirs is used) and the folder fsynced, so a crash never leaves an empty token file behind. A token
 * file that holds no usable token -- empty, blank, or shorter than CONSOLE_TOKEN_MIN characters -- refuses the start
 * with one line naming it and saying to delete it (a broker whose token no console can give is of no use, and a file
 * someone wrote is theirs to remove, not the broker's to replace); one that is not a regular file (a link to
 * /dev/zero) or is far too large is refused the same way, never read for ever (common/small-file).
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { FakephoneError } from '../common/errors.js'
import { makeDataDirSync } from '../common/make-dirs.js'
import { createWholeSync } from '../common/new-file.js'
import { readSmallFileSync } from '../common/small-file.js'

export const CONSOLE_TOKEN_FILE = 'console.token'

/** The fewest characters a console token has (one made here has 43: 256 random bits, base64url). */
const CONSOLE_TOKEN_MIN = 16

export class ConsoleTokenError extends FakephoneError {
  constructor(message: string) {
    super('CONSOLE_TOKEN', message)
  }
}

export function ensureConsoleToken(dataDir: string): string {
  const file = join(dataDir, CONSOLE_TOKEN_FILE)
  if (!existsSync(file)) {
    makeDataDirSync(dataDir)
    // Whole and durable; another starter's token there first is the one both use.
    createWholeSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, durable: true })
  }
  return readConsoleToken(file)
}

/** The token in a console.token file that exists; refused as the broker's start refuses it (`config check` asks too). */
export function readConsoleToken(file: string): string {
  const what = `the console token ${file}`
  let token: string
  try {
    token = readSmallFileSync(file).trim()
  } catch (err) {
    throw new ConsoleTokenError(`cannot read ${what}: ${(err as Error).message}; move it away and the broker makes a new one`)
  }
  if (token.length < CONSOLE_TOKEN_MIN) {
    const holds = token === '' ? 'is empty' : `holds ${token.length} characters, fewer than the ${CONSOLE_TOKEN_MIN} a token needs`
    throw new ConsoleTokenError(`${what} ${holds}: delete it and the broker makes a new one on its next start`)
  }
  return token
}
