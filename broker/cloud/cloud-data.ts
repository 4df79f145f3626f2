/**
 * The cloud side of the phones' data, built and started by CloudBroker as
 * one part: accounts (A1-A3), content-addressed storage, the log of what
 * the rules did, the broker's one HTTP router (built here, as it checks
 * drive SDK tokens; the console and framework APIs add their routes too), and
 * the console's clock (simulated-time mode). Each feature -- sync and the
 * recycle bin (S, R), backups (B), the drive (D), the service's retirement (M1), the expiry of unfinished
 * uploads (A1, S3) -- is a module of its own that this class builds, starts and stops.
 */
import { TransferGrants } from '../transfer/transfer-grants.js'
import { SimulatedClock, type Clock } from '../../common/clock.js'
import type { AccountChanged } from '../../common/contract.js'
import type { Logger } from '../../common/log.js'
import type { Db } from '../db.js'
import type { NotificationQueue } from '../framework/notification-queue.js'
import type { DeviceRegistry } from '../devices/registry.js'
import { Accounts, DEFAULT_ACCOUNT_RULES, type AccountRules } from './accounts.js'
import { AccountChanges } from './account-changes.js'
import { accountPathSchema, warnLegacyNames } from './account-names.js'
import { addAccountRoutes } from './account-routes.js'
import { addBlobRoutes } from './blob-routes.js'
import { BlobStore } from './blob-store.js'
import { CloudLog } from './cloud-log.js'
import { HttpRouter, type GuardedRequest } from '../http/router.js'
import { CloudDrive } from './drive.js'
import { DEFAULT_DRIVE_RULES, type DriveRules } from './drive-cleanup.js'
import { SyncItems } from './items.js'
import { RecycleBin } from './recycle-bin.js'
import { addSyncRoutes } from './sync-routes.js'
import { Backups, DEFAULT_BACKUP_OPTIONS, type BackupOptions } from './backups.js'
import type { BackupPlan } from '../../common/cloud/backup-api.js'
import { DEFAULT_RETIREMENT_RULES, ServiceRetirement, type RetirementRules } from './retirement.js'
import { addRetirementRoutes } from './retirement-routes.js'
import { accountClearing } from './account-clearing.js'
import { UploadExpiry } from './upload-expiry.js'

export interface CloudDataOptions {
  accounts: AccountRules
  /** D4: how long drive files outlive the service, and the batches they are deleted in. */
  drive: DriveRules
  /** B1-B4: the backup schedule and B3's clean-up. */
  backup: BackupOptions
  /** M1: the guarantee period after a migration, reminders and purge batches of the service's retirement. */
  retirement: RetirementRules
}

export const DEFAULT_CLOUD_DATA_OPTIONS: CloudDataOptions = {
  accounts: DEFAULT_ACCOUNT_RULES,
  drive: DEFAULT_DRIVE_RULES,
  backup: DEFAULT_BACKUP_OPTIONS,
  retirement: DEFAULT_RETIREMENT_RULES,
}

export interface CloudDataDeps {
  db: Db
  dataDir: string
  clock: Clock
  log: Logger
  registry: DeviceRegistry
  push: NotificationQueue
  isConsoleToken(token: string): boolean
  /** B1: hands a backup plan to the device's live connection; false when it is not listening. */
  sendPlan(deviceId: string, plan: BackupPlan): boolean
  /** Says to the console that an account's data changed (account-changes.ts). */
  accountChanged(change: AccountChanged): void
  /** Whether a console listens to such changes. */
  consoleListening(): boolean
  /**
   * M1, A3: writes the heartbeats received but not yet written (StateStore's pending batch), so a purge or a freeze
   * deletes those a phone sent just before it rather than leave them to be written after it.
   */
  writeHeartbeats(): void
}

/** Console calls that change no account's cloud data: commands and notifications (the live feed has them), the clock (its jump is said). */
const NOT_ACCOUNT_DATA = /^\/api\/(devices\/[^/]+\/(commands|notifications)$|commands\/|clock\/)/

/** What every feature module gets to build itself. */
export interface CloudParts {
  db: Db
  clock: Clock
  log: Logger
  accounts: Accounts
  blobs: BlobStore
  cloudLog: CloudLog
  router: HttpRouter
}

export class CloudData {
  readonly accounts: Accounts
  readonly blobs: BlobStore
  readonly cloudLog: CloudLog
  readonly router: HttpRouter
  readonly drive: CloudDrive
  /** S1-S4: what app data sync keeps; R1-R3: its recycle bin. */
  readonly items: SyncItems
  readonly bin: RecycleBin
  readonly backups: Backups
  /** M1: the service's retirement plan and its phases. */
  readonly retirement: ServiceRetirement
  /** M2: the transfer grants another cloud pulls an account's blobs with. */
  readonly grants: TransferGrants
  private readonly log: Logger
  /** A1, S3: unfinished uploads idle for 24 h are removed. */
  readonly uploads: UploadExpiry
  /** What changed in which account, said to the console (the web console's live data panel). */
  readonly changes: AccountChanges
  private readonly clock: Clock
  private stopJumps: (() => void) | undefined

  constructor(deps: CloudDataDeps, opts: CloudDataOptions = DEFAULT_CLOUD_DATA_OPTIONS) {
    const log = deps.log.child({ component: 'cloud-data' })
    this.log = log
    this.clock = deps.clock
    this.changes = new AccountChanges(
      (change) => deps.accountChanged(change),
      () => deps.consoleListening(),
    )
    this.cloudLog = new CloudLog(deps.db, deps.clock, log, deps.push, (account) => this.changes.touch(account))
    // M1's purge and A3's freeze: one list of the account's tables, what each clearing deletes and keeps.
    const clearing = accountClearing(deps.db, deps.writeHeartbeats)
    this.accounts = new Accounts(deps.db, deps.clock, this.cloudLog, log, clearing.freeze, opts.accounts)
    this.blobs = new BlobStore(deps.dataDir, deps.db, deps.clock, log)
    this.grants = new TransferGrants(deps.clock)
    this.router = new HttpRouter(
      {
        isConsoleToken: deps.isConsoleToken,
        device: (id, secret) => deps.registry.verifiedAccount(id, secret),
        sdk: (token) => this.drive.tokens.verify(token),
        grant: (token) => this.grants.verify(token),
      },
      deps.log.child({ component: 'http' }),
      () => deps.clock.now(),
    )
    const parts: CloudParts = {
      db: deps.db,
      clock: deps.clock,
      log,
      accounts: this.accounts,
      blobs: this.blobs,
      cloudLog: this.cloudLog,
      router: this.router,
    }
    addBlobRoutes(parts)
    addAccountRoutes(parts, (account) => this.retirement.accountNow(account))
    this.uploads = new UploadExpiry(parts)
    this.drive = new CloudDrive(parts, opts.drive)
    this.items = new SyncItems(parts)
    this.bin = new RecycleBin(parts, this.items)
    addSyncRoutes(parts, this.items, this.bin)
    this.accounts.onFreeze('items', (account) => this.items.clear(account))
    this.backups = new Backups(parts, deps.sendPlan, opts.backup)
    this.retirement = new ServiceRetirement(deps.db, deps.clock, this.accounts, this.cloudLog, clearing.purge, log, opts.retirement)
    this.router.guard((req) => this.retirement.guard(req))
    // M1, B1: a plan open at sync-off could only be answered with an upload the cloud now refuses.
    this.retirement.on('uploads-closed', (account) =>
      this.backups.plans.accountOff(account, 'the cloud is retiring: uploads closed at sync-off (M1)'),
    )
    // Every `:account` in a path: a name the rule accepts, or one an account made before the rule still has (account-names.ts).
    this.router.param(
      'account',
      accountPathSchema((name) => this.accounts.get(name) !== undefined),
    )
    addRetirementRoutes(parts, this.retirement)
    this.router.changed((req) => this.requestChanged(req))
  }

  /**
   * A request changed something: its account's data, or (a console call naming none: the retirement plan, a backup by
   * id) every account's.
   */
  private requestChanged({ path, params, principal }: GuardedRequest): void {
    if (principal.kind === 'device' || principal.kind === 'sdk') return this.changes.touch(principal.account)
    const account = params['account']
    if (account !== undefined) return this.changes.touch(account)
    if (!NOT_ACCOUNT_DATA.test(path)) this.changes.everything()
  }

  start(): void {
    warnLegacyNames(this.accounts.names(), this.log)
    this.changes.start()
    // A jump of simulated time moves every account's days left, retention and retirement phase.
    if (this.clock instanceof SimulatedClock) this.stopJumps = this.clock.onJump(() => this.changes.everything(true))
    this.accounts.start()
    this.drive.start()
    this.bin.start()
    this.backups.start()
    this.retirement.start()
    this.uploads.start()
  }

  stop(): void {
    this.stopJumps?.()
    this.changes.stop()
    this.uploads.stop()
    this.retirement.stop()
    this.bin.stop()
    this.accounts.stop()
    this.drive.stop()
    this.backups.stop()
  }

  /** A phone reported its switches (the status topic). */
  deviceStatus(
    deviceId: string,
    status: { cloudService: boolean; findDevice: boolean; backup?: boolean },
    previous: { cloudService: boolean | null; findDevice: boolean | null } | undefined,
  ): void {
    // M1: after the shutdown the switches are only the phone's (its device state keeps them): no account rule acts on them,
    // so no cloud-log entry, backup switch or clean-up is written for an account that is purged or about to be.
    if (this.retirement.shutDown()) return
    this.accounts.deviceStatus(deviceId, status.cloudService, status.findDevice, previous)
    this.backups.deviceStatus(deviceId, status.cloudService, status.backup)
  }

  /** The device subscribed to its plan topic: it gets its open backup plan (B1). */
  planListening(deviceId: string): void {
    this.backups.plans.deviceListening(deviceId)
  }

  deviceGone(deviceId: string): void {
    this.backups.plans.deviceGone(deviceId)
  }
}
