/**
 * X1, X3: the cloud's push gateway, a WebSocket endpoint (`/push`) apart from
 * MQTT with its own authentication: the device's hello carries its id and
 * secret, checked against the device registry. Once a device is in, every
 * notification still queued for it goes out in queue order, and each new
 * one as it is queued; a notification is delivered only when the device
 * acknowledges its id, so one sent into a connection that then died is sent
 * again on the next (the device recognises it and does not show it twice).
 * A device has at most one push connection: a newer one replaces the older.
 * A device removed from the registry has its connection closed (4001, the
 * reason said in an error frame and logged).
 */
import { EventEmitter } from 'node:events'
import { WebSocketServer, type WebSocket } from 'ws'
import { SystemClock, type Clock } from '../../common/clock.js'
import type { PushPresence } from '../../common/console-api.js'
import type { Logger } from '../../common/log.js'
import { PUSH_CLOSE, PUSH_MAX_FRAME_BYTES } from '../../common/push-protocol.js'
import { toNotification, type NotificationQueue, type NotificationRecord } from './notification-queue.js'
import { PushSession, type SessionHandlers, type SessionTimings } from './push-session.js'
import { quoted } from '../../common/terminal-text.js'

export type PushGatewayOptions = SessionTimings

export const DEFAULT_PUSH_GATEWAY_OPTIONS: PushGatewayOptions = { helloTimeoutMs: 10_000, idleTimeoutMs: 90_000 }

/** WebSocket close code 1013 "try again later" [RFC 6455 7.4.1]. */
const TRY_AGAIN_LATER = 1013

export type { PushPresence }

export interface GatewayDeps {
  verify(deviceId: string, secret: string): Promise<boolean>
  queue: NotificationQueue
  /** The rules clock (when a device came and went). */
  clock: Clock
  /** Hello and idle deadlines; real time by default. */
  timers?: Clock
  log: Logger
  /** Per-address connection limit. */
  allow(address: string): boolean
  /** A connection from `address` proved who it is: it gives its rate-limit token back. */
  authenticated(address: string): void
}

interface GatewayEvents {
  online: [deviceId: string]
  offline: [deviceId: string]
}

export class PushGateway extends EventEmitter<GatewayEvents> {
  readonly wss: WebSocketServer
  /**
   * `refused`: every connection refused, of which `rateLimited` by the per-address limit (the rest: wrong credentials);
   * `online`, `offline`: devices' push connections accepted and ended (read by /metrics, broker/metrics.ts).
   */
  readonly counters = { refused: 0, rateLimited: 0, sent: 0, delivered: 0, online: 0, offline: 0 }
  private readonly sessions = new Map<string, PushSession>()
  private readonly everyone = new Set<PushSession>()
  private readonly presence = new Map<string, PushPresence>()
  private readonly timers: Clock
  private readonly handlers: SessionHandlers = {
    hello: (session, device, secret) => this.hello(session, device, secret),
    ack: (session, id) => this.ack(session, id),
    closed: (session) => this.closed(session),
  }
  private readonly onQueued = (record: NotificationRecord): void => {
    const session = this.sessions.get(record.deviceId)
    if (session) this.deliver(session)
  }

  constructor(
    private readonly deps: GatewayDeps,
    private readonly opts: PushGatewayOptions = DEFAULT_PUSH_GATEWAY_OPTIONS,
  ) {
    super()
    this.wss = new WebSocketServer({ noServer: true, maxPayload: PUSH_MAX_FRAME_BYTES, perMessageDeflate: false })
    this.timers = deps.timers ?? new SystemClock()
  }

  start(): void {
    this.wss.on('connection', (ws, req) => this.accept(ws, req.socket.remoteAddress as string))
    this.deps.queue.on('queued', this.onQueued)
  }

  /** Cuts every connection at once (no frame arrives after this) and stops taking new ones. */
  stop(): void {
    this.deps.queue.off('queued', this.onQueued)
    this.wss.removeAllListeners('connection')
    for (const session of this.everyone) session.terminate()
    this.wss.close()
  }

  /** Devices with a push connection now. */
  get connectedCount(): number {
    return this.sessions.size
  }

  connected(deviceId: string): boolean {
    return this.sessions.has(deviceId)
  }

  presenceOf(deviceId: string): PushPresence {
    return this.presence.get(deviceId) ?? { connected: false, since: null }
  }

  /** Cuts a device's push connection the way a lost network would (no closing handshake); false when it had none. */
  drop(deviceId: string): boolean {
    const session = this.sessions.get(deviceId)
    session?.terminate()
    return session !== undefined
  }

  /** Device `deviceId` was removed: its push connection is closed with the reason, logged (its secret no longer works). */
  removed(deviceId: string): void {
    this.sessions.get(deviceId)?.refuse(PUSH_CLOSE.UNAUTHORIZED, 'UNAUTHORIZED', 'the device was removed')
  }

  private accept(ws: WebSocket, address: string): void {
    if (!this.deps.allow(address)) {
      this.counters.refused++
      this.counters.rateLimited++
      this.deps.log.warn({ address }, 'push connection refused: too many connections from this address')
      ws.close(TRY_AGAIN_LATER, 'too many connections from this address')
      return
    }
    const session = new PushSession(ws, address, this.opts, this.timers, this.deps.log, this.handlers)
    this.everyone.add(session)
    session.start()
  }

  private hello(session: PushSession, deviceId: string, secret: string): void {
    this.deps.verify(deviceId, secret).then(
      (ok) => {
        if (!session.open) return
        if (!ok) {
          this.counters.refused++
          return session.refuse(PUSH_CLOSE.UNAUTHORIZED, 'UNAUTHORIZED', 'unknown device or wrong secret')
        }
        this.sessions.get(deviceId)?.close(PUSH_CLOSE.REPLACED, 'replaced by a newer push connection')
        const now = this.deps.clock.now()
        this.sessions.set(deviceId, session)
        this.presence.set(deviceId, { connected: true, since: now })
        session.accept(deviceId, now)
        this.deps.authenticated(session.address)
        this.deps.log.info({ deviceId, address: session.address }, 'push connected')
        this.counters.online++
        this.emit('online', deviceId)
        this.deliver(session)
      },
      (err: unknown) => {
        this.deps.log.error({ deviceId, err: (err as Error).message }, 'push hello could not be checked')
        session.terminate()
      },
    )
  }

  /** Sends, in queue order, whatever is due to the session's device and not already on its way there. */
  private deliver(session: PushSession): void {
    for (const record of this.deps.queue.pending(session.deviceId as string)) {
      if (session.inflight.has(record.id)) continue
      session.inflight.add(record.id)
      this.deps.queue.sent(record.id)
      this.counters.sent++
      session.send({ type: 'notification', ...toNotification(record) })
    }
  }

  private ack(session: PushSession, id: string): void {
    const deviceId = session.deviceId as string
    session.inflight.delete(id)
    const result = this.deps.queue.acknowledge(deviceId, id)
    if (result.outcome === 'unknown') {
      this.deps.log.warn({ deviceId, id }, 'push acknowledgement for an unknown notification')
      return session.sendError('UNKNOWN_ID', `no notification ${quoted(id)} for ${deviceId}`)
    }
    if (result.outcome !== 'delivered') return // a repeated acknowledgement
    this.counters.delivered++
    this.deps.log.info({ deviceId, id, delayMs: result.record.delayMs }, 'notification delivered')
  }

  private closed(session: PushSession): void {
    this.everyone.delete(session)
    const deviceId = session.deviceId
    if (deviceId === null || this.sessions.get(deviceId) !== session) return
    this.sessions.delete(deviceId)
    this.presence.set(deviceId, { connected: false, since: this.deps.clock.now() })
    this.deps.log.info({ deviceId }, 'push disconnected')
    this.counters.offline++
    this.emit('offline', deviceId)
  }
}
