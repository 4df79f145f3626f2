/**
 * X2: the framework's user-behaviour log. It records usage events -- screen
 * on and off and apps opened, simulated on a schedule on the injected clock,
 * and real ones such as switches the user flips -- and uploads them in
 * batches on a schedule over the data channel:
 *  - only while the cloud service is on (the data channel is closed otherwise);
 *  - over Wi-Fi, or over mobile data only when the user allowed it (deferred otherwise);
 *  - an event that happens while the cloud service is off is not collected at
 *    all: it is counted (so the user can see it happened) and dropped, so it
 *    can never be uploaded later.
 * Events waiting for upload live in `<data>/behaviour-log.json`; an event
 * leaves it only when the cloud acknowledged its batch.
 *
 * Seqs increase over the phone's whole life, and the cloud stores each
 * `(device, seq)` once. The file may be older than what the phone sent since
 * (the data directory restored from a copy, or a new one): the cloud says the
 * highest seq it holds of the phone in its answer to each subscription
 * (`cloudHolds`), and nothing goes up on a connection before that. Events
 * numbered in a run before the first answer are provisional (the file says
 * from which seq): they move past the cloud's seq, keeping their order. A
 * pending event numbered after an answer whose seq the cloud holds has
 * reached it (its acknowledgement was lost, or a restored copy still had it
 * waiting): it is not sent again.
 */
import { join } from 'node:path'
import { z } from 'zod'
import { BehaviourEventSchema, type BehaviourEvent, type LogBatch, type Network } from '../common/contract.js'
import type { Clock, Timer } from '../common/clock.js'
import { JsonFile } from '../common/json-file.js'
import type { Logger } from '../common/log.js'
import { withChanges } from '../common/with-changes.js'

export type EventType = BehaviourEvent['type']

/** What the behaviour log needs to know about the phone. */
export interface PhoneState {
  cloudService: boolean
  network: Network
}

/** The data channel, as far as uploads are concerned. */
export interface DataPort {
  connected(): boolean
  /** Resolves once the cloud acknowledged the batch; rejects if the channel went down first. */
  publish(batch: LogBatch): Promise<void>
}

export interface BehaviourLogTimings {
  /** Mean time between simulated usage events, ms (each gap is drawn from 0.5-1.5 times this). */
  eventEveryMs: number
  /** Time between upload attempts, ms. */
  uploadEveryMs: number
  /** Events per uploaded batch. */
  batchMax: number
  /** Events kept waiting at most; beyond it the oldest are dropped (and logged). */
  pendingMax: number
}

export const DEFAULT_LOG_TIMINGS: BehaviourLogTimings = {
  eventEveryMs: 10 * 60_000,
  uploadEveryMs: 15 * 60_000,
  batchMax: 200,
  pendingMax: 5000,
}

export interface BehaviourLogOptions extends BehaviourLogTimings {
  dataDir: string
  clock: Clock
  log: Logger
  random: () => number
  phone: () => PhoneState
  logsOverMobile: () => boolean
  data: DataPort
}

export interface BehaviourLogStatus {
  /** Recorded, not yet acknowledged by the cloud. */
  waiting: number
  uploaded: number
  /** Events that happened while the cloud service was off: never collected, never uploaded. */
  notCollected: number
  lastUploadAt: number | null
  /** Why the last upload attempt did not go ahead, if it did not. */
  deferred: string | null
}

const LogStateSchema = z.strictObject({
  nextSeq: z.number().int().nonnegative(),
  pending: z.array(BehaviourEventSchema),
  uploaded: z.number().int().nonnegative(),
  notCollected: z.number().int().nonnegative(),
  lastUploadAt: z.number().int().nonnegative().nullable(),
  /** Events from this seq on were numbered before the cloud said which seqs it holds (absent: none). */
  provisionalFrom: z.number().int().nonnegative().optional(),
})
type LogState = z.infer<typeof LogStateSchema>

const EMPTY: LogState = { nextSeq: 0, pending: [], uploaded: 0, notCollected: 0, lastUploadAt: null }

const APPS = ['Gallery', 'Messages', 'Weather', 'Notes', 'Browser', 'Music'] as const

export class BehaviourLog {
  private state: LogState = EMPTY
  /** The state last loaded or handed to the file without an error since (null after a failed save): stop writes only a newer one. */
  private stored: LogState | null = EMPTY
  private readonly file: JsonFile<LogState>
  private eventTimer: Timer | null = null
  private uploadTimer: Timer | null = null
  /** The simulated session: screen on, an app, screen off, again. */
  private step = 0
  /** The latest upload, for stop() to wait on. */
  private uploading: Promise<void> = Promise.resolve()
  private busy = false
  private deferred: string | null = null
  /** The cloud said which seqs it holds in this run: events numbered since are past them. */
  private heard = false
  /** The cloud said which seqs it holds on this connection: uploads may go. */
  private answered = false

  constructor(private readonly opts: BehaviourLogOptions) {
    this.file = new JsonFile(join(opts.dataDir, 'behaviour-log.json'), LogStateSchema)
  }

  async start(): Promise<void> {
    this.state = await this.file.load(EMPTY)
    this.stored = this.state
    this.scheduleEvent()
    this.scheduleUpload()
  }

  /**
   * Stops the schedules and waits for an upload in flight and the last save. A log with nothing new since it was loaded
   * or saved is not written again: a fleet's phones mostly stop with the log they started with, and rewriting it
   * (a new file, two fsyncs and a rename) was most of the file work of a phone's stop.
   */
  async stop(): Promise<void> {
    this.eventTimer?.cancel()
    this.uploadTimer?.cancel()
    await this.uploading
    await this.file.flushed()
    if (this.state !== this.stored) await this.save()
  }

  /** Records one event, if the cloud service is on; otherwise it is only counted. */
  record(type: EventType, detail: string): void {
    if (!this.opts.phone().cloudService) {
      this.state = withChanges(this.state, { notCollected: this.state.notCollected + 1 })
    } else {
      const event: BehaviourEvent = { seq: this.state.nextSeq, at: this.opts.clock.now(), type, detail }
      const pending = [...this.state.pending, event]
      const dropped = pending.splice(0, Math.max(0, pending.length - this.opts.pendingMax))
      if (dropped.length > 0)
        this.opts.log.warn({ dropped: dropped.length, kept: pending.length }, 'behaviour log full: oldest events dropped')
      const provisionalFrom = this.heard ? undefined : (this.state.provisionalFrom ?? event.seq)
      this.state = withChanges(this.state, { nextSeq: event.seq + 1, pending, provisionalFrom })
    }
    void this.save()
  }

  /** The data channel connected: uploads wait for the cloud's word on which seqs it holds (`cloudHolds`). */
  connecting(): void {
    this.answered = false
  }

  /**
   * The cloud holds behaviour-log events up to `seq` (null: none) of this phone: provisional events move past it, a
   * pending event it holds is not sent again, and new events are numbered above it.
   */
  cloudHolds(seq: number | null): void {
    this.answered = true
    this.heard = true
    const { nextSeq, pending, provisionalFrom, uploaded } = this.state
    const floor = seq ?? -1
    const shift = provisionalFrom === undefined ? 0 : Math.max(0, floor + 1 - provisionalFrom)
    const moved = pending.map((e) => (provisionalFrom !== undefined && e.seq >= provisionalFrom ? { ...e, seq: e.seq + shift } : e))
    const kept = moved.filter((e) => e.seq > floor)
    const next = Math.max(nextSeq + shift, floor + 1)
    if (next === nextSeq && kept.length === pending.length && provisionalFrom === undefined) return
    if (next !== nextSeq)
      this.opts.log.warn(
        { logSeq: seq, moved: shift, alreadyHeld: pending.length - kept.length },
        'the cloud holds behaviour logs up to this seq, past this log (restored from an older copy?): the seqs go on above it',
      )
    this.state = withChanges(this.state, {
      nextSeq: next,
      pending: kept,
      uploaded: uploaded + pending.length - kept.length,
      provisionalFrom: undefined,
    })
    void this.save()
  }

  status(): BehaviourLogStatus {
    const { pending, uploaded, notCollected, lastUploadAt } = this.state
    return { waiting: pending.length, uploaded, notCollected, lastUploadAt, deferred: this.deferred }
  }

  /** Why an upload may not go ahead now, or null when it may. */
  private blocked(): string | null {
    const phone = this.opts.phone()
    if (!phone.cloudService) return 'the cloud service is off'
    if (!this.opts.data.connected()) return 'the data channel is down'
    if (!this.answered) return 'the cloud has not said which seqs it holds'
    if (phone.network === 'none') return 'no network'
    if (phone.network === 'mobile' && !this.opts.logsOverMobile()) return 'on mobile data, and uploads over mobile data are not allowed'
    return null
  }

  private scheduleEvent(): void {
    const gap = this.opts.eventEveryMs * (0.5 + this.opts.random())
    this.eventTimer = this.opts.clock.after(gap, () => {
      this.simulate()
      this.scheduleEvent()
    })
  }

  private simulate(): void {
    const step = this.step++ % 3
    if (step === 0) this.record('screen-on', '')
    else if (step === 1) this.record('app-opened', APPS[Math.floor(this.opts.random() * APPS.length)] as string)
    else this.record('screen-off', '')
  }

  private scheduleUpload(): void {
    this.uploadTimer = this.opts.clock.after(this.opts.uploadEveryMs, () => {
      this.scheduleUpload()
      if (this.state.pending.length === 0 || this.busy) return
      this.deferred = this.blocked()
      if (this.deferred)
        return void this.opts.log.debug({ reason: this.deferred, waiting: this.state.pending.length }, 'behaviour log upload deferred')
      this.uploading = this.upload()
    })
  }

  /** Sends batch after batch, each after the previous was acknowledged, while uploads stay allowed. */
  private async upload(): Promise<void> {
    this.busy = true
    try {
      while (this.state.pending.length > 0 && this.blocked() === null) {
        const events = this.state.pending.slice(0, this.opts.batchMax)
        await this.opts.data.publish({ events })
        const last = (events[events.length - 1] as BehaviourEvent).seq
        this.state = withChanges(this.state, {
          pending: this.state.pending.filter((e) => e.seq > last),
          uploaded: this.state.uploaded + events.length,
          lastUploadAt: this.opts.clock.now(),
        })
        this.opts.log.debug({ events: events.length, waiting: this.state.pending.length }, 'behaviour log batch uploaded')
        void this.save()
      }
    } catch (err) {
      this.opts.log.warn(
        { err: (err as Error).message, waiting: this.state.pending.length },
        'behaviour log upload failed; the events wait for the next upload',
      )
    } finally {
      this.busy = false
    }
  }

  /** Never rejects: a log that cannot be saved is said in the log and kept in memory. */
  private save(): Promise<void> {
    this.stored = this.state
    return this.file.save(this.state).catch((err: unknown) => {
      this.stored = null
      this.opts.log.error({ err: (err as Error).message }, 'could not save the behaviour log')
    })
  }
}
