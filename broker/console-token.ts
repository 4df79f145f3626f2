/**
 * The console token: made on the broker's first start and kept in
 * `<data>/console.token` (mode 0600). Whoever can read that file is the
 * console; `fakephone console` reads it from there by default.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataDirSync } from '../common/make-dirs.js'

export const CONSOLE_TOKEN_FILE = 'console.token'

export function ensureConsoleToken(dataDir: string): string {
  const file = join(dataDir, CONSOLE_TOKEN_FILE)
  if (!existsSync(file)) {
    makeDataDirSync(dataDir)
    writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' })
  }
  return readFileSync(file, 'utf8').trim()
}
