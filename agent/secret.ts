/**
 * The device secret, read from a file and never taken from argv or the
 * environment, where `ps` and /proc would show it. Under systemd the file is
 * a credential (`LoadCredential=device-secret:/etc/fakephone/agent-NAME.secret`),
 * which the unit's own user may read even when the original is root's alone.
 * F1, X1: a running phone reads the same file again when the broker refuses
 * its secret (agent.ts), so a device removed and added again with a new
 * secret written there connects without a restart.
 */
import { join } from 'node:path'
import type { Env } from '../common/config.js'
import { FakephoneError } from '../common/errors.js'
import { SmallFileError, readSmallFileSync } from '../common/small-file.js'

export class SecretError extends FakephoneError {
  constructor(message: string) {
    super('ESECRET', message)
  }
}

/** Where the device secret is: `secretFile`, or else the systemd credential in $CREDENTIALS_DIRECTORY. */
export function deviceSecretFile(o: { secretFile?: string; secretCredential: string }, env: Env): string {
  const credentials = env.CREDENTIALS_DIRECTORY
  const file = o.secretFile ?? (credentials ? join(credentials, o.secretCredential) : undefined)
  if (file) return file
  throw new SecretError(
    `no device secret: set secretFile in the config (or --secret-file), or run under systemd with ` +
      `LoadCredential=${o.secretCredential}:FILE`,
  )
}

/** The secret in `file`, trimmed; a file that cannot be read or is empty is a SecretError naming it. */
export function readSecretFile(file: string): string {
  let secret: string
  try {
    secret = readSmallFileSync(file).trim()
  } catch (err) {
    if (err instanceof SmallFileError) throw new SecretError(`cannot read the secret file: ${err.message}`)
    const code = (err as NodeJS.ErrnoException).code
    // A missing one is most often a step left out: the secret is written once, when the device is registered.
    const missing = code === 'ENOENT' ? " (no such file): `fakephone device add ID --secret-out FILE` writes a new device's secret" : ''
    const denied = code === 'EACCES' || code === 'EPERM' ? ": let the agent's user read it (its owner, mode 0600)" : ''
    throw new SecretError(`cannot read the secret file ${file}: ${code}${missing}${denied}`)
  }
  if (secret === '')
    throw new SecretError(`the secret file ${file} is empty: put the device's secret in it (\`device add --secret-out\` wrote it)`)
  return secret
}

// eslint-disable-next-line @typescript-eslint/require-await -- async so that a refusal reaches callers as a rejection, as before
export async function readDeviceSecret(o: { secretFile?: string; secretCredential: string }, env: Env): Promise<string> {
  return readSecretFile(deviceSecretFile(o, env))
}
