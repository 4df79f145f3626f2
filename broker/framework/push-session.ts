/**
 * X1, X3: one push connection as the gateway sees it: the hello deadline,
 * checking every frame against the protocol, the idle deadline (any frame or
 * ping from the device resets it) and closing with a reason the device can
 * read. What a hello or an acknowledgement means is the gateway's business.
 * Before the hello is accepted, anything that is not a hello closes the
 * connection; after it, a bad frame is answered with an error frame and the
 * connection stays.
 */
import WebSocket from 'ws'
import type { Clock, Timer } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import { ClientFrameSchema, PUSH_CLOSE, ServerFrameSchema, decodeFrame, encodeFrame, type ServerFrame } from '../../common/push-protocol.js'

export interface SessionTimings {
  /** A device must say hello within this, ms. */
  helloTimeoutMs: number
  /** A device that sends nothing, not even a ping, for this long is cut off, ms. */
  idleTimeoutMs: number
}

export interface SessionHandlers {
  hello(session: PushSession, device: string, secret: string): void
  ack(session: PushSession, id: string): void
  closed(session: PushSession): void
}

/** Longest close reason WebSocket allows, bytes [RFC 6455 5.5]. */
const MAX_CLOSE_REASON = 123

/**
 * `text` cut to at most `max` bytes of UTF-8, never inside a character. The reasons are in bytes: cut in characters, a
 * refusal quoting zod's words (their ✖ and → are three bytes each) passed 123, and ws threw RangeError from close(),
 * inside the message listener: one frame from anyone, before any hello, ended the broker.
 */
export function utf8Prefix(text: string, max: number): string {
  const bytes = Buffer.from(text)
  if (bytes.length <= max) return text
  let end = max
  // A continuation byte (10xxxxxx) at the cut: step back to the start of its character.
  while (((bytes[end] as number) & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString()
}
const MAX_ERROR_MESSAGE = 500

export class PushSession {
  /** Set once the device proved who it is. */
  deviceId: string | null = null
  /** Notification ids sent on this connection and not yet acknowledged. */
  readonly inflight = new Set<string>()
  private helloSaid = false
  private helloTimer: Timer | null = null
  private idleTimer: Timer | null = null

  constructor(
    private readonly ws: WebSocket,
    readonly address: string,
    private readonly timings: SessionTimings,
    /** Hello and idle deadlines run on real time, like MQTT's CONNECT and keep-alive deadlines. */
    private readonly timers: Clock,
    private readonly log: Logger,
    private readonly handlers: SessionHandlers,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  start(): void {
    this.helloTimer = this.timers.after(this.timings.helloTimeoutMs, () =>
      this.refuse(PUSH_CLOSE.HELLO_TIMEOUT, 'HELLO_TIMEOUT', `no hello within ${this.timings.helloTimeoutMs} ms`),
    )
    this.resetIdle()
    this.ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary))
    this.ws.on('ping', () => this.resetIdle())
    this.ws.on('error', (err) =>
      this.log.debug({ address: this.address, deviceId: this.deviceId, err: err.message }, 'push connection error'),
    )
    this.ws.on('close', () => {
      this.helloTimer?.cancel()
      this.idleTimer?.cancel()
      this.handlers.closed(this)
    })
  }

  /** The device proved who it is. */
  accept(deviceId: string, at: number): void {
    this.deviceId = deviceId
    this.helloTimer?.cancel()
    this.send({ type: 'welcome', device: deviceId, at })
  }

  send(frame: ServerFrame): void {
    if (this.open) this.ws.send(encodeFrame(ServerFrameSchema, frame))
  }

  /** Says why in an error frame and in the log, then closes. */
  refuse(closeCode: number, code: string, message: string): void {
    this.log.warn({ address: this.address, deviceId: this.deviceId, reason: message }, 'push connection refused')
    this.sendError(code, message)
    this.close(closeCode, message)
  }

  close(code: number, reason: string): void {
    this.ws.close(code, utf8Prefix(reason, MAX_CLOSE_REASON))
  }

  /** Cuts the connection without a closing handshake, as a lost network would. */
  terminate(): void {
    this.ws.terminate()
  }

  sendError(code: string, message: string): void {
    this.send({ type: 'error', code, message: message.slice(0, MAX_ERROR_MESSAGE) })
  }

  private resetIdle(): void {
    this.idleTimer?.cancel()
    this.idleTimer = this.timers.after(this.timings.idleTimeoutMs, () => {
      this.log.info({ address: this.address, deviceId: this.deviceId, idleMs: this.timings.idleTimeoutMs }, 'push connection idle, cut off')
      this.terminate()
    })
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.resetIdle()
    const decoded = decodeFrame(ClientFrameSchema, data, isBinary)
    if (!decoded.ok) {
      if (this.deviceId === null) return this.refuse(PUSH_CLOSE.PROTOCOL_ERROR, 'BAD_FRAME', `not a push frame: ${decoded.reason}`)
      this.log.warn({ deviceId: this.deviceId, reason: decoded.reason }, 'push frame refused')
      return this.sendError('BAD_FRAME', decoded.reason)
    }
    const frame = decoded.value
    if (frame.type === 'hello') {
      if (this.helloSaid) return this.sendError('BAD_FRAME', 'hello was already said on this connection')
      this.helloSaid = true
      return this.handlers.hello(this, frame.device, frame.secret)
    }
    if (this.deviceId === null) return this.refuse(PUSH_CLOSE.PROTOCOL_ERROR, 'BAD_FRAME', 'say hello first')
    this.handlers.ack(this, frame.id)
  }
}
