/**
 * A new file for secrets that may be their only copy: `fakephone device add --secret-out` (one device's secret) and
 * `fakephone fleet provision --out` (a fleet's credentials). The file is made (mode 0600) before the devices are
 * registered, so a file that exists -- it is never replaced -- or cannot be made refuses with nothing registered,
 * where devices registered first would have their secrets nowhere. A registration (or a write) that fails removes the
 * file again, so the same command can run again.
 */
import { open, rm, type FileHandle } from 'node:fs/promises'
import { FakephoneError } from './errors.js'

export class SecretFileError extends FakephoneError {
  constructor(message: string) {
    super('SECRET_FILE', message)
  }
}

/**
 * Creates `file` (mode 0600), then runs `register` and writes `text(registered)` to the file; returns what `register`
 * returned. `named` is how the user gave the file ("--secret-out /x/hall.secret"), for the refusal's message.
 */
export async function writeNewSecretFile<T>(
  file: string,
  named: string,
  register: () => T | Promise<T>,
  text: (registered: T) => string,
): Promise<T> {
  let handle: FileHandle
  try {
    handle = await open(file, 'wx', 0o600)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why =
      e.code === 'EEXIST' ? 'the file exists and is not replaced (a secret in it may be the only copy)' : `cannot write it: ${e.message}`
    throw new SecretFileError(`${named}: ${why}; no device was registered`)
  }
  let registered: T
  try {
    registered = await register()
    await handle.writeFile(text(registered))
  } catch (err) {
    await rm(file, { force: true })
    throw err
  } finally {
    await handle.close()
  }
  return registered
}
