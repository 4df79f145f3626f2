/**
 * Last known state and location history (F1, F3). Heartbeats are queued and
 * written in one transaction per batch, so the ingest path does one SQLite
 * commit per burst instead of one per message. A duplicate (device, seq) --
 * a QoS 1 redelivery -- is stored once. A batch that fails on a row (a device
 * removed while its heartbeats were queued) is written again row by row:
 * each bad row is counted and reported ('refused'), the rest are stored,
 * and nothing is thrown into the event loop.
 *
 * A batch the database cannot take -- the disk or database is full
 * (SQLITE_FULL), the disk fails (SQLITE_IOERR), the file is read-only or
 * locked (common/storage-errors.ts) -- is no row's fault, and its heartbeats
 * were already acknowledged (PUBACK, see server.ts): it is held in memory,
 * ahead of what arrives next, and written again after 1 s, doubling to 30 s
 * ('held', logged with the reason and how many are held; 'resumed' once
 * written). Nothing acknowledged is dropped for the database's state. Past
 * `maxHeld` held heartbeats (100,000 by default) new ones are refused before
 * they are acknowledged (holdingBack, checked in the broker's publish
 * authorisation): the device's connection closes, and the device keeps them
 * and sends them again when it reconnects. Meanwhile reads answer what is
 * stored. A status (F3) the database cannot take is held the same way, the
 * device's newest one, and its switches count in memory meanwhile. A broker
 * stopped while the database still refuses says how many held heartbeats
 * and statuses go with it (close()).
 *
 * A batch is written `batchMs` after its first heartbeat or presence change
 * (the broker waits a few milliseconds: a commit writes one WAL page per
 * device touched plus the shared ones, so 20 heartbeats to a commit cost about
 * a third less CPU each than 5, and 50 a fifth less again than 20: see
 * HEARTBEAT_BATCH_MS in server.ts), or on the next turn of the event loop when
 * `batchMs` is 0. That wait is I/O batching, not a time rule, so it runs on
 * Node's timers, not on the injected clock. A PUBACK never meant "stored"
 * (see server.ts), and every read here writes the pending batch first.
 *
 * Presence changes (a device connecting or going away) ride in the same
 * batch: at a fleet's connect ramp one commit each cost more than the
 * connection itself. Only the last change per device in a batch is written;
 * the 'presence' event is emitted at once, and the reads (devices, device,
 * history) write the pending batch first, so nothing a user reads is stale
 * (`switches`, which holds nothing the batch writes, reads without it).
 * M2: a device that connects after it took its cloud-moved notice came back
 * from the cloud it followed to: its move is forgotten then, so once it goes
 * again its views say offline, not moved.
 * The broker's stop writes the batch before the database closes; a batch
 * scheduled on a database already closed is dropped, not thrown.
 */
import { EventEmitter } from 'node:events'
import {
  DeviceMovedSchema,
  type DeviceMoved,
  type DeviceView,
  type LocationRow,
  type NotificationState,
  type RefusedPublish,
} from '../../common/console-api.js'
import type { CommandArgs, Heartbeat, Status } from '../../common/contract.js'
import { storageFailure } from '../../common/storage-errors.js'
import { type Db, one, pluck } from '../db.js'
import { RetryBackoff } from '../retry-backoff.js'

export type { DeviceView, LocationRow }

/** The switches a device last said (null: not said yet). */
export interface Switches {
  cloudService: boolean | null
  findDevice: boolean | null
}

interface StateEvents {
  /** A batch of heartbeats was written, in `seconds` (the event loop's time in SQLite for it, read by /metrics). */
  stored: [count: number, seconds: number]
  /** One heartbeat could not be written and was dropped (its row broke a constraint: a removed device's). */
  refused: [deviceId: string, seq: number, reason: string]
  /** The database cannot take writes now: `count` heartbeats are held in memory and written again in `retryMs`. */
  held: [count: number, reason: string, retryMs: number]
  /** The database took the held heartbeats again: `count` of them stored. */
  resumed: [count: number]
  presence: [deviceId: string, online: boolean]
  status: [deviceId: string, locationEnabled: boolean]
  /** A status the database cannot take now: held (the device's newest) and written again in `retryMs`. */
  statusHeld: [deviceId: string, reason: string, retryMs: number]
}

/** A status and what follows from it (setStatus's arguments), held while the database cannot take it. */
type HeldStatus = [status: Status, receivedAt: number, then: (before: Switches | undefined) => void]

/** The positional parameters of storeHeartbeat, in the view's column order (a `locations` row). */
export type HeartbeatParams = [
  deviceId: string,
  seq: number,
  at: number,
  lat: number,
  lon: number,
  accuracy: number,
  speed: number,
  battery: number,
  charging: number,
  network: string,
  receivedAt: number,
]

/** What the store does while the database refuses writes (see hold()). */
export interface HoldOptions {
  /** Heartbeats held in memory before new ones are refused at the door (the device keeps them and sends them again). */
  maxHeld: number
  /** The wait before the first retry, ms; it doubles with each failed retry, up to `retryMaxMs`. */
  retryMs: number
  retryMaxMs: number
}

/** About 20 MB of heartbeats held at most: at one per device a minute, 10,000 phones for 10 minutes. */
export const DEFAULT_HOLD: HoldOptions = { maxHeld: 100_000, retryMs: 1000, retryMaxMs: 30_000 }

interface Queued {
  deviceId: string
  hb: Heartbeat
  receivedAt: number
}

export class StateStore extends EventEmitter<StateEvents> {
  private queue: Queued[] = []
  /** Each device's last refused publish (see refused); one entry per registered device at most. */
  private readonly refusals = new Map<string, RefusedPublish>()
  /** Presence changes waiting for the next batch: device → [online 0/1, at]; the last change wins. */
  private presence = new Map<string, [online: number, at: number]>()
  /** Cancels the write scheduled for the pending batch; null when none is scheduled. */
  private cancelWrite: (() => void) | null = null
  /** Devices whose map position is offline (F3); read on every heartbeat, so kept in memory. */
  private readonly locationOff: Set<string>
  private readonly storeHeartbeat
  private readonly writeBatch
  private readonly statusTransaction
  private readonly sql
  /** Set while the database refuses writes: why. */
  private holding: { reason: string } | null = null
  /** The retry of held heartbeats and presence changes. */
  private readonly batchRetry: RetryBackoff
  private closed = false
  /** Statuses the database could not take, the newest per device, and their retry (see setStatus). */
  private readonly heldStatus = new Map<string, HeldStatus>()
  private readonly statusRetry: RetryBackoff
  /** Why the last status was held. */
  private statusFailure = ''
  /** Heartbeats dropped: rows that failed to write, and rows of removed devices still queued. */
  readonly counters = { rowsRefused: 0, rowsDropped: 0 }

  constructor(
    private readonly db: Db,
    /** Largest batch before a write is forced. */
    private readonly maxBatch = 1000,
    /** How long a batch waits for more before it is written, ms; 0: the next turn of the event loop. */
    private readonly batchMs = 0,
    /** Called before a batch is written (the broker looks for devices another process removed: their rows are dropped). */
    private readonly beforeWrite: () => void = () => {},
    private readonly holdOpts: HoldOptions = DEFAULT_HOLD,
  ) {
    super()
    this.batchRetry = new RetryBackoff(holdOpts.retryMs, holdOpts.retryMaxMs)
    this.statusRetry = new RetryBackoff(holdOpts.retryMs, holdOpts.retryMaxMs)
    // One prepared statement per heartbeat: an insert into a view of this connection whose trigger stores the row and
    // moves the last known state (TEMP: it lives with this connection only, no schema change, and no other insert into
    // locations -- an account import -- moves the last known state).
    db.exec(
      `CREATE TEMP VIEW IF NOT EXISTS heartbeat_in AS
         SELECT device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at FROM main.locations WHERE 0;
       CREATE TEMP TRIGGER IF NOT EXISTS heartbeat_in_store INSTEAD OF INSERT ON heartbeat_in BEGIN
         INSERT OR IGNORE INTO locations (device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at)
           VALUES (NEW.device_id, NEW.seq, NEW.at, NEW.lat, NEW.lon, NEW.accuracy, NEW.speed, NEW.battery, NEW.charging,
                   NEW.network, NEW.received_at);
         UPDATE device_state SET seq = NEW.seq, at = NEW.at, lat = NEW.lat, lon = NEW.lon, accuracy = NEW.accuracy,
           speed = NEW.speed, battery = NEW.battery, charging = NEW.charging, network = NEW.network, received_at = NEW.received_at
         WHERE device_id = NEW.device_id AND (seq IS NULL OR seq < NEW.seq);
       END;`,
    )
    this.storeHeartbeat = db.prepare<HeartbeatParams>('INSERT INTO heartbeat_in VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    const view = `SELECT d.id, d.account, s.* FROM devices d JOIN device_state s ON s.device_id = d.id`
    // M2: the devices told to follow their account's migration, read on their own (few, where every device is in the view).
    const moves = `SELECT m.device_id, m.cloud AS moved_to, m.account AS moved_account, m.at AS moved_at,
        n.state AS moved_notice, n.delivered_at AS moved_delivered_at
      FROM device_moves m LEFT JOIN notifications n ON n.id = m.notice`
    this.sql = {
      presence: db.prepare<[online: number, at: number, deviceId: string]>(
        'UPDATE device_state SET online = ?, presence_at = ? WHERE device_id = ?',
      ),
      // M2: a phone that signs in here after it took its cloud-moved notice came back: where it went is no longer so.
      cameBack: db.prepare<[{ deviceId: string; at: number }]>(
        `DELETE FROM device_moves WHERE device_id = @deviceId
           AND EXISTS (SELECT 1 FROM notifications n WHERE n.id = device_moves.notice AND n.state = 'delivered' AND n.delivered_at < @at)`,
      ),
      status: db.prepare<[{ cloud: number; find: number; at: number; enabled: number; receivedAt: number; deviceId: string }]>(
        `UPDATE device_state SET cloud_service = @cloud, find_device = @find, status_at = @at,
           location_off_at = CASE WHEN @enabled THEN NULL ELSE COALESCE(location_off_at, @receivedAt) END
         WHERE device_id = @deviceId`,
      ),
      switches: db.prepare<[deviceId: string], { cloud_service: number | null; find_device: number | null }>(
        'SELECT cloud_service, find_device FROM device_state WHERE device_id = ?',
      ),
      devices: db.prepare<[], StateRow>(`${view} ORDER BY d.id`),
      device: db.prepare<[id: string], StateRow>(`${view} WHERE d.id = ?`),
      moves: db.prepare<[], MoveRow>(moves),
      move: db.prepare<[id: string], MoveRow>(`${moves} WHERE m.device_id = ?`),
      lostMode: db.prepare<[{ on: number; message: string | null; phone: string | null; at: number; deviceId: string }]>(
        `UPDATE device_state SET lost_mode = @on, lost_message = @message, lost_phone = @phone, lost_mode_at = @at
         WHERE device_id = @deviceId AND (lost_mode_at IS NULL OR lost_mode_at <= @at)`,
      ),
      // F1: the primary key (device_id, seq) answers it from its index, without a scan.
      lastSeq: pluck<[id: string], number | null>(db, 'SELECT MAX(seq) FROM locations WHERE device_id = ?'),
      history: db.prepare<[id: string, limit: number], HistoryRow>(
        `SELECT seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at AS receivedAt
         FROM locations WHERE device_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
    }
    this.locationOff = new Set(pluck<[], string>(db, 'SELECT device_id FROM device_state WHERE location_off_at IS NOT NULL').all())
    this.statusTransaction = db.transaction(this.writeStatus.bind(this))
    this.writeBatch = db.transaction((presence: Map<string, [number, number]>, batch: Queued[]) => {
      this.writePresence(presence)
      for (const q of batch) this.writeRow(q)
    })
  }

  /** Queues a validated heartbeat; it is written with the next batch. */
  recordHeartbeat(deviceId: string, hb: Heartbeat, receivedAt: number): void {
    this.queue.push({ deviceId, hb, receivedAt })
    if (this.queue.length >= this.maxBatch) this.flush()
    else this.schedule()
  }

  /**
   * F1: the highest heartbeat seq held of the device, stored or queued (null: none), read without writing the pending
   * batch (a fleet's connect ramp asks once per phone).
   */
  lastSeq(deviceId: string): number | null {
    let last = one(this.sql.lastSeq, deviceId)
    for (const q of this.queue) if (q.deviceId === deviceId && (last === null || q.hb.seq > last)) last = q.hb.seq
    return last
  }

  private schedule(): void {
    if (this.cancelWrite || this.holding) return
    const write = (): void => {
      this.cancelWrite = null
      // A store whose database closed without a stop (a test's fixture) has nothing to write to.
      if (this.db.open) this.flush()
    }
    if (this.batchMs > 0) {
      const timer = setTimeout(write, this.batchMs)
      this.cancelWrite = () => clearTimeout(timer)
    } else {
      const immediate = setImmediate(write)
      this.cancelWrite = () => clearImmediate(immediate)
    }
  }

  /**
   * Writes everything queued so far: presence changes and heartbeats, in one transaction. While the database refuses
   * writes (see hold()) it writes nothing: the retry does, and reads answer what is stored.
   */
  flush(): void {
    if (!this.holding) this.write()
  }

  /** Writes the queue; returns how many heartbeats were stored. */
  private write(): number {
    if (this.queue.length > 0) this.beforeWrite()
    this.cancelWrite?.()
    this.cancelWrite = null
    if (this.queue.length === 0 && this.presence.size === 0) return 0
    const batch = this.queue
    const presence = this.presence
    this.queue = []
    this.presence = new Map()
    let stored = batch.length
    const began = performance.now()
    try {
      this.writeBatch(presence, batch)
    } catch (err) {
      const failure = storageFailure(err)
      if (failure) {
        this.hold(presence, batch, failure)
        return 0
      }
      stored = this.writeRows(presence, batch)
    }
    if (batch.length > 0) this.emit('stored', stored, (performance.now() - began) / 1000)
    return stored
  }

  /**
   * The database cannot take writes now (full, failing, locked: storageFailure): `rest` and `presence` go back to the
   * queue, ahead of anything queued later, and are written again after a wait that doubles with each
   * failed retry up to `retryMaxMs`. Once `maxHeld` heartbeats wait, new ones are refused at the door (holdingBack).
   */
  private hold(presence: Map<string, [number, number]>, rest: Queued[], reason: string): void {
    // Nothing was queued since write() took the queue: it runs in one turn.
    this.queue = rest
    this.presence = presence
    // None after close(). A store whose database closed without a stop (a test's fixture) has nothing to write to.
    if (!this.closed)
      this.batchRetry.schedule(() => {
        if (this.db.open) this.retry()
      })
    this.holding = { reason }
    this.emit('held', this.queue.length, reason, this.batchRetry.waitMs)
  }

  private retry(): void {
    this.holding = null
    const stored = this.write()
    if (this.holding) return
    this.batchRetry.reset()
    this.emit('resumed', stored)
  }

  /** While the database refuses writes: why, and how many acknowledged heartbeats wait in memory; null when it takes them. */
  holdingNow(): { reason: string; held: number } | null {
    return this.holding && { reason: this.holding.reason, held: this.queue.length }
  }

  /**
   * Why a new heartbeat is refused before it is acknowledged (the device keeps it and sends it again), or null: the
   * database refuses writes and `maxHeld` heartbeats are already held in memory.
   */
  holdingBack(): string | null {
    if (!this.holding || this.queue.length < this.holdOpts.maxHeld) return null
    return `the cloud cannot store heartbeats now: ${this.holding.reason}; ${this.queue.length} are held for a retry`
  }

  /**
   * The broker's stop: writes what is queued, held or not, once more; returns how many heartbeats and statuses the
   * database still refused (they go with the process) and why, or null when everything was written.
   */
  close(): { heartbeats: number; statuses: number; reason: string } | null {
    this.closed = true
    this.batchRetry.cancel()
    this.holding = null
    this.statusRetry.cancel()
    for (const [id, [status, receivedAt, then]] of [...this.heldStatus]) this.setStatus(id, status, receivedAt, then)
    this.write()
    // write() holds what the database refuses once more (with no timer now).
    const still = this.holding as { reason: string } | null
    if (!still && this.heldStatus.size === 0) return null
    const statuses = this.heldStatus.size
    return { heartbeats: this.queue.length, statuses, reason: statuses > 0 ? this.statusFailure : (still as { reason: string }).reason }
  }

  private writePresence(presence: Map<string, [number, number]>): void {
    for (const [deviceId, [online, at]] of presence) {
      this.sql.presence.run(online, at, deviceId)
      if (online === 1) this.sql.cameBack.run({ deviceId, at })
    }
  }

  /** The broker refused a publish of `deviceId`: its device view says so (the last one), until the broker stops. */
  refused(deviceId: string, refusal: RefusedPublish): void {
    this.refusals.set(deviceId, refusal)
  }

  /** Drops the queued heartbeats of `deviceId` (it was removed); returns how many. */
  forget(deviceId: string): number {
    this.refusals.delete(deviceId)
    const before = this.queue.length
    this.queue = this.queue.filter((q) => q.deviceId !== deviceId)
    const dropped = before - this.queue.length
    this.counters.rowsDropped += dropped
    return dropped
  }

  private writeRow({ deviceId, hb, receivedAt }: Queued): void {
    this.storeHeartbeat.run(
      deviceId,
      hb.seq,
      hb.at,
      hb.lat,
      hb.lon,
      hb.accuracy,
      hb.speed,
      hb.battery,
      hb.charging ? 1 : 0,
      hb.network,
      receivedAt,
    )
  }

  /**
   * The fallback for a batch that failed on a row: one transaction per row, so one bad row (a removed device's foreign
   * key) costs only itself. A storage failure on the way holds what is left (see hold()) instead: no row is refused for
   * the database's state.
   */
  private writeRows(presence: Map<string, [number, number]>, batch: Queued[]): number {
    try {
      this.db.transaction(() => this.writePresence(presence))()
    } catch (err) {
      // Presence changes break no constraint of a row: whatever fails them is the database's, and they are held.
      this.hold(presence, batch, storageFailure(err) ?? (err as Error).message)
      return 0
    }
    let stored = 0
    for (const [i, q] of batch.entries()) {
      try {
        this.db.transaction(() => this.writeRow(q))()
        stored++
      } catch (err) {
        const failure = storageFailure(err)
        if (failure) {
          this.hold(new Map(), batch.slice(i), failure)
          break
        }
        this.counters.rowsRefused++
        this.emit('refused', q.deviceId, q.hb.seq, (err as Error).message)
      }
    }
    return stored
  }

  /** Queues a presence change; it is written with the next batch (see the module comment). */
  setPresence(deviceId: string, online: boolean, at: number): void {
    this.presence.set(deviceId, [online ? 1 : 0, at])
    this.schedule()
    this.emit('presence', deviceId, online)
  }

  /** Marks every device offline: used at start-up, when no client is connected yet. */
  resetPresence(at: number): void {
    this.presence.clear()
    this.db.prepare('UPDATE device_state SET online = 0, presence_at = ? WHERE online = 1').run(at)
  }

  /**
   * F3: a device that switched Find Device or the cloud service off has its map position go offline. `then` gets the
   * switches the device said before (undefined: an unknown device) and runs in the same transaction, so a status and
   * what follows from it cost one commit, not one each (a fleet's connect ramp sends one status per phone). The
   * switches are read without writing the pending batch: presence and heartbeats never touch them.
   */
  setStatus(deviceId: string, status: Status, receivedAt: number, then: (before: Switches | undefined) => void): void {
    // A newer status replaces one held: the device's last word is what is written.
    this.heldStatus.delete(deviceId)
    try {
      this.statusTransaction(deviceId, status, receivedAt, then)
    } catch (err) {
      const failure = storageFailure(err)
      if (!failure) throw err
      this.holdStatus(deviceId, [status, receivedAt, then], failure)
    }
  }

  /**
   * F3 on a full disk: the status was acknowledged, and the device says it again only at its next connection, so it is
   * held (its switches already count in memory: heartbeats follow what it said) and written again after 1 s, doubling
   * to 30 s, like the heartbeat batch.
   */
  private holdStatus(deviceId: string, held: HeldStatus, reason: string): void {
    this.heldStatus.set(deviceId, held)
    this.statusFailure = reason
    if (!this.closed)
      this.statusRetry.schedule(() => {
        for (const [id, [status, receivedAt, then]] of [...this.heldStatus]) this.setStatus(id, status, receivedAt, then)
        if (this.heldStatus.size === 0) this.statusRetry.reset()
      })
    this.emit('statusHeld', deviceId, reason, this.statusRetry.waitMs)
  }

  private writeStatus(deviceId: string, status: Status, receivedAt: number, then: (before: Switches | undefined) => void): void {
    const before = this.switches(deviceId)
    const enabled = status.cloudService && status.findDevice
    if (enabled) this.locationOff.delete(deviceId)
    else this.locationOff.add(deviceId)
    this.sql.status.run({
      cloud: status.cloudService ? 1 : 0,
      find: status.findDevice ? 1 : 0,
      at: status.at,
      enabled: enabled ? 1 : 0,
      receivedAt,
      deviceId,
    })
    then(before)
    this.emit('status', deviceId, enabled)
  }

  /**
   * F2: lost mode as the device's state, from a lost-mode command the device's signed receipt says succeeded (the
   * command center calls this). `at` is when the receipt was signed: an older receipt arriving late does not undo a newer one.
   */
  setLostMode(deviceId: string, args: CommandArgs<'lost-mode'>, at: number): void {
    this.sql.lostMode.run({
      on: args.on ? 1 : 0,
      message: args.on ? args.message : null,
      phone: args.on ? args.phone : null,
      at,
      deviceId,
    })
  }

  /** True when the device last said both the cloud service and Find Device are on (or has not said yet). */
  locationEnabled(deviceId: string): boolean {
    return !this.locationOff.has(deviceId)
  }

  /**
   * The device's Cloud Service and Find Device switches as it last said them (null: not said yet), or undefined for a
   * device not registered. Read without writing the pending batch first: a status is written when it arrives, never
   * queued, so nothing here is stale, and a command submitted under heartbeat load does not pay for the batch (issue 14).
   */
  switches(deviceId: string): Switches | undefined {
    const row = this.sql.switches.get(deviceId)
    return row && { cloudService: bool(row.cloud_service), findDevice: bool(row.find_device) }
  }

  devices(): DeviceView[] {
    this.flush()
    const moved = new Map(this.sql.moves.all().map((m) => [m.device_id, movedOf(m)]))
    return this.sql.devices.all().map((r) => toView(r, moved.get(r.id) ?? null, this.refusals.get(r.id) ?? null))
  }

  device(id: string): DeviceView | undefined {
    this.flush()
    const row = this.sql.device.get(id)
    const move = this.sql.move.get(id)
    return row && toView(row, move ? movedOf(move) : null, this.refusals.get(id) ?? null)
  }

  /** Newest first. */
  history(id: string, limit: number): LocationRow[] {
    this.flush()
    const rows = this.sql.history.all(id, limit)
    return rows.map((r) => ({ ...r, charging: r.charging === 1 }))
  }
}

interface StateRow {
  id: string
  account: string
  online: number
  presence_at: number | null
  seq: number | null
  at: number
  lat: number
  lon: number
  accuracy: number
  speed: number
  battery: number
  charging: number
  network: Heartbeat['network']
  received_at: number
  cloud_service: number | null
  find_device: number | null
  location_off_at: number | null
  lost_mode: number | null
  lost_message: string | null
  lost_phone: string | null
  lost_mode_at: number | null
}

/** M2: a device told to follow its account's migration, with its notice's state (null: the notice is gone). */
interface MoveRow {
  device_id: string
  moved_to: string
  moved_account: string
  moved_at: number
  moved_notice: NotificationState | null
  moved_delivered_at: number | null
}

/** A location row as stored: `charging` is 0 or 1. */
type HistoryRow = Omit<LocationRow, 'charging'> & { charging: number }

const bool = (v: number | null): boolean | null => (v === null ? null : v === 1)

function toView(r: StateRow, moved: DeviceMoved | null, refused: RefusedPublish | null): DeviceView {
  return {
    id: r.id,
    account: r.account,
    online: r.online === 1,
    presenceAt: r.presence_at,
    cloudService: bool(r.cloud_service),
    findDevice: bool(r.find_device),
    locationOffAt: r.location_off_at,
    lostMode:
      r.lost_mode === null ? null : { on: r.lost_mode === 1, message: r.lost_message, phone: r.lost_phone, at: r.lost_mode_at as number },
    last:
      r.seq === null
        ? null
        : {
            seq: r.seq,
            at: r.at,
            lat: r.lat,
            lon: r.lon,
            accuracy: r.accuracy,
            speed: r.speed,
            battery: r.battery,
            charging: r.charging === 1,
            network: r.network,
            receivedAt: r.received_at,
          },
    moved,
    refused,
  }
}

/**
 * M2: where the device went, checked against the contract as it leaves the database; null when what is stored does
 * not pass (a notice gone, a row an older database's notices filled in badly): the
 * device is then shown as it stands here, never an answer that breaks the contract.
 */
function movedOf(r: MoveRow): DeviceMoved | null {
  const moved = DeviceMovedSchema.safeParse({
    to: r.moved_to,
    account: r.moved_account,
    at: r.moved_at,
    notice: r.moved_notice,
    deliveredAt: r.moved_delivered_at,
  })
  return moved.success ? moved.data : null
}
