/**
 * Cloud backup on the phone (B1-B4). The phone has its own backup switch
 * (`<data>/backup.json`, reset by a wipe) and reports it to the cloud on
 * its status topic. It answers the cloud's plans (`fp/v1/<id>/plan`) by
 * making a package of its five parts, uploading it resumably over the data
 * channel and registering it with its manifest; a plan that arrives while
 * backup or the cloud service is off is refused and nothing is made (B2).
 * Turning backup off with "also delete backup data" deletes the phone's
 * backups in the cloud first (B4). Restore downloads a package and puts
 * every file back byte for byte. A3: once the account is usable again after
 * the cloud cleared it, a phone with backup on makes a fresh one at once.
 * A3, B1: a backup refused `FROZEN` tells the phone the account is frozen
 * and when the cloud cleared it, as a sync refused so does (the knowledge is
 * sync's, agent/sync/engine.ts); from then on a plan planned before that
 * clearing (one a broker queued for the phone before the freeze) is refused
 * without a try, and `phone backup status` says the cloud copy was cleared
 * until the sign-in, which sync hears (then afterClearing).
 * B1: a plan that arrives while a backup is being made waits for it and is
 * answered once it ends, as a phone's job scheduler defers a periodic job
 * while the same job runs rather than dropping it. At most one plan waits:
 * a newer one takes its place (the cloud superseded the older already).
 * The waiting plan is checked again when its turn comes (backup or the
 * cloud service may have been turned off meanwhile).
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { z } from 'zod'
import type { Clock } from '../../common/clock.js'
import {
  BACKUP_PATH,
  BackupDeletedSchema,
  BackupListSchema,
  BackupOneSchema,
  BackupPackageSchema,
  BackupPlanSchema,
  type BackupPlan,
  type BackupView,
} from '../../common/cloud/backup-api.js'
import { decodeJson } from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import { JsonFile } from '../../common/json-file.js'
import type { Logger } from '../../common/log.js'
import { CloudError, type CloudClient } from '../cloud-client.js'
import type { CloudClearing } from '../sync/engine.js'
import { makePackage, manifestOf, restorePackage } from './package.js'

const StateSchema = z.strictObject({
  on: z.boolean(),
  lastBackupAt: z.number().nullable(),
  lastBackupId: z.string().nullable(),
  lastError: z.string().nullable(),
  /** Plans already answered or refused, newest last, so a redelivery makes nothing twice. */
  handledPlans: z.array(z.string()),
})
type State = z.infer<typeof StateSchema>
const DEFAULT_STATE: State = { on: true, lastBackupAt: null, lastBackupId: null, lastError: null, handledPlans: [] }
const HANDLED_KEPT = 50

export interface BackupStatus {
  on: boolean
  running: boolean
  lastBackupAt: number | null
  lastBackupId: string | null
  lastError: string | null
  plansRefused: number
  /** A3: what the phone was told of a clearing of the account's cloud data (absent: a phone without sync). */
  cloud?: CloudClearing
}

/** What the backup needs of the phone; the Agent provides it. */
export interface BackupHost {
  deviceId: string
  dataDir: string
  clock: Clock
  log: Logger
  cloud: CloudClient | null
  canTransfer(): boolean
  /** Aborted when transfers stop being possible (agent.transferSignal). */
  transferSignal(): AbortSignal
  pin(): string
  /** Applies restored settings values (the PIN). */
  applySettings(values: Record<string, string>): Promise<void>
  /** The switch changed: tell the cloud (status topic). */
  switchChanged(): void
  /** A3: what the phone knows of its account's clearing and freeze (null: no sync to know it). */
  cloudClearing(): CloudClearing | null
  /** A3: the cloud refused a backup because the account is frozen, its data cleared at `clearedAt`. */
  frozenRefusal(clearedAt: number | null | undefined): void
}

interface BackupEvents {
  made: [backup: BackupView]
  failed: [reason: string]
  refused: [planId: string, reason: string]
  /** B1: a plan arrived while a backup was being made: it is answered once that one ends. */
  waiting: [planId: string]
}

export class BackupError extends FakephoneError {}

export class PhoneBackup extends EventEmitter<BackupEvents> {
  private state: State = { ...DEFAULT_STATE }
  private readonly file: JsonFile<State>
  private running: Promise<BackupView> | null = null
  /** B1: the newest plan that arrived while a backup was being made; answered once it ends. */
  private waiting: BackupPlan | null = null
  private stopRunning = new AbortController()
  private refused = 0

  constructor(private readonly host: BackupHost) {
    super()
    this.file = new JsonFile(join(host.dataDir, 'backup.json'), StateSchema)
  }

  async load(): Promise<void> {
    this.state = await this.file.load({ ...DEFAULT_STATE })
  }

  get enabled(): boolean {
    return this.state.on
  }

  status(): BackupStatus {
    const { on, lastBackupAt, lastBackupId, lastError } = this.state
    const cloud = this.host.cloudClearing()
    return {
      on,
      running: this.running !== null,
      lastBackupAt,
      lastBackupId,
      lastError,
      plansRefused: this.refused,
      ...(cloud && { cloud }),
    }
  }

  /** After a wipe (which removed the file): the switch and history are back to a new phone's. */
  async reset(): Promise<void> {
    this.stopRunning.abort()
    this.stopRunning = new AbortController()
    await this.file.flushed()
    this.state = { ...DEFAULT_STATE }
  }

  async flushed(): Promise<void> {
    await this.file.flushed()
  }

  /** B2/B4: the user flips the backup switch; off with `deleteData` deletes this phone's backups in the cloud first. */
  async setSwitch(on: boolean, deleteData: boolean): Promise<{ deleted: number; releasedBytes: number } | null> {
    if (on && deleteData) throw new BackupError('BAD_REQUEST', '"also delete backup data" goes with turning backup off')
    let deleted: { deleted: number; releasedBytes: number } | null = null
    if (!on && deleteData) {
      const cloud = this.transferable('delete the backup data')
      deleted = await cloud.call('DELETE', BACKUP_PATH, BackupDeletedSchema, undefined, this.host.transferSignal())
    }
    if (!on) {
      this.stopRunning.abort()
      this.stopRunning = new AbortController()
    }
    await this.save({ ...this.state, on })
    this.host.switchChanged()
    return deleted
  }

  /** B1: a plan arrived on the plan topic; never throws. */
  async receivePlan(payload: Buffer): Promise<void> {
    const decoded = decodeJson(BackupPlanSchema, payload)
    if (!decoded.ok || decoded.value.device !== this.host.deviceId) {
      this.host.log.warn({ reason: decoded.ok ? 'for another device' : decoded.reason }, 'backup plan ignored')
      return
    }
    let plan = decoded.value
    if (this.state.handledPlans.includes(plan.id)) return
    await this.save({ ...this.state, handledPlans: [...this.state.handledPlans, plan.id].slice(-HANDLED_KEPT) })
    if (this.running) {
      const replaced = this.waiting
      this.waiting = plan
      this.host.log.info(
        { plan: plan.id, replaces: replaced?.id },
        'backup plan waits: a backup is being made; this plan is answered once it ends',
      )
      this.emit('waiting', plan.id)
      // The call that queued the older plan answers this one.
      if (replaced) return
      while (this.running !== null) await Promise.allSettled([this.running])
      plan = this.waiting
      this.waiting = null
    }
    // B2: a plan that arrives with backup or the cloud service off is stale: nothing is made.
    const why = this.refusal(plan.plannedAt)
    if (why) {
      this.refused++
      this.host.log.info({ plan: plan.id, reason: why }, 'backup plan refused')
      this.emit('refused', plan.id, why)
      return
    }
    await this.backup(plan.id).catch(() => undefined)
  }

  /**
   * Why a plan is refused without a try, or null. B2: backup or the cloud service off. A3: planned before the last
   * clearing the phone knows of: the freeze dropped it (a broker queued it for the phone before). The cloud plans nothing
   * while the account is frozen, so a plan planned after the clearing says the account is back.
   */
  private refusal(plannedAt: number): string | null {
    if (!this.state.on) return 'cloud backup is off'
    // A phone given no cloud address (an agent without --cloud, a fleet group that does not sync) is asked all the same.
    if (!this.host.cloud) return "no cloud is configured on this phone (the agent's --cloud)"
    if (!this.host.canTransfer()) return 'the cloud service is off or there is no network'
    const clearedAt = this.host.cloudClearing()?.clearedAt ?? null
    if (clearedAt !== null && plannedAt <= clearedAt)
      return 'planned before the cloud cleared the account (A3: a year without activity): the freeze dropped it'
    return null
  }

  /** The user taps "back up now". */
  backupNow(): Promise<BackupView> {
    if (!this.state.on)
      return Promise.reject(new BackupError('BACKUP_OFF', 'cloud backup is off on this phone: turn it on first (phone backup on)'))
    return this.backup(undefined)
  }

  /**
   * A3: the cloud cleared the account's data, its backups with them, and the account is usable again: with backup on,
   * a fresh one is made at once (a plan's wait could be a day) so the cloud holds a copy of the phone again, after any
   * backup under way (begun while frozen, it fails). Never throws:
   * a backup that fails says so in the status, and the schedule's next plan tries again.
   */
  async afterClearing(): Promise<void> {
    if (!this.state.on) return
    this.host.log.info('the cloud cleared the account (A3): a fresh backup now, the one it held went with it')
    // A plan's backup under way began while the account was frozen: it fails, so this one waits for it, not the schedule.
    await Promise.allSettled([this.running])
    await this.backup(undefined).catch(() => undefined)
  }

  /** The account's backups in the cloud, newest first. */
  async list(): Promise<BackupView[]> {
    const cloud = this.transferable('list backups')
    return (await cloud.call('GET', BACKUP_PATH, BackupListSchema, undefined, this.host.transferSignal())).backups
  }

  /** Puts backup `id` (default: this phone's latest) back onto the phone. */
  async restore(id?: string): Promise<{ backup: BackupView; files: number }> {
    const cloud = this.transferable('restore')
    const signal = this.host.transferSignal()
    let backup: BackupView | undefined
    if (id === undefined) {
      const mine = (
        await cloud.call('GET', `${BACKUP_PATH}?device=${encodeURIComponent(this.host.deviceId)}`, BackupListSchema, undefined, signal)
      ).backups
      backup = mine[0]
      if (!backup)
        throw new BackupError(
          'NOT_FOUND',
          `the cloud holds no backup of ${this.host.deviceId}; name one from another phone (phone backup list)`,
        )
    } else {
      backup = (await cloud.call('GET', `${BACKUP_PATH}/${encodeURIComponent(id)}`, BackupOneSchema, undefined, signal)).backup
    }
    const bytes = await cloud.download(backup.sha256, signal)
    const decoded = decodeJson(BackupPackageSchema, bytes)
    if (!decoded.ok) throw new BackupError('BAD_PACKAGE', `backup ${backup.id} is not a package this phone can read: ${decoded.reason}`)
    const { files, values } = await restorePackage(this.host.dataDir, decoded.value, `backup ${backup.id}`)
    await this.host.applySettings(values)
    this.host.log.info({ backup: backup.id, files }, 'backup restored')
    return { backup, files }
  }

  private transferable(what: string): CloudClient {
    const cloud = this.host.cloud
    if (!cloud || !this.host.canTransfer())
      throw new BackupError('NO_TRANSFER', `cannot ${what}: the cloud service is off, there is no network, or no cloud is configured`)
    return cloud
  }

  private backup(planId: string | undefined): Promise<BackupView> {
    if (this.running) return Promise.reject(new BackupError('BUSY', 'a backup is already being made'))
    const work = this.make(planId).finally(() => (this.running = null))
    this.running = work
    return work
  }

  private async make(planId: string | undefined): Promise<BackupView> {
    const { host } = this
    try {
      const cloud = this.transferable('back up')
      const signal = AbortSignal.any([host.transferSignal(), this.stopRunning.signal])
      const pkg = await makePackage(host.dataDir, host.deviceId, host.clock.now(), { pin: host.pin() })
      const bytes = Buffer.from(JSON.stringify(pkg))
      const sha256 = await cloud.upload(bytes, signal)
      const body = { sha256, manifest: manifestOf(pkg, bytes), ...(planId === undefined ? {} : { planId }) }
      const { backup } = await cloud.call('POST', BACKUP_PATH, BackupOneSchema, body, signal)
      await this.save({ ...this.state, lastBackupAt: backup.createdAt, lastBackupId: backup.id, lastError: null })
      host.log.info({ backup: backup.id, size: backup.size, plan: planId }, 'backup made')
      this.emit('made', backup)
      return backup
    } catch (err) {
      const reason = (err as Error).message
      await this.save({ ...this.state, lastError: reason })
      host.log.warn({ plan: planId, reason }, 'backup failed')
      if (err instanceof CloudError && err.code === 'FROZEN') host.frozenRefusal(err.clearedAt)
      if (planId !== undefined && host.cloud && host.canTransfer()) {
        // Best effort: the cloud drops a plan left open when it makes the next one.
        await host.cloud
          .call('POST', `${BACKUP_PATH}/plans/${planId}/failed`, z.unknown(), { reason: reason.slice(0, 500) })
          .catch(() => undefined)
      }
      this.emit('failed', reason)
      throw err
    }
  }

  private save(state: State): Promise<void> {
    this.state = state
    return this.file.save(state)
  }
}
