/**
 * X1, X3: the resident framework's push connection, held apart from the
 * MQTT data channel. A WebSocket to the cloud's push gateway (`/push`): a
 * hello with the device id and secret, notifications in, one acknowledgement
 * per id out (docs/CONTRACT.md). It has its own life: it reconnects with
 * capped exponential backoff and jitter on the injected clock, keeps alive
 * with WebSocket pings (a ping still unanswered when the next is due means
 * the connection is dead), and is `blocked` -- closed and not retrying --
 * while the user has revoked the framework's network permission.
 */
import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import { RetryTimer, type BackoffOptions } from '../common/backoff.js'
import { SystemClock, type Clock, type Timer } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import { REFUSED_WHY } from '../common/mqtt.js'
import type { ChannelWaiting, PushStateSchema } from '../common/phone-status.js'
import type { z } from 'zod'
import {
  ClientFrameSchema,
  PUSH_CLOSE,
  PUSH_MAX_FRAME_BYTES,
  PUSH_PATH,
  PUSH_PROTOCOL_VERSION,
  ServerFrameSchema,
  decodeFrame,
  encodeFrame,
  type PushNotification,
} from '../common/push-protocol.js'
import type { DeviceCredentials } from './credentials.js'

/** `off`: never started (or no push URL); `blocked`: network permission revoked; `stopped`: the phone stopped. */
export type PushState = z.infer<typeof PushStateSchema>

const DEFAULT_PING_MS = 25_000

export interface PushChannelOptions {
  url: string
  /** The device's id and secret, read at each hello: F1, X1: a device given a new secret sends it from the next hello on. */
  credentials: DeviceCredentials
  /** Reconnect delays. */
  clock: Clock
  /** Keep-alive timers: real time unless told otherwise, like MQTT's own keep-alive. */
  keepaliveClock?: Clock
  log: Logger
  backoff?: BackoffOptions
  random?: () => number
  /** Time between pings, ms. */
  pingMs?: number
}

interface PushChannelEvents {
  state: [state: PushState]
  notification: [n: PushNotification]
  /**
   * The cloud's clock read at least `cloudNow` when it sent a frame: the welcome's `at`, a notification's `createdAt`.
   * Said before the notification it came with, so a phone whose data channel is down (X1) follows the cloud's time too.
   */
  cloudTime: [cloudNow: number]
  /**
   * A retry after the gateway refused the device's id and secret (close 4001) is about to connect: a listener may put
   * a new secret in the credentials first. As often as the backoff retries, never more.
   */
  refusedRetry: []
}

/**
 * The push URL that goes with a broker URL: a WebSocket broker URL
 * (ws://HOST:PORT/mqtt) shares its origin with the push channel, so it is
 * ws://HOST:PORT/push. An mqtt:// URL names the broker's MQTT port only, and
 * nothing says where its HTTP side listens: no push URL (undefined) rather
 * than a guessed port. (A broker URL that is not a URL at all is the MQTT
 * client's to refuse.)
 */
export function defaultPushUrl(brokerUrl: string): string | undefined {
  if (!URL.canParse(brokerUrl)) return undefined
  const url = new URL(brokerUrl)
  if (url.protocol === 'ws:' || url.protocol === 'wss:') return new URL(PUSH_PATH, url).toString()
  return undefined
}

export class PushChannel extends EventEmitter<PushChannelEvents> {
  private ws: WebSocket | null = null
  private stateNow: PushState = 'off'
  private readonly retry: RetryTimer
  private readonly keepalive: Clock
  private readonly pingMs: number
  private pinger: Timer | null = null
  private awaitingPong = false
  /** Why the last connection failed, for the retry's log line. */
  private lastError: string | null = null
  /**
   * True once this run of refusals (close 4001: removed, unknown or a wrong secret) has been warned of: the retries after
   * it are info lines, as the data channel's (common/mqtt.ts), until the gateway welcomes the device again.
   */
  private warnedRefused = false
  /** True from the gateway's refusal of the device's id and secret (its error frame, or close 4001) until it welcomes the device. */
  private refusedNow = false
  /** When the first retry of this run of failures was planned (the clock), ms; null while connected or let go of. */
  private waitingSinceNow: number | null = null
  /** Why the connection the retry now waiting follows failed (its error, else the close's reason; null: unsaid). */
  private failureNow: string | null = null
  /** The push endpoint; M2 moves it (moveTo). */
  private url: string

  constructor(private readonly opts: PushChannelOptions) {
    super()
    this.url = opts.url
    this.retry = new RetryTimer(opts.clock, opts.backoff, opts.random)
    this.keepalive = opts.keepaliveClock ?? new SystemClock()
    this.pingMs = opts.pingMs ?? DEFAULT_PING_MS
  }

  get state(): PushState {
    return this.stateNow
  }

  /**
   * Whether the gateway refused the device's id and secret since it last welcomed it: a device removed, or a wrong
   * secret. Its error frame says so before the connection closes, often before the broker's close of the data channel
   * reaches the phone, which says nothing of why.
   */
  get refused(): boolean {
    return this.refusedNow
  }

  /** X1: while a retry waits, since when the channel has failed and why, as `phone status` says it; otherwise null. */
  get waiting(): ChannelWaiting | null {
    if (this.stateNow !== 'waiting') return null
    return { since: this.waitingSinceNow as number, why: this.failureNow }
  }

  /** Connects, or stays blocked when the framework may not use the network. */
  start(blocked: boolean): void {
    if (blocked) this.setState('blocked')
    else this.connect()
  }

  /** X3: network permission revoked. The connection closes and is not retried. */
  block(): void {
    if (this.stateNow === 'blocked' || this.stateNow === 'stopped') return
    this.setState('blocked')
    this.detach()?.close(1000, 'network permission revoked')
  }

  /** X3: network permission back: connect at once. */
  unblock(): void {
    if (this.stateNow !== 'blocked') return
    this.retry.reset()
    this.connect()
  }

  /** Closes the connection for good, at once: a phone that stops does not wait for a dead cloud. */
  async stop(): Promise<void> {
    this.setState('stopped')
    const ws = this.detach()
    if (!ws) return
    ws.terminate()
    // Not events.once(): a connection ended mid-handshake emits 'error' before 'close', which once() would throw.
    if (ws.readyState !== WebSocket.CLOSED) await new Promise((resolve) => ws.once('close', resolve))
  }

  /** M2: the account migrated: the channel goes to `url` now (at once when it is up or trying; else when it starts). */
  moveTo(url: string): void {
    this.url = url
    if (this.stateNow !== 'connecting' && this.stateNow !== 'connected' && this.stateNow !== 'waiting') return
    this.detach()?.close(1000, 'the cloud moved')
    this.retry.reset()
    this.connect()
  }

  /** F1, X1: the device has a new secret (its credentials hold it): a retry that waits goes at once, its hello with it. */
  retryNow(): void {
    this.retry.runNow()
  }

  /**
   * Acknowledges a notification by id on the current connection, once the
   * cloud welcomed it; otherwise the acknowledgement is lost and the cloud
   * sends the notification again (the inbox recognises it).
   */
  ack(id: string): void {
    if (this.stateNow === 'connected') (this.ws as WebSocket).send(encodeFrame(ClientFrameSchema, { type: 'ack', id }))
  }

  private connect(): void {
    this.setState('connecting')
    const ws = new WebSocket(this.url, { perMessageDeflate: false, maxPayload: PUSH_MAX_FRAME_BYTES, handshakeTimeout: 10_000 })
    this.ws = ws
    ws.on('open', () => {
      const { deviceId, secret } = this.opts.credentials
      ws.send(encodeFrame(ClientFrameSchema, { type: 'hello', v: PUSH_PROTOCOL_VERSION, device: deviceId, secret }))
    })
    // A connection let go of (blocked, stopped) may still deliver frames the cloud sent before it heard: they are not taken.
    ws.on('message', (data, isBinary) => {
      if (ws === this.ws) this.onFrame(data as Buffer, isBinary)
    })
    ws.on('pong', () => (this.awaitingPong = false))
    // A failure is an error, then a close: said once, in the close's log line.
    ws.on('error', (err) => {
      this.lastError = err.message
      this.opts.log.debug({ err: err.message }, 'push connection error')
    })
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()))
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    const decoded = decodeFrame(ServerFrameSchema, data, isBinary)
    if (!decoded.ok) return void this.opts.log.warn({ reason: decoded.reason }, 'push frame refused')
    const frame = decoded.value
    switch (frame.type) {
      case 'welcome':
        this.emit('cloudTime', frame.at)
        this.retry.reset()
        this.warnedRefused = false
        this.refusedNow = false
        this.waitingSinceNow = null
        this.opts.log.info({ url: this.url }, 'push connected')
        this.setState('connected')
        this.stopPing()
        this.awaitingPong = false
        this.schedulePing()
        return
      case 'notification': {
        const { type: _, ...notification } = frame
        this.emit('cloudTime', notification.createdAt)
        this.emit('notification', notification)
        return
      }
      case 'error':
        // A refusal's words come again as the close's reason, and are said there (warned of once per run of refusals).
        if (frame.code === 'UNAUTHORIZED') this.refusedNow = true
        this.opts.log[frame.code === 'UNAUTHORIZED' ? 'debug' : 'warn'](
          { code: frame.code, message: frame.message },
          'the push gateway reported an error',
        )
        return
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return
    this.ws = null
    this.stopPing()
    // Blocking and stopping let go of the connection first (detach), so a close that gets here was not wanted: retry.
    const refused = code === PUSH_CLOSE.UNAUTHORIZED
    if (refused) this.refusedNow = true
    this.retry.schedule(() => {
      if (refused) this.emit('refusedRetry')
      this.connect()
    })
    this.failureNow = this.lastError ?? (reason || null)
    this.waitingSinceNow ??= this.opts.clock.now()
    this.setState('waiting')
    const fields = { code, reason, err: this.lastError ?? undefined, delayMs: this.retry.lastDelayMs, attempt: this.retry.attempts }
    this.lastError = null
    if (!refused) this.opts.log.info(fields, 'push disconnected, retrying')
    else if (this.warnedRefused) this.opts.log.info(fields, 'push refused this device again, retrying')
    else {
      this.opts.log.warn(fields, `push refused this device: ${REFUSED_WHY}`)
      this.warnedRefused = true
    }
  }

  /** Lets go of the current connection on purpose, with no retry (the state says why); returns it for closing. */
  private detach(): WebSocket | null {
    this.retry.cancel()
    this.stopPing()
    // A run of failures is over when the channel is let go of on purpose: the next one starts its own "since".
    this.waitingSinceNow = null
    const ws = this.ws
    this.ws = null
    return ws
  }

  private schedulePing(): void {
    this.pinger = this.keepalive.after(this.pingMs, () => this.ping())
  }

  private ping(): void {
    const ws = this.ws as WebSocket
    if (this.awaitingPong) {
      this.opts.log.warn({ pingMs: this.pingMs }, 'push keep-alive: no pong, the connection is dead')
      ws.terminate()
      return
    }
    this.awaitingPong = true
    ws.ping()
    this.schedulePing()
  }

  private stopPing(): void {
    this.pinger?.cancel()
    this.pinger = null
  }

  private setState(state: PushState): void {
    this.stateNow = state
    this.emit('state', state)
  }
}
