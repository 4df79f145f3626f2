/**
 * F2 authenticity. Commands are signed by the owner's Ed25519 key and
 * receipts by the device's; both sign the canonical JSON of every field but
 * `sig` (keys sorted, no spaces), so any change to any field breaks the
 * signature. The broker holds neither private key.
 *
 * The device's key is derived from its secret (HKDF-SHA256), which only the
 * device and its owner ever see -- the broker keeps a SHA-256 verifier -- so the
 * owner learns the device's public key at provisioning with no extra step.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, sign, verify, type KeyObject } from 'node:crypto'
import {
  chownSync,
  closeSync,
  constants,
  existsSync,
  fchownSync,
  ftruncateSync,
  openSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { accountSegment } from './contract.js'
import { makeDirsSync } from './make-dirs.js'
import { FakephoneError } from './errors.js'
import { folderOwner, ownerToGive, type FileOwner } from './folder-owner.js'
import { readSmallFd, readSmallFileSync } from './small-file.js'
import { forTerminal } from './terminal-text.js'

/**
 * A command sequence file holds one number (16 digits at most: a safe integer) and, from versions before it was cut in
 * place, perhaps some whitespace: 64 bytes is far above that and still a bound.
 */
const SEQ_FILE_MAX = 64

/** A sequence file that holds something other than a number: refused, not counted on from NaN. */
export class SeqFileError extends FakephoneError {
  constructor(message: string) {
    super('BAD_SEQ_FILE', message)
  }
}

/** JSON with object keys sorted at every level: the bytes that get signed. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : 1))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export function signPayload<T extends object>(payload: T, key: KeyObject): T & { sig: string } {
  const sig = sign(null, Buffer.from(canonical(payload)), key).toString('base64')
  return { ...payload, sig }
}

/** True when `sig` is a valid signature by `key` over the other fields. */
export function verifyPayload(signed: { sig: string }, key: KeyObject): boolean {
  const { sig, ...payload } = signed
  return verify(null, Buffer.from(canonical(payload)), key, Buffer.from(sig, 'base64'))
}

export const publicKeyPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()

/** PEM armour of any private key: PKCS#8, encrypted PKCS#8, OpenSSH, SEC1... */
const PRIVATE_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/**
 * Why `pem`, read from `file`, must not be given where a public key is meant, or undefined when it may. Node derives a
 * public key from a private one without a word, so a phone given `<account>.key` by mistake would run, holding the key
 * that signs wipe commands (F2, F4): refused, naming the `.pub` file to give instead.
 */
function privateKeyRefusal(file: string, pem: string): string | undefined {
  if (!PRIVATE_PEM.test(pem)) return undefined
  const instead = file.endsWith('.key') ? `${file.slice(0, -'.key'.length)}.pub` : 'the .pub file beside it'
  return `${file} is the owner's PRIVATE key, which must stay with the owner's console: give the public key, ${instead}`
}

/**
 * Reads an owner's public key file; a private key is refused (see privateKeyRefusal), never turned into its public half,
 * and anything but an Ed25519 public key is refused saying what to give.
 */
export function readPublicKey(file: string): KeyObject {
  const pem = readSmallFileSync(file)
  const refusal = privateKeyRefusal(file, pem)
  if (refusal) throw new Error(refusal)
  let key: KeyObject | undefined
  try {
    key = createPublicKey(pem)
  } catch {
    // OpenSSL's words ("DECODER routines::unsupported") do not say what the file should have been.
  }
  if (key?.asymmetricKeyType !== 'ed25519')
    throw new Error("not an owner's public key: give the Ed25519 public key (PEM) that `fakephone device add` wrote, ACCOUNT.pub")
  return key
}

/** privateKeyRefusal of a file, or undefined when it cannot be read (whoever reads it reports that). */
export function privateKeyFileRefusal(file: string): string | undefined {
  let pem: string
  try {
    pem = readSmallFileSync(file)
  } catch {
    return undefined
  }
  return privateKeyRefusal(file, pem)
}

/**
 * The device's receipt-signing key pair, derived from its secret. The seed is imported as a JWK: Node builds an Ed25519
 * private key from `d` alone (RFC 8037's `x`, the public key, is only type-checked, so it is left empty here and the
 * public key comes from the private one). OpenSSL 3's DER decoder took ~0.43 ms per key here, the JWK import ~0.04 ms:
 * `fleet provision` derives one per device.
 */
export function deviceKeys(secret: string): { privateKey: KeyObject; publicKey: KeyObject } {
  const seed = Buffer.from(hkdfSync('sha256', secret, 'fakephone', 'device receipt key v1', 32))
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: '' }, format: 'jwk' })
  return { privateKey, publicKey: createPublicKey(privateKey) }
}

/** The number a sequence file holds: 0 when it is empty (or only whitespace); a SeqFileError naming it when it is not a number. */
function lastSeq(file: string, text: string): number {
  const digits = text.trim()
  const seq = Number(digits)
  if (!/^\d*$/.test(digits) || !Number.isSafeInteger(seq))
    throw new SeqFileError(
      `${forTerminal(file)} holds no command sequence number (a whole number): remove it, and the next command to the ` +
        'device counts from the clock',
    )
  return seq
}

/**
 * The owner keys folder the console keeps (never the broker's data folder):
 *   <dir>/<account>.key   the account owner's private signing key (0600)
 *   <dir>/<account>.pub   its public key, given to each device at provisioning
 *   <dir>/devices/<id>.pub  each device's receipt key
 * `<account>` is the account's name when it meets the account-name rule; the name of an account made before the rule is
 * encoded (contract.ts, accountSegment), so no name reaches outside the folder or into a subfolder. A key file such an
 * account was given under its raw name, when that name is one file of this folder, is renamed to the encoded name the
 * first time it is looked for: its devices keep obeying the key they were provisioned with.
 *
 * A console run as root (sudo) on a folder that is another user's gives each file and folder it makes here to the
 * folder's owner (common/folder-owner), so that user's own console can still write them; a `.seq` file an earlier sudo
 * run left root's is given back at its next command.
 */
export class OwnerKeys {
  /** Each key file parsed so far (device and signing keys), with the text it was parsed from. */
  private readonly parsed = new Map<string, { pem: string; key: KeyObject }>()
  /** Whom what is made here goes to (see the class comment), looked up once, when something is first made as root. */
  private giveTo?: { owner: FileOwner | undefined }

  /** `processUid`: this process's uid (a test says "as root" with 0). */
  constructor(
    readonly dir: string,
    private readonly processUid = process.getuid?.(),
  ) {}

  /** The owner to give what is made here, or undefined: not root, or the folder is root's. */
  private owner(): FileOwner | undefined {
    if (this.processUid !== 0) return undefined
    this.giveTo ??= { owner: ownerToGive(this.processUid, folderOwner(this.dir)) }
    return this.giveTo.owner
  }

  /** makeDirsSync (0700), the folders made given to the owner. */
  private makeDirs(path: string): void {
    // Looked up before: once made, the folder is root's.
    const owner = this.owner()
    const made = makeDirsSync(path, 0o700)
    if (owner) for (const dir of made) chownSync(dir, owner.uid, owner.gid)
  }

  /** Gives the open file to the owner, if there is one to give it to. */
  private adopt(fd: number): void {
    const owner = this.owner()
    if (owner) fchownSync(fd, owner.uid, owner.gid)
  }

  /**
   * Open flags for a file here: with an owner to give files to, a link is not followed (ELOOP) -- root writing, and
   * then giving away, whatever a link the folder's owner put here points at (/etc/shadow) would hand that file over.
   */
  private flags(flags: number): number {
    return this.owner() ? flags | constants.O_NOFOLLOW : flags
  }

  /** writeFileSync (`exclusive`: only a new file), through a descriptor that is given to the owner before anything is written. */
  private writeFile(file: string, text: string, exclusive = false, mode?: number): void {
    const { O_WRONLY, O_CREAT, O_TRUNC, O_EXCL } = constants
    const fd = openSync(file, this.flags(O_WRONLY | O_CREAT | O_TRUNC | (exclusive ? O_EXCL : 0)), mode)
    try {
      this.adopt(fd)
      writeFileSync(fd, text)
    } finally {
      closeSync(fd)
    }
  }

  ownerKeyFile(account: string): string {
    return this.accountFile(account, '.pub')
  }

  /** `<dir>/<account segment><ext>`, after renaming the legacy raw-named file to it (see the class comment). */
  private accountFile(account: string, ext: '.key' | '.pub'): string {
    const segment = accountSegment(account)
    const file = join(this.dir, `${segment}${ext}`)
    const raw = join(this.dir, `${account}${ext}`)
    if (segment !== account && !/[/\0]/.test(account) && !existsSync(file) && existsSync(raw)) renameSync(raw, file)
    return file
  }

  /**
   * The account's private key, or undefined when this folder has none. Read at every call (the web console signs each
   * command with it), parsed again only when the file's text changed: parsing it was ~0.4 ms of every command.
   */
  existingSigningKey(account: string): KeyObject | undefined {
    return this.parsedFile(this.signingKeyFile(account), (pem) => createPrivateKey(pem))
  }

  /** Whether this folder holds the account's private key, without reading it (parsing one costs ~1 ms). */
  hasSigningKey(account: string): boolean {
    return existsSync(this.signingKeyFile(account))
  }

  /** The account's public key when this folder holds its private key (a console that signs for it), else undefined. */
  existingOwnerKey(account: string): KeyObject | undefined {
    return this.hasSigningKey(account) ? readPublicKey(this.ownerKeyFile(account)) : undefined
  }

  private signingKeyFile(account: string): string {
    return this.accountFile(account, '.key')
  }

  /** Makes the account's key pair when this folder has none; provisioning needs it made, not parsed (~0.4 ms a parse). */
  ensureSigningKey(account: string): void {
    const file = this.signingKeyFile(account)
    if (existsSync(file)) return
    this.makeDirs(this.dir)
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    this.writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), true, 0o600)
    this.writeFile(this.ownerKeyFile(account), publicKeyPem(publicKey))
  }

  /** The account's private key, made on first use. */
  signingKey(account: string): KeyObject {
    this.ensureSigningKey(account)
    return this.existingSigningKey(account) as KeyObject
  }

  /**
   * Makes the folder and its devices/ (mode 0700) when missing: provisioning calls it before it registers a device, so a
   * keys folder that cannot be made refuses with nothing registered, not after the device's secret has gone nowhere.
   */
  ensureFolder(): void {
    this.makeDirs(join(this.dir, 'devices'))
  }

  rememberDevice(deviceId: string, secret: string): void {
    this.makeDirs(join(this.dir, 'devices'))
    this.writeFile(join(this.dir, 'devices', `${deviceId}.pub`), publicKeyPem(deviceKeys(secret).publicKey))
  }

  /**
   * The sequence number for the next command to `deviceId`: above the last
   * one issued and never below the clock, so a lost keys folder cannot make a
   * device refuse new commands as replays.
   *
   * `devices/<id>.seq` is read and rewritten on every call (another console
   * sharing the folder sees each number), through one descriptor and in place:
   * a new number is never shorter than the one it follows, so the file is cut
   * only when it held something longer. Truncating and rewriting it whole, as
   * before, made ext4 start writing it back at each close (its rule for files
   * replaced by truncation): 1.8 ms a command on this machine, 0.1 ms now. The
   * file was never synced, before or now: a number lost in a crash gives way
   * to the clock.
   *
   * It is read as the other files of this folder are (common/small-file): a regular file of at most SEQ_FILE_MAX bytes,
   * so a link to /dev/zero or a FIFO is refused naming it instead of read for ever; a file that holds anything but a
   * whole number (and whitespace) is refused naming it too, rather than turned into NaN and written back.
   */
  nextSeq(deviceId: string, now: number): number {
    const file = this.seqFile(deviceId)
    const fd = this.openSeqFile(file)
    try {
      // A fresh descriptor reads from the start; an empty (new) file counts as 0, as a missing one did.
      const text = readSmallFd(fd, file, SEQ_FILE_MAX)
      const seq = Math.max(lastSeq(file, text) + 1, now)
      // A regular file (checked by the read), made now or left root's by an earlier sudo run: the folder owner's.
      this.adopt(fd)
      const written = writeSync(fd, String(seq), 0)
      if (Buffer.byteLength(text) > written) ftruncateSync(fd, written)
      return seq
    } finally {
      closeSync(fd)
    }
  }

  private seqFile(deviceId: string): string {
    return join(this.dir, 'devices', `${deviceId}.seq`)
  }

  /**
   * `devices/<id>.seq` open to read and write (made if missing, never truncated on opening); non-blocking, so a FIFO put
   * there is opened at once and refused by the read.
   */
  private openSeqFile(file: string): number {
    const flags = this.flags(constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK)
    try {
      return openSync(file, flags)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.makeDirs(join(this.dir, 'devices'))
      return openSync(file, flags)
    }
  }

  /**
   * The device's receipt key, or undefined when this console did not provision it. The file is read at every call, so
   * a key rewritten meanwhile (a device re-provisioned, here or by another console sharing the folder) is the one
   * returned; it is parsed again only when its text changed (parsing cost ~0.2 ms of every receipt check).
   */
  deviceKey(deviceId: string): KeyObject | undefined {
    return this.parsedFile(join(this.dir, 'devices', `${deviceId}.pub`), (pem) => createPublicKey(pem))
  }

  /** The key in `file`, or undefined when there is none; `parse` runs only when the text differs from the last parsed. */
  private parsedFile(file: string, parse: (pem: string) => KeyObject): KeyObject | undefined {
    let pem: string
    try {
      pem = readSmallFileSync(file)
    } catch (err) {
      // As before the cache: a file that is not there means no key; one that is there but unreadable is an error.
      if (existsSync(file)) throw err
      this.parsed.delete(file)
      return undefined
    }
    const known = this.parsed.get(file)
    if (known?.pem === pem) return known.key
    const key = parse(pem)
    this.parsed.set(file, { pem, key })
    return key
  }
}
