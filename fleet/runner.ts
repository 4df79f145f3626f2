/**
 * Runs a planned fleet in this process: each phone a complete agent
 * (fleet/phone.ts) started, stopped, cut off and switched at its planned
 * times on the injected clock, by one scheduler (a single timer for the
 * next due action, so ten thousand phones cost one timer). Each phone's
 * actions run one after the other; phones run side by side, but only so many
 * come up, and go down, at once (PHONES_AT_ONCE, fleet/gate.ts). Everything that
 * happens is counted (fleet/tally.ts) and written to an event log whose
 * times are clock times, so two runs of one seed on a ManualClock give the
 * same log.
 */
import type { KeyObject } from 'node:crypto'
import { join } from 'node:path'
import type { Clock, Timer } from '../common/clock.js'
import type { BatteryModel } from '../agent/battery.js'
import type { Category } from '../agent/phone-data/types.js'
import type { SyncEngine } from '../agent/sync/engine.js'
import { lazyChild, type Logger } from '../common/log.js'
import { plural } from '../common/plural.js'
import type { FleetDevice } from './credentials.js'
import { toldOnLog } from './api-outage.js'
import { fate, type FleetConsole } from './console-driver.js'
import { Gate } from './gate.js'
import { FleetMetrics } from './metrics.js'
import { FleetPhone, type CommandMemory } from './phone.js'
import { OwnTracksPhone } from './owntracks-phone.js'
import type { FleetPlan, PhonePlan } from './plan.js'
import { Tally } from './tally.js'
import { countTransfers, pendingOf, seedPhone, transfersDue, type Pending } from './transfers.js'

export interface FleetRunOptions {
  plan: FleetPlan
  /** The devices, in the plan's order. */
  devices: readonly FleetDevice[]
  /** Each account's public key (without one, phones refuse every command); asked at a phone's first command: remember what it read. */
  ownerKey(account: string): KeyObject | undefined
  brokerUrl: string
  /** The push channel's URL; none: data channel only (--no-push). */
  pushUrl?: string
  /**
   * The cloud's HTTP side, http://host:port: the phones of syncing groups (PhonePlan.transfers) sync and back up through
   * it (S1, B1); the others never get it. Needed when a group syncs.
   */
  cloudUrl?: string
  /** Where each phone's data directory goes (one folder per device). */
  dataDir: string
  clock: Clock
  log: Logger
  /** The fleet's own console (scenario `console` section); none: phones only answer whoever else sends commands. */
  console?: FleetConsole
  backoff?: { baseMs: number; capMs: number }
  /** A seeded stream for the agents' own draws (reconnect jitter); per phone. */
  random(index: number): () => number
  /** `owntracks`: each phone speaks OwnTracks JSON on any MQTT broker (fleet/owntracks-phone.ts) instead of being an agent. */
  profile?: 'owntracks'
  /**
   * Whether the event log takes in every heartbeat (default true: the determinism tests compare routes and battery
   * curves through it). `fleet run` reads no event log, and its heartbeats were the one part of the log that grows
   * with the run: ~340 bytes each, 1,000 a second at 10,000 phones.
   */
  heartbeatEvents?: boolean
  /**
   * At most this many phones coming up (from their start until their data channel is connected or has failed), and as
   * many going down, at once (fleet/gate.ts); the rest wait their turn. Default PHONES_AT_ONCE.
   */
  phonesAtOnce?: number
}

/**
 * How many phones may be coming up, and going down, at once unless told. 16 against no limit, 2,000 phones over two
 * workers: event-loop delay p99 73 against 100 ms, 69 against 82 KB of RSS per phone, the ramp unchanged within the
 * noise; 64 gave 125-152 ms (docs/PERFORMANCE.md, "Eighth round").
 */
export const PHONES_AT_ONCE = 16

export interface FleetEvent {
  /** ms from the run's start, on the run's clock. */
  t: number
  device: string
  kind: string
  detail: string
}

type Action = { at: number; index: number; order: number; run: () => Promise<void> }

interface Slot {
  plan: PhonePlan
  device: FleetDevice
  phone: FleetPhone | OwnTracksPhone | null
  /** This phone's actions, one after the other. */
  chain: Promise<void>
  /** The planned time of the action running now. */
  at: number
  /**
   * This device's commands of the run, kept across the phones its outages build anew: those counted, and when each one
   * not yet answered arrived (a command one phone received may be finished by the next: agent/remote.ts).
   */
  commands: CommandMemory & { receivedAt?: Map<string, number> }
  /** Whether a phone of this device was started in the run, and whether one had its data channel connected. */
  launched: boolean
  connected: boolean
  /** A syncing phone's items not in the cloud at its last stop (fleet/transfers.ts); undefined before, and for the others. */
  pending: Pending | undefined
}

export class FleetRun {
  readonly tally = new Tally()
  readonly metrics: FleetMetrics
  readonly events: FleetEvent[] = []
  private readonly slots: Slot[]
  /** The schedule, in order; an action that has run is let go of (undefined). */
  private actions: (Action | undefined)[] = []
  private nextAction = 0
  private timer: Timer = { cancel: () => {} }
  /** Set by `stop()`: a phone still waiting for its turn to come up does not start. */
  private stopped = false
  private startAt = 0
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly issuedNotifications = new Set<string>()
  private readonly shownNotifications = new Set<string>()
  /**
   * Shown notifications not (yet) known as this run's, with their delay: one an earlier run or a person queued, which
   * the report leaves out, or one of this run's that came before the console API's answer with its id (fleet/phone.ts
   * leaves other commands out the same way).
   */
  private readonly shownUnknown = new Map<string, number>()
  /** Phones coming up, and going down (fleet/gate.ts): apart, so a stop never waits for a phone still connecting. */
  private readonly starting: Gate
  private readonly stopping: Gate
  private endResolve!: () => void
  /** Resolves once every planned action has run (the end of a run that has one). */
  readonly ended = new Promise<void>((resolve) => (this.endResolve = resolve))

  constructor(private readonly opts: FleetRunOptions) {
    this.metrics = new FleetMetrics(() => this.phonesUp().connected)
    this.starting = new Gate(opts.phonesAtOnce ?? PHONES_AT_ONCE)
    this.stopping = new Gate(opts.phonesAtOnce ?? PHONES_AT_ONCE)
    this.slots = opts.plan.phones.map((plan, i) => ({
      plan,
      device: opts.devices[i] as FleetDevice,
      phone: null,
      at: 0,
      chain: Promise.resolve(),
      commands: {},
      launched: false,
      connected: false,
      pending: undefined,
    }))
    if (!opts.cloudUrl && opts.profile !== 'owntracks' && opts.plan.phones.some((p) => p.transfers))
      throw new Error("a group of the scenario syncs (data, sync): the run needs the cloud's HTTP side (cloudUrl)")
  }

  /** Schedules every planned action from now on the run's clock. */
  start(): void {
    this.startAt = this.opts.clock.now()
    const actions: Omit<Action, 'order'>[] = []
    for (const [index, slot] of this.slots.entries()) {
      const { plan } = slot
      const onPhone = (at: number, fn: () => Promise<void>): void => void actions.push({ at, index, run: () => this.onPhone(slot, at, fn) })
      onPhone(plan.startAt, () => this.bringUp(slot, 'start'))
      for (const o of plan.outages) {
        onPhone(o.at, () => this.takeDown(slot, 'outage', `for ${o.forMs} ms`))
        if (o.at + o.forMs < plan.stopAt) onPhone(o.at + o.forMs, () => this.bringUp(slot, 'back'))
      }
      for (const s of plan.switches) onPhone(s.at, () => this.flip(slot, s.name, s.on))
      for (const c of plan.commands) actions.push({ at: c.at, index, run: () => this.track(this.command(slot, c)) })
      for (const n of plan.notifications) actions.push({ at: n.at, index, run: () => this.track(this.notify(slot, n)) })
      // Phones that stay to the end are stopped by `stop()`, after the answers still due have come in.
      if (plan.stopAt < this.opts.plan.endAt) onPhone(plan.stopAt, () => this.takeDown(slot, 'stop', ''))
    }
    if (Number.isFinite(this.opts.plan.endAt)) actions.push({ at: this.opts.plan.endAt, index: -1, run: () => Promise.resolve() })
    // Not `{ ...a, order }`: an object literal that begins with a spread gets a hidden class of its own in V8 (common/with-changes.ts).
    this.actions = actions
      .map((a, order) => ({ at: a.at, index: a.index, run: a.run, order }))
      .sort((a, b) => a.at - b.at || a.order - b.order)
    this.schedule()
  }

  /** The event log, in a stable order (time, device, kind, detail): two runs of one seed on a ManualClock give the same. */
  eventLog(): FleetEvent[] {
    const key = (e: FleetEvent): string => `${e.device}\u0000${e.kind}\u0000${e.detail}`
    return [...this.events].sort((a, b) => a.t - b.t || Number(key(a) > key(b)) - Number(key(a) < key(b)))
  }

  /** ms since the run started, on its clock. */
  get elapsed(): number {
    return this.opts.clock.now() - this.startAt
  }

  /** Phones up now, and how many the plan has. */
  phonesUp(): { running: number; connected: number; target: number } {
    let running = 0
    let connected = 0
    for (const s of this.slots) {
      if (!s.phone) continue
      running++
      if (s.phone.dataChannelState === 'connected') connected++
    }
    return { running, connected, target: this.slots.length }
  }

  /**
   * Resolves once nothing is in flight: every phone's actions done, every
   * running phone with its cloud service on connected (and answered: F1, the
   * seqs the cloud holds, before which it sends no heartbeat), every heartbeat
   * acknowledged, every console call answered. Bounded by `limitMs` of real time; `waiting` hears what it waits for,
   * once, when it has to.
   */
  async settled(limitMs = 15_000, waiting?: (what: string) => void): Promise<void> {
    const until = performance.now() + limitMs
    for (;;) {
      await Promise.all([...this.slots.map((s) => s.chain), ...this.inflight])
      const unacked = this.tally.heartbeats.sent - this.tally.heartbeats.acked - this.tally.heartbeats.duplicateAcks
      const down = this.slots.filter((s) => s.phone && s.phone.cloudServiceOn && s.phone.dataChannelState !== 'connected')
      // A phone that was never up is not "reconnecting": its broker may be refusing it (another cloud's credentials).
      const never = down.filter((s) => !s.connected).length
      const away = down.length - never
      const uploading = this.slots.filter((s) => s.plan.transfers && s.phone instanceof FleetPhone && transfersDue(s.phone)).length
      // F1: connected, its heartbeats waiting for the cloud's answer to its subscription (the seqs it holds).
      const answering = this.slots.filter((s) => s.phone?.dataChannelState === 'connected' && !s.phone.heartbeatsReady).length
      if (unacked <= 0 && down.length === 0 && uploading === 0 && answering === 0 && this.inflight.size === 0) return
      waiting?.(
        [
          ...(unacked > 0 ? [`${plural(unacked, 'heartbeat')} not acknowledged yet`] : []),
          ...(away > 0 ? [`${plural(away, 'phone')} reconnecting`] : []),
          ...(never > 0 ? [`${plural(never, 'phone')} not connected once yet`] : []),
          ...(uploading > 0 ? [`${plural(uploading, 'phone')} still uploading`] : []),
          ...(answering > 0 ? [`${plural(answering, 'phone')} waiting for the cloud's answer to its subscription`] : []),
          ...(this.inflight.size > 0 ? ['console calls in flight'] : []),
        ].join(', '),
      )
      waiting = undefined
      if (performance.now() > until) throw new Error('the fleet did not settle in time')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  /** Stops every phone still running (in parallel) and the scheduler. */
  async stop(): Promise<void> {
    this.timer.cancel()
    this.stopped = true
    await Promise.all(this.inflight)
    await Promise.all(this.slots.map((s) => this.onPhone(s, this.elapsed, () => this.takeDown(s, 'stop', 'end of run'))))
    this.countNeverConnected()
  }

  /**
   * A phone started in the run whose data channel never connected (its broker refused its credentials, or was not
   * there) sent nothing and was asked nothing: it failed to start (F1), not a quiet success. Counted once, at the stop.
   */
  private countNeverConnected(): void {
    const never = this.slots.filter((s) => s.launched && !s.connected)
    for (const s of never) s.launched = false
    if (never.length === 0) return
    this.tally.phones.startFailures += never.length
    const ids = never.slice(0, 3).map((s) => s.device.id)
    this.opts.log.warn(
      { count: never.length, devices: ids },
      `${plural(never.length, 'phone')} (${ids.join(', ')}${never.length > ids.length ? ', …' : ''}) never connected to ` +
        `${this.opts.brokerUrl}: counted as failed to start (are their credentials from that broker's data directory?)`,
    )
  }

  /** Resolves once every notification the console queued was shown, or after `limitMs` of real time; `waiting` as in `settled`. */
  async notificationsShown(limitMs: number, waiting?: (what: string) => void): Promise<void> {
    const until = performance.now() + limitMs
    const due = this.issuedNotifications.size - this.notificationCounts().shown
    if (due > 0) waiting?.(`${plural(due, 'notification')} not shown yet`)
    while (this.notificationCounts().shown < this.issuedNotifications.size && performance.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 50))
  }

  /** The syncing phones, and their items not in the cloud at their last stop, with those a switch or an outage held back. */
  transferEnds(): Pending & { phones: number } {
    const ends = { phones: 0, pending: 0, held: 0 }
    for (const s of this.slots) {
      if (!s.plan.transfers) continue
      ends.phones++
      ends.pending += s.pending?.pending ?? 0
      ends.held += s.pending?.held ?? 0
    }
    return ends
  }

  /** Notifications the console queued and the phones showed. */
  notificationCounts(): { issued: number; shown: number } {
    let shown = 0
    for (const id of this.issuedNotifications) if (this.shownNotifications.has(id)) shown++
    return { issued: this.issuedNotifications.size, shown }
  }

  private schedule(): void {
    const next = this.actions[this.nextAction]
    if (!next) return this.endResolve()
    const wait = this.startAt + next.at - this.opts.clock.now()
    // Due already (the start of the run): at once, not on the clock's next move.
    if (wait <= 0) return this.fire()
    this.timer = this.opts.clock.after(wait, () => this.fire())
  }

  private fire(): void {
    const now = this.elapsed
    for (let a = this.actions[this.nextAction]; a && a.at <= now; a = this.actions[++this.nextAction]) {
      // A fired action's closures (its phone's slot, plan and what it ran) are let go of: the run keeps none per phone.
      this.actions[this.nextAction] = undefined
      void a.run()
    }
    this.schedule()
  }

  /** Runs `fn` after the phone's earlier actions; what it records is stamped with its planned time `at`. */
  private onPhone(slot: Slot, at: number, fn: () => Promise<void>): Promise<void> {
    const done = slot.chain
      .then(() => {
        slot.at = at
        return fn()
      })
      .catch((err: unknown) => {
        this.opts.log.error({ device: slot.device.id, err: (err as Error).message }, 'fleet phone action failed')
      })
    slot.chain = done
    return done
  }

  /**
   * A console call, waited for before the report: a failure logged, unless the console API did not answer or answered
   * what the fleet cannot read (the console said so, once).
   */
  private track<T>(work: Promise<T>): Promise<void> {
    const done = work.then(
      () => undefined,
      (err: unknown) => {
        if (!toldOnLog(err)) this.opts.log.error({ err: (err as Error).message }, 'fleet console call failed')
      },
    )
    this.inflight.add(done)
    void done.finally(() => this.inflight.delete(done))
    return done
  }

  private record(device: string, kind: string, detail: string, t: number): void {
    this.events.push({ t, device, kind, detail })
  }

  /** Builds the slot's phone and starts it, once the gate lets it in (left by `launch`, or here when it cannot be built). */
  private async bringUp(slot: Slot, kind: 'start' | 'back'): Promise<void> {
    await this.starting.enter()
    if (this.stopped) return this.starting.leave()
    let phone: FleetPhone | OwnTracksPhone
    try {
      phone = this.opts.profile === 'owntracks' ? this.ownTracksPhone(slot) : this.agentPhone(slot)
      if (kind === 'start' && phone instanceof FleetPhone) await this.firstStart(slot, phone)
    } catch (err) {
      this.starting.leave()
      throw err
    }
    await this.launch(slot, kind, phone)
  }

  /**
   * A syncing phone's first start: its data directory seeded and its sync switches written (fleet/transfers.ts), its
   * backup switch set as the scenario says (B1).
   */
  private async firstStart(slot: Slot, phone: FleetPhone): Promise<void> {
    const transfers = slot.plan.transfers
    if (!transfers) return
    const seeded = await seedPhone(join(this.opts.dataDir, slot.device.id), transfers, this.opts.clock, this.startAt)
    this.tally.transfers.seeded += seeded
    this.metrics.transfers.inc({ outcome: 'seeded' }, seeded)
    if (transfers.setup.sync.backup) return
    await phone.backup.load()
    await phone.backup.setSwitch(false, false)
  }

  /** A complete agent, its events counted. */
  private agentPhone(slot: Slot): FleetPhone {
    const { plan, device, commands } = slot
    const o = this.opts
    const phone = new FleetPhone(
      {
        id: device.id,
        secret: device.secret,
        brokerUrl: o.brokerUrl,
        pushUrl: o.pushUrl,
        // Only a syncing group's phones: the others hold no sync engine and make no transfers.
        cloudUrl: plan.transfers ? o.cloudUrl : undefined,
        dataDir: join(o.dataDir, device.id),
        ...this.phoneBasics(slot),
        // Read when the phone's first command arrives, not at its start (most phones of a run never get one).
        ownerKey: () => o.ownerKey(device.account),
        battery: this.batteryOf(plan),
      },
      plan,
      {
        received: (id) => {
          this.tally.commands.received++
          ;(commands.receivedAt ??= new Map()).set(id, performance.now())
        },
        ignored: () => {
          this.tally.commands.ignoredByScenario++
          this.metrics.commands.inc({ outcome: 'ignored' })
        },
        failed: () => {
          this.tally.commands.failedByScenario++
        },
      },
      commands,
    )
    this.countHeartbeats(device, phone)
    if (plan.transfers) countTransfers(phone, device.id, device.account, this.tally, this.metrics)
    phone.remote.on('settled', (id, handling) => {
      // A command that ran had an id; one this run did not send is not the report's.
      if (handling !== 'ran' || !phone.isOurs(id as string)) return
      // It ran (once: agent/remote.ts), so it came through `received`, on this phone or on one before it in the run
      // (finished at this one's connect), which noted when.
      const receivedAt = commands.receivedAt as Map<string, number>
      const t = receivedAt.get(id as string) as number
      receivedAt.delete(id as string)
      // Answered as the plan says, by the receipt the phone journaled (F2): one it refused (F3: Find Device off) is not.
      const state = phone.remote.journal.entry(id as string)?.result?.state
      const { answer } = plan.answer(id as string)
      if (fate(answer, state) !== 'answered') return
      this.tally.commands.answered++
      this.metrics.commands.inc({ outcome: answer === 'succeed' ? 'succeeded' : 'failed' })
      this.tally.commandAnswer.add(performance.now() - t)
      this.metrics.commandAnswer.observe((performance.now() - t) / 1000)
    })
    phone.framework.on('notification', (n) => {
      // The inbox shows each notification once (a repeat comes as 'duplicate').
      if (this.issuedNotifications.has(n.id)) this.shown(n.id, n.delayMs)
      else this.shownUnknown.set(n.id, n.delayMs)
    })
    phone.framework.on('duplicate', (id) => {
      if (this.issuedNotifications.has(id)) this.tally.notifications.duplicates++
    })
    return phone
  }

  /**
   * The phone's battery as its plan has it at its first start: a phone back from an outage carries on along the same
   * curve (it went on draining or charging while away) instead of starting again at its first level.
   */
  private batteryOf(plan: PhonePlan): { level: number; model: BatteryModel; at: number } {
    return { level: plan.battery.level, model: plan.battery.model, at: this.startAt + plan.startAt }
  }

  /** What every kind of phone takes from the run and its plan. */
  private phoneBasics({ plan, device }: Slot) {
    const o = this.opts
    return {
      clock: o.clock,
      log: lazyChild(o.log, { device: device.id }),
      location: plan.location(this.startAt),
      heartbeatMs: plan.heartbeatMs,
      jitter: plan.jitter,
      random: o.random(plan.index),
      backoff: o.backoff,
    }
  }

  /** Counts a phone's heartbeats, sent and acknowledged, with their PUBACK latency. */
  private countHeartbeats(device: FleetDevice, phone: FleetPhone | OwnTracksPhone): void {
    const sentAt = new Map<number, number>()
    // Both kinds of phone emit the same two events; TypeScript cannot call `on` on a union of emitters.
    const p = phone as OwnTracksPhone
    p.on('heartbeat', (hb) => {
      sentAt.set(hb.seq, performance.now())
      this.tally.heartbeatSent(device.id, hb.seq)
      this.metrics.heartbeatsSent.inc()
      if (this.opts.heartbeatEvents !== false)
        this.record(device.id, 'heartbeat', `#${hb.seq} ${hb.lat},${hb.lon} ${hb.battery}%${hb.charging ? '+' : ''}`, hb.at - this.startAt)
    })
    p.on('heartbeatAcked', (hb) => {
      const ms = performance.now() - (sentAt.get(hb.seq) as number)
      this.tally.heartbeatAcked(device.id, hb.seq, ms)
      this.metrics.heartbeatAck.observe(ms / 1000)
      this.metrics.heartbeatsAcked.inc()
      sentAt.delete(hb.seq)
    })
  }

  /** Starts a built phone: reconnects counted, its start recorded; a phone that fails to start is stopped and counted. */
  private async launch(slot: Slot, kind: 'start' | 'back', phone: FleetPhone | OwnTracksPhone): Promise<void> {
    let connects = 0
    ;(phone as OwnTracksPhone).on('channel', (state) => {
      if (state !== 'connected') return
      slot.connected = true
      if (connects++ > 0) this.metrics.reconnects.inc()
    })
    slot.phone = phone
    slot.launched = true
    this.record(slot.device.id, kind, '', slot.at)
    this.tally.phones.started++
    if (kind === 'back') this.tally.phones.restarts++
    try {
      await phone.start()
    } catch (err) {
      this.tally.phones.startFailures++
      // Counted here: not again as one that never connected.
      slot.launched = false
      slot.phone = null
      try {
        await phone.stop()
      } finally {
        this.starting.leave()
      }
      throw err
    }
    this.leaveWhenUp(phone)
  }

  /** A started phone leaves the gate once its data channel is connected, or has failed (or was never opened). */
  private leaveWhenUp(phone: FleetPhone | OwnTracksPhone): void {
    if (phone.dataChannelState !== 'connecting') return this.starting.leave()
    // From connecting, a data channel goes to connected, waiting (failed; retrying later), off or stopped: its next state.
    ;(phone as OwnTracksPhone).once('channel', () => this.starting.leave())
  }

  /** An OwnTracks phone (--profile owntracks): the same plan, spoken as OwnTracks JSON; a cmd counts as a command received and answered. */
  private ownTracksPhone(slot: Slot): OwnTracksPhone {
    const { plan, device } = slot
    const o = this.opts
    const phone = new OwnTracksPhone({
      brokerUrl: o.brokerUrl,
      user: device.account,
      device: device.id,
      password: device.secret === '' ? undefined : device.secret,
      ...this.phoneBasics(slot),
      battery: this.batteryOf(plan),
    })
    this.countHeartbeats(device, phone)
    phone.on('command', (action, answered) => {
      this.tally.commands.received++
      this.record(device.id, 'owntracks-cmd', action, this.elapsed)
      if (answered) this.tally.commands.answered++
    })
    return phone
  }

  private async takeDown(slot: Slot, kind: 'stop' | 'outage', detail: string): Promise<void> {
    const phone = slot.phone
    if (!phone) return
    slot.phone = null
    this.record(slot.device.id, kind, detail, slot.at)
    if (kind === 'outage') this.tally.phones.outages++
    else this.tally.phones.stopped++
    await this.stopping.enter()
    try {
      await phone.stop()
    } finally {
      this.stopping.leave()
    }
    // Its sync stopped with it: what it counts now is what it leaves on the phone.
    if (slot.plan.transfers && phone instanceof FleetPhone) slot.pending = pendingOf(phone, kind === 'outage')
  }

  private async flip(slot: Slot, name: PhonePlan['switches'][number]['name'], on: boolean): Promise<void> {
    const phone = slot.phone
    const state = on ? 'on' : 'off'
    if (!(phone instanceof FleetPhone))
      return this.record(
        slot.device.id,
        'switch-skipped',
        `${name}=${state} (${phone ? 'an OwnTracks phone has no switches' : 'phone down'})`,
        slot.at,
      )
    this.tally.phones.switches++
    try {
      if (name === 'networkPermission') await phone.framework.setNetworkPermission(on)
      else if (name === 'backup') await phone.backup.setSwitch(on, false)
      else if (name.startsWith('sync.')) await (phone.sync as SyncEngine).setCategory(name.slice('sync.'.length) as Category, on)
      else await phone.setSwitch(name as 'findDevice' | 'cloudService', on)
      this.record(slot.device.id, 'switch', `${name}=${state}`, slot.at)
    } catch (err) {
      this.tally.phones.switchesRefused++
      this.record(slot.device.id, 'switch-refused', `${name}=${state}: ${(err as Error).message}`, slot.at)
    }
  }

  private async command(slot: Slot, c: PhonePlan['commands'][number]): Promise<void> {
    const fleetConsole = this.opts.console
    if (!fleetConsole) return
    const expected = slot.plan.answer(c.id).answer
    this.tally.commands.issued++
    this.record(slot.device.id, 'command', `${c.type} ${c.id} expect ${expected}`, c.at)
    const said = await fleetConsole
      .command({
        device: slot.device.id,
        account: slot.device.account,
        type: c.type,
        id: c.id,
        expected,
        now: this.opts.clock.now(),
      })
      .catch((err: unknown) => {
        this.tally.commands.unsent++
        throw err
      })
    if (said === 'refused') this.tally.commands.refused++
  }

  private async notify(slot: Slot, n: PhonePlan['notifications'][number]): Promise<void> {
    const key = n.id
    const fleetConsole = this.opts.console
    if (!fleetConsole) return
    this.tally.notifications.issued++
    this.record(slot.device.id, 'notify', key, n.at)
    const id = await fleetConsole.notify(slot.device.id, `fleet ${key.slice(0, 8)}`)
    this.issuedNotifications.add(id)
    const delayMs = this.shownUnknown.get(id)
    if (delayMs === undefined) return
    this.shownUnknown.delete(id)
    this.shown(id, delayMs)
  }

  /** One of this run's notifications shown on its phone. */
  private shown(id: string, delayMs: number): void {
    this.shownNotifications.add(id)
    this.tally.notifications.shown++
    this.tally.notificationDelay.add(delayMs)
    this.metrics.notificationDelay.observe(delayMs / 1000)
    this.metrics.notificationsShown.inc()
  }
}
