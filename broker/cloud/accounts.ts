/**
 * Accounts (A1-A3): membership and what it changes (quota, recycle-bin
 * window), quota use, the account's cloud service state as its phones
 * report it, and the year of inactivity after which an account is frozen
 * and its cloud data cleared. Every rule reads the one clock.
 *
 * - A1: `charge` refuses a store that would take the account past its quota;
 *   nothing already stored is touched.
 * - A2: a membership that ends changes the tier and nothing else: the quota
 *   and the bin window are read from the tier whenever they are needed.
 * - A3: `touch` records an activity from A3's list and resets the year; a
 *   notice goes out `freezeWarningMs` before the freeze; at the freeze every
 *   registered clearer and the freeze's list of tables (account-clearing.ts)
 *   remove the account's data, and its cloud log says what went, kind by kind,
 *   and what stays; its phones are sent a notice of it, and its change feeds
 *   say when it was (clearedAt), so a phone uploads its items again. The next
 *   activity brings it back, empty.
 */
import type { AccountView, Tier } from '../../common/cloud/account-api.js'
import { EventEmitter } from 'node:events'
import { utcDay, type Clock } from '../../common/clock.js'
import { FakephoneError } from '../../common/errors.js'
import { formatBytes } from '../../common/format-bytes.js'
import type { Logger } from '../../common/log.js'
import { type Db, one, pluck } from '../db.js'
import type { CloudLog } from './cloud-log.js'
import { DueTimer } from '../due-timer.js'
import { quoted } from '../../common/terminal-text.js'
import { type ClearRest, describeCleared, FREEZE_KEEPS, totalCleared } from './account-clearing.js'

export type { Tier } from '../../common/cloud/account-api.js'

/** A3's list: what counts as cloud activity. */
export type Activity = 'console-sign-in' | 'find-device-on' | 'backup' | 'sync' | 'delete' | 'drive' | 'membership'

const DAY = 86_400_000
const GB = 1024 ** 3

export interface AccountRules {
  /** A1: bytes a free account may store. */
  freeQuotaBytes: number
  /** Bytes a premium member may store. */
  premiumQuotaBytes: number
  /** R2: recycle-bin window of a free account, ms. */
  freeBinMs: number
  /** R2: recycle-bin window of a premium member, ms. */
  premiumBinMs: number
  /** A3: an account with no activity for this long is frozen, ms. */
  inactivityMs: number
  /** A3: the owner is told this long before the freeze, ms. */
  freezeWarningMs: number
}

export const DEFAULT_ACCOUNT_RULES: AccountRules = {
  freeQuotaBytes: 5 * GB,
  premiumQuotaBytes: 200 * GB,
  freeBinMs: 30 * DAY,
  premiumBinMs: 180 * DAY,
  inactivityMs: 365 * DAY,
  freezeWarningMs: 30 * DAY,
}

/** The console's view of an account: its type is the schema's the console client parses (common/cloud/account-api.ts). */
export type { AccountView } from '../../common/cloud/account-api.js'

interface Row {
  id: string
  tier: Tier
  premium_until: number | null
  used_bytes: number
  last_activity_at: number
  last_activity: string
  freeze_warned_at: number | null
  frozen_at: number | null
  cleared_at: number | null
  service_off_at: number | null
}

export type AccountErrorCode = 'NOT_FOUND' | 'QUOTA_EXCEEDED' | 'FROZEN' | 'SERVICE_NOT_ENABLED'

export class AccountError extends FakephoneError {
  declare readonly code: AccountErrorCode
  constructor(
    code: AccountErrorCode,
    message: string,
    /** Go into the error body beside `error` and `code` (FROZEN: `clearedAt`). */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(code, message)
  }
}

const notFound = (account: string): AccountError => new AccountError('NOT_FOUND', `account ${quoted(account)} not found`)

/**
 * A3: the refusal of a frozen account, with when its data was cleared: a phone learns from it at once that the cloud no
 * longer holds its items, the same value its change feed says once the account is back (so it uploads them once).
 */
const frozen = (account: string, clearedAt: number | null): AccountError =>
  new AccountError(
    'FROZEN',
    `account ${quoted(account)} was frozen after a year without activity and its cloud data cleared; sign in to the console to ` +
      `use it again`,
    { clearedAt },
  )

/**
 * A3 leaves alone an account M1's purge deleted: nothing is left to clear, and no activity can bring it back (every
 * request of it answers 410), so a notice to sign in to keep it would be false.
 */
const NOT_PURGED = "NOT EXISTS (SELECT 1 FROM retirement_steps r WHERE r.account = a.id AND r.step = 'purge')"

/** A1's check against an account already read: M2's batch routes read it once for a thousand blobs. */
export function assertRoom(
  a: Pick<AccountView, 'id' | 'frozenAt' | 'clearedAt' | 'usedBytes' | 'quotaBytes'>,
  bytes: number,
  what: string,
): void {
  if (a.frozenAt !== null) throw frozen(a.id, a.clearedAt)
  if (bytes > 0 && a.usedBytes + bytes > a.quotaBytes) {
    throw new AccountError(
      'QUOTA_EXCEEDED',
      `over quota: ${what} needs ${formatBytes(bytes)} but ${formatBytes(Math.max(0, a.quotaBytes - a.usedBytes))} of ` +
        `${formatBytes(a.quotaBytes)} is free; nothing stored was touched`,
    )
  }
}

/** D3: the words every entry point answers with while the account's cloud service is off. */
export const SERVICE_NOT_ENABLED = "cloud service is not enabled: turn it on in the phone's settings"

interface AccountEvents {
  /** The account's last phone with the cloud service on turned it off. */
  'service-off': [account: string, at: number]
  /** A phone of the account turned the cloud service back on. */
  'service-on': [account: string, at: number]
  /** A membership started or ended (A2). */
  membership: [account: string, tier: Tier]
}

/** A3: the title of the notice each phone of an account is sent when the account is frozen. */
export const FREEZE_NOTICE_TITLE = 'Your cloud account was frozen and its cloud data cleared'

/** A3: what the freeze's notice says: when, why, what went, what the phone does once the account is back. */
function freezeNotice(lastActivityAt: number, frozenAt: number): string {
  return (
    `No cloud activity since ${utcDay(lastActivityAt)}: on ${utcDay(frozenAt)} the account was frozen and its cloud data cleared ` +
    '(synced items, drive files, backups, location history). Sign in to the console to use it again: this phone then ' +
    'uploads the items it still holds.'
  )
}

/** Removes all of an account's data of one kind (A3's freeze, M1's purge); returns how many entries went. */
export type Clearer = (account: string, now: number) => number

export class Accounts extends EventEmitter<AccountEvents> {
  private readonly clearers = new Map<string, Clearer>()
  private readonly membershipTimer: DueTimer
  private readonly freezeTimer: DueTimer
  private readonly sql

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly cloudLog: CloudLog,
    private readonly log: Logger,
    /** A3: what the freeze deletes besides the registered clearers (account-clearing.ts). */
    private readonly freezeRest: ClearRest,
    readonly rules: AccountRules = DEFAULT_ACCOUNT_RULES,
  ) {
    super()
    this.sql = {
      get: db.prepare<[id: string], Row>('SELECT * FROM accounts WHERE id = ?'),
      list: db.prepare<[], Row>('SELECT * FROM accounts ORDER BY id'),
      names: pluck<[], string>(db, 'SELECT id FROM accounts'),
      devices: pluck<[account: string], string>(db, 'SELECT id FROM devices WHERE account = ? ORDER BY id'),
      accountOf: pluck<[deviceId: string], string>(db, 'SELECT account FROM devices WHERE id = ?'),
      addUsed: db.prepare<[bytes: number, id: string]>('UPDATE accounts SET used_bytes = MAX(0, used_bytes + ?) WHERE id = ?'),
      touch: db.prepare<[at: number, activity: string, id: string]>(
        'UPDATE accounts SET last_activity_at = ?, last_activity = ?, freeze_warned_at = NULL, frozen_at = NULL WHERE id = ?',
      ),
      membership: db.prepare<[tier: Tier, premiumUntil: number | null, id: string]>(
        'UPDATE accounts SET tier = ?, premium_until = ? WHERE id = ?',
      ),
      // A phone that has not said counts as on: a new phone is signed in with the service on. EXISTS stops at the first
      // phone on, where COUNT(*) read every phone of the account: asked on each phone's status (one per connect), that
      // was 2.5 ms a status in an account of 10,000 phones, and a fleet's ramp into one account grew with its square.
      anyOn: pluck<[account: string], number>(
        db,
        `SELECT EXISTS (SELECT 1 FROM devices d JOIN device_state s ON s.device_id = d.id
         WHERE d.account = ? AND (s.cloud_service IS NULL OR s.cloud_service = 1))`,
      ),
      serviceOff: db.prepare<[offAt: number | null, id: string]>('UPDATE accounts SET service_off_at = ? WHERE id = ?'),
      nextMembershipEnd: pluck<[], number | null>(
        db,
        "SELECT MIN(premium_until) FROM accounts WHERE tier = 'premium' AND premium_until IS NOT NULL",
      ),
      endedMemberships: pluck<[now: number], string>(
        db,
        "SELECT id FROM accounts WHERE tier = 'premium' AND premium_until IS NOT NULL AND premium_until <= ?",
      ),
      nextFreeze: pluck<[{ warnAt: number; freezeAt: number }], number | null>(
        db,
        `SELECT MIN(CASE WHEN freeze_warned_at IS NULL THEN last_activity_at + @warnAt ELSE last_activity_at + @freezeAt END)
         FROM accounts a WHERE frozen_at IS NULL AND ${NOT_PURGED}`,
      ),
      toWarn: pluck<[idleFor: number, now: number], string>(
        db,
        `SELECT id FROM accounts a WHERE frozen_at IS NULL AND freeze_warned_at IS NULL AND last_activity_at + ? <= ? AND ${NOT_PURGED}`,
      ),
      warned: db.prepare<[at: number, id: string]>('UPDATE accounts SET freeze_warned_at = ? WHERE id = ?'),
      toFreeze: pluck<[idleFor: number, now: number], string>(
        db,
        `SELECT id FROM accounts a WHERE frozen_at IS NULL AND last_activity_at + ? <= ? AND ${NOT_PURGED}`,
      ),
      // The data goes with the freeze; when stays after the account is back (clearedAt).
      frozen: db.prepare<[at: number, clearedAt: number, id: string]>('UPDATE accounts SET frozen_at = ?, cleared_at = ? WHERE id = ?'),
    }
    this.membershipTimer = new DueTimer(
      clock,
      () => one(this.sql.nextMembershipEnd),
      (now) => this.endMemberships(now),
      log,
      'membership-end',
    )
    this.freezeTimer = new DueTimer(
      clock,
      () => one(this.sql.nextFreeze, { warnAt: rules.inactivityMs - rules.freezeWarningMs, freezeAt: rules.inactivityMs }),
      (now) => this.freezeInactive(now),
      log,
      'inactivity-freeze',
      // Accounts are made by `fakephone device add`, possibly in another process: look again daily.
      DAY,
    )
  }

  start(): void {
    this.membershipTimer.start()
    this.freezeTimer.start()
  }

  stop(): void {
    this.membershipTimer.stop()
    this.freezeTimer.stop()
  }

  /** A3, M1: `clear` removes the account's data of kind `name` (the freeze's and the purge's log entries name it) at either. */
  onFreeze(name: string, clear: Clearer): void {
    this.clearers.set(name, clear)
  }

  get(id: string): AccountView | undefined {
    const row = this.sql.get.get(id)
    return row && this.view(row)
  }

  /** The account, or an AccountError NOT_FOUND. */
  need(id: string): AccountView {
    const view = this.get(id)
    if (!view) throw notFound(id)
    return view
  }

  list(): AccountView[] {
    return this.sql.list.all().map((r) => this.view(r))
  }

  /** Every account's name (id), without the rest of its view. */
  names(): string[] {
    return this.sql.names.all()
  }

  accountOf(deviceId: string): string | undefined {
    return this.sql.accountOf.get(deviceId)
  }

  devices(account: string): string[] {
    return this.sql.devices.all(account)
  }

  /**
   * A1: counts `bytes` against the account's quota, or refuses with the
   * reason when they do not fit; a frozen account stores nothing. Call inside
   * the transaction that stores the data, so a refusal stores nothing.
   */
  charge(account: string, bytes: number, what: string): void {
    this.assertFits(account, bytes, what)
    this.sql.addUsed.run(bytes, account)
  }

  /**
   * A1: throws the reason `bytes` more would not fit (or the account is frozen); stores nothing. From the account's row
   * alone, not its whole view: `charge` runs per stored item (M2's import: per record), and the view lists its devices.
   */
  assertFits(account: string, bytes: number, what: string): void {
    const row = this.sql.get.get(account)
    if (!row) throw notFound(account)
    const { id, frozen_at: frozenAt, cleared_at: clearedAt, used_bytes: usedBytes } = row
    assertRoom({ id, frozenAt, clearedAt, usedBytes, quotaBytes: this.quotaOf(row.tier) }, bytes, what)
  }

  /** Gives back quota when stored data is removed. */
  release(account: string, bytes: number): void {
    this.sql.addUsed.run(-bytes, account)
  }

  /** D3, B2: throws SERVICE_NOT_ENABLED while the account's cloud service is off, FROZEN when frozen; else answers it. */
  assertServiceOn(account: string): AccountView {
    const a = this.need(account)
    if (a.frozenAt !== null) throw frozen(account, a.clearedAt)
    if (!a.serviceOn) throw new AccountError('SERVICE_NOT_ENABLED', SERVICE_NOT_ENABLED)
    return a
  }

  /** A3: an activity from the list resets the year (and signs a frozen account back in, empty). */
  touch(account: string, activity: Activity): void {
    const now = this.clock.now()
    const changed = this.sql.touch.run(now, activity, account).changes
    // The account's next step is now its warning, a year less the notice from now; no other account's moved.
    if (changed > 0) this.freezeTimer.dueBy(now + this.rules.inactivityMs - this.rules.freezeWarningMs)
  }

  /** A2: starts a membership (until a time, or open-ended with null) or ends it now (tier free). */
  setMembership(account: string, tier: Tier, until: number | null): AccountView {
    this.need(account)
    this.sql.membership.run(tier, tier === 'premium' ? until : null, account)
    this.touch(account, 'membership')
    this.membershipTimer.reschedule()
    this.cloudLog.record(
      account,
      'membership',
      tier === 'premium' ? `premium until ${until === null ? 'cancelled' : new Date(until).toISOString()}` : 'membership ended: free tier',
    )
    this.emit('membership', account, tier)
    return this.need(account)
  }

  /** X1/D3/B2: a phone reported its switches; the account's service is off once no phone has it on. */
  deviceStatus(
    deviceId: string,
    cloudService: boolean,
    findDevice: boolean,
    previous: { cloudService: boolean | null; findDevice: boolean | null } | undefined,
  ): void {
    // Only registered devices publish a status.
    const account = this.accountOf(deviceId) as string
    const now = this.clock.now()
    if (findDevice && cloudService && previous?.findDevice !== true) this.touch(account, 'find-device-on')
    const on = one(this.sql.anyOn, account) > 0
    // The row, not the view: the view lists the account's devices, which this does not need.
    const offAt = (this.sql.get.get(account) as Row).service_off_at
    if (!on && offAt === null) {
      this.sql.serviceOff.run(now, account)
      this.cloudLog.record(account, 'service-off', `cloud service turned off on ${deviceId}`)
      this.emit('service-off', account, now)
    } else if (on && offAt !== null) {
      this.sql.serviceOff.run(null, account)
      this.cloudLog.record(account, 'service-on', `cloud service turned on on ${deviceId}`)
      this.emit('service-on', account, now)
    }
  }

  /**
   * Removes all of the account's cloud data with every registered clearer and then `rest` (A3's freeze, M1's purge:
   * account-clearing.ts), in one transaction with `also`, told how many entries went, by kind; answers them.
   */
  clearData(account: string, now: number, rest: ClearRest, also: (removed: Record<string, number>) => void): Record<string, number> {
    const removed: Record<string, number> = {}
    this.db.transaction(() => {
      for (const [name, clear] of this.clearers) removed[name] = clear(account, now)
      Object.assign(removed, rest(account))
      also(removed)
    })()
    return removed
  }

  private endMemberships(now: number): void {
    for (const id of this.sql.endedMemberships.all(now)) {
      this.sql.membership.run('free', null, id)
      this.cloudLog.record(id, 'membership', 'membership ended: free tier, 30-day recycle bin, free quota; stored data unchanged')
      this.emit('membership', id, 'free')
    }
  }

  private freezeInactive(now: number): void {
    const { inactivityMs, freezeWarningMs } = this.rules
    for (const id of this.sql.toWarn.all(inactivityMs - freezeWarningMs, now)) {
      this.sql.warned.run(now, id)
      const a = this.need(id)
      this.cloudLog.notify(
        id,
        'freeze-warning',
        'Your cloud account will be frozen',
        `No cloud activity since ${utcDay(a.lastActivityAt)}. On ${utcDay(a.lastActivityAt + inactivityMs)} the account will be ` +
          'frozen and its cloud data cleared. Sign in, sync, back up or switch Find Device on to keep it.',
      )
    }
    for (const id of this.sql.toFreeze.all(inactivityMs, now)) {
      const { lastActivity, lastActivityAt } = this.need(id)
      const removed = this.clearData(id, now, this.freezeRest, (cleared) => {
        this.sql.frozen.run(now, now, id)
        this.cloudLog.record(
          id,
          'inactivity-freeze',
          `account frozen after a year without activity (the last: ${lastActivity} on ` +
            `${utcDay(lastActivityAt)}); cloud data cleared: ${describeCleared(cleared)}. ` +
            `Kept: ${FREEZE_KEEPS}.`,
          totalCleared(cleared),
        )
      })
      this.log.warn({ account: id, removed }, 'A3: account frozen after a year without activity')
      // After the clearing (which drops the notices not delivered yet, its warning among them), so this one stays; its
      // phones are told on the push channel, which a freeze does not close (X1), and get it late, not never (X3).
      this.cloudLog.tell(id, FREEZE_NOTICE_TITLE, freezeNotice(lastActivityAt, now))
    }
  }

  private quotaOf(tier: Tier): number {
    return tier === 'premium' ? this.rules.premiumQuotaBytes : this.rules.freeQuotaBytes
  }

  private view(r: Row): AccountView {
    const { rules } = this
    const premium = r.tier === 'premium'
    return {
      id: r.id,
      tier: r.tier,
      premiumUntil: r.premium_until,
      quotaBytes: this.quotaOf(r.tier),
      usedBytes: r.used_bytes,
      binMs: premium ? rules.premiumBinMs : rules.freeBinMs,
      lastActivityAt: r.last_activity_at,
      lastActivity: r.last_activity,
      freezesAt: r.frozen_at === null ? r.last_activity_at + rules.inactivityMs : null,
      frozenAt: r.frozen_at,
      clearedAt: r.cleared_at,
      serviceOn: r.service_off_at === null,
      serviceOffAt: r.service_off_at,
      devices: this.devices(r.id),
    }
  }
}
