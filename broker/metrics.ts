/**
 * The broker's Prometheus metrics, at `GET /metrics` on its HTTP port
 * (prom-client's text format, a registry per broker: several brokers may run
 * in one process). Counts only -- no device id, account or secret, and no
 * label per device -- so, like /health, it needs no token: a monitor
 * scrapes it as it reads /health (the console API's routes need the console
 * token whatever address the broker binds; nothing here is the console's).
 *
 * What an operator asks of a broker left running for weeks: how many phones
 * are connected (data and push channel), how many come and go and why they
 * are refused, how many heartbeats are taken and refused and why, how long
 * a batch of them takes to write, how commands end and how long a phone
 * takes to answer one, what the push queue does, whether the database
 * refuses writes, how big its files grow, whether the cloud's due timers
 * run, and the process's own CPU, memory, event-loop lag and open files.
 *
 * Nothing here is on the heartbeat's path: the counted code adds 1 to a plain
 * tally (`counters`, `refusedHeartbeats`, ...) and a scrape reads them
 * (common/prom.ts, tallyCounter); the events heard here come once per batch,
 * command step, notification or timer run.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type * as PromClient from 'prom-client'
import type { Clock } from '../common/clock.js'
import { FINAL_STATES, type CommandState } from '../common/contract.js'
import { SECONDS, byLabel, processRegistry, promClient, tallyCounter, type Tallied } from '../common/prom.js'
import { DB_FILE } from './db.js'
import { DUE_TIMER_RUNS, type DueTimerRun } from './due-timer.js'
import type { CommandCenter, CommandView } from './devices/commands.js'
import type { StateStore } from './devices/state-store.js'
import type { NotificationQueue } from './framework/notification-queue.js'
import type { PushGateway } from './framework/push-gateway.js'
import type { HttpRouter } from './http/router.js'
import type { AccessControl } from './mqtt/access.js'
import type { BrokerCounters } from './server.js'

/** Where the metrics are served, on the broker's HTTP port. */
export const METRICS_PATH = '/metrics'

/** What the metrics read: the broker's parts and tallies. */
export interface MetricSources {
  dataDir: string
  /** The broker's clock: the due timers that run on it are this broker's. */
  clock: Clock
  counters: BrokerCounters
  /** Devices with the data channel (MQTT) up. */
  dataConnected(): number
  access: AccessControl
  store: StateStore
  commands: CommandCenter
  queue: NotificationQueue
  gateway: PushGateway
  router: HttpRouter
}

/** A command's final states, each counted once per command (FINAL_STATES). */
type Outcome = 'succeeded' | 'failed' | 'rejected' | 'expired' | 'cancelled'

export class BrokerMetrics {
  readonly registry: PromClient.Registry = processRegistry()
  private readonly tally = {
    heartbeatsStored: 0,
    heartbeatWriteFailures: 0,
    statusWriteFailures: 0,
    commandsSubmitted: 0,
    commandsFinished: { succeeded: 0, failed: 0, rejected: 0, expired: 0, cancelled: 0 } satisfies Record<Outcome, number>,
    notifications: { queued: 0, delivered: 0, expired: 0 },
    /** Due-timer runs by timer name, then by outcome. */
    dueRuns: new Map<string, { ok: number; failed: number }>(),
  }
  private readonly heartbeatWrite
  private readonly commandReceipt
  private readonly onDueRun = (message: unknown): void => {
    const run = message as DueTimerRun
    if (run.clock !== this.s.clock) return
    let runs = this.tally.dueRuns.get(run.name)
    if (!runs) this.tally.dueRuns.set(run.name, (runs = { ok: 0, failed: 0 }))
    runs[run.failed ? 'failed' : 'ok']++
  }

  constructor(private readonly s: MetricSources) {
    const prom = promClient()
    const registers = [this.registry]
    const counter = (name: string, help: string, read: () => number | Iterable<Tallied>, labels: readonly string[] = []): void => {
      tallyCounter(this.registry, `fakephone_broker_${name}`, help, read, labels)
    }
    const { counters, access, gateway, store, commands, queue } = s
    const t = this.tally

    new prom.Gauge({
      name: 'fakephone_broker_devices_connected',
      help: 'devices connected now, by channel (data: MQTT; push: the push channel)',
      labelNames: ['channel'],
      registers,
      collect() {
        this.set({ channel: 'data' }, s.dataConnected())
        this.set({ channel: 'push' }, gateway.connectedCount)
      },
    })
    counter(
      'connects_total',
      'device connections accepted, by channel',
      () => [
        [{ channel: 'data' }, counters.connects],
        [{ channel: 'push' }, gateway.counters.online],
      ],
      ['channel'],
    )
    counter(
      'disconnects_total',
      'device connections ended, by channel and reason (closed: the device went, its connection broke or a newer ' +
        'connection of the same device took over; removed: the device was removed)',
      () => [
        ...byLabel('reason', counters.disconnects, { channel: 'data' }),
        [{ channel: 'push', reason: 'closed' }, gateway.counters.offline],
      ],
      ['channel', 'reason'],
    )
    counter(
      'connections_refused_total',
      'connections refused, by channel and reason (rate_limited: too many unproven connections from one address; ' +
        'no_credentials; bad_client_id; bad_credentials: unknown device, wrong secret or wrong console token)',
      () => [
        [{ channel: 'data', reason: 'rate_limited' }, counters.rateLimited],
        ...byLabel('reason', access.refusedConnects, { channel: 'data' }),
        [{ channel: 'push', reason: 'rate_limited' }, gateway.counters.rateLimited],
        [{ channel: 'push', reason: 'bad_credentials' }, gateway.counters.refused - gateway.counters.rateLimited],
      ],
      ['channel', 'reason'],
    )
    counter(
      'connections_dropped_total',
      'MQTT connections closed by the packet guard (a malformed or oversized packet)',
      () => counters.dropped,
    )
    counter('publishes_refused_total', 'MQTT publishes refused, of every kind (each logged with its reason)', () => counters.publishRefused)
    counter('heartbeats_accepted_total', 'heartbeats (and OwnTracks locations) accepted for storage', () => counters.heartbeats)
    counter('heartbeats_stored_total', 'heartbeats written to the database', () => t.heartbeatsStored)
    counter(
      'heartbeats_refused_total',
      'heartbeats not stored, by reason (device_removed: at the door or once queued; retained; database_full: past the ' +
        'heartbeats held while the database refuses writes, the phone sends it again; malformed; service_shut_down: M1; ' +
        'locating_off: the phone has Find Device or the cloud service off)',
      () => {
        const door = access.refusedHeartbeats
        const removed = door.device_removed + store.counters.rowsRefused + store.counters.rowsDropped
        return byLabel('reason', { ...door, device_removed: removed, ...counters.heartbeatsIgnored })
      },
      ['reason'],
    )
    this.heartbeatWrite = new prom.Histogram({
      name: 'fakephone_broker_heartbeat_batch_write_seconds',
      help: 'time to write one batch of heartbeats (one transaction, up to 50 ms of arrivals), the event loop held meanwhile',
      buckets: SECONDS,
      registers,
    })
    counter('commands_submitted_total', 'commands submitted by the console (F2)', () => t.commandsSubmitted)
    counter(
      'commands_finished_total',
      'commands that reached a final state, each counted once, by outcome; submitted minus finished is what is under way',
      () => byLabel('outcome', t.commandsFinished),
      ['outcome'],
    )
    this.commandReceipt = new prom.Histogram({
      name: 'fakephone_broker_command_receipt_seconds',
      help: "a command's submit to the phone's final receipt, on the cloud's clock",
      buckets: SECONDS,
      registers,
    })
    counter('notifications_queued_total', 'push notifications queued (X3)', () => t.notifications.queued)
    counter('notifications_delivered_total', 'push notifications the phone acknowledged', () => t.notifications.delivered)
    counter('notifications_expired_total', 'push notifications whose time to live ran out undelivered', () => t.notifications.expired)
    counter(
      'database_write_errors_total',
      'writes the database refused (full, failing, read-only or locked disk), by what was written; each is held and ' +
        'retried, or its HTTP request answered 507',
      () =>
        byLabel('write', {
          heartbeats: t.heartbeatWriteFailures,
          status: t.statusWriteFailures,
          command_step: commands.counters.stepsNotRecorded,
          http_request: s.router.counters.notStored,
        }),
      ['write'],
    )
    new prom.Gauge({
      name: 'fakephone_broker_database_bytes',
      help: "the SQLite database's files, bytes (db: the database; wal: its write-ahead log, emptied at checkpoints)",
      labelNames: ['file'],
      registers,
      collect() {
        const path = join(s.dataDir, DB_FILE)
        this.set({ file: 'db' }, fileBytes(path))
        this.set({ file: 'wal' }, fileBytes(`${path}-wal`))
      },
    })
    counter(
      'due_timer_runs_total',
      "runs of the cloud's due timers (recycle bin, backups, expiries, ...), by timer and outcome (ok, failed: logged, tried again)",
      () => [...t.dueRuns].flatMap(([timer, runs]) => byLabel('outcome', runs, { timer })),
      ['timer', 'outcome'],
    )
    counter(
      'handler_failures_total',
      "exceptions caught in the broker's own handlers and hooks (each logged)",
      () => counters.handlerFailures + access.hookFailures,
    )

    store.on('stored', (n, seconds) => {
      t.heartbeatsStored += n
      this.heartbeatWrite.observe(seconds)
    })
    store.on('held', () => t.heartbeatWriteFailures++)
    store.on('statusHeld', () => t.statusWriteFailures++)
    commands.on('changed', (view) => this.commandChanged(view))
    queue.on('queued', () => t.notifications.queued++)
    queue.on('delivered', () => t.notifications.delivered++)
    queue.on('expired', (records) => (t.notifications.expired += records.length))
  }

  /** Hears the due timers' runs (on this broker's clock) from now on. */
  start(): void {
    DUE_TIMER_RUNS.subscribe(this.onDueRun)
  }

  stop(): void {
    DUE_TIMER_RUNS.unsubscribe(this.onDueRun)
  }

  /** Adds `GET /metrics`, open to anyone as /health is (see the module comment). */
  addRoutes(router: HttpRouter): void {
    router.add('GET', METRICS_PATH, ['public'], async () => {
      const text = await this.registry.metrics()
      return { status: 200, stream: Readable.from([text]), headers: { 'content-type': this.registry.contentType } }
    })
  }

  /**
   * A command's step: `queued` is only ever its first state (states move forward), `rejected` without a receipt the
   * cloud's refusal at submit; a final state is reached once, and with the phone's receipt it ends the round trip.
   */
  private commandChanged(view: CommandView): void {
    const t = this.tally
    if (view.state === 'queued' || (view.state === 'rejected' && view.receipt === null)) t.commandsSubmitted++
    if (!FINAL_STATES.has(view.state)) return
    t.commandsFinished[view.state as Exclude<CommandState, 'queued' | 'delivered' | 'executing'>]++
    if (view.receipt !== null) this.commandReceipt.observe((view.updatedAt - view.createdAt) / 1000)
  }
}

/** A file's size, 0 when there is none. */
function fileBytes(path: string): number {
  // The broker's own connection keeps both files from its open (the migrations write) to its close: the 0 is for a data
  // directory removed under a running broker, which no test does.
  /* c8 ignore next */
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0
}
