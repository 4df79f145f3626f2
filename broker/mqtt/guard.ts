/**
 * A guard in front of Aedes, which has no maximum packet size and buffers
 * whatever a peer announces. Every connection (TCP or WebSocket) passes
 * through `GuardedConnection`, which follows MQTT's framing without parsing
 * payloads and drops the peer, with a reason, when:
 *  - the first packet is not CONNECT [MQTT-3.1.0-1],
 *  - a packet announces more than `maxPacketBytes`,
 *  - a remaining-length field runs past four bytes [MQTT-2.2.3],
 *  - CONNECT has not arrived within `connectTimeoutMs`.
 * Bytes are passed on as they arrive, so nothing is held back or copied.
 */
import { Duplex } from 'node:stream'
import type { Clock } from '../../common/clock.js'

export interface GuardOptions {
  maxPacketBytes: number
  connectTimeoutMs: number
}

export type RejectReason = 'first packet is not CONNECT' | 'packet too large' | 'malformed remaining length' | 'no CONNECT in time'

const CONNECT = 1

/** What the framing tracker is reading next. */
type Phase = 'type' | 'length' | 'body'

export class GuardedConnection extends Duplex {
  private phase: Phase = 'type'
  private packets = 0
  private lengthBytes = 0
  private multiplier = 1
  private remaining = 0
  private rejected = false
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly inner: Duplex,
    private readonly opts: GuardOptions,
    private readonly onReject: (reason: RejectReason, detail: string) => void,
    readonly remoteAddress: string,
  ) {
    super()
    this.timer = setTimeout(() => this.reject('no CONNECT in time', `${opts.connectTimeoutMs} ms passed`), opts.connectTimeoutMs)
    inner.on('data', (chunk: Buffer) => {
      if (!this.inspect(chunk)) return
      if (!this.push(chunk)) inner.pause()
    })
    inner.on('end', () => this.push(null))
    inner.on('error', (err) => this.destroy(err))
    inner.on('close', () => this.destroy())
  }

  override _read(): void {
    this.inner.resume()
  }

  /**
   * Aedes writes a packet as several small chunks; one socket write per batch
   * means one TCP segment, not three. (With no _write, Node sends single
   * writes here too.)
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.inner.write(Buffer.concat(chunks.map((c) => c.chunk)), cb)
  }

  override _final(cb: () => void): void {
    this.inner.end(cb)
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.timer)
    this.inner.destroy()
    cb(err)
  }

  /** Follows packet boundaries through `chunk`; false when the peer was dropped. */
  private inspect(chunk: Buffer): boolean {
    let i = 0
    while (i < chunk.length) {
      if (this.phase === 'type') {
        if (this.packets === 0 && (chunk[i] as number) >> 4 !== CONNECT)
          return this.reject('first packet is not CONNECT', `first byte 0x${(chunk[i] as number).toString(16)}`)
        this.phase = 'length'
        this.lengthBytes = 0
        this.multiplier = 1
        this.remaining = 0
        i++
      } else if (this.phase === 'length') {
        const byte = chunk[i++] as number
        this.remaining += (byte & 0x7f) * this.multiplier
        this.multiplier *= 128
        this.lengthBytes++
        if (byte & 0x80) {
          if (this.lengthBytes === 4) return this.reject('malformed remaining length', 'more than four length bytes')
          continue
        }
        const size = 1 + this.lengthBytes + this.remaining
        if (size > this.opts.maxPacketBytes)
          return this.reject('packet too large', `${size} bytes announced, limit ${this.opts.maxPacketBytes}`)
        this.phase = 'body'
        if (this.remaining === 0) this.endPacket()
      } else {
        const take = Math.min(this.remaining, chunk.length - i)
        this.remaining -= take
        i += take
        if (this.remaining === 0) this.endPacket()
      }
    }
    return true
  }

  private endPacket(): void {
    if (this.packets++ === 0) clearTimeout(this.timer)
    this.phase = 'type'
  }

  private reject(reason: RejectReason, detail: string): false {
    if (!this.rejected) {
      this.rejected = true
      this.onReject(reason, detail)
      this.destroy()
    }
    return false
  }
}

export interface RateLimitOptions {
  /** Connections an address may have opened and not yet authenticated before it must wait. */
  burst: number
  /** Connections per second an address earns back. */
  perSecond: number
}

const MAX_TRACKED = 10_000

/**
 * A token bucket per remote address for new connections. A connection takes
 * a token when it opens and gives it back once it authenticates
 * (`authenticated`): what the bucket limits is connections that have not
 * proved who they are -- a flood, a password guesser -- not a fleet of good
 * devices behind one address (a NAT, or every phone of a loopback demo)
 * reconnecting at once after a broker restart. `burst` bounds how many
 * unproven connections one address may hold open together; one refused by it
 * retries and finds the tokens back as the others authenticate.
 */
export class ConnectionRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(
    private readonly opts: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  /** True when `address` may open one more connection now. */
  allow(address: string): boolean {
    const now = this.clock.now()
    const bucket = this.buckets.get(address) ?? { tokens: this.opts.burst, at: now }
    bucket.tokens = Math.min(this.opts.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.opts.perSecond)
    bucket.at = now
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    this.buckets.set(address, bucket)
    if (this.buckets.size > MAX_TRACKED) this.prune(now)
    return allowed
  }

  /** A connection from `address` authenticated: it gives its token back. */
  authenticated(address: string): void {
    const bucket = this.buckets.get(address)
    if (bucket) bucket.tokens = Math.min(this.opts.burst, bucket.tokens + 1)
  }

  /** Forgets addresses whose bucket has refilled: they are indistinguishable from new ones. */
  private prune(now: number): void {
    for (const [address, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.opts.perSecond >= this.opts.burst) this.buckets.delete(address)
    }
  }
}
