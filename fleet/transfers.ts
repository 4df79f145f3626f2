/**
 * A syncing fleet phone's transfers (issue 12; S1, S3, B1): its data
 * directory seeded before its first start (agent/phone-data/seed.ts, with
 * the seed its plan drew from the run's seed and its index, dated from the
 * run's start: the same seed on the same day gives the same files, byte for
 * byte) and its first sync and backup switches written there, then what its
 * sync and backup do counted: items whose upload the cloud acknowledged,
 * failed attempts by the cloud's error code, backups made. At each stop the
 * items still on the phone and not in the cloud are noted, with those a
 * switch holds back (the category's sync or the cloud service off) or an
 * outage keeps there; the report counts the others lost.
 */
import type { Clock } from '../common/clock.js'
import { makeDataDirSync } from '../common/make-dirs.js'
import { seedPhoneData } from '../agent/phone-data/seed.js'
import { PhoneFiles } from '../agent/phone-data/store.js'
import { CATEGORIES } from '../agent/phone-data/types.js'
import type { SyncEngine } from '../agent/sync/engine.js'
import { SyncSwitches } from '../agent/sync/switches.js'
import type { FleetMetrics } from './metrics.js'
import type { FleetPhone } from './phone.js'
import type { PhonePlan } from './plan.js'
import type { Tally } from './tally.js'

export type PhoneTransfers = NonNullable<PhonePlan['transfers']>

/** Items on a phone not in the cloud when it stopped, and how many of them a switch or an outage held back. */
export interface Pending {
  pending: number
  held: number
}

/** Seeds `dir` (the phone's data directory) and writes its first sync switches; resolves with the items written. */
export async function seedPhone(dir: string, transfers: PhoneTransfers, clock: Clock, now: number): Promise<number> {
  const { data, sync } = transfers.setup
  makeDataDirSync(dir)
  await seedPhoneData(new PhoneFiles({ dataDir: dir, clock }), { counts: data, seed: transfers.seed, now })
  const switches = new SyncSwitches(dir)
  await switches.load()
  for (const category of CATEGORIES) if (!sync[category]) await switches.setCategory(category, false)
  await switches.flushed()
  return CATEGORIES.reduce((sum, c) => sum + data[c], 0)
}

/** The cloud's error code of a failed transfer (ABORTED: halted by a switch, the network or a stop), ERROR without one. */
function failureCode(err: Error): string {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : 'ERROR'
}

/** Counts what the phone's sync and backup do, as `device` of `account`. */
export function countTransfers(phone: FleetPhone, device: string, account: string, tally: Tally, metrics: FleetMetrics): void {
  const sync = phone.sync as SyncEngine
  sync.on('uploaded', (category, id) => {
    if (tally.itemUploaded(device, account, `${category}/${id}`)) metrics.transfers.inc({ outcome: 'uploaded' })
  })
  sync.on('failed', (_category, _id, err) => {
    tally.transferFailed(failureCode(err))
    metrics.transfers.inc({ outcome: 'failed' })
  })
  phone.backup.on('made', () => {
    tally.transfers.backupsMade++
    metrics.transfers.inc({ outcome: 'backup-made' })
  })
  phone.backup.on('failed', () => {
    tally.transfers.backupsFailed++
    metrics.transfers.inc({ outcome: 'backup-failed' })
  })
}

/**
 * What is still on a stopped phone and not in the cloud: held back when its category does not upload (S1, S3), the cloud
 * service is off (X1), or the phone went for an outage (`away`); a later stop of the same device replaces it.
 */
export function pendingOf(phone: FleetPhone, away: boolean): Pending {
  const status = (phone.sync as SyncEngine).status()
  const on = phone.cloudServiceOn && !away
  let pending = 0
  let held = 0
  for (const c of CATEGORIES) {
    const s = status.categories[c]
    pending += s.pending
    if (!on || !s.uploads) held += s.pending
  }
  return { pending, held }
}

/**
 * Whether a running phone still has transfers to make now: a pass or a backup under way (B1: one the end of the run
 * stopped was counted failed while the cloud held it), or items its switches let go up in a category whose last pass
 * did not fail (one that failed tries again at the next scheduled pass, not before the report).
 */
export function transfersDue(phone: FleetPhone): boolean {
  const status = (phone.sync as SyncEngine).status()
  if (status.running || phone.backup.status().running) return true
  if (!phone.canTransfer()) return false
  return CATEGORIES.some((c) => {
    const s = status.categories[c]
    return s.uploads && s.pending > 0 && s.lastError === null
  })
}
