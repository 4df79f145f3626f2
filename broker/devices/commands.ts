/**
 * F2/F3: the cloud's side of remote commands. Every command is written to
 * the database before it is acknowledged to the console, and its state
 * moves queued → delivered → executing → succeeded | failed | rejected, or
 * to expired / cancelled while still queued. A device gets every command
 * that is not final each time it subscribes, so nothing is lost to a
 * disconnect or a broker restart; the device's journal makes repeats harmless.
 * The cloud cannot sign commands (it holds no owner key) and only stores the
 * device's signed receipts for the owner to verify. A lost-mode command that
 * succeeded moves the device's lost-mode state (StateStore.setLostMode).
 *
 * A full disk or database (common/storage-errors.ts): a command that cannot be
 * written is not sent, and the console is told why (507, router.ts); a step
 * a device reported (its receipt was acknowledged before it is written, see
 * server.ts) is held in memory and written again after 1 s, doubling to 30 s,
 * each attempt logged with the reason -- the device's journal would report it
 * again only when the command is resent at its next connection. A command
 * delivered whose "sent" mark cannot be written is logged; it stays open and
 * is sent again at the device's next connection, which its journal answers.
 */
import { EventEmitter } from 'node:events'
import type { Clock } from '../../common/clock.js'
import type { CommandView, LatestCommands } from '../../common/console-api.js'
import { CommandSchema, FINAL_STATES, decodeValue, type Command, type CommandState, type Result } from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import { storageFailure } from '../../common/storage-errors.js'
import type { Logger } from '../../common/log.js'
import { type Db, one, pluck } from '../db.js'
import { RetryBackoff } from '../retry-backoff.js'
import type { StateStore } from './state-store.js'
import { DueTimer } from '../due-timer.js'
import { quoted } from '../../common/terminal-text.js'

export type { CommandView }

export type CommandErrorCode = 'BAD_COMMAND' | 'NOT_ENABLED' | 'DUPLICATE' | 'NOT_FOUND' | 'NOT_CANCELLABLE'

export class CommandError extends FakephoneError {
  declare readonly code: CommandErrorCode
  constructor(
    code: CommandErrorCode,
    message: string,
    readonly view?: CommandView,
  ) {
    super(code, message)
  }
}

/** F3: the words the console shows when Find Device is off. */
export const NOT_ENABLED = 'this device has not enabled Find Device'

/**
 * F3: when it is the cloud service that is off, Find Device is off with it, though the phone's status still says "Find
 * Device on": the refusal names the switch, so the owner knows what to turn on. The one text the CLI and the web
 * console show (the refusal's own `error`), and the rejected command's `reason`.
 */
export const SERVICE_OFF = `${NOT_ENABLED}: the phone's cloud service is off, and Find Device with it (turn it on in the phone's settings)`

/** The longest wait between retries of the steps the database could not take, ms. */
const RETRY_MAX_MS = 30_000

const RANK: Record<CommandState, number> = {
  queued: 0,
  delivered: 1,
  executing: 2,
  succeeded: 3,
  failed: 3,
  rejected: 3,
  expired: 3,
  cancelled: 3,
}

interface Row {
  id: string
  device_id: string
  envelope: string
  state: CommandState
  reason: string | null
  data: string | null
  receipt: string | null
  created_at: number
  updated_at: number
  expires_at: number
  sent_at: number | null
}

/** A row of LATEST_COMMANDS_SQL: a command and the rowids of its device's newest command and newest succeeded locate. */
interface LatestRow extends Row {
  row_id: number
  newest_row: number
  locate_row: number | null
}

/** The named parameters of a new command's row. */
interface NewRow {
  id: string
  device: string
  type: Command['type']
  envelope: string
  state: CommandState
  reason: string | null
  now: number
  expiresAt: number
}

/** The named parameters of a step a device reported. */
interface Advance {
  id: string
  device: string
  state: CommandState
  /** RANK of `state`: the row moves only if its own state ranks lower. */
  rank: number
  reason: string | null
  data: string | null
  receipt: string | null
  now: number
}

/** RANK in SQL, so a state moves forward in one conditional UPDATE rather than a read and a write. */
const RANK_SQL = `CASE state ${Object.entries(RANK)
  .map(([state, rank]) => `WHEN '${state}' THEN ${rank}`)
  .join(' ')} END`

function toView(r: Row): CommandView {
  const command = JSON.parse(r.envelope) as Command
  return {
    id: r.id,
    device: r.device_id,
    type: command.type,
    args: command.args,
    state: r.state,
    reason: r.reason,
    data: r.data === null ? null : (JSON.parse(r.data) as Result['data']),
    receipt: r.receipt === null ? null : (JSON.parse(r.receipt) as Result),
    command,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
    sentAt: r.sent_at,
  }
}

interface CommandEvents {
  changed: [view: CommandView]
  /** The device subscribed to its command topic: from now on commands reach it. */
  listening: [deviceId: string]
}

/**
 * A device's commands not yet finished, oldest first: sent again at each SUBSCRIBE. Read through the partial index
 * `commands_open_by_device` (broker/db.ts), so a reconnect does not walk the device's whole command history.
 */
export const OPEN_COMMANDS_SQL =
  "SELECT * FROM commands WHERE device_id = ? AND state IN ('queued', 'delivered', 'executing') " + 'ORDER BY created_at, rowid'

/** How many of a device's commands its list answers, newest first (GET /api/devices/:id/commands). */
export const COMMAND_LIST_LIMIT = 50

/**
 * A page of the devices that have commands (ids after `@after`, in order, at most `@limit`): the rows of each one's newest
 * command and of its newest locate that succeeded among its newest `@window` (only when it is one of those, as its command
 * list shows it; one row when the newest is that locate), each with the rowids it is picked as. Every step an index seek:
 * `devices`' primary key, `commands_by_device` for the newest and the `@window`th newest (its entries, not the rows),
 * `commands_located_by_device` for the locate, the rowid for the rows.
 */
export const LATEST_COMMANDS_SQL = `
  WITH page AS MATERIALIZED (
    SELECT d.id AS device,
      (SELECT created_at FROM commands WHERE device_id = d.id ORDER BY created_at DESC, rowid DESC LIMIT 1 OFFSET @window - 1) AS floor_at,
      (SELECT rowid FROM commands WHERE device_id = d.id ORDER BY created_at DESC, rowid DESC LIMIT 1 OFFSET @window - 1) AS floor_row
    FROM devices d
    WHERE d.id > @after AND EXISTS (SELECT 1 FROM commands WHERE device_id = d.id)
    ORDER BY d.id LIMIT @limit
  ), picks AS MATERIALIZED (
    SELECT device,
      (SELECT rowid FROM commands WHERE device_id = device ORDER BY created_at DESC, rowid DESC LIMIT 1) AS newest_row,
      (SELECT rowid FROM commands INDEXED BY commands_located_by_device
        WHERE device_id = device AND type = 'locate' AND state = 'succeeded'
          AND (floor_at IS NULL OR created_at > floor_at OR (created_at = floor_at AND rowid >= floor_row))
        ORDER BY created_at DESC, rowid DESC LIMIT 1) AS locate_row
    FROM page
  )
  SELECT picks.newest_row, picks.locate_row, c.rowid AS row_id, c.*
  FROM picks JOIN commands c ON c.rowid IN (picks.newest_row, picks.locate_row)
  ORDER BY picks.device`

export class CommandCenter extends EventEmitter<CommandEvents> {
  /** Steps devices reported that the database could not take (see recordLater). */
  private readonly unrecorded: { deviceId: string; result: Result }[] = []
  /** Steps the database could not take when they came, each held for a retry (read by /metrics, broker/metrics.ts). */
  readonly counters = { stepsNotRecorded: 0 }
  private readonly retry: RetryBackoff
  /** Expires queued commands at their deadline; a failure is logged and retried (DueTimer). */
  private readonly expiry: DueTimer
  /** Devices connected and subscribed to their command topic. */
  private readonly listeningDevices = new Set<string>()
  private readonly sql

  constructor(
    db: Db,
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Hands a command to the device's live connection; false when the device is not connected. */
    private readonly deliver: (deviceId: string, command: Command) => boolean,
    /** The wait before the first retry of a step the database could not take, ms (then doubled, up to RETRY_MAX_MS). */
    retryMs = 1000,
  ) {
    super()
    this.retry = new RetryBackoff(retryMs, RETRY_MAX_MS)
    this.sql = {
      // No row back means the id is taken: a duplicate is found by the insert itself, not by a read before it.
      insert: db.prepare<[NewRow], Row>(
        `INSERT INTO commands (id, device_id, type, envelope, state, reason, created_at, updated_at, expires_at)
         VALUES (@id, @device, @type, @envelope, @state, @reason, @now, @now, @expiresAt) ON CONFLICT (id) DO NOTHING RETURNING *`,
      ),
      get: db.prepare<[id: string], Row>('SELECT * FROM commands WHERE id = ?'),
      list: db.prepare<[deviceId: string, limit: number], Row>(
        'SELECT * FROM commands WHERE device_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?',
      ),
      pending: db.prepare<[deviceId: string], Row>(OPEN_COMMANDS_SQL),
      sent: db.prepare<[sentAt: number, id: string]>('UPDATE commands SET sent_at = COALESCE(sent_at, ?) WHERE id = ?'),
      advance: db.prepare<[Advance], Row>(
        `UPDATE commands SET state = @state, reason = @reason, data = @data, receipt = @receipt, updated_at = @now
         WHERE id = @id AND device_id = @device AND ${RANK_SQL} < @rank RETURNING *`,
      ),
      cancel: db.prepare<[{ id: string; reason: string; now: number }], Row>(
        `UPDATE commands SET state = 'cancelled', reason = @reason, data = NULL, receipt = NULL, updated_at = @now
         WHERE id = @id AND state = 'queued' AND sent_at IS NULL RETURNING *`,
      ),
      expire: db.prepare<[{ reason: string; now: number }], Row>(
        `UPDATE commands SET state = 'expired', reason = @reason, data = NULL, receipt = NULL, updated_at = @now
         WHERE state = 'queued' AND expires_at <= @now RETURNING *`,
      ),
      latest: db.prepare<[{ after: string; limit: number; window: number }], LatestRow>(LATEST_COMMANDS_SQL),
      nextExpiry: pluck<[], number | null>(db, `SELECT MIN(expires_at) FROM commands WHERE state = 'queued'`),
    }
    this.expiry = new DueTimer(
      clock,
      () => one(this.sql.nextExpiry),
      (now) => this.expireDue(now),
      log,
      'command-expiry',
    )
  }

  /** Expires what fell due while the broker was down and watches for the next expiry. */
  start(): void {
    this.expiry.startNow()
  }

  stop(): void {
    this.expiry.stop()
    this.retry.cancel()
    if (this.unrecorded.length > 0)
      this.log.error(
        { steps: this.unrecorded.length },
        'broker stopped with command steps the database could not take: each device reports them again when its command is resent',
      )
  }

  /**
   * Accepts a signed command from the console: stored, then delivered if the device is connected. `body` is the request
   * body as parsed from JSON, checked here once (it was written out and parsed again before).
   */
  submit(deviceId: string, body: unknown): CommandView {
    const decoded = decodeValue(CommandSchema, body)
    if (!decoded.ok) throw new CommandError('BAD_COMMAND', `not a valid command: ${decoded.reason}`)
    const command = decoded.value
    if (command.device !== deviceId)
      throw new CommandError('BAD_COMMAND', `the command is for ${quoted(command.device)}, not ${quoted(deviceId)}`)
    const switches = this.store.switches(deviceId)
    if (!switches) throw new CommandError('NOT_FOUND', `device ${quoted(deviceId)} not found`)
    const now = this.clock.now()
    const refused =
      switches.findDevice === false
        ? NOT_ENABLED
        : switches.cloudService === false
          ? SERVICE_OFF
          : command.expiresAt <= now
            ? 'it expired before it was sent'
            : null
    const row = this.sql.insert.get({
      id: command.id,
      device: deviceId,
      type: command.type,
      envelope: JSON.stringify(command),
      state: refused ? 'rejected' : 'queued',
      reason: refused,
      now,
      expiresAt: command.expiresAt,
    })
    if (!row) throw new CommandError('DUPLICATE', `command ${command.id} was already submitted`)
    const view = toView(row)
    this.log.info({ command: command.id, device: deviceId, type: command.type, state: view.state, reason: refused }, 'command submitted')
    this.emit('changed', view)
    if (refused === NOT_ENABLED || refused === SERVICE_OFF) throw new CommandError('NOT_ENABLED', refused, view)
    if (refused) throw new CommandError('BAD_COMMAND', `command refused: ${refused}`, view)
    this.send(view)
    this.expiry.reschedule()
    return view
  }

  /** The device subscribed to its command topic: send it every command it has not finished. */
  deviceListening(deviceId: string): void {
    this.listeningDevices.add(deviceId)
    this.emit('listening', deviceId)
    for (const row of this.sql.pending.all(deviceId)) this.send(toView(row))
  }

  deviceGone(deviceId: string): void {
    this.listeningDevices.delete(deviceId)
  }

  isListening(deviceId: string): boolean {
    return this.listeningDevices.has(deviceId)
  }

  /**
   * Records a step the device reported. States only move forward; a final state keeps its receipt. One
   * conditional UPDATE moves the row; only a result that moved nothing is looked up, to tell a repeat from a stray.
   * A step the database cannot take now is held and written again (see the module comment).
   */
  onResult(deviceId: string, result: Result): void {
    let row: Row | undefined
    try {
      row = this.advance(deviceId, result)
    } catch (err) {
      const failure = storageFailure(err)
      if (!failure) throw err
      this.recordLater(deviceId, result, failure)
      return
    }
    if (!row) {
      const current = this.get(result.command)
      if (!current || current.device !== deviceId)
        this.log.warn({ device: deviceId, command: result.command }, 'result for an unknown command ignored')
      return
    }
    this.log.info({ command: row.id, device: deviceId, state: result.state, reason: result.reason }, 'command state')
    const view = toView(row)
    // Lost mode becomes the device's state once its signed receipt, on the device's own topic, says the switch happened.
    if (view.command.type === 'lost-mode' && view.state === 'succeeded') this.store.setLostMode(deviceId, view.command.args, result.at)
    this.emit('changed', view)
  }

  /** Holds a step the database could not take and schedules a retry of every held step (I/O pacing: Node's timers). */
  private recordLater(deviceId: string, result: Result, reason: string): void {
    this.counters.stepsNotRecorded++
    this.unrecorded.push({ deviceId, result })
    this.log.error(
      { device: deviceId, command: result.command, state: result.state, reason, held: this.unrecorded.length },
      'command step not recorded: the database cannot take it; held and written again when it can',
    )
    this.retry.schedule(() => {
      for (const held of this.unrecorded.splice(0)) this.onResult(held.deviceId, held.result)
      if (this.unrecorded.length === 0) this.retry.reset()
    })
  }

  private advance(deviceId: string, result: Result): Row | undefined {
    return this.sql.advance.get({
      id: result.command,
      device: deviceId,
      state: result.state,
      rank: RANK[result.state],
      reason: result.reason ?? null,
      data: result.data ? JSON.stringify(result.data) : null,
      receipt: FINAL_STATES.has(result.state) ? JSON.stringify(result) : null,
      now: this.clock.now(),
    })
  }

  /** Cancels a command that has not been handed to the device yet: one conditional UPDATE, a read only to say why not. */
  cancel(id: string): CommandView {
    const row = this.sql.cancel.get({ id, reason: 'cancelled by the owner', now: this.clock.now() })
    if (row) return this.finished(row)
    const view = this.get(id)
    if (!view) throw new CommandError('NOT_FOUND', `command ${quoted(id)} not found`)
    throw new CommandError(
      'NOT_CANCELLABLE',
      view.state === 'queued' ? 'it was already sent to the device' : `it is already ${view.state}`,
      view,
    )
  }

  get(id: string): CommandView | undefined {
    const row = this.sql.get.get(id)
    return row && toView(row)
  }

  list(deviceId: string, limit = COMMAND_LIST_LIMIT): CommandView[] {
    return this.sql.list.all(deviceId, limit).map(toView)
  }

  /**
   * The devices that have commands, by id after `after`, at most `limit`: each one's newest command and its newest locate
   * that succeeded among the commands its list shows (the web console's recall of every phone at once, F2). One read (of
   * one device more than `limit`, to say whether there are `more`).
   */
  latest(after: string, limit: number): { latest: LatestCommands[]; more: boolean } {
    const latest = new Map<string, LatestCommands>()
    for (const r of this.sql.latest.all({ after, limit: limit + 1, window: COMMAND_LIST_LIMIT })) {
      const view = toView(r)
      const entry = latest.get(r.device_id) ?? { device: r.device_id, newest: view, locate: null }
      if (r.row_id === r.newest_row) entry.newest = view
      if (r.row_id === r.locate_row) entry.locate = view
      latest.set(r.device_id, entry)
    }
    const devices = [...latest.values()]
    return { latest: devices.slice(0, limit), more: devices.length > limit }
  }

  private send(view: CommandView): void {
    if (!this.deliver(view.device, view.command)) return
    try {
      this.sql.sent.run(this.clock.now(), view.id)
    } catch (err) {
      // Only the database's state (full, read-only, failing) can fail this UPDATE of a row just read or written.
      const { message: reason, code } = err as Error & { code?: string }
      this.log.error({ command: view.id, device: view.device, reason, code }, 'command sent, but the database could not mark it sent')
    }
  }

  /** Logs and announces a row the cloud itself moved to a final state. */
  private finished(row: Row): CommandView {
    const done = toView(row)
    this.log.info({ command: done.id, device: done.device, state: done.state, reason: done.reason }, 'command state')
    this.emit('changed', done)
    return done
  }

  /** Every queued command past its deadline, expired in one UPDATE. */
  private expireDue(now: number): void {
    for (const row of this.sql.expire.all({ reason: 'it expired before the device received it', now })) this.finished(row)
  }
}
