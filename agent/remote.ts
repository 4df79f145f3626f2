/**
 * F2-F3 on the device: receives remote commands on `fp/v1/<id>/cmd`, checks
 * them (agent/verify.ts), journals each step (agent/journal.ts), runs them
 * against the phone, and answers with receipts signed by the device's key on
 * `fp/v1/<id>/result`. A redelivered command is answered with its stored
 * receipt, never run again; one left unfinished by a crash is finished at
 * start-up. A command that arrives while Find Device or the cloud service is
 * off is refused (F3).
 *
 * The steps a command waits for (issue 14: each is an append and an
 * fdatasync, shared with concurrent commands): nothing is done and no receipt
 * leaves the phone before the line that says so has been synced. The first
 * line is put in the same synchronous turn as the check, so the lines keep
 * the order in which commands were accepted, and a later command's line on
 * disk means every earlier one's is too (lastSeq is never durable ahead of a
 * command it covers).
 *  - A command that changes the phone (ring, lock, lost mode, wipe): `executing`
 *    (one line: before issue 14 a `received` line and an `executing` line,
 *    two syncs, which recovery treated alike), then it runs, then `done` with
 *    its result; the `executing` receipt goes out after the first sync, the
 *    final one after the second. 2 syncs before the receipt.
 *  - A command that changes nothing (locate: `Phone.answerAtOnce`), and any
 *    command refused because Find Device is off: its outcome is taken at once
 *    and `done` is its only line; the final receipt, which carries the fix,
 *    goes out after that sync. 1 sync before the receipt.
 *  - The connection dropping while a command runs, and coming back, is no
 *    crash: the command goes on, is not run again at the reconnect (only one
 *    left by a crash is), and its receipt goes out when it ends.
 *  - After the broker acknowledges the final receipt: `done`, reported (not
 *    waited for by anyone; lost, the receipt is sent again after a restart).
 *
 * What a crash leaves, and what the next start does:
 *  - wipe, before the `executing` line is synced (not written, torn, or
 *    written but not reported durable): nothing was wiped and nothing was
 *    published. At most the line is on disk; torn, it is ignored at replay.
 *    Without it the command is unknown and above lastSeq: the cloud, which
 *    resends every unfinished command when the phone subscribes, sends it
 *    again and it runs once. With it, as the next case.
 *  - wipe, after `executing` is on disk, before `done` is (mid-wipe, or the
 *    `done` line torn): the entry is unfinished, so the start runs the wipe
 *    again to completion (wipeData removes what is left) and sends its
 *    receipt; a redelivery meanwhile is ignored (busy), as before issue 14.
 *  - wipe or locate, after `done` is on disk, before the broker acknowledged
 *    the receipt: the stored receipt is sent at the next connect; the command
 *    does not run again, and a redelivery or a replay is answered with it.
 *  - locate, before `done` is synced: no fix left the phone (the receipt goes
 *    out only after the sync, to a redelivery meanwhile too: a command being
 *    handled is answered by its handler) and nothing on the phone changed;
 *    the line is absent, torn (ignored) or whole (then as the case above).
 *    Absent, the cloud resends the command and the phone answers it once, with
 *    a fix taken then. So a broker that replays a locate never gets a second
 *    fix for it.
 */
import type { KeyObject } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Clock } from '../common/clock.js'
import { encodePayload, topicFor, type Command, type UnsignedResult } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import type { MqttLink } from '../common/mqtt.js'
import { signPayload } from '../common/signing.js'
import type { DeviceCredentials } from './credentials.js'
import { CommandJournal, type JournalEntry } from './journal.js'
import { verifyCommand } from './verify.js'

/** What a command's outcome looks like before it is signed. */
export type Outcome = Pick<UnsignedResult, 'state' | 'reason' | 'data'>

/** The phone as remote commands see it; the Agent implements it. */
export interface Phone {
  /** F3: true when Find Device and the cloud service are both on. */
  findDeviceEnabled(): boolean
  /** The outcome of a command that changes nothing on the phone (locate), taken at once; undefined if it must run. */
  answerAtOnce(command: Command): Outcome | undefined
  run(command: Command): Promise<Outcome>
}

export interface RemoteOptions {
  /**
   * The device's id, and its receipt key read at each receipt: derived on the first (a fleet of thousands of phones paid
   * ~1.4 ms each at start-up), again after a new secret (F1, X1).
   */
  credentials: DeviceCredentials
  /** A function is asked when a command arrives (see AgentOptions.ownerKey); one that throws leaves that command unverifiable. */
  ownerKey: KeyObject | (() => KeyObject | undefined) | undefined
  dataDir: string
  clock: Clock
  log: Logger
}

interface RemoteEvents {
  /**
   * A message on the command topic was fully handled: run, answered from the journal, or rejected; or ('ran') a command a
   * crash left unfinished was finished at a connect.
   */
  settled: [commandId: string | null, handling: 'ran' | 'repeat' | 'rejected']
}

export class RemoteCommands extends EventEmitter<RemoteEvents> {
  readonly journal: CommandJournal
  private link: MqttLink | null = null
  /** Commands being worked on now, so a redelivery in the meantime is ignored. */
  private readonly busy = new Set<string>()
  /** Messages still being handled, so a stop can wait for them. */
  private readonly handling = new Set<Promise<void>>()

  constructor(
    private readonly opts: RemoteOptions,
    private readonly phone: Phone,
  ) {
    super()
    this.journal = new CommandJournal(opts.dataDir, { log: opts.log })
  }

  /** Loads the journal; commands a crash interrupted are finished once the data channel is up. */
  async load(): Promise<void> {
    await this.journal.load()
  }

  /**
   * Called on every (re)connect, once the phone has subscribed to its command topic (agent.ts): finish interrupted work,
   * resend receipts not yet acknowledged. A command still running (busy: the connection dropped while it ran, and came
   * back) is not interrupted work: its own handling answers it when it ends; run again here, a ring rang twice.
   */
  onConnect(link: MqttLink): Promise<void> {
    this.link = link
    return this.track(async () => {
      for (const entry of this.journal.unfinished()) {
        const id = entry.command.id
        if (this.busy.has(id)) continue
        await this.execute(entry.command)
        this.emit('settled', id, 'ran')
      }
      for (const entry of this.journal.unreported()) this.report(entry)
    })
  }

  /** Handles one message from the command topic; never throws. */
  receive(payload: Buffer): Promise<void> {
    return this.track(() => this.handle(payload))
  }

  private track(job: () => Promise<void>): Promise<void> {
    const work = job().finally(() => this.handling.delete(work))
    this.handling.add(work)
    return work
  }

  /** Resolves when every message received so far is handled and its journal writes are on disk. */
  async idle(): Promise<void> {
    while (this.handling.size > 0) await Promise.all(this.handling)
    await this.journal.flushed()
  }

  private async handle(payload: Buffer): Promise<void> {
    const now = this.opts.clock.now()
    const verdict = verifyCommand(payload, {
      deviceId: this.opts.credentials.deviceId,
      ownerKey: this.ownerKey(),
      now,
      lastSeq: this.journal.lastSeq,
    })
    const known = verdict.command && this.journal.entry(verdict.command.id)
    const busy = verdict.command !== undefined && this.busy.has(verdict.command.id)
    if (known || busy) {
      // A redelivery (QoS 1 retry, broker restart): the stored receipt answers it; nothing runs again. One still being
      // handled is answered when its handling ends: its done step may be in memory but not yet on disk.
      if (known && known.step === 'done' && !busy) this.report(known)
      this.emit('settled', (verdict.command as Command).id, 'repeat')
      return
    }
    if (!verdict.ok) {
      this.opts.log.warn({ command: verdict.command?.id, reason: verdict.reason }, 'command rejected')
      if (verdict.command && verdict.command.device === this.opts.credentials.deviceId)
        this.publish({ command: verdict.command.id, state: 'rejected', reason: verdict.reason })
      this.emit('settled', verdict.command?.id ?? null, 'rejected')
      return
    }
    await this.execute(verdict.command)
    this.emit('settled', verdict.command.id, 'ran')
  }

  /** The owner's key now: read when the first command needs it, if it was given as a function. */
  private ownerKey(): KeyObject | undefined {
    const key = this.opts.ownerKey
    if (typeof key !== 'function') return key
    try {
      return key()
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message }, "the owner's key cannot be read: the command is refused")
      return undefined
    }
  }

  private async execute(command: Command): Promise<void> {
    this.busy.add(command.id)
    const progress = { ran: false }
    try {
      await this.journaled(command, progress)
    } catch (err) {
      this.opts.log.error({ err, command: command.id }, 'command journal could not be written')
      this.settleUnrecorded(command, err as Error, progress.ran)
    } finally {
      this.busy.delete(command.id)
    }
  }

  /**
   * The steps of the module doc: `done` alone for a command answered at once (locate) or refused (Find Device off);
   * `executing`, the run, `done` for the others. Everything up to the first put runs in the turn the command arrived in.
   */
  private async journaled(command: Command, progress: { ran: boolean }): Promise<void> {
    const atOnce = this.phone.findDeviceEnabled()
      ? this.phone.answerAtOnce(command)
      : ({ state: 'rejected', reason: 'this device has not enabled Find Device' } as const)
    const outcome = atOnce ?? (await this.runStep(command, progress))
    const entry: JournalEntry = { step: 'done', command, result: this.sign({ command: command.id, ...outcome }), reported: false }
    await this.journal.put(entry)
    this.report(entry)
  }

  private async runStep(command: Command, progress: { ran: boolean }): Promise<Outcome> {
    // A start finishing a command a crash interrupted after its `executing` line does not write that line again.
    if (this.journal.entry(command.id)?.step !== 'executing') await this.journal.put({ step: 'executing', command, reported: false })
    this.publish({ command: command.id, state: 'executing' })
    this.opts.log.info({ command: command.id, type: command.type }, 'executing command')
    const outcome = await this.phone.run(command).catch((err: unknown) => ({ state: 'failed' as const, reason: (err as Error).message }))
    progress.ran = true
    return outcome
  }

  /**
   * A journal write failed. A step is in memory before it is on disk, and a later write puts memory on disk: so the
   * entry is made final here, or a command the owner was told failed would run at the next reconnect or start.
   */
  private settleUnrecorded(command: Command, err: Error, ran: boolean): void {
    // Only the last step failed: the command ran, and its result (in memory as done) is the answer, sent again after a
    // restart if need be.
    if (ran) return this.report(this.journal.entry(command.id) as JournalEntry)
    // Without its journal the phone cannot promise to run a command exactly once, so it does not run it. A command
    // answered at once (locate) whose answer is not on disk is not answered either: a replay after a restart would get a
    // second fix for it.
    const reason = `the phone could not record the command: ${err.message}`
    const failed: JournalEntry = {
      step: 'done',
      command,
      result: this.sign({ command: command.id, state: 'failed', reason }),
      reported: false,
    }
    this.journal
      .put(failed)
      .catch((again: unknown) => this.opts.log.warn({ err: again, command: command.id }, 'command failure kept in memory only'))
    this.report(failed)
  }

  /** Publishes the final receipt and marks it reported once the broker has it. */
  private report(entry: JournalEntry): void {
    const result = entry.result as UnsignedResult
    // Losing this write only means the receipt is sent once more after a restart.
    this.publish(
      result,
      () =>
        void this.journal
          .put({ ...entry, reported: true })
          .catch((err: unknown) => this.opts.log.warn({ err }, 'could not record a receipt as sent')),
    )
  }

  private sign(r: Omit<UnsignedResult, 'device' | 'at'> & Partial<UnsignedResult>): UnsignedResult {
    return { device: this.opts.credentials.deviceId, at: this.opts.clock.now(), ...r }
  }

  private publish(r: Omit<UnsignedResult, 'device' | 'at'> & Partial<UnsignedResult>, acked?: () => void): void {
    const link = this.link
    if (!link?.connected) return
    const receipt = signPayload(this.sign(r), this.opts.credentials.receiptKey)
    link.client.publish(topicFor(this.opts.credentials.deviceId, 'result'), encodePayload('result', receipt), { qos: 1 }, (err) => {
      /* c8 ignore next -- mqtt.js fails a QoS 1 publish only for a bad topic or options, constants here; it keeps the rest for resend */
      if (err) return
      acked?.()
    })
  }
}
