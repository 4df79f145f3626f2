/**
 * B1/B2: the backup schedule. A cron expression on the cloud's clock plans
 * a backup for every phone whose backup switch and cloud service are both on
 * (as the phone last reported them on its status topic); each plan is sent
 * on `fp/v1/<device>/plan` at once if the phone is listening, else when it
 * next subscribes. A phone has at most one open plan: a new one replaces
 * the old (dropped, "superseded"). Backup or the cloud service turned off
 * drops the phone's open plans (state `dropped`, with the reason) and the
 * schedule passes it by until both are on again. From M1's sync-off on (the
 * account's `sync-off` step: the migration window, the deadline, the
 * shutdown) no plan is made: the phone's upload would be refused
 * (UPLOADS_CLOSED), each day, and a purged account would gather plans again.
 *
 * B1 across a jump of the clock (`console clock advance 400d`): the cloud's
 * cron steps through every day of the jump, as every rule does on the
 * simulated clock (common/clock.ts), so the record shows each day's plan,
 * each superseded by the next one the phone had no time to answer. A phone
 * takes no part in a jump: it answers only after it. So a plan goes to the
 * phone once the clock's run of due timers is over (the next turn of the
 * event loop, deliverSoon), and only the plan still open then: after a jump
 * the phone gets the newest plan and makes one catch-up backup, as a
 * periodic job missed while a phone slept runs once when it wakes, not once
 * per missed period; the schedule goes on from the new time. A plan made on
 * an ordinary day goes out the same way, a turn later. If the account froze
 * during the jump (A3: a year without an answered plan), the freeze took the
 * plans and the phone is sent none: before this, it was sent all 365 after
 * the jump and tried each against a frozen account.
 *
 * A plan nobody answers does not stay open for ever: a phone that cannot
 * back up (one with no cloud side, a plain fleet phone), or one whose plan
 * no newer one replaced (the schedule planning no more: M1's sync-off, a
 * monthly cron), has its plan dropped PLAN_OPEN_MS (48 h) after it was
 * planned, on the cloud's clock, with the reason, and a line in the cloud
 * log. A daily plan is superseded by the next before that. M1's sync-off
 * drops the account's open plans at once: their upload would be refused.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Clock } from '../../common/clock.js'
import { CronSchedule } from '../../common/cron.js'
import type { Logger } from '../../common/log.js'
import type { BackupPlan, PlanState, PlanView } from '../../common/cloud/backup-api.js'
import { type Db, one, pluck } from '../db.js'
import { DueTimer } from '../due-timer.js'
import type { CloudLog } from './cloud-log.js'

/** How long a plan stays open for the phone to answer, ms: past it, it is dropped ("not answered"). */
export const PLAN_OPEN_MS = 48 * 3_600_000
const NOT_ANSWERED = 'not answered within 48 h: the phone made no backup for it'

interface PlanRow {
  id: string
  device_id: string
  account: string
  planned_at: number
  state: PlanState
  reason: string | null
  backup_id: string | null
  updated_at: number
}

const toView = (r: PlanRow): PlanView => ({
  id: r.id,
  device: r.device_id,
  plannedAt: r.planned_at,
  state: r.state,
  reason: r.reason,
  backupId: r.backup_id,
  updatedAt: r.updated_at,
})

/** Hands a plan to the phone's live connection; false when it is not listening. */
export type PlanSender = (deviceId: string, plan: BackupPlan) => boolean

interface PlanEvents {
  /** The phone subscribed to its plan topic. */
  listening: [deviceId: string]
  /** The phone's reported switches were recorded. */
  status: [deviceId: string]
}

export class BackupPlans extends EventEmitter<PlanEvents> {
  private readonly schedule: CronSchedule
  private readonly listening = new Set<string>()
  /** Phones with a plan made in this turn of the event loop: each is sent its open plan once the turn is over. */
  private readonly toSend = new Set<string>()
  private sending: NodeJS.Immediate | undefined
  private readonly sql
  /** Drops the plans left open PLAN_OPEN_MS. */
  private readonly expiry: DueTimer

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly cloudLog: CloudLog,
    private readonly log: Logger,
    private readonly send: PlanSender,
    cron: string,
    timezone: string,
  ) {
    super()
    this.sql = {
      upsertDevice: db.prepare<[{ device: string; backup: number; backupGiven: number | null; service: number; now: number }]>(
        `INSERT INTO backup_devices (device_id, backup_on, service_on, updated_at) VALUES (@device, @backup, @service, @now)
         ON CONFLICT (device_id) DO UPDATE SET backup_on = COALESCE(@backupGiven, backup_on), service_on = @service, updated_at = @now`,
      ),
      device: db.prepare<[deviceId: string], { backup_on: number; service_on: number }>(
        'SELECT backup_on, service_on FROM backup_devices WHERE device_id = ?',
      ),
      setBackup: db.prepare<[backupOn: number, at: number, deviceId: string]>(
        'UPDATE backup_devices SET backup_on = ?, updated_at = ? WHERE device_id = ?',
      ),
      eligible: db.prepare<[], { id: string; account: string }>(
        `SELECT d.id, d.account FROM devices d JOIN backup_devices b ON b.device_id = d.id JOIN accounts a ON a.id = d.account
         WHERE b.backup_on = 1 AND b.service_on = 1 AND a.service_off_at IS NULL AND a.frozen_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM retirement_steps r WHERE r.account = d.account AND r.step IN ('sync-off', 'shutdown'))
         ORDER BY d.id`,
      ),
      uploadsClosedAt: db.prepare<[account: string], { done_at: number }>(
        "SELECT done_at FROM retirement_steps WHERE account = ? AND step = 'sync-off'",
      ),
      accountPlanned: db.prepare<[account: string], { id: string }>(
        `SELECT d.id FROM devices d JOIN backup_devices b ON b.device_id = d.id
         WHERE d.account = ? AND b.backup_on = 1 AND b.service_on = 1 LIMIT 1`,
      ),
      insert: db.prepare<[id: string, deviceId: string, account: string, plannedAt: number, updatedAt: number]>(
        `INSERT INTO backup_plans (id, device_id, account, planned_at, state, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)`,
      ),
      get: db.prepare<[id: string], PlanRow>('SELECT * FROM backup_plans WHERE id = ?'),
      open: db.prepare<[deviceId: string], PlanRow>(
        `SELECT * FROM backup_plans WHERE device_id = ? AND state IN ('pending', 'sent') ORDER BY planned_at, rowid`,
      ),
      openOfAccount: db.prepare<[account: string], PlanRow>(
        `SELECT * FROM backup_plans WHERE account = ? AND state IN ('pending', 'sent')`,
      ),
      ofAccount: db.prepare<[account: string, limit: number], PlanRow>(
        'SELECT * FROM backup_plans WHERE account = ? ORDER BY planned_at DESC, rowid DESC LIMIT ?',
      ),
      setState: db.prepare<[state: PlanState, reason: string | null, backupId: string | null, at: number, id: string]>(
        'UPDATE backup_plans SET state = ?, reason = ?, backup_id = ?, updated_at = ? WHERE id = ?',
      ),
      oldestOpen: pluck<[], number | null>(db, "SELECT MIN(planned_at) FROM backup_plans WHERE state IN ('pending', 'sent')"),
      openSince: db.prepare<[plannedBy: number], PlanRow>(
        "SELECT * FROM backup_plans WHERE state IN ('pending', 'sent') AND planned_at <= ? ORDER BY account, planned_at",
      ),
    }
    this.schedule = new CronSchedule(cron, clock, (at) => this.planAll(at), timezone)
    this.expiry = new DueTimer(
      clock,
      () => this.nextExpiry(),
      (now) => this.expire(now),
      log,
      'backup-plan-expiry',
    )
  }

  /** Runs the expiry at once: plans left open while the broker was down are dropped if their time passed. */
  start(): void {
    this.schedule.start()
    this.expiry.startNow()
  }

  stop(): void {
    this.schedule.stop()
    this.expiry.stop()
    // A stop in the turn a plan was made: the database closes next, and the phone gets the plan when it subscribes again.
    clearImmediate(this.sending)
    this.sending = undefined
    this.toSend.clear()
  }

  /** When the schedule fires next, ms since the epoch. */
  nextRun(): number {
    return this.schedule.nextAfter(this.clock.now())
  }

  /** M1: when the retirement's sync-off closed the account's uploads (no plan from then on), or null. */
  uploadsClosedAt(account: string): number | null {
    return this.sql.uploadsClosedAt.get(account)?.done_at ?? null
  }

  /** B2: true when a phone of the account has backup and the cloud service on (as it last reported): the schedule plans for it. */
  plansFor(account: string): boolean {
    return this.sql.accountPlanned.get(account) !== undefined
  }

  /**
   * B2: a phone reported its switches; either off drops its open plans. `backup` undefined: a phone without the switch keeps what the cloud
   * knew.
   */
  deviceStatus(deviceId: string, cloudService: boolean, backup: boolean | undefined): void {
    this.sql.upsertDevice.run({
      device: deviceId,
      backup: backup === true ? 1 : 0,
      backupGiven: backup === undefined ? null : backup ? 1 : 0,
      service: cloudService ? 1 : 0,
      now: this.clock.now(),
    })
    if (!cloudService) this.dropOpen(deviceId, 'the cloud service was turned off on the phone')
    else if (backup === false) this.dropOpen(deviceId, 'cloud backup was turned off on the phone')
    this.emit('status', deviceId)
  }

  /** B4 from the console: the cloud treats the phone's backup as off until the phone reports its switch again. */
  switchOff(deviceId: string, reason: string): void {
    this.sql.setBackup.run(0, this.clock.now(), deviceId)
    this.dropOpen(deviceId, reason)
  }

  /** True once the phone has reported its switches. */
  known(deviceId: string): boolean {
    return this.sql.device.get(deviceId) !== undefined
  }

  /** False only when the phone said its backup is off (a phone not heard from yet counts as on). */
  backupOn(deviceId: string): boolean {
    const row = this.sql.device.get(deviceId)
    return row?.backup_on !== 0
  }

  /** B2: the account's cloud service went off (or M1: its uploads closed at sync-off): every open plan of it is dropped. */
  accountOff(account: string, reason = 'the cloud service of the account was turned off'): void {
    for (const row of this.sql.openOfAccount.all(account)) this.finish(row.id, 'dropped', reason, null)
  }

  /** The phone subscribed to its plan topic: send it its open plan. */
  deviceListening(deviceId: string): void {
    this.listening.add(deviceId)
    this.sendOpen(deviceId)
    this.emit('listening', deviceId)
  }

  isListening(deviceId: string): boolean {
    return this.listening.has(deviceId)
  }

  deviceGone(deviceId: string): void {
    this.listening.delete(deviceId)
  }

  get(id: string): PlanView | undefined {
    const row = this.sql.get.get(id)
    return row && toView(row)
  }

  /** Newest first. */
  list(account: string, limit = 20): PlanView[] {
    return this.sql.ofAccount.all(account, limit).map(toView)
  }

  /** True while the plan may still be answered with a backup. */
  isOpen(id: string, deviceId: string): boolean {
    const plan = this.get(id)
    return plan !== undefined && plan.device === deviceId && (plan.state === 'pending' || plan.state === 'sent')
  }

  /** Moves a plan to a final state. */
  finish(id: string, state: 'done' | 'failed' | 'dropped', reason: string | null, backupId: string | null): void {
    this.sql.setState.run(state, reason, backupId, this.clock.now(), id)
  }

  /** B1: one run of the schedule. */
  planAll(at: number): number {
    let planned = 0
    for (const { id, account } of this.sql.eligible.all()) {
      for (const old of this.sql.open.all(id)) this.finish(old.id, 'dropped', 'superseded by a newer plan', null)
      this.sql.insert.run(randomUUID(), id, account, at, at)
      planned++
      this.deliverSoon(id)
    }
    if (planned > 0) this.expiry.dueBy(at + PLAN_OPEN_MS)
    this.log.info({ planned, at: new Date(at).toISOString() }, 'backup plans made')
    return planned
  }

  private nextExpiry(): number | null {
    const oldest = one(this.sql.oldestOpen)
    return oldest === null ? null : oldest + PLAN_OPEN_MS
  }

  /** Drops every plan open PLAN_OPEN_MS since it was planned, with one cloud-log line per account. */
  private expire(now: number): void {
    const rows = this.sql.openSince.all(now - PLAN_OPEN_MS)
    for (const row of rows) this.finish(row.id, 'dropped', NOT_ANSWERED, null)
    const byAccount = new Map<string, string[]>()
    for (const row of rows) byAccount.set(row.account, [...(byAccount.get(row.account) ?? []), row.device_id])
    for (const [account, devices] of byAccount)
      this.cloudLog.record(account, 'backup-plan-dropped', `${devices.join(', ')}: backup plan ${NOT_ANSWERED}`, devices.length)
  }

  private dropOpen(deviceId: string, reason: string): void {
    const open = this.sql.open.all(deviceId)
    for (const row of open) this.finish(row.id, 'dropped', reason, null)
    if (open.length > 0)
      this.cloudLog.record(
        open[0]?.account as string,
        'backup-plan-dropped',
        `${deviceId}: ${reason}; its pending backup plan was dropped`,
        open.length,
      )
  }

  /** Sends the phone its open plan once the clock's due timers have all run: a jump hands it the newest alone. */
  private deliverSoon(deviceId: string): void {
    this.toSend.add(deviceId)
    this.sending ??= setImmediate(() => {
      this.sending = undefined
      const devices = [...this.toSend]
      this.toSend.clear()
      for (const id of devices) this.sendOpen(id)
    })
  }

  private sendOpen(deviceId: string): void {
    for (const row of this.sql.open.all(deviceId)) this.deliver(row)
  }

  private deliver(row: PlanRow): void {
    if (!this.listening.has(row.device_id)) return
    if (this.send(row.device_id, { id: row.id, device: row.device_id, plannedAt: row.planned_at }) && row.state === 'pending') {
      this.sql.setState.run('sent', null, null, this.clock.now(), row.id)
    }
  }
}
