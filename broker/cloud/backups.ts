/**
 * Cloud backup (B1-B4), the cloud's side, as one feature module of
 * CloudData: the stored packages (backup-store.ts), the schedule and its
 * plans (backup-plans.ts), what happens after the service is turned off
 * (backup-retention.ts) and the HTTP routes (backup-routes.ts). This class
 * wires them to the accounts' events and to A3's freeze.
 */
import type { BackupPlan, BackupView, Manifest } from '../../common/cloud/backup-api.js'
import type { CloudParts } from './cloud-data.js'
import { BackupPlans } from './backup-plans.js'
import { BackupRetention, DEFAULT_RETENTION_RULES, type RetentionRules } from './backup-retention.js'
import { addBackupRoutes } from './backup-routes.js'
import { BackupStore } from './backup-store.js'
import { HttpError } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'
import { plural } from '../../common/plural.js'

export interface BackupOptions {
  /** B1: when the cloud plans backups, a node-cron expression (five fields). */
  cron: string
  /** The time zone the expression is read in. */
  timezone: string
  retention: RetentionRules
}

export const DEFAULT_BACKUP_OPTIONS: BackupOptions = { cron: '0 3 * * *', timezone: 'UTC', retention: DEFAULT_RETENTION_RULES }

export class Backups {
  readonly store: BackupStore
  readonly plans: BackupPlans
  readonly retention: BackupRetention

  constructor(
    private readonly parts: CloudParts,
    send: (deviceId: string, plan: BackupPlan) => boolean,
    opts: BackupOptions = DEFAULT_BACKUP_OPTIONS,
  ) {
    const { db, clock, accounts, cloudLog } = parts
    const log = parts.log.child({ feature: 'backup' })
    this.store = new BackupStore({ ...parts, log })
    this.plans = new BackupPlans(db, clock, cloudLog, log, send, opts.cron, opts.timezone)
    this.retention = new BackupRetention(db, clock, this.store, cloudLog, log, opts.retention)
    accounts.on('service-off', (account, at) => {
      this.plans.accountOff(account)
      this.retention.serviceOff(account, at)
    })
    accounts.on('service-on', (account) => this.retention.serviceOn(account))
    // A3: a frozen account's backups go with the rest of its data.
    accounts.onFreeze('backups', (account) => {
      const all = this.store.list(account)
      this.store.remove(all)
      this.store.sweepSoon()
      return all.length
    })
    addBackupRoutes(parts, this)
  }

  start(): void {
    this.plans.start()
    this.retention.start()
  }

  stop(): void {
    this.plans.stop()
    this.retention.stop()
  }

  /** B1: a phone registers a package it uploaded; over quota (A1) or read-only (B3) nothing is stored. */
  register(account: string, deviceId: string, sha256: string, manifest: Manifest, planId: string | undefined): BackupView {
    const { accounts, blobs } = this.parts
    accounts.assertServiceOn(account)
    this.retention.assertWritable(account, 'add a backup')
    if (!this.plans.backupOn(deviceId)) throw new HttpError(409, 'BACKUP_OFF', `cloud backup is off on ${deviceId}; turn it on to back up`)
    if (planId !== undefined && !this.plans.isOpen(planId, deviceId)) {
      throw new HttpError(
        409,
        'STALE_PLAN',
        `backup plan ${quoted(planId)} is no longer open (dropped or answered); no package was registered`,
      )
    }
    if (manifest.device !== deviceId)
      throw new HttpError(400, 'BAD_REQUEST', `the manifest is of ${quoted(manifest.device)}, not ${deviceId}`)
    // Only a blob this account holds or sent the bytes of: a hash alone gets no other account's package (blob-store.ts).
    const size = blobs.claimableSize(account, sha256)
    if (size === undefined) throw new HttpError(404, 'NOT_FOUND', `blob ${sha256} has not been uploaded; upload the package first`)
    if (size !== manifest.size)
      throw new HttpError(400, 'BAD_REQUEST', `the manifest says ${manifest.size} bytes but the package has ${size}`)
    const view = this.store.add(account, deviceId, sha256, manifest, planId ?? null, (id) => {
      if (planId !== undefined) this.plans.finish(planId, 'done', null, id)
    })
    accounts.touch(account, 'backup')
    this.parts.cloudLog.record(account, 'backup', `backup ${view.id} of ${deviceId} stored (${size} bytes)`)
    return view
  }

  /** Deletes packages now (console or B4); refused while read-only (B3). Returns the bytes released. */
  async delete(account: string, backups: readonly BackupView[], why: string): Promise<number> {
    this.retention.assertWritable(account, 'delete backups')
    const released = this.store.remove(backups)
    if (backups.length > 0) {
      this.parts.accounts.touch(account, 'delete')
      this.parts.cloudLog.record(
        account,
        'backup-delete',
        `${why}: ${plural(backups.length, 'backup')} removed for good (${released} bytes)`,
        backups.length,
      )
    }
    await this.store.sweep()
    return released
  }

  /** B4: the phone's backup off with "also delete backup data": its packages go at once. */
  async switchOffAndDelete(account: string, deviceId: string, by: string): Promise<{ deleted: number; releasedBytes: number }> {
    this.plans.switchOff(deviceId, `cloud backup turned off ${by} with its data deleted`)
    const mine = this.store.list(account, deviceId)
    const releasedBytes = await this.delete(account, mine, `cloud backup of ${deviceId} turned off ${by} with "also delete backup data"`)
    return { deleted: mine.length, releasedBytes }
  }

  /** A phone reported its switches (status topic). */
  deviceStatus(deviceId: string, cloudService: boolean, backup: boolean | undefined): void {
    this.plans.deviceStatus(deviceId, cloudService, backup)
  }
}
