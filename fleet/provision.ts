/**
 * `fakephone fleet provision`: registers N devices on the broker's data
 * directory in one transaction (the registry's `addMany`, which hashes each
 * secret with the registry's own `hashSecret`), makes each account's owner
 * key and remembers each device's receipt key in the keys folder, as
 * `fakephone device add` does for one. Ids are `<prefix>-00001`...; device i
 * belongs to account `<prefix>-owner-<i mod accounts>`.
 */
import { resolve } from 'node:path'
import { openDb } from '../broker/db.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import type { Clock } from '../common/clock.js'
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

const pad = (n: number, width: number): string => String(n).padStart(width, '0')

/** The fleet's device ids: `<prefix>-00001` onwards (wider when the count needs it), sortable and topic-safe. */
export function fleetIds(prefix: string, count: number): string[] {
  const width = Math.max(5, String(count).length)
  return Array.from({ length: count }, (_, i) => `${prefix}-${pad(i + 1, width)}`)
}

export function fleetAccount(prefix: string, index: number, accounts: number): string {
  return `${prefix}-owner-${pad((index % accounts) + 1, Math.max(3, String(accounts).length))}`
}

export function provision(opts: ProvisionOptions): Credentials {
  const accounts = opts.accounts ?? opts.count
  const entries = fleetIds(opts.prefix, opts.count).map((id, i) => ({ id, account: fleetAccount(opts.prefix, i, accounts) }))
  const db = openDb(opts.dataDir)
  let added
  try {
    added = new DeviceRegistry(db, () => opts.clock.now()).addMany(entries)
  } finally {
    db.close()
  }
  const keys = new OwnerKeys(opts.keysDir)
  for (const account of new Set(added.map(({ device }) => device.account))) keys.ensureSigningKey(account)
  for (const { device, secret } of added) keys.rememberDevice(device.id, secret)
  return {
    version: 1,
    keysDir: resolve(opts.keysDir),
    devices: added.map(({ device, secret }) => ({ id: device.id, account: device.account, secret })),
  }
}
