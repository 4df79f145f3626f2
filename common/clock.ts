/**
 * The one clock. Every time rule in fakephone (heartbeat schedules, reconnect
 * backoff, the 72 h / 7 d / 30 d / 180 d / 1 y rules) reads an injected Clock,
 * so tests and demos move time forward instead of waiting for it.
 */
import { FOLLOW_SKEW_MS } from './format-time.js'

export interface Timer {
  cancel(): void
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Run `fn` once, `ms` milliseconds from now on this clock. */
  after(ms: number, fn: () => void): Timer
  /**
   * Milliseconds on the clock the timers run on, which setting the time does not move (Node's monotonic clock; on Linux
   * and macOS it also stands still while the machine is suspended). Where `now()` moved further than this, the wall
   * clock was set forward (an NTP step, a resume from suspend). A clock without it says nothing of such jumps.
   */
  steady?(): number
}

/** The longest delay a Node timer holds (2^31 - 1 ms, 24.8 days); a longer one would fire at once, with a TimeoutOverflowWarning. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Wall-clock time and Node timers. Timers do not keep the process alive. A
 * delay longer than a Node timer holds (a 28-day notification lifetime, a
 * 30-day bin) waits in steps of at most `maxTimerMs`.
 */
export class SystemClock implements Clock {
  constructor(private readonly maxTimerMs = MAX_TIMER_MS) {}

  now(): number {
    return Date.now()
  }

  steady(): number {
    return performance.now()
  }

  after(ms: number, fn: () => void): Timer {
    let handle: NodeJS.Timeout
    const arm = (left: number): void => {
      handle = left > this.maxTimerMs ? setTimeout(() => arm(left - this.maxTimerMs), this.maxTimerMs) : setTimeout(fn, left)
      handle.unref()
    }
    arm(Math.max(0, ms))
    return { cancel: () => clearTimeout(handle) }
  }
}

interface Pending {
  at: number
  order: number
  fn: () => void
  cancelled: boolean
  /** The real timer of a SimulatedClock entry. */
  handle?: Timer
}

/**
 * Timers keyed on clock time, fired in time order (ties in the order they
 * were set). Both clocks that can be moved forward keep their timers here.
 */
class TimerQueue {
  private readonly pending: Pending[] = []
  private order = 0

  add(at: number, fn: () => void): Pending {
    const entry: Pending = { at, order: this.order++, fn, cancelled: false }
    this.pending.push(entry)
    return entry
  }

  get waiting(): number {
    return this.pending.filter((p) => !p.cancelled).length
  }

  live(): Pending[] {
    return this.pending.filter((p) => !p.cancelled)
  }

  /** Every timer waiting falls due `ms` later: the clock's time jumped and the timers keep the time they had left. */
  shift(ms: number): void {
    for (const p of this.pending) p.at += ms
  }

  /** Removes and returns the earliest timer due at or before `limit`. */
  take(limit: number): Pending | undefined {
    let best = -1
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i] as Pending
      if (p.cancelled || p.at > limit) continue
      const b = this.pending[best]
      if (!b || p.at < b.at || (p.at === b.at && p.order < b.order)) best = i
    }
    if (best < 0) {
      this.pending.splice(0, this.pending.length, ...this.live())
      return undefined
    }
    const [entry] = this.pending.splice(best, 1)
    return entry
  }
}

/**
 * A clock that only moves when told to. `advance` fires every timer that
 * falls due, in time order (ties in the order they were set), with `now()`
 * reading each timer's own due time while it runs; a timer set by a firing
 * timer fires in the same advance if it falls due within it. Like
 * `Date.now()` it reads whole milliseconds: a jittered delay of 27 000.4 ms
 * falls due at 27 000 ms, so every timestamp taken from it is an integer.
 */
export class ManualClock implements Clock {
  private current: number
  /** How far `jump` has set the time forward in all: `steady()` does not count it. */
  private jumped = 0
  private readonly timers = new TimerQueue()

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  after(ms: number, fn: () => void): Timer {
    const entry = this.timers.add(this.current + Math.max(0, Math.round(ms)), fn)
    return {
      cancel: () => {
        entry.cancelled = true
      },
    }
  }

  /** Moves with `advance` alone, as a monotonic clock does. */
  steady(): number {
    return this.current - this.jumped
  }

  /** Number of timers still waiting to fire. */
  get waiting(): number {
    return this.timers.waiting
  }

  /**
   * The wall clock set `ms` forward with no time passing for the timers, as an NTP step or a resume from suspend does
   * to Node's: `now()` moves, each timer waiting keeps the time it had left, and none fires.
   */
  jump(ms: number): void {
    const by = Math.round(ms)
    this.current += by
    this.jumped += by
    this.timers.shift(by)
  }

  advance(ms: number): void {
    const target = this.current + Math.round(ms)
    for (let next = this.timers.take(target); next; next = this.timers.take(target)) {
      this.current = next.at
      next.fn()
    }
    this.current = target
  }
}

/**
 * Simulated time (the broker's and the demo's `--simulated-time`): runs at
 * the speed of real time, and `advance` jumps it forward, firing every timer
 * that falls due on the way in time order, with `now()` reading each timer's
 * due time while it runs -- so `console clock advance 73h` runs every rule
 * of those 73 hours in the order it would have run.
 */
export class SimulatedClock implements Clock {
  /** How far simulated time is ahead of real time, ms. */
  private offset: number
  private readonly timers = new TimerQueue()
  private readonly jumpListeners = new Set<(aheadMs: number) => void>()

  /**
   * `real` is the time it runs on between jumps (wall-clock time by default);
   * `aheadMs` how far ahead it starts (a broker restarted after an advance).
   */
  constructor(
    private readonly real: Clock = new SystemClock(),
    aheadMs = 0,
  ) {
    if (!Number.isFinite(aheadMs) || aheadMs < 0) throw new RangeError(`a simulated clock cannot start ${aheadMs} ms ahead`)
    this.offset = Math.round(aheadMs)
  }

  /** Calls `fn` with the new lead over real time after every `advance`; returns the unsubscribe. */
  onJump(fn: (aheadMs: number) => void): () => void {
    this.jumpListeners.add(fn)
    return () => this.jumpListeners.delete(fn)
  }

  now(): number {
    return this.real.now() + this.offset
  }

  /** How far ahead of real time this clock runs, ms. */
  get ahead(): number {
    return this.offset
  }

  after(ms: number, fn: () => void): Timer {
    const entry = this.timers.add(this.now() + Math.max(0, Math.round(ms)), fn)
    this.arm(entry)
    return {
      cancel: () => {
        entry.cancelled = true
        entry.handle?.cancel()
      },
    }
  }

  /**
   * The same time for a phone in the same process (the demo), with timers
   * that run on real time: a jump of 73 h moves its timestamps with the
   * cloud's, without firing 73 hours of heartbeats at once.
   */
  follower(): Clock {
    return { now: () => this.now(), after: (ms, fn) => this.real.after(ms, fn) }
  }

  /** Moves simulated time `ms` forward, firing what falls due in order; returns how many timers fired. */
  advance(ms: number): number {
    const target = this.targetOf(ms)
    let fired = 0
    while (this.fireNext(target)) fired++
    this.arrive(target)
    return fired
  }

  /**
   * `advance`, handing the event loop back between slices of at most `sliceMs` of work (real time, at least one
   * timer each): a jump of a year fires tens of thousands of timers, and one synchronous run of them would leave
   * /health and the systemd watchdog unanswered for its whole length. Every timer still fires in the same order,
   * with `now()` reading its due time; each slice runs inside `slice` (the broker makes it one SQLite transaction,
   * committed before the event loop runs anything else). Other work may run between slices, at the clock's time
   * so far on the way. Resolves with how many timers fired.
   */
  async advanceInSlices(ms: number, slice: (work: () => void) => void, sliceMs = 50): Promise<number> {
    const target = this.targetOf(ms)
    let fired = 0
    let more = true
    for (;;) {
      const until = performance.now() + sliceMs
      slice(() => {
        do {
          more = this.fireNext(target)
          if (more) fired++
        } while (more && performance.now() < until)
      })
      if (!more) break
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    this.arrive(target)
    return fired
  }

  private targetOf(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot move the clock by ${ms} ms`)
    return this.now() + Math.round(ms)
  }

  /** Fires the earliest timer due by `target`; false when none is left. */
  private fireNext(target: number): boolean {
    const next = this.timers.take(target)
    if (!next) return false
    next.handle?.cancel()
    // Never backwards: work a timer started may read the clock after this advance returns.
    this.offset = Math.max(this.offset, next.at - this.real.now())
    next.fn()
    return true
  }

  private arrive(target: number): void {
    this.offset = Math.max(this.offset, target - this.real.now())
    // Every timer left is now due that much sooner in real time.
    for (const entry of this.timers.live()) this.arm(entry)
    for (const fn of this.jumpListeners) fn(this.offset)
  }

  private arm(entry: Pending): void {
    entry.handle?.cancel()
    entry.handle = this.real.after(entry.at - this.now(), () => this.fireDue())
  }

  /** A real timer fired: run what is due by now, in order. */
  private fireDue(): void {
    const now = this.now()
    for (let next = this.timers.take(now); next; next = this.timers.take(now)) next.fn()
  }
}

/**
 * A phone's view of the cloud's time: real time plus how far the cloud's
 * clock was last seen ahead of it. Timers run on real time (heartbeats keep
 * their pace); `now()` stamps with the cloud's time. It only ever moves
 * forward: the cloud can make it catch up, never go back (so whoever runs
 * the cloud can shorten a signed command's life, never stretch it).
 *
 * The lead is measured against this machine's wall clock, so a lead learnt
 * while that clock was behind (a Raspberry Pi boots without a real-time
 * clock, on the time it last saved, and NTP sets it later) holds that error
 * too. When the wall clock is then set forward, by more than
 * `FOLLOW_SKEW_MS` past what the timers' steady clock moved, the lead shrinks
 * by the jump (never below 0), so `now()` goes on from where it was instead
 * of running the jump ahead of the cloud, where every command the owner signs
 * would look expired. The phone's own clock decides this, not the cloud. A
 * resume from suspend looks the same (the steady clock stood still): with no
 * lead, as against a real-time cloud, nothing changes; a simulated cloud's
 * lead is told again when the phone reconnects.
 */
export class FollowingClock implements Clock {
  protected offset: number
  /** The real clock's wall and steady time when last read, to see it set forward (undefined: it has no steady time). */
  private wallAt: number
  private steadyAt: number | undefined

  constructor(
    private readonly real: Clock,
    aheadMs = 0,
  ) {
    this.offset = Math.max(0, aheadMs)
    this.wallAt = real.now()
    this.steadyAt = real.steady?.()
  }

  now(): number {
    return this.realNow() + this.offset
  }

  after(ms: number, fn: () => void): Timer {
    return this.real.after(ms, fn)
  }

  /** How far ahead of real time it runs, ms. */
  get ahead(): number {
    this.realNow()
    return this.offset
  }

  /**
   * The cloud said it is `cloudNow`: catch up if that is ahead. True when this clock moved. `exact`: `cloudNow` is the
   * cloud's time as it sent it (the data channel's `time` message), not only a time it has passed (a notification's
   * `createdAt`): a phone more than a message's delay (FOLLOW_SKEW_MS) ahead of it then drops back to it, never below
   * real time. The cloud's clock never goes back, so such a lead is the phone's own mistake: one saved by a version
   * before the wall clock's jumps came off it (a Pi that heard the cloud before NTP set its clock), which would
   * otherwise stay for good and have every command the owner signs refused as expired.
   */
  follow(cloudNow: number, exact = false): boolean {
    const ahead = cloudNow - this.realNow()
    if (ahead > this.offset) {
      this.offset = ahead
      return true
    }
    if (!exact || ahead >= this.offset - FOLLOW_SKEW_MS || this.offset === 0) return false
    const dropMs = this.offset - Math.max(0, ahead)
    this.offset = Math.max(0, ahead)
    this.droppedBack(dropMs)
    return true
  }

  /** The lead shrank by `dropMs`: the cloud's own time said it was too far ahead. */
  protected droppedBack(_dropMs: number): void {}

  /** The lead shrank by `jumpMs`: the wall clock was set that far forward. */
  protected stepped(_jumpMs: number): void {}

  /** Real time, after taking a forward jump of the wall clock since the last read off the lead. */
  private realNow(): number {
    const wall = this.real.now()
    const steady = this.real.steady?.()
    if (steady === undefined || this.steadyAt === undefined) return wall
    const jump = wall - this.wallAt - (steady - this.steadyAt)
    this.wallAt = wall
    this.steadyAt = steady
    if (jump > FOLLOW_SKEW_MS && this.offset > 0) {
      this.offset = Math.max(0, this.offset - jump)
      this.stepped(jump)
    }
    return wall
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parse a duration such as `250ms`, `30s`, `5m`, `73h`, `7d` or `1d12h` into milliseconds. */
export function parseDuration(text: string): number {
  const parts = /^(?:\d+(?:ms|s|m|h|d))+$/.test(text) ? text.match(/\d+(?:ms|s|m|h|d)/g) : null
  if (!parts) throw new Error(`not a duration: "${text}" (use e.g. 500ms, 30s, 5m, 73h, 7d)`)
  return parts.reduce((sum, part) => {
    const [, n, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(part) as RegExpExecArray
    return sum + Number(n) * (UNITS[unit as string] as number)
  }, 0)
}

// Times and ages in words: in a module of their own (no imports), which the web page loads too (cli/web/assets.ts).
export { FOLLOW_SKEW_MS, formatAge, utcDate, utcDay, utcSeconds, utcText } from './format-time.js'
