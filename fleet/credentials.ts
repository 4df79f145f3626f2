/**
 * The fleet's credentials file: what `fakephone fleet provision` writes and
 * `fakephone fleet run --credentials` reads. It holds every device's secret,
 * so it is written with mode 0600 and never overwritten (common/secret-file),
 * and read only when it is a regular file of at most CREDENTIALS_MAX_BYTES
 * (common/small-file): a link to /dev/zero or a FIFO given by mistake is a
 * one-line refusal naming it, not a read that never ends.
 */
import { z } from 'zod'
import { DeviceIdSchema } from '../common/contract.js'
import { FakephoneError } from '../common/errors.js'
import { writeNewSecretFile } from '../common/secret-file.js'
import { SmallFileError, readSmallFileSync } from '../common/small-file.js'

export const FleetDeviceSchema = z.strictObject({ id: DeviceIdSchema, account: z.string().min(1), secret: z.string().min(1) })
export type FleetDevice = z.infer<typeof FleetDeviceSchema>

export const CredentialsSchema = z.strictObject({
  version: z.literal(1),
  /** The owner keys folder the devices were provisioned with (each account's public key is there). */
  keysDir: z.string(),
  devices: z.array(FleetDeviceSchema),
})
export type Credentials = z.infer<typeof CredentialsSchema>

export class CredentialsError extends FakephoneError {
  constructor(message: string) {
    super('CREDENTIALS', message)
  }
}

/**
 * Writes `credentials` to a new file (mode 0600) and makes it durable before `register` registers their devices
 * (common/secret-file): a file that exists (its secrets may be the only copy) or cannot be written refuses with no device
 * registered; a failing `register` removes the file again. `named` is how the user gave the file, for the refusal's message.
 */
export const writeCredentialsOf = <T>(file: string, credentials: Credentials, register: () => T, named = file): Promise<T> =>
  writeNewSecretFile(file, named, JSON.stringify(credentials) + '\n', register)

/**
 * A device takes 100-200 bytes of the file (its id, account and secret): 10,000 devices about 2 MB. 64 MiB holds some
 * 300,000 devices of the longest ids and names, and is still read at once.
 */
export const CREDENTIALS_MAX_BYTES = 64 * 1024 * 1024

export function readCredentials(file: string): Credentials {
  let text: string
  try {
    text = readSmallFileSync(file, CREDENTIALS_MAX_BYTES)
  } catch (err) {
    if (err instanceof SmallFileError) throw new CredentialsError(`cannot read the fleet's credentials: ${err.message}`)
    throw new CredentialsError(`cannot read ${file}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    // Not the parser's words: they quote the start of the file, which may be a secret given by mistake (a console.token).
    const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0]
    const at = where ? ` (${where})` : ''
    throw new CredentialsError(
      `${file} is not a fleet credentials file: not JSON${at}; give the file \`fakephone fleet provision --out\` wrote`,
    )
  }
  const parsed = CredentialsSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue
    throw new CredentialsError(`${file} is not a fleet credentials file: ${issue.path.join('.') || '(top)'}: ${issue.message}`)
  }
  return parsed.data
}

/**
 * Devices for a broker that needs no credentials (--profile owntracks against a
 * plain Mosquitto): ids `<prefix>-00001`..., all under one user, no secret
 * (the phones connect anonymously).
 */
export function anonymousDevices(count: number, prefix: string, user: string): Credentials {
  const devices = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${String(i + 1).padStart(5, '0')}`,
    account: user,
    secret: '',
  }))
  return { version: 1, keysDir: '', devices }
}
