/**
 * A new file for secrets that may be their only copy: `fakephone device add --secret-out` (one device's secret) and
 * `fakephone fleet provision --out` (a fleet's credentials).
 *
 * The secrets are made by the caller before any device exists, and the file is written whole and made durable --
 * created (mode 0600, never replacing a file: one there may hold the only copy of other secrets), written, fsynced, its
 * folder fsynced -- before `register` registers a device. Only then are the devices registered with those secrets; a
 * registration that fails removes the file again, so the same command can run again.
 *
 * Why this order and not the other way round (register, then write; undo or print the secrets when the write fails):
 * every way this can stop part-way leaves nothing lost. A file that cannot be made or written (it exists, a full disk,
 * a failing one) refuses with no device registered; a crash or power cut after the file is durable and before the
 * registration commits leaves a file of secrets for devices that do not exist, which the next run refuses to replace
 * (the user removes it and runs again) -- harmless. Registering first can always be cut between the commit and the
 * write, by a crash or a power cut, leaving registered devices whose secrets are nowhere; an undo after a failed write
 * can itself fail (the same full disk holds the database), and secrets printed to a terminal are easily lost.
 */
import { open, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { FakephoneError } from './errors.js'
import { syncDir } from './sync-dir.js'

export class SecretFileError extends FakephoneError {
  constructor(message: string) {
    super('SECRET_FILE', message)
  }
}

/**
 * Writes `text` (the secrets) to the new file `file` (mode 0600) and makes it durable, then runs `register` (which
 * registers the devices with exactly those secrets) and returns what it returned. `named` is how the user gave the
 * file ("--secret-out /x/hall.secret"), for the refusal's message.
 */
export async function writeNewSecretFile<T>(file: string, named: string, text: string, register: () => T | Promise<T>): Promise<T> {
  const refuse = (err: unknown): never => {
    const e = err as NodeJS.ErrnoException
    const why =
      e.code === 'EEXIST' ? 'the file exists and is not replaced (a secret in it may be the only copy)' : `cannot write it: ${e.message}`
    throw new SecretFileError(`${named}: ${why}; no device was registered`)
  }
  const handle = await open(file, 'wx', 0o600).catch(refuse)
  try {
    await handle.writeFile(text)
    await handle.sync()
    await handle.close()
    await syncDir(dirname(file))
  } catch (err) {
    // Made here but not whole (a full disk): it holds no registered device's secret, so it goes.
    await handle.close().catch(() => undefined)
    await rm(file, { force: true })
    refuse(err)
  }
  try {
    return await register()
  } catch (err) {
    await rm(file, { force: true })
    throw err
  }
}
