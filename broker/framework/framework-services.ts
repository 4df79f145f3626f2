/**
 * The cloud side of the phones' resident service framework (X1-X3), built
 * and started by CloudBroker as one part: the push gateway (`/push`) with
 * its durable notification queue, the vendor's service notices, the store
 * of behaviour logs received over the data channel, and their console API.
 */
import type { Clock } from '../../common/clock.js'
import type { LogBatch } from '../../common/contract.js'
import type { Logger } from '../../common/log.js'
import { BehaviourLogStore } from './behaviour-logs.js'
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
  }

  /** X2: a behaviour-log batch accepted on the data channel; refused when the device said its cloud service is off. */
  ingestLogs(deviceId: string, batch: LogBatch, receivedAt: number): void {
    if (this.deps.store.device(deviceId)?.cloudService === false) {
      this.counters.logBatchesIgnored++
      this.deps.log.warn({ deviceId, events: batch.events.length }, 'behaviour logs ignored: the device has its cloud service off')
      return
    }
    const { stored, refused } = this.logs.record(deviceId, batch.events, receivedAt)
    this.counters.logEvents += stored
    this.counters.logEventsRefused += refused.length
    for (const r of refused) this.deps.log.warn({ deviceId, seq: r.seq, reason: r.reason }, 'behaviour log event not stored')
    this.deps.log.debug(
      { deviceId, stored, refused: refused.length, lastSeq: (batch.events.at(-1) as { seq: number }).seq },
      'behaviour logs stored',
    )
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
