/**
 * A guard in front of Aedes, which has no maximum packet size and buffers
 * whatever a peer announces. Every connection (TCP or WebSocket) is watched by
 * `guardConnection`, which follows MQTT's framing without parsing payloads and
 * drops the peer, with a reason, when:
 *  - the first packet is not CONNECT [MQTT-3.1.0-1],
 *  - a packet announces more than `maxPacketBytes`,
 *  - a remaining-length field runs past four bytes [MQTT-2.2.3],
 *  - CONNECT has not arrived within `connectTimeoutMs`.
 * It looks at the bytes where Aedes reads them (`inspectReads`), so Aedes is
 * handed the connection itself: no stream layer between the socket and Aedes'
 * parser, and Aedes' writes reach the socket as in stock Aedes (mqtt-packet
 * corks it, so a packet's pieces go out in one write). Nothing is held back or
 * copied; an oversize packet is refused on its fixed header, before Aedes'
 * parser buffers any of it.
 */
import type { Duplex } from 'node:stream'
import type { Clock } from '../../common/clock.js'

export interface GuardOptions {
  maxPacketBytes: number
  connectTimeoutMs: number
}

export type RejectReason = 'first packet is not CONNECT' | 'packet too large' | 'malformed remaining length' | 'no CONNECT in time'

const CONNECT = 1

/** What the framing tracker is reading next. */
type Phase = 'type' | 'length' | 'body'

/** The address each guarded connection came from, for the rate limiter's refund once it authenticates. */
const addresses = new WeakMap<Duplex, string>()

/** The remote address `conn` was guarded with (undefined for a connection that never passed `guardConnection`). */
export function guardedAddress(conn: Duplex): string | undefined {
  return addresses.get(conn)
}

/**
 * Puts the packet guard on `conn` before it is handed to Aedes: every byte
 * Aedes reads from it is inspected first, and a peer that breaks a rule is
 * destroyed, after `onReject` heard why.
 */
export function guardConnection(
  conn: Duplex,
  opts: GuardOptions,
  onReject: (reason: RejectReason, detail: string) => void,
  remoteAddress: string,
): void {
  addresses.set(conn, remoteAddress)
  const framing = new PacketFraming(opts.maxPacketBytes)
  let rejected = false
  const reject = (reason: RejectReason, detail: string): false => {
    if (!rejected) {
      rejected = true
      clearTimeout(timer)
      onReject(reason, detail)
      conn.destroy()
    }
    return false
  }
  // A connection closed before its time is up is not dropped for it.
  const timer = setTimeout(
    () => conn.destroyed || reject('no CONNECT in time', `${opts.connectTimeoutMs} ms passed`),
    opts.connectTimeoutMs,
  )
  conn.once('close', () => clearTimeout(timer))
  let connected = false
  inspectReads(conn, (chunk) => {
    const broken = framing.inspect(chunk)
    if (broken) return reject(broken.reason, broken.detail)
    if (!connected && framing.packets > 0) {
      connected = true
      clearTimeout(timer)
    }
    return true
  })
}

/**
 * Where the guard relies on Aedes (1.x, lib/client.js `nextBatch`): Aedes consumes a connection only by calling
 * `conn.read()` when it is readable and handing what it got to its parser, never by 'data' events or piping. So a
 * wrapper around this stream's own `read` sees every byte before Aedes' parser does, in order; when `inspect` says
 * no, the wrapper answers null (nothing to parse) and the connection is already destroyed.
 * test/broker/mqtt/guard.test.ts ("Aedes reads its connection only through read()") fails if Aedes changes this.
 */
export function inspectReads(conn: Duplex, inspect: (chunk: Buffer) => boolean): void {
  const read = conn.read.bind(conn)
  conn.read = (size?: number): Buffer | null => {
    const chunk = read(size) as Buffer | null
    return chunk === null || inspect(chunk) ? chunk : null
  }
}

/** Follows MQTT's packet boundaries through the bytes of one connection, without parsing what is inside a packet. */
export class PacketFraming {
  private phase: Phase = 'type'
  /** Packets that arrived whole. */
  packets = 0
  private lengthBytes = 0
  private multiplier = 1
  private remaining = 0

  constructor(private readonly maxPacketBytes: number) {}

  /** Follows packet boundaries through `chunk`; the broken rule, if it breaks one. */
  inspect(chunk: Buffer): { reason: RejectReason; detail: string } | null {
    let i = 0
    while (i < chunk.length) {
      if (this.phase === 'type') {
        if (this.packets === 0 && (chunk[i] as number) >> 4 !== CONNECT)
          return { reason: 'first packet is not CONNECT', detail: `first byte 0x${(chunk[i] as number).toString(16)}` }
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
          if (this.lengthBytes === 4) return { reason: 'malformed remaining length', detail: 'more than four length bytes' }
          continue
        }
        const size = 1 + this.lengthBytes + this.remaining
        if (size > this.maxPacketBytes)
          return { reason: 'packet too large', detail: `${size} bytes announced, limit ${this.maxPacketBytes}` }
        this.phase = 'body'
        if (this.remaining === 0) this.endPacket()
      } else {
        const take = Math.min(this.remaining, chunk.length - i)
        this.remaining -= take
        i += take
        if (this.remaining === 0) this.endPacket()
      }
    }
    return null
  }

  private endPacket(): void {
    this.packets++
    this.phase = 'type'
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
