/**
 * The cloud side of the phones' resident service framework (X1-X3), built
 * and started by CloudBroker as one part: the push gateway (`/push`) with
 * its durable notification queue, the vendor's service notices, the store
 * of behaviour logs received over the data channel, and their console API.
 */
import type { Clock } from '../../common/clock.js'
import type { BehaviourEvent, LogBatch } from '../../common/contract.js'
import type { Logger } from '../../common/log.js'
import { BehaviourLogStore } from './behaviour-logs.js'
import { RetryBackoff } from '../retry-backoff.js'
import type { Db } from '../db.js'
import { addFrameworkRoutes, type FrameworkApiContext } from './framework-api.js'
import type { HttpRouter } from '../http/router.js'
import { NotificationQueue } from './notification-queue.js'
import { DEFAULT_PUSH_GATEWAY_OPTIONS, PushGateway, type PushGatewayOptions } from './push-gateway.js'
import type { DeviceRegistry } from '../devices/registry.js'
import { ServiceNotices } from './service-notices.js'
import type { StateStore } from '../devices/state-store.js'

export interface FrameworkServicesOptions {
  push: PushGatewayOptions
  /** Queue a weather warning or a system-update reminder for every device this often, ms; 0 for never. */
  serviceNoticeEveryMs: number
}

/** The first and the longest wait before behaviour logs the database could not take are written again, ms (see holdLogs). */
const LOG_RETRY_MS = 1000
const LOG_RETRY_MAX_MS = 30_000

export const DEFAULT_FRAMEWORK_OPTIONS: FrameworkServicesOptions = { push: DEFAULT_PUSH_GATEWAY_OPTIONS, serviceNoticeEveryMs: 0 }

export interface FrameworkDeps {
  db: Db
  registry: DeviceRegistry
  store: StateStore
  clock: Clock
  log: Logger
  /** Per-address connection limit shared with MQTT. */
  allow(address: string): boolean
  /** A push connection from `address` authenticated. */
  authenticated(address: string): void
}

export class FrameworkServices {
  readonly queue: NotificationQueue
  readonly logs: BehaviourLogStore
  readonly gateway: PushGateway
  readonly counters = { logEvents: 0, logBatchesIgnored: 0, logEventsRefused: 0 }
  private readonly notices: ServiceNotices | null
  /** X2 batches the database could not take, and their retry (see holdLogs). */
  private readonly heldLogs: { deviceId: string; events: readonly BehaviourEvent[]; receivedAt: number }[] = []
  private readonly logRetry = new RetryBackoff(LOG_RETRY_MS, LOG_RETRY_MAX_MS)
  private readonly api: FrameworkApiContext

  constructor(
    private readonly deps: FrameworkDeps,
    opts: FrameworkServicesOptions = DEFAULT_FRAMEWORK_OPTIONS,
  ) {
    const log = deps.log.child({ component: 'push' })
    this.queue = new NotificationQueue(deps.db, deps.clock, log)
    this.logs = new BehaviourLogStore(deps.db)
    this.gateway = new PushGateway(
      {
        verify: (id, secret) => deps.registry.verify(id, secret),
        queue: this.queue,
        clock: deps.clock,
        log,
        allow: deps.allow,
        authenticated: deps.authenticated,
      },
      opts.push,
    )
    const devices = (): string[] => deps.registry.list().map((d) => d.id)
    this.notices =
      opts.serviceNoticeEveryMs > 0 ? new ServiceNotices(this.queue, devices, deps.clock, opts.serviceNoticeEveryMs, log) : null
    this.api = {
      now: () => deps.clock.now(),
      channels: (id) => this.channels(id),
      notifications: (id, limit) => this.queue.list(id, limit),
      notify: (id, req) => this.queue.enqueue(id, req),
      logs: (id, limit) => this.logs.list(id, limit),
    }
  }

  start(): void {
    this.queue.start()
    this.gateway.start()
    this.notices?.start()
  }

  stop(): void {
    this.notices?.stop()
    this.gateway.stop()
    this.queue.stop()
    this.logRetry.cancel()
    const held = this.heldLogs.reduce((n, b) => n + b.events.length, 0)
    if (held > 0) this.deps.log.error({ events: held }, 'broker stopped with behaviour logs the database could not take: they are lost')
  }

  /** X2: a behaviour-log batch accepted on the data channel; refused when the device said its cloud service is off. */
  ingestLogs(deviceId: string, batch: LogBatch, receivedAt: number): void {
    if (this.deps.store.device(deviceId)?.cloudService === false) {
      this.counters.logBatchesIgnored++
      this.deps.log.warn({ deviceId, events: batch.events.length }, 'behaviour logs ignored: the device has its cloud service off')
      return
    }
    this.storeLogs(deviceId, batch.events, receivedAt)
  }

  private storeLogs(deviceId: string, events: readonly BehaviourEvent[], receivedAt: number): void {
    const { stored, refused, held } = this.logs.record(deviceId, events, receivedAt)
    this.counters.logEvents += stored
    this.counters.logEventsRefused += refused.length
    for (const r of refused) this.deps.log.warn({ deviceId, seq: r.seq, reason: r.reason }, 'behaviour log event not stored')
    this.deps.log.debug(
      { deviceId, stored, refused: refused.length, lastSeq: (events.at(-1) as { seq: number }).seq },
      'behaviour logs stored',
    )
    if (held) this.holdLogs(deviceId, held.events, receivedAt, held.reason)
  }

  /**
   * X2: events the database could not take (a full disk) were acknowledged to the phone, which then forgets them: they
   * are held in memory and written again after 1 s, doubling to 30 s (I/O pacing, Node's timers), each attempt logged.
   * A phone uploads a batch every 15 minutes at most, so what is held stays small.
   */
  private holdLogs(deviceId: string, events: readonly BehaviourEvent[], receivedAt: number, reason: string): void {
    this.heldLogs.push({ deviceId, events, receivedAt })
    const held = this.heldLogs.reduce((n, b) => n + b.events.length, 0)
    this.deps.log.error(
      { deviceId, events: events.length, held, reason },
      'behaviour logs held: the database cannot take them; written again when it can',
    )
    this.logRetry.schedule(() => {
      for (const b of this.heldLogs.splice(0)) this.storeLogs(b.deviceId, b.events, b.receivedAt)
      if (this.heldLogs.length === 0) this.logRetry.reset()
    })
  }

  /**
   * X2: the highest behaviour-log seq the cloud holds of the device, stored or held for writing again (null: none), for
   * the answer to the phone's subscription: the phone numbers its events past it (agent/behaviour-log.ts).
   */
  lastLogSeq(deviceId: string): number | null {
    const held = this.heldLogs.filter((b) => b.deviceId === deviceId).flatMap((b) => b.events.map((e) => e.seq))
    const last = Math.max(this.logs.lastSeq(deviceId) ?? -1, ...held)
    return last < 0 ? null : last
  }

  /** Adds the framework's console API routes to the broker's HTTP router. */
  addRoutes(router: HttpRouter): void {
    addFrameworkRoutes(router, this.api)
  }

  private channels(id: string): ReturnType<FrameworkApiContext['channels']> {
    const device = this.deps.store.device(id)
    if (!device) return undefined
    return {
      data: { online: device.online, cloudService: device.cloudService, since: device.presenceAt },
      push: this.gateway.presenceOf(id),
      notifications: this.queue.counts(id),
      logs: this.logs.summary(id),
    }
  }
}
