/**
 * M1: retiring the cloud service on announced dates, every one on the cloud's
 * clock. The plan (`console service retire`) has four dates, in order:
 *   - announce:  every account is told the dates (push, kind `retirement`);
 *   - sync-off:  the migration window: the cloud keeps the data read-only --
 *                phones and SDK apps may read, export and migrate it, every
 *                upload is refused with the reason (409 SYNC_STOPPED for
 *                sync, UPLOADS_CLOSED for the rest);
 *   - deadline:  an account that did not migrate or export by its deadline
 *                (the plan's, or its own: staggered notices) loses access:
 *                sign-in and every cloud API answer 410 Gone with the reason
 *                and the date; Find Device keeps working;
 *   - shutdown:  every phone is told the service is gone (kind
 *                `service-gone`); phones' cloud requests, Find Device commands,
 *                heartbeats and behaviour logs are refused, and their switches
 *                start no rule (cloud-data.ts, server.ts).
 * An account that migrated or exported (M2/M3 call `markMigrated`) keeps its
 * source data, readable from the console, for a guarantee period (30 days)
 * after its migration; every account's data is purged at shutdown at the
 * earliest, in batches, each account told a week before: all of its data and
 * its phones', but the record of its retirement and its phones' registration
 * (account-clearing.ts says table by table what goes and what stays, and
 * the purge's cloud-log entry, shown by `console service status`, how many of
 * each went); once it committed, 'purged' tells the broker, which clears the
 * presence and status it retains of the account's phones. Reminders go out
 * a week before sync-off, each deadline and the shutdown.
 *
 * Each of these is a step per account, done once (`retirement_steps`), each
 * logged in the account's cloud log; one DueTimer sleeps until the next.
 * The plan's types and dates: retirement-plan.ts; what each step says:
 * retirement-notices.ts; the refusals: retirement-guard.ts.
 */
import { EventEmitter } from 'node:events'
import { utcDate, type Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import { type Db, pluck } from '../db.js'
import { DueTimer } from '../due-timer.js'
import { HttpError, type GuardedRequest } from '../http/router.js'
import type { Accounts } from './accounts.js'
import type { CloudLog } from './cloud-log.js'
import { accessRefusal, refusal } from './retirement-guard.js'
import { type ClearRest, describeCleared, PURGE_KEEPS, totalCleared } from './account-clearing.js'
import { STEPS, stepOutcome, type Step } from './retirement-notices.js'
import {
  phaseAt,
  PLAN_SQL,
  planOf,
  type PlanRow,
  resolveDate,
  type Access,
  type AccountMigration,
  type AccountRetirement,
  type MigrationHow,
  type Phase,
  type PlanInput,
  type RetirementPlan,
  type RetirementStatus,
} from './retirement-plan.js'
import { quoted } from '../../common/terminal-text.js'

export type { AccountMigration, MigrationHow, RetirementPlan, RetirementStatus } from './retirement-plan.js'

const DAY = 86_400_000

export interface RetirementRules {
  /** After an account migrated or exported, its source data is kept at least this long, ms. */
  guaranteeMs: number
  /** Reminders go out this long before sync-off, an account's deadline and the shutdown, ms. */
  remindAheadMs: number
  /** An account's owner is told this long before its data is purged, ms. */
  purgeNoticeMs: number
  /** Accounts purged per batch. */
  purgeBatch: number
  /** Time between two purge batches, ms. */
  purgeGapMs: number
}

export const DEFAULT_RETIREMENT_RULES: RetirementRules = {
  guaranteeMs: 30 * DAY,
  remindAheadMs: 7 * DAY,
  purgeNoticeMs: 7 * DAY,
  purgeBatch: 50,
  purgeGapMs: DAY,
}

interface DueStep {
  account: string
  step: Step
  at: number
}

const badPlan = (message: string): HttpError => new HttpError(400, 'BAD_REQUEST', message)

interface RetirementEvents {
  /** An account's data was purged (its transaction committed): the broker clears what it retains of its phones. */
  purged: [account: string]
  /** The account's sync-off step ran: its uploads are closed from now on (B1: its open backup plans are dropped). */
  'uploads-closed': [account: string]
}

export class ServiceRetirement extends EventEmitter<RetirementEvents> {
  private readonly sql
  private readonly timer: DueTimer
  /** The plan as last read; undefined until read. */
  private cached: RetirementPlan | null | undefined

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly accounts: Accounts,
    private readonly cloudLog: CloudLog,
    /** What the purge deletes besides the Accounts clearers (account-clearing.ts). */
    private readonly purgeRest: ClearRest,
    private readonly log: Logger,
    readonly rules: RetirementRules = DEFAULT_RETIREMENT_RULES,
  ) {
    super()
    this.sql = {
      plan: db.prepare<[], PlanRow>(PLAN_SQL),
      setPlan: db.prepare<[announce: number, syncOff: number, deadline: number, shutdown: number, createdAt: number]>(
        `INSERT OR REPLACE INTO service_retirement (id, announce_at, sync_off_at, deadline_at, shutdown_at, created_at)
         VALUES (1, ?, ?, ?, ?, ?)`,
      ),
      purged: db.prepare<[at: number]>('UPDATE service_retirement SET last_purge_at = ?'),
      accountIds: pluck<[], string>(db, 'SELECT id FROM accounts ORDER BY id'),
      deadlines: db.prepare<[], { account: string; deadline_at: number }>('SELECT account, deadline_at FROM retirement_deadlines'),
      deadline: pluck<[account: string], number>(db, 'SELECT deadline_at FROM retirement_deadlines WHERE account = ?'),
      setDeadline: db.prepare<[account: string, at: number]>(
        'INSERT OR REPLACE INTO retirement_deadlines (account, deadline_at) VALUES (?, ?)',
      ),
      dropDeadlines: db.prepare('DELETE FROM retirement_deadlines'),
      migrations: db.prepare<[], { account: string } & AccountMigration>('SELECT account, how, at, detail FROM account_migrations'),
      migration: db.prepare<[account: string], AccountMigration>('SELECT how, at, detail FROM account_migrations WHERE account = ?'),
      migrated: db.prepare<[account: string, how: MigrationHow, at: number, detail: string]>(
        'INSERT OR REPLACE INTO account_migrations (account, how, at, detail) VALUES (?, ?, ?, ?)',
      ),
      steps: db.prepare<[], { account: string; step: Step; done_at: number }>('SELECT account, step, done_at FROM retirement_steps'),
      stepDone: pluck<[account: string, step: Step], number>(db, 'SELECT done_at FROM retirement_steps WHERE account = ? AND step = ?'),
      done: db.prepare<[account: string, step: Step, at: number]>('INSERT INTO retirement_steps (account, step, done_at) VALUES (?, ?, ?)'),
      purgeRecord: pluck<[account: string], string>(
        db,
        "SELECT message FROM cloud_log WHERE account = ? AND rule = 'retirement-purge' ORDER BY seq DESC LIMIT 1",
      ),
    }
    this.timer = new DueTimer(
      clock,
      () => this.nextDue(),
      (now) => this.runDue(now),
      log,
      'service-retirement',
      // Accounts are made by `fakephone device add`, possibly in another process: look again daily.
      DAY,
    )
  }

  /** Runs what fell due while the broker was down, then sleeps until the next step. */
  start(): void {
    this.timer.startNow()
  }

  stop(): void {
    this.timer.stop()
  }

  /** The plan; kept in memory once read (only setPlan writes it), as every request and heartbeat asks for it. */
  plan(): RetirementPlan | null {
    if (this.cached === undefined) this.cached = this.readPlan()
    return this.cached
  }

  private readPlan(): RetirementPlan | null {
    return planOf(this.sql.plan.get())
  }

  /**
   * Sets the plan: four dates, each after the one before, the first not in
   * the past. A plan may be replaced until it is announced (its per-account
   * deadlines go with it); after that its dates are a promise.
   */
  setPlan(input: PlanInput): RetirementStatus {
    const now = this.clock.now()
    const old = this.plan()
    if (old && now >= old.announceAt) {
      throw new HttpError(
        409,
        'ALREADY_ANNOUNCED',
        `the retirement was announced on ${utcDate(old.announceAt)}: its dates no longer change`,
      )
    }
    const dates: [string, number][] = [
      ['announce', resolveDate(input.announce, now, 'announce')],
      ['sync-off', resolveDate(input.syncOff, now, 'sync-off')],
      ['migration-deadline', resolveDate(input.migrationDeadline, now, 'migration-deadline')],
      ['shutdown', resolveDate(input.shutdown, now, 'shutdown')],
    ]
    const [announceAt, syncOffAt, deadlineAt, shutdownAt] = dates.map(([, at]) => at) as [number, number, number, number]
    if (announceAt < now) throw badPlan(`announce (${utcDate(announceAt)}) is in the past: the cloud's clock says ${utcDate(now)}`)
    for (let i = 1; i < dates.length; i++) {
      const [name, at] = dates[i] as [string, number]
      const [before, beforeAt] = dates[i - 1] as [string, number]
      if (at <= beforeAt) throw badPlan(`${name} (${utcDate(at)}) must come after ${before} (${utcDate(beforeAt)})`)
    }
    this.db.transaction(() => {
      this.sql.setPlan.run(announceAt, syncOffAt, deadlineAt, shutdownAt, now)
      this.sql.dropDeadlines.run()
    })()
    this.cached = undefined
    this.log.warn(
      { announceAt, syncOffAt, deadlineAt, shutdownAt, replaced: old !== null },
      `M1: the service retires: announced ${utcDate(announceAt)}, sync off ${utcDate(syncOffAt)}, ` +
        `deadline ${utcDate(deadlineAt)}, shutdown ${utcDate(shutdownAt)}`,
    )
    this.timer.reschedule()
    return this.status()
  }

  /** A deadline of the account's own (staggered notices): between sync-off and shutdown, not in the past, not yet passed. */
  setDeadline(account: string, value: string): AccountRetirement {
    const plan = this.needPlan()
    const id = this.accounts.need(account).id
    const now = this.clock.now()
    const at = resolveDate(value, now, 'deadline')
    // Passed is the time, not its step: an account made after the deadline has its step run only at the next due one.
    if (now >= this.deadlineOf(plan, id)) {
      throw new HttpError(409, 'DEADLINE_PASSED', `the deadline of account ${quoted(id)} has passed: it no longer changes`)
    }
    if (at < now) throw badPlan(`deadline (${utcDate(at)}) is in the past: the cloud's clock says ${utcDate(now)}`)
    if (at < plan.syncOffAt || at > plan.shutdownAt) {
      throw badPlan(
        `deadline (${utcDate(at)}) must be from sync-off (${utcDate(plan.syncOffAt)}) to shutdown (${utcDate(plan.shutdownAt)})`,
      )
    }
    this.sql.setDeadline.run(id, at)
    if (now >= plan.announceAt) {
      this.cloudLog.notify(
        id,
        'retirement-deadline-set',
        'Your data has a new deadline',
        `Export or migrate this account's data before ${utcDate(at)}: after that it loses access.`,
        'retirement',
      )
    } else this.cloudLog.record(id, 'retirement-deadline-set', `own migration deadline: ${utcDate(at)}`)
    this.timer.reschedule()
    return this.accountView(plan, id, now) as AccountRetirement
  }

  /**
   * The interface for M2 and M3: the account migrated to another cloud or
   * exported its data (`at`, by default now). It keeps access past its
   * deadline (read-only), and its source data is kept at least
   * `guaranteeMs` after `at`. A later migration restarts the guarantee.
   */
  markMigrated(account: string, how: MigrationHow, at: number = this.clock.now(), detail = ''): AccountMigration {
    const id = this.accounts.need(account).id
    this.sql.migrated.run(id, how, at, detail)
    this.cloudLog.record(
      id,
      'retirement-migrated',
      `${how === 'migrate' ? 'migrated' : 'exported'} on ${utcDate(at)}${detail ? ` (${detail})` : ''}: its source data is kept ` +
        `until ${utcDate(at + this.rules.guaranteeMs)} at least`,
    )
    this.timer.reschedule()
    return { how, at, detail }
  }

  /** The account's place in the retirement (its access, deadline, purge); null while the service has no plan. */
  accountNow(account: string): AccountRetirement | null {
    const plan = this.plan()
    return plan ? this.accountView(plan, account, this.clock.now()) : null
  }

  migration(account: string): AccountMigration | null {
    return this.sql.migration.get(account) ?? null
  }

  /** True once the service shut down: Find Device heartbeats are not stored. */
  shutDown(): boolean {
    const plan = this.plan()
    return plan !== null && this.clock.now() >= plan.shutdownAt
  }

  status(): RetirementStatus {
    const now = this.clock.now()
    const plan = this.plan()
    if (!plan) return { now, plan, phase: 'in-service', next: null, accounts: [] }
    const boundaries: [Phase, number][] = [
      ['announced', plan.announceAt],
      ['migration-window', plan.syncOffAt],
      ['deadline-passed', plan.deadlineAt],
      ['shut-down', plan.shutdownAt],
    ]
    const upcoming = boundaries.find(([, at]) => at > now)
    return {
      now,
      plan,
      phase: phaseAt(plan, plan.deadlineAt, now),
      next: upcoming ? { phase: upcoming[0], at: upcoming[1] } : null,
      accounts: this.sql.accountIds.all().map((id) => this.accountView(plan, id, now) as AccountRetirement),
    }
  }

  /** The router's guard (every route, once the caller is known): see retirement-guard.ts. */
  guard(req: GuardedRequest): void {
    const plan = this.plan()
    if (!plan) return
    const now = this.clock.now()
    const refused = refusal(req, { plan, now, account: (id) => this.account(plan, id, now) })
    if (refused) throw refused
  }

  /**
   * For M2/M3 routes that do not sit under `/api/accounts/:account` (where the
   * guard already answers): throws the 410 once the account lost access.
   */
  assertAccountOpen(account: string): void {
    const plan = this.plan()
    const now = this.clock.now()
    const view = plan && this.account(plan, account, now)
    const refused = view && accessRefusal(plan as RetirementPlan, view, now, false)
    if (refused) throw refused
  }

  /** The account's place in the retirement; undefined when there is no such account. */
  private account(plan: RetirementPlan, id: string, now: number): AccountRetirement | undefined {
    return this.accounts.get(id) && this.accountView(plan, id, now)
  }

  private needPlan(): RetirementPlan {
    const plan = this.plan()
    if (!plan)
      throw new HttpError(409, 'NO_PLAN', 'the service has no retirement plan: set one first (console service retire --announce ...)')
    return plan
  }

  private deadlineOf(plan: RetirementPlan, account: string): number {
    return this.sql.deadline.get(account) ?? plan.deadlineAt
  }

  private purgeAt(plan: RetirementPlan, migration: AccountMigration | null | undefined): number {
    return migration ? Math.max(plan.shutdownAt, migration.at + this.rules.guaranteeMs) : plan.shutdownAt
  }

  private accountView(plan: RetirementPlan, account: string, now: number): AccountRetirement {
    const own = this.sql.deadline.get(account)
    const deadlineAt = own ?? plan.deadlineAt
    const migration = this.migration(account)
    const purgedAt = this.sql.stepDone.get(account, 'purge') ?? null
    // Written in the purge's transaction (runDue): there is one once the purge is done.
    const purged = purgedAt === null ? null : (this.sql.purgeRecord.get(account) as string)
    let access: Access = now >= plan.syncOffAt ? 'read-only' : 'full'
    if (!migration && now >= deadlineAt) access = 'closed'
    if (purgedAt !== null) access = 'purged'
    return {
      account,
      deadlineAt,
      ownDeadline: own !== undefined,
      phase: phaseAt(plan, deadlineAt, now),
      access,
      migration,
      purgeAt: this.purgeAt(plan, migration),
      purgedAt,
      purged,
    }
  }

  /** Every step not done yet, with when it falls due (a purge not before the batch gap after the last batch). */
  private pending(p: RetirementPlan, lastPurgeAt: number | null): DueStep[] {
    const done = new Set(this.sql.steps.all().map((s) => `${s.account}\0${s.step}`))
    const deadlines = new Map(this.sql.deadlines.all().map((d) => [d.account, d.deadline_at]))
    const migrations = new Map(this.sql.migrations.all().map((m) => [m.account, m]))
    const ahead = this.rules.remindAheadMs
    const nextBatch = lastPurgeAt === null ? 0 : lastPurgeAt + this.rules.purgeGapMs
    const due: DueStep[] = []
    for (const account of this.sql.accountIds.all()) {
      const deadline = deadlines.get(account) ?? p.deadlineAt
      const purgeAt = this.purgeAt(p, migrations.get(account))
      const steps: [Step, number][] = [
        ['announce', p.announceAt],
        ['remind-sync-off', p.syncOffAt - ahead],
        ['sync-off', p.syncOffAt],
        ['remind-deadline', deadline - ahead],
        ['deadline', deadline],
        ['remind-shutdown', p.shutdownAt - ahead],
        ['shutdown', p.shutdownAt],
        ['purge-notice', purgeAt - this.rules.purgeNoticeMs],
        ['purge', Math.max(purgeAt, nextBatch)],
      ]
      for (const [step, at] of steps) {
        // A reminder due before the announcement would only repeat it: the announcement gives every date.
        if (step.startsWith('remind-') && at <= p.announceAt) continue
        if (!done.has(`${account}\0${step}`)) due.push({ account, step, at })
      }
    }
    return due
  }

  private nextDue(): number | null {
    const plan = this.plan()
    if (!plan) return null
    let next: number | null = null
    for (const s of this.pending(plan, this.lastPurgeAt())) next = next === null ? s.at : Math.min(next, s.at)
    return next
  }

  private lastPurgeAt(): number | null {
    return (this.sql.plan.get() as PlanRow).last_purge_at
  }

  private runDue(now: number): void {
    const plan = this.plan()
    if (!plan) return
    const due = this.pending(plan, this.lastPurgeAt())
      .filter((s) => s.at <= now)
      .sort((a, b) => a.at - b.at || STEPS.indexOf(a.step) - STEPS.indexOf(b.step))
    let purged = 0
    for (const s of due) {
      if (s.step === 'purge') {
        if (purged >= this.rules.purgeBatch) continue
        purged++
        // The purge, its step and its cloud-log entry in one transaction: a purged account always has its record.
        this.accounts.clearData(s.account, now, this.purgeRest, (removed) => {
          this.sql.done.run(s.account, s.step, now)
          this.cloudLog.record(
            s.account,
            'retirement-purge',
            `the service retired: deleted ${describeCleared(removed)}. Kept: ${PURGE_KEEPS}.`,
            totalCleared(removed),
          )
        })
        this.emit('purged', s.account)
        continue
      }
      this.act(plan, s.account, s.step)
      this.sql.done.run(s.account, s.step, now)
      if (s.step === 'sync-off') this.emit('uploads-closed', s.account)
    }
    if (purged > 0) {
      this.sql.purged.run(now)
      this.log.warn({ accounts: purged, left: due.filter((s) => s.step === 'purge').length - purged }, 'M1: a purge batch ran')
    }
  }

  /** One step of one account: a notice to its phones, or only a line in its cloud log. */
  private act(plan: RetirementPlan, account: string, step: Exclude<Step, 'purge'>): void {
    const migration = this.migration(account)
    const deadlineAt = this.deadlineOf(plan, account)
    const outcome = stepOutcome(step, { plan, deadlineAt, migration, purgeAt: this.purgeAt(plan, migration) })
    if ('message' in outcome) return this.cloudLog.record(account, outcome.rule, outcome.message)
    const { kind, title, body } = outcome.notice
    this.cloudLog.notify(account, outcome.rule, title, body, kind)
  }
}
