/**
 * Device accounts: each device has an id, an account (its owner) and a
 * secret that is shown once and stored only as a verifier (see below).
 * A removal made here is announced ('removed') so the running broker
 * disconnects the device at once. `exists`, which the broker asks on every
 * message, answers from an in-memory set of the registered ids, kept exact by
 * add and remove here (the only place that deletes a device); an id it lacks
 * is looked up, so a device added on this connection elsewhere (an account
 * import) is found.
 *
 * A change made by another connection (the CLI's `fakephone device remove`)
 * is seen through SQLite's `PRAGMA data_version`, which moves only when another
 * connection commits; when it moved, the set is read again and every device
 * gone from it is announced ('removed') as if removed here: the broker
 * disconnects it, whether or not it says anything more. Reading it costs a
 * read transaction (file and shared-memory locks: 8-19 µs on the bench
 * machine, by its load; read once per event-loop turn, it was the largest part
 * of the broker's own work per heartbeat), so the broker's registry reads it
 * at most once per `recheckMs` (issue 14): a
 * message judged within `recheckMs` of the last read is judged on that view,
 * and then a read falls due when `recheckMs` have passed since the last one (a
 * timer, armed only while messages are judged that way). So under traffic a
 * device another process removed is disconnected within `recheckMs` of the
 * removal, and a heartbeat it sent meanwhile is dropped from the queue with
 * it, never stored; the broker also reads data_version before each heartbeat
 * batch is written (`recheck`), so a batch never carries rows of a device
 * removed before it. A message after a quiet spell of `recheckMs` or more is
 * judged on a fresh read, as every message was before. When no message comes
 * at all, the broker calls `recheck` once a second (server.ts,
 * REGISTRY_POLL_MS), so an idle device removed by the CLI is disconnected, and
 * its retained presence and status cleared, within a second too. Without RecheckOptions
 * (the CLI) every `exists` reads it. A device removed and registered again by
 * other processes within one `recheckMs` keeps its connection (its id never
 * left the set), as one removed and added within one event-loop turn did before.
 *
 * The verifier is `sha256$` + SHA-256 of the secret. A device secret is not a
 * password: it is 256 bits from the CSPRNG, shown once. For such a secret a
 * slow, salted KDF buys nothing: a salt and a work factor defend a guessable
 * input against dictionaries and precomputed tables, and there is nothing to
 * guess here -- finding a secret from its verifier is a SHA-256 preimage over
 * 2^256 equally likely inputs, and no two devices share a secret, so no two
 * share a verifier. A stolen database alone therefore lets no one connect: a
 * device logs in with the secret itself, never with the verifier, and the
 * verifier does not give the secret back. (A server-side key would add
 * nothing against that thief and is one more file whose loss would lock out
 * every device.) Nor does the verifier help to forge a receipt: the device's
 * signing key is HKDF-SHA256 of the secret (common/signing.ts), an HMAC keyed
 * apart from this plain hash. Checking it costs one hash, about a microsecond, where the
 * scrypt check before it cost milliseconds of the libuv pool per connection;
 * the comparison stays timing-safe.
 *
 * Devices registered before carry a salted scrypt verifier (`scrypt$N$salt$key`):
 * it is still accepted, and replaced by the SHA-256 verifier on the device's
 * next successful login -- no re-registration.
 */
import { EventEmitter } from 'node:events'
import * as crypto from 'node:crypto'
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { promisify } from 'node:util'
import { secretVerifier } from '../../common/cloud/cloud-move.js'
import { AccountNameSchema, DeviceIdSchema } from '../../common/contract.js'
import { CONSOLE_USER } from '../mqtt/access.js'
import { registrationRefusal } from '../cloud/retirement-guard.js'
import { storedPlan } from '../cloud/retirement-plan.js'
import { FakephoneError } from '../../common/errors.js'
import type { Db } from '../db.js'
import { quoted } from '../../common/terminal-text.js'

const SHA256_PREFIX = 'sha256$'
const KEY_LEN = 32

export interface DeviceRecord {
  id: string
  account: string
  createdAt: number
}

export class RegistryError extends FakephoneError {
  constructor(code: 'EXISTS' | 'NOT_FOUND' | 'BAD_ID' | 'BAD_ACCOUNT' | 'SERVICE_SHUT_DOWN' | 'NEW_ACCOUNTS_CLOSED', message: string) {
    super(code, message)
  }
}

// promisify picks scrypt's callback overload without options; this is the one with options.
const scryptWithOptions = promisify(scrypt) as (secret: string, salt: Buffer, keyLen: number, opts: ScryptOptions) => Promise<Buffer>

/**
 * One SHA-256. `crypto.hash` (Node 20.12 and later) hashes in one call, without the Hash object and stream set-up of
 * `createHash`: that set-up was most of a login's hashing cost in the connect ramp's profile (issue 14).
 */
const sha256: (secret: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (secret) => crypto.hash('sha256', secret, 'buffer')
    : /* c8 ignore next -- Node 20 before 20.12 only; the tests run on a Node that has crypto.hash */
      (secret) => crypto.createHash('sha256').update(secret).digest()

/** A new device secret: 256 bits from the CSPRNG (see the module comment), as base64url. */
export const newDeviceSecret = (): string => randomBytes(32).toString('base64url')

/** The verifier stored for a device secret (see the module comment for why one unsalted hash is enough; M2's notices are keyed with it). */
export const hashSecret = secretVerifier

/**
 * What a login with `secret` against the `stored` verifier yields: refused (false), accepted (true), or accepted with the
 * verifier to store in place of an older scrypt one.
 */
export async function verifySecret(secret: string, stored: string): Promise<boolean | { upgrade: string }> {
  return verifySecretNow(secret, stored) ?? verifyScrypt(secret, stored)
}

/** The check of a SHA-256 verifier, at once; null for any other kind of verifier (see verifySecret). */
function verifySecretNow(secret: string, stored: string): boolean | null {
  return stored.startsWith(SHA256_PREFIX) ? sameKey(sha256(secret), stored.slice(SHA256_PREFIX.length)) : null
}

/** An older salted scrypt verifier (`scrypt$N$salt$key`), checked in libuv's pool; when it matches, the verifier to store instead. */
async function verifyScrypt(secret: string, stored: string): Promise<boolean | { upgrade: string }> {
  const [scheme, n, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false
  const actual = await scryptWithOptions(secret, Buffer.from(salt, 'base64'), KEY_LEN, { N: Number(n), r: 8, p: 1 })
  return sameKey(actual, key) && { upgrade: hashSecret(secret) }
}

/** Timing-safe comparison of `actual` with the base64 `expected`; a verifier of the wrong length never matches. */
function sameKey(actual: Buffer, expected: string): boolean {
  const want = Buffer.from(expected, 'base64')
  return want.length === actual.length && timingSafeEqual(actual, want)
}

/**
 * A new device's id, however it comes (device add, fleet provision, an account's import: M3): the contract's schema, and
 * not the console's MQTT user name. Throws a RegistryError (BAD_ID) saying why.
 */
export function checkNewDeviceId(id: string): void {
  const badId = DeviceIdSchema.safeParse(id).error
  if (badId) throw new RegistryError('BAD_ID', `invalid device id ${quoted(id)}: ${badId.issues[0]?.message}`)
  // A device signs in to MQTT with its id as user name; this one is the console's, whose rules the broker would apply to
  // it (a client id starting with "console.", the console token): it could never connect.
  if (id === CONSOLE_USER)
    throw new RegistryError('BAD_ID', `invalid device id ${quoted(id)}: it is the console's MQTT user name; give the device another id`)
}

/**
 * A new device's id and its account's name, checked against the contract's schemas. An account named before the
 * account-name rule keeps its devices (they sign in, its data is read and exported) but gets no new one: it is moved to
 * a name that meets the rule by export and import (docs/CONTRACT.md, "Account names").
 */
function checkNew(id: string, account: string): void {
  checkNewDeviceId(id)
  const badAccount = AccountNameSchema.safeParse(account).error
  if (badAccount) throw new RegistryError('BAD_ACCOUNT', `invalid account name ${quoted(account)}: ${badAccount.issues[0]?.message}`)
}

/** How often another connection's changes are looked for (see the module comment); without it, on every `exists`. */
export interface RecheckOptions {
  /** `exists` reads data_version at most once per this many ms. */
  recheckMs: number
  /** Told what a read threw (SQLite, a `removed` listener); the next `exists` reads again. */
  failed: (err: unknown) => void
  /** A monotonic clock in ms for that spacing (I/O batching, not a time rule): `performance.now` unless a test moves it. */
  monotonic?: () => number
}

interface RegistryEvents {
  removed: [id: string]
}

export class DeviceRegistry extends EventEmitter<RegistryEvents> {
  private readonly idsStmt
  private readonly existsStmt
  private readonly dataVersionStmt
  /** The registered ids (see the module comment). */
  private ids: Set<string>
  private dataVersion: number
  private readonly recheckMs: number
  private readonly monotonic: () => number
  /** When data_version was last read (`monotonic`, ms); -Infinity: never, so the first `exists` reads it. */
  private checkedAt = -Infinity
  /** A read of data_version is due (a timer): some `exists` was answered from the view of the last read. */
  private recheckDue = false
  private readonly upgradeStmt
  /** Asked on every connect, so prepared once. */
  private readonly verifierStmt

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly recheckOpts?: RecheckOptions,
  ) {
    super()
    this.recheckMs = recheckOpts?.recheckMs ?? 0
    this.monotonic = recheckOpts?.monotonic ?? (() => performance.now())
    this.idsStmt = db.prepare<[], string>('SELECT id FROM devices').pluck()
    this.existsStmt = db.prepare('SELECT 1 FROM devices WHERE id = ?').pluck()
    this.dataVersionStmt = db.prepare<[], number>('PRAGMA data_version').pluck()
    this.dataVersion = this.readDataVersion()
    this.ids = new Set(this.idsStmt.all())
    this.verifierStmt = db.prepare<[string], { hash: string; account: string }>(
      'SELECT secret_hash AS hash, account FROM devices WHERE id = ?',
    )
    this.upgradeStmt = db.prepare<[verifier: string, id: string, old: string]>(
      'UPDATE devices SET secret_hash = ? WHERE id = ? AND secret_hash = ?',
    )
  }

  /**
   * Registers a device and returns its secret; the secret is not stored anywhere. `secret` is one newDeviceSecret made
   * (a caller that writes it to a file first, common/secret-file); by default a new one.
   */
  // eslint-disable-next-line @typescript-eslint/require-await -- async so that a refusal reaches callers as a rejection, as before
  async add(id: string, account: string, secret = newDeviceSecret()): Promise<{ device: DeviceRecord; secret: string }> {
    checkNew(id, account)
    if (this.get(id)) throw new RegistryError('EXISTS', `device ${quoted(id)} is already registered`)
    this.checkRetirement([account])
    const hash = hashSecret(secret)
    const createdAt = this.now()
    // A3: a new account starts its year of activity with its first device.
    this.db.prepare('INSERT OR IGNORE INTO accounts (id, last_activity_at, created_at) VALUES (?, ?, ?)').run(account, createdAt, createdAt)
    this.db.prepare('INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, ?)').run(id, account, hash, createdAt)
    this.db.prepare('INSERT INTO device_state (device_id) VALUES (?)').run(id)
    this.ids.add(id)
    return { device: { id, account, createdAt }, secret }
  }

  /** M1: a retiring cloud registers no device once shut down, and no new account from its migration deadline on. */
  private checkRetirement(accounts: readonly string[]): void {
    const plan = storedPlan(this.db)
    const known = this.db.prepare<[string], number>('SELECT 1 FROM accounts WHERE id = ?').pluck()
    for (const account of new Set(accounts)) {
      const refused = registrationRefusal(plan, account, known.get(account) === undefined, this.now())
      if (refused) throw new RegistryError(refused.code as 'SERVICE_SHUT_DOWN' | 'NEW_ACCOUNTS_CLOSED', refused.message)
    }
  }

  /**
   * Registers many devices in one transaction (`fakephone fleet provision`):
   * all or none. Each secret is hashed with the same `hashSecret` as `add`
   * (one SHA-256: the secrets are 256 random bits), before the transaction opens. An entry's `secret` is one
   * newDeviceSecret made (written to a file first, common/secret-file); by default a new one.
   */
  addMany(entries: readonly { id: string; account: string; secret?: string }[]): { device: DeviceRecord; secret: string }[] {
    for (const { id, account } of entries) {
      checkNew(id, account)
      if (this.exists(id)) throw new RegistryError('EXISTS', `device ${quoted(id)} is already registered`)
    }
    this.checkRetirement(entries.map((e) => e.account))
    const secrets = entries.map((e) => e.secret ?? newDeviceSecret())
    const hashes = secrets.map((s) => hashSecret(s))
    const createdAt = this.now()
    const account = this.db.prepare('INSERT OR IGNORE INTO accounts (id, last_activity_at, created_at) VALUES (?, ?, ?)')
    const device = this.db.prepare('INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, ?)')
    const state = this.db.prepare('INSERT INTO device_state (device_id) VALUES (?)')
    this.db.transaction(() => {
      entries.forEach((e, i) => {
        account.run(e.account, createdAt, createdAt)
        device.run(e.id, e.account, hashes[i], createdAt)
        state.run(e.id)
      })
    })()
    return entries.map((e, i) => ({ device: { id: e.id, account: e.account, createdAt }, secret: secrets[i] as string }))
  }

  get(id: string): DeviceRecord | undefined {
    return this.db.prepare<[string], DeviceRecord>('SELECT id, account, created_at AS createdAt FROM devices WHERE id = ?').get(id)
  }

  list(): DeviceRecord[] {
    return this.db.prepare<[], DeviceRecord>('SELECT id, account, created_at AS createdAt FROM devices ORDER BY id').all()
  }

  remove(id: string): void {
    const info = this.db.prepare('DELETE FROM devices WHERE id = ?').run(id)
    if (info.changes === 0) throw new RegistryError('NOT_FOUND', `no device ${quoted(id)} is registered`)
    this.ids.delete(id)
    this.emit('removed', id)
  }

  /** True while device `id` is registered (asked on every message, so answered from memory: see the module comment). */
  exists(id: string): boolean {
    const since = this.recheckMs === 0 ? 0 : this.monotonic() - this.checkedAt
    if (since >= this.recheckMs) this.recheck()
    // Whole milliseconds: Node keeps one timer list per duration, and a fractional one would make a list per timer.
    else if (!this.recheckDue) this.recheckIn(Math.ceil(this.recheckMs - since))
    if (this.ids.has(id)) return true
    if (this.existsStmt.get(id) === undefined) return false
    this.ids.add(id)
    return true
  }

  /**
   * Reads data_version now; when another connection committed since the last read, reads the ids again and announces
   * ('removed') each device gone from them. With RecheckOptions, what that throws goes to `failed` (and the next
   * `exists` reads again); without, to the caller.
   */
  recheck(): void {
    try {
      const version = this.readDataVersion()
      this.checkedAt = this.monotonic()
      if (version === this.dataVersion) return
      this.dataVersion = version
      const before = this.ids
      this.ids = new Set(this.idsStmt.all())
      for (const id of before) if (!this.ids.has(id)) this.emit('removed', id)
    } catch (err) {
      this.checkedAt = -Infinity
      if (!this.recheckOpts) throw err
      this.recheckOpts.failed(err)
    }
  }

  /** The read that judges, after the fact, the messages answered from the last view (see the module comment). */
  private recheckIn(ms: number): void {
    this.recheckDue = true
    setTimeout(() => {
      this.recheckDue = false
      // A registry whose database closed meanwhile (the broker stopped) has nothing left to judge.
      if (this.db.open) this.recheck()
    }, ms)
  }

  private readDataVersion(): number {
    return this.dataVersionStmt.get() as number
  }

  /** True when `secret` is the secret of registered device `id`. */
  async verify(id: string, secret: string): Promise<boolean> {
    return (await this.verifiedAccount(id, secret)) !== undefined
  }

  /** The account of device `id` when `secret` is its secret; read in one go with the hash, so a removal in between cannot split them. */
  verifiedAccount(id: string, secret: string): Promise<string | undefined> {
    try {
      return Promise.resolve(this.verifiedAccountNow(id, secret))
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  /**
   * verifiedAccount for the connect path (issue 14): answered at once for a SHA-256 verifier -- one indexed read and one
   * hash, with no promise, so Aedes' CONNECT handling goes on in the same turn, as with a broker without authentication
   * -- and as a promise only for a device still on an older scrypt verifier, which is checked off the event loop.
   */
  verifiedAccountNow(id: string, secret: string): string | undefined | Promise<string | undefined> {
    const row = this.verifierStmt.get(id)
    if (!row) return undefined
    const verdict = verifySecretNow(secret, row.hash)
    return verdict === null ? this.upgraded(id, secret, row) : verdict ? row.account : undefined
  }

  /** The scrypt check of an older verifier, which on success is replaced by the SHA-256 one. */
  private async upgraded(id: string, secret: string, row: { hash: string; account: string }): Promise<string | undefined> {
    const verdict = await verifySecret(secret, row.hash)
    if (!verdict) return undefined
    // An older scrypt verifier is replaced, unless the secret was changed (the device removed and added again) meanwhile.
    if (verdict !== true) this.upgradeStmt.run(verdict.upgrade, id, row.hash)
    return row.account
  }
}
