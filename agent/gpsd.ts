/**
 * Location from a real GPS receiver through gpsd (a GPS hat on a Raspberry
 * Pi, a USB mouse receiver on a desktop). Speaks gpsd's JSON protocol over
 * TCP: sends `?WATCH={"enable":true,"json":true}` and keeps the position of
 * the last TPV (time-position-velocity) report with the time it arrived on
 * the injected clock. There is no fix when gpsd says so (mode 0 or 1) or when
 * the last one is older than `maxAgeMs`. A dropped connection is retried with
 * the shared capped backoff; a line that is not a valid report is logged and
 * skipped, so nothing gpsd sends can stop the phone. F1: its connection, the
 * retry it waits for and the last fix are what `phone status` shows.
 */
import { EventEmitter } from 'node:events'
import { createConnection, type Socket } from 'node:net'
import { z } from 'zod'
import { RetryTimer, type BackoffOptions } from '../common/backoff.js'
import type { Clock } from '../common/clock.js'
import type { LocationStatus } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import type { Fix, LocationSource } from './location.js'

export const WATCH_COMMAND = '?WATCH={"enable":true,"json":true}\n'

/** Longest line kept while waiting for its end; gpsd's longest reports (SKY) are a few KiB. */
export const MAX_LINE_BYTES = 64 * 1024

/** Accuracy reported when gpsd gives no error estimate, m: a cautious guess rather than a claim of precision. */
export const UNKNOWN_ACCURACY_M = 100

/** The fields of a TPV report that a fix needs; gpsd sends many more, which are ignored. */
export const TpvSchema = z.object({
  class: z.literal('TPV'),
  /** 0 unknown, 1 no fix, 2 2D fix, 3 3D fix. */
  mode: z.number().int().min(0).max(3),
  lat: z.number().min(-90).max(90).optional(),
  lon: z.number().min(-180).max(180).optional(),
  /** Horizontal position error, m. */
  eph: z.number().nonnegative().optional(),
  /** Longitude and latitude error, m (95 %). */
  epx: z.number().nonnegative().optional(),
  epy: z.number().nonnegative().optional(),
  /** Ground speed, m/s. */
  speed: z.number().nonnegative().optional(),
})
export type Tpv = z.infer<typeof TpvSchema>

/** The Fix of a TPV report with a position, within the limits the heartbeat contract allows. */
function fixOf(tpv: Tpv & { lat: number; lon: number }): Fix {
  const spread = tpv.epx !== undefined && tpv.epy !== undefined ? Math.max(tpv.epx, tpv.epy) : UNKNOWN_ACCURACY_M
  return {
    lat: tpv.lat,
    lon: tpv.lon,
    accuracy: Math.min(tpv.eph ?? spread, 100_000),
    speed: Math.min(tpv.speed ?? 0, 1_000),
  }
}

export interface GpsdOptions {
  host: string
  port: number
  clock: Clock
  log: Logger
  /** A fix older than this (ms on the clock) is no fix. */
  maxAgeMs: number
  backoff?: BackoffOptions
  random?: () => number
}

export type GpsdState = 'connecting' | 'watching' | 'waiting' | 'stopped'

interface GpsdEvents {
  state: [state: GpsdState]
  /** A TPV report with a position arrived. */
  fix: [fix: Fix]
  /** gpsd reported that the receiver has no fix. */
  lost: []
  /** A line was not a valid report and was skipped. */
  skipped: [reason: string]
}

export class GpsdSource extends EventEmitter<GpsdEvents> implements LocationSource {
  private socket: Socket | null = null
  private buffer = ''
  private discarding = false
  private last: { fix: Fix; at: number } | null = null
  private stateNow: GpsdState = 'stopped'
  /** gpsd said the receiver has no fix, and none came since. */
  private lost = false
  /** When the reconnect now waiting is due, on the clock. */
  private retryAt = 0
  private readonly retry: RetryTimer

  constructor(private readonly opts: GpsdOptions) {
    super()
    this.retry = new RetryTimer(opts.clock, opts.backoff, opts.random)
  }

  get state(): GpsdState {
    return this.stateNow
  }

  /** Delay of the reconnect now waiting, ms. */
  get retryDelayMs(): number {
    return this.retry.lastDelayMs
  }

  fix(at: number): Fix | null {
    if (!this.last || at - this.last.at > this.opts.maxAgeMs) return null
    return this.last.fix
  }

  /** F1: for `phone status`: where gpsd is, whether it is connected (else when it is tried again), and the last fix. */
  describe(at: number): LocationStatus {
    const { host, port, maxAgeMs } = this.opts
    return {
      kind: 'gpsd',
      host,
      port,
      state: this.stateNow,
      retryInMs: this.stateNow === 'waiting' ? Math.max(0, this.retryAt - at) : 0,
      attempt: this.retry.attempts,
      lost: this.lost,
      fix: this.last && { ageMs: at - this.last.at, accuracy: this.last.fix.accuracy },
      maxAgeMs,
    }
  }

  /** Connects, and keeps reconnecting until stopped. */
  start(): void {
    this.connect()
  }

  stop(): void {
    this.setState('stopped')
    this.retry.cancel()
    this.socket?.destroy()
    this.socket = null
  }

  private connect(): void {
    const { host, port, log } = this.opts
    this.setState('connecting')
    const socket = createConnection({ host, port })
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      socket.setNoDelay(true)
      socket.write(WATCH_COMMAND)
      this.setState('watching')
      log.info({ host, port }, 'gpsd connected, watching')
    })
    socket.on('data', (chunk: string) => this.receive(chunk))
    socket.on('error', (err) => log.warn({ host, port, err: err.message }, 'gpsd connection error'))
    socket.on('close', () => {
      if (this.stateNow === 'stopped') return
      this.socket = null
      this.buffer = ''
      this.discarding = false
      this.retry.schedule(() => this.connect())
      this.retryAt = this.opts.clock.now() + this.retry.lastDelayMs
      this.setState('waiting')
      log.info({ delayMs: this.retry.lastDelayMs, attempt: this.retry.attempts }, 'gpsd disconnected, retrying')
    })
  }

  private receive(chunk: string): void {
    const lines = (this.buffer + chunk).split('\n')
    this.buffer = lines.pop() as string
    for (const line of lines) {
      // The end of a line already skipped as too long.
      if (this.discarding) this.discarding = false
      else this.handle(line.trim())
    }
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.skip(`a line longer than ${MAX_LINE_BYTES} bytes`, this.buffer)
      this.buffer = ''
      this.discarding = true
    }
  }

  private handle(line: string): void {
    if (line === '') return
    let data: unknown
    try {
      data = JSON.parse(line)
    } catch {
      return this.skip('not JSON', line)
    }
    const cls = typeof data === 'object' && data !== null ? (data as { class?: unknown }).class : undefined
    if (typeof cls !== 'string') return this.skip('no report class', line)
    // gpsd answered: the connection works, so the next outage starts its backoff afresh.
    this.retry.reset()
    if (cls !== 'TPV') return
    const tpv = TpvSchema.safeParse(data)
    if (!tpv.success) return this.skip(`bad TPV report: ${z.prettifyError(tpv.error).replace(/\n+/g, '; ')}`, line)
    const { lat, lon } = tpv.data
    if (tpv.data.mode < 2) {
      if (this.last) this.opts.log.info('gpsd lost the fix')
      this.last = null
      this.lost = true
      this.emit('lost')
      return
    }
    // gpsd sends TPV reports with a mode but no position yet while a fix settles.
    if (lat === undefined || lon === undefined) return
    const fix = fixOf({ ...tpv.data, lat, lon })
    // Where the phone is goes to the cloud, not to the log: an operator needs to know there is a fix, not where it is.
    if (!this.last) this.opts.log.info({ accuracy: fix.accuracy }, 'gpsd has a fix')
    this.last = { fix, at: this.opts.clock.now() }
    this.lost = false
    this.emit('fix', fix)
  }

  private skip(reason: string, line: string): void {
    this.opts.log.warn({ reason, line: line.slice(0, 200) }, 'gpsd line skipped')
    this.emit('skipped', reason)
  }

  private setState(state: GpsdState): void {
    this.stateNow = state
    this.emit('state', state)
  }
}
