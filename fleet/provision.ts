/**
 * `fakephone fleet provision`: registers N devices on the broker's data
 * directory in one transaction (the registry's `addMany`, which hashes each
 * secret with the registry's own `hashSecret`), makes each account's owner
 * key and remembers each device's receipt key in the keys folder, as
 * `fakephone device add` does for one. Ids are `<prefix>-00001`...; device i
 * belongs to account `<prefix>-owner-<i mod accounts>`. A prefix whose
 * devices or accounts the data directory holds already is refused, saying
 * what is there: a second fleet of the same prefix would collide with the
 * first one's ids (the whole batch refused on the first) or slip new devices
 * into its accounts.
 */
import { resolve } from 'node:path'
import { z } from 'zod'
import { openDb, type Db } from '../broker/db.js'
import { DeviceRegistry, newDeviceSecret } from '../broker/devices/registry.js'
import type { Clock } from '../common/clock.js'
import { FakephoneError } from '../common/errors.js'
import { OwnerKeys } from '../common/signing.js'
import type { Credentials } from './credentials.js'

export interface ProvisionOptions {
  dataDir: string
  keysDir: string
  count: number
  prefix: string
  /** How many owner accounts the devices are spread over (default: one per device). */
  accounts?: number
  clock: Clock
}

/**
 * `--account-prefix`: it starts every device id (DeviceIdSchema) and every account name (AccountNameSchema), so it meets
 * both rules, with room for the numbers after it.
 */
export const FleetPrefixSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/, '1-41 of a-z, 0-9 and "-", not starting with "-"')

const pad = (n: number, width: number): string => String(n).padStart(width, '0')

/** The fleet's device ids: `<prefix>-00001` onwards (wider when the count needs it), sortable and topic-safe. */
export function fleetIds(prefix: string, count: number): string[] {
  const width = Math.max(5, String(count).length)
  return Array.from({ length: count }, (_, i) => `${prefix}-${pad(i + 1, width)}`)
}

export function fleetAccount(prefix: string, index: number, accounts: number): string {
  return `${prefix}-owner-${pad((index % accounts) + 1, Math.max(3, String(accounts).length))}`
}

/** The devices (`<prefix>-<n>`) and accounts (`<prefix>-owner-<n>`) of a fleet of this prefix the database holds. */
export function fleetTaken(db: Db, prefix: string): { devices: string[]; accounts: string[] } {
  // GLOB narrows by the index (the prefix is of a-z, 0-9 and "-" only); the pattern keeps the names made of digits after it.
  const named = (table: 'devices' | 'accounts', stem: string): string[] => {
    const whole = new RegExp(`^${stem}\\d+$`)
    const ids = db.prepare<[string], string>(`SELECT id FROM ${table} WHERE id GLOB ? ORDER BY id`).pluck().all(`${stem}[0-9]*`)
    return ids.filter((id) => whole.test(id))
  }
  return { devices: named('devices', `${prefix}-`), accounts: named('accounts', `${prefix}-owner-`) }
}

/** "3 devices (qa-00001 ... qa-00003)": how many, the first and the last. */
function some(what: string, names: readonly string[]): string {
  const range = names.length === 1 ? names[0] : `${names[0]} ... ${names[names.length - 1]}`
  return `${names.length} ${what}${names.length === 1 ? '' : 's'} (${range})`
}

/** Refuses a prefix whose fleet (any device or account of it) the database holds already, saying what is there and what to do. */
function refuseTaken(db: Db, dataDir: string, prefix: string): void {
  const { devices, accounts } = fleetTaken(db, prefix)
  if (devices.length === 0 && accounts.length === 0) return
  const there = [devices.length > 0 ? some('device', devices) : [], accounts.length > 0 ? some('account', accounts) : []].flat()
  throw new FakephoneError(
    'PREFIX_TAKEN',
    `--account-prefix "${prefix}" is taken in ${dataDir}: ${there.join(' and ')} of it are registered already. ` +
      'Give another --account-prefix for a new fleet; to run the fleet provisioned then, give `fleet run` its credentials file ' +
      '(--credentials FILE); to start again, remove those devices (fakephone device remove ID) or use a new --data directory.',
  )
}

/**
 * The fleet's credentials before anything is registered: its ids, accounts and a new secret each, so that they can be
 * in their file, durably, before a device exists (common/secret-file).
 */
export function fleetCredentials(opts: Omit<ProvisionOptions, 'dataDir' | 'clock'>): Credentials {
  const accounts = opts.accounts ?? opts.count
  const devices = fleetIds(opts.prefix, opts.count).map((id, i) => ({
    id,
    account: fleetAccount(opts.prefix, i, accounts),
    secret: newDeviceSecret(),
  }))
  return { version: 1, keysDir: resolve(opts.keysDir), devices }
}

/** Registers the devices of `credentials` (by default new ones, fleetCredentials) with their secrets; returns them. */
export function provision(opts: ProvisionOptions, credentials = fleetCredentials(opts)): Credentials {
  // The keys folder first: one that cannot be made refuses before devices are registered whose keys it would hold.
  const keys = new OwnerKeys(opts.keysDir)
  keys.ensureFolder()
  const db = openDb(opts.dataDir)
  try {
    refuseTaken(db, opts.dataDir, opts.prefix)
    new DeviceRegistry(db, () => opts.clock.now()).addMany(credentials.devices)
  } finally {
    db.close()
  }
  for (const account of new Set(credentials.devices.map((d) => d.account))) keys.ensureSigningKey(account)
  for (const { id, secret } of credentials.devices) keys.rememberDevice(id, secret)
  return credentials
}
