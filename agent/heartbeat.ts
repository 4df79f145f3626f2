/**
 * F1, F3: the phone's location heartbeats. Each interval is drawn from the
 * mean × (1 ± jitter) on the injected clock (six times as often in lost mode,
 * F2); a heartbeat goes out only while Find Device and the cloud service are
 * on (F3), the data channel is up and there is a fix. On each connection the
 * loop waits (`connecting`) until the cloud said the highest seq it holds of
 * the phone (agent/heartbeat-seq.ts); a heartbeat due meanwhile goes out then.
 * The run's first fix does not wait for an interval: it is taken and sent as
 * soon as the data channel is up and that is heard (`channelUp`), so the
 * console shows where a phone just started is at once. It carries the fix to
 * 1e-6 degrees (about 0.1 m, finer than any fix) and the battery as an
 * integer percent. Sequence numbers come from agent/heartbeat-seq.ts, so a
 * heartbeat writes no settings file.
 */
import { EventEmitter } from 'node:events'
import type { Clock, Timer } from '../common/clock.js'
import type { Heartbeat, Network } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import type { Battery } from './battery.js'
import type { SeqReserve } from './heartbeat-seq.js'
import type { Fix, LocationSource } from './location.js'
import type { PhoneSettings } from './settings.js'

/** F2: in lost mode heartbeats come this many times as often. */
const LOST_MODE_SPEEDUP = 6

export interface HeartbeatOptions {
  clock: Clock
  log: Logger
  location: LocationSource
  random: () => number
  /** Mean time between heartbeats, ms. */
  heartbeatMs: number
  /** Each interval is drawn from heartbeatMs × (1 ± jitter). */
  jitter: number
  battery: Battery
  settings: PhoneSettings
  seqs: SeqReserve
  /** Whether the data channel is up. */
  connected(): boolean
  /** Publishes one heartbeat on the data channel; false when the channel went down. */
  send(hb: Heartbeat): boolean
}

interface HeartbeatEvents {
  heartbeat: [hb: Heartbeat]
}

/** Degrees to 1e-6 (about 0.1 m). */
function roundDegrees(deg: number): number {
  return Math.round(deg * 1e6) / 1e6
}

/** What a heartbeat says at `at` (all but its seq): the fix, rounded to 1e-6°, the battery and the network. */
export function readingOf(at: number, fix: Fix, battery: { level: number; charging: boolean }, network: Network): Omit<Heartbeat, 'seq'> {
  return {
    at,
    lat: roundDegrees(fix.lat),
    lon: roundDegrees(fix.lon),
    accuracy: fix.accuracy,
    speed: fix.speed,
    battery: battery.level,
    charging: battery.charging,
    network,
  }
}

export class HeartbeatLoop extends EventEmitter<HeartbeatEvents> {
  private timer: Timer | null = null
  /** Heartbeats being numbered and sent, one after the other. */
  private sending: Promise<void> = Promise.resolve()
  private sentCount = 0
  private lastSent: Heartbeat | null = null
  /** Connected, but the cloud has not said yet which seqs it holds (F1): a heartbeat due now waits for `channelUp`. */
  private waiting = false
  /** A heartbeat fell due while waiting. */
  private due = false

  constructor(private readonly opts: HeartbeatOptions) {
    super()
  }

  get sent(): number {
    return this.sentCount
  }

  get last(): Heartbeat | null {
    return this.lastSent
  }

  /** False from a connection until the cloud said which seqs it holds (F1): heartbeats wait meanwhile. */
  get ready(): boolean {
    return !this.waiting
  }

  start(): void {
    this.schedule()
  }

  /** F1: the data channel connected; heartbeats wait for `channelUp`, when the cloud said which seqs it holds. */
  connecting(): void {
    this.waiting = true
  }

  /**
   * F1: the data channel is up and the seqs move past what the cloud holds. Until a heartbeat has gone out this run,
   * or when one fell due while waiting, one is taken now (when locating is on and there is a fix) rather than an
   * interval later; the schedule stays as it was.
   */
  channelUp(): void {
    const due = this.due || this.sentCount === 0
    this.waiting = false
    this.due = false
    if (this.timer && due) this.beat()
  }

  /** F2: lost mode changed the pace: the next interval is drawn anew from now. */
  reschedule(): void {
    if (!this.timer) return
    this.timer.cancel()
    this.schedule()
  }

  /** No more heartbeats; resolves once the one being sent (if any) is out. */
  async stop(): Promise<void> {
    this.timer?.cancel()
    this.timer = null
    await this.sending
  }

  private schedule(): void {
    const { jitter, heartbeatMs } = this.opts
    const mean = this.opts.settings.value.lostMode ? heartbeatMs / LOST_MODE_SPEEDUP : heartbeatMs
    const interval = mean * (1 + jitter * (2 * this.opts.random() - 1))
    this.timer = this.opts.clock.after(interval, () => {
      // The next one is due on the clock's time whatever becomes of this one.
      this.schedule()
      this.beat()
    })
  }

  /** One heartbeat, when locating is on, connected, and there is a fix. */
  private beat(): void {
    const now = this.opts.clock.now()
    const fix = this.opts.location.fix(now)
    const { cloudService, findDevice, network } = this.opts.settings.value
    if (!cloudService || !findDevice || !this.opts.connected() || !fix) return
    if (this.waiting) return void (this.due = true)
    const reading = readingOf(now, fix, this.opts.battery.read(now), network)
    this.sending = this.sending.then(async () => {
      try {
        this.publish({ seq: await this.opts.seqs.take(), ...reading })
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message }, 'heartbeat not sent: could not reserve sequence numbers')
      }
    })
  }

  private publish(hb: Heartbeat): void {
    if (!this.opts.send(hb)) return
    this.sentCount++
    this.lastSent = hb
    this.emit('heartbeat', hb)
  }
}
