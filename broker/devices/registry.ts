/**
 * Device accounts: each device has an id, an account (its owner) and a
 * secret that is shown once and stored only as a salted scrypt hash.
 * A removal made here is announced ('removed') so the running broker
 * disconnects the device at once; a removal made by another process on the
 * same data directory shows in `exists`, which the broker asks on every message.
 */
import { EventEmitter } from 'node:events'
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { promisify } from 'node:util'
import { DeviceIdSchema } from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import type { Db } from '../db.js'

/**
 * Secrets are 256 random bits, so a slow KDF adds no brute-force resistance;
 * scrypt at a modest cost keeps a stolen database useless while 10,000
 * devices can still reconnect in seconds (scrypt runs on libuv's pool).
 */
const SCRYPT: ScryptOptions = { N: 1024, r: 8, p: 1 }
const KEY_LEN = 32
/** Secrets hashed at once by `addMany`: enough to keep libuv's pool busy, few enough to bound memory. */
const BULK_HASH_BATCH = 64

export interface DeviceRecord {
  id: string
  account: string
  createdAt: number
}

export class RegistryError extends FakephoneError {
  constructor(code: 'EXISTS' | 'NOT_FOUND' | 'BAD_ID', message: string) {
    super(code, message)
  }
}

// promisify picks scrypt's callback overload without options; this is the one with options.
const scryptWithOptions = promisify(scrypt) as (secret: string, salt: Buffer, keyLen: number, opts: ScryptOptions) => Promise<Buffer>
const scryptAsync = (secret: string, salt: Buffer): Promise<Buffer> => scryptWithOptions(secret, salt, KEY_LEN, SCRYPT)

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scryptAsync(secret, salt)
  return `scrypt$${SCRYPT.N}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [, , salt, key] = stored.split('$')
  const expected = Buffer.from(key as string, 'base64')
  const actual = await scryptAsync(secret, Buffer.from(salt as string, 'base64'))
  return timingSafeEqual(actual, expected)
}

interface RegistryEvents {
  removed: [id: string]
}

export class DeviceRegistry extends EventEmitter<RegistryEvents> {
  private readonly existsStmt

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {
    super()
    this.existsStmt = db.prepare('SELECT 1 FROM devices WHERE id = ?').pluck()
  }

  /** Registers a device and returns its secret; the secret is not stored anywhere. */
  async add(id: string, account: string): Promise<{ device: DeviceRecord; secret: string }> {
    const parsed = DeviceIdSchema.safeParse(id)
    if (!parsed.success) throw new RegistryError('BAD_ID', `invalid device id "${id}": ${parsed.error.issues[0]?.message}`)
    if (this.get(id)) throw new RegistryError('EXISTS', `device "${id}" is already registered`)
    const secret = randomBytes(32).toString('base64url')
    const hash = await hashSecret(secret)
    const createdAt = this.now()
    // A3: a new account starts its year of activity with its first device.
    this.db.prepare('INSERT OR IGNORE INTO accounts (id, last_activity_at, created_at) VALUES (?, ?, ?)').run(account, createdAt, createdAt)
    this.db.prepare('INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, ?)').run(id, account, hash, createdAt)
    this.db.prepare('INSERT INTO device_state (device_id) VALUES (?)').run(id)
    return { device: { id, account, createdAt }, secret }
  }

  /**
   * Registers many devices in one transaction (`fakephone fleet provision`):
   * all or none. Each secret is hashed with the same `hashSecret` as `add`,
   * in parallel batches (scrypt runs on libuv's pool), before the transaction opens.
   */
  async addMany(entries: readonly { id: string; account: string }[]): Promise<{ device: DeviceRecord; secret: string }[]> {
    for (const { id } of entries) {
      const parsed = DeviceIdSchema.safeParse(id)
      if (!parsed.success) throw new RegistryError('BAD_ID', `invalid device id "${id}": ${parsed.error.issues[0]?.message}`)
      if (this.exists(id)) throw new RegistryError('EXISTS', `device "${id}" is already registered`)
    }
    const secrets = entries.map(() => randomBytes(32).toString('base64url'))
    const hashes: string[] = []
    for (let i = 0; i < secrets.length; i += BULK_HASH_BATCH)
      hashes.push(...(await Promise.all(secrets.slice(i, i + BULK_HASH_BATCH).map((s) => hashSecret(s)))))
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
    if (info.changes === 0) throw new RegistryError('NOT_FOUND', `no device "${id}" is registered`)
    this.emit('removed', id)
  }

  /** True while device `id` is registered (asked on every message, so one cached statement). */
  exists(id: string): boolean {
    return this.existsStmt.get(id) !== undefined
  }

  /** True when `secret` is the secret of registered device `id`. */
  async verify(id: string, secret: string): Promise<boolean> {
    return (await this.verifiedAccount(id, secret)) !== undefined
  }

  /** The account of device `id` when `secret` is its secret; read in one go with the hash, so a removal in between cannot split them. */
  async verifiedAccount(id: string, secret: string): Promise<string | undefined> {
    const row = this.db
      .prepare<[string], { hash: string; account: string }>('SELECT secret_hash AS hash, account FROM devices WHERE id = ?')
      .get(id)
    if (!row) return undefined
    return (await verifySecret(secret, row.hash)) ? row.account : undefined
  }
}
