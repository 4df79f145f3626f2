/**
 * One phone of a fleet: a complete Agent (both channels, journal, signed
 * receipts) whose answers to commands follow its plan. The plan decides per
 * command id, so a redelivery gets the same answer: `succeed` runs it as any
 * agent does (after the planned delay), `fail` answers with a failure
 * receipt, `ignore` drops it unseen, as a phone killed in the background
 * would (no receipt at all). The hooks count each of this run's commands once:
 * a redelivery (a reconnect, a QoS 1 retry, or the cloud's resend to the
 * phone built anew after an outage: what it counted is the device's, kept by
 * the run in `CommandMemory`) is not counted again. A command this run did not
 * send (one from the console under test, sent by hand or by its own code, or
 * one an earlier run of the same devices left queued in the cloud) is answered
 * as the group's `commands.answer` says too (F2: succeed, fail or ignore, after
 * its delay; the same answer for the same command id), so a console pointed at
 * the fleet meets the failures and silences the scenario plans; it is not
 * counted, so the report holds this run's commands only.
 */
import { Agent, type AgentOptions } from '../agent/agent.js'
import type { Outcome } from '../agent/remote.js'
import type { Clock } from '../common/clock.js'
import type { Command } from '../common/contract.js'
import type { PhonePlan } from './plan.js'

/**
 * What a device's phones counted of this run's commands, kept by the run across the phones an outage builds anew (the
 * cloud resends a command whose final receipt it has not had to the phone that comes back). Made with the first command
 * (most phones of a run never get one).
 */
export interface CommandMemory {
  counted?: Set<string>
}

export interface PhoneHooks {
  /** A command of this run arrived for the first time and will be answered (not ignored). */
  received(commandId: string): void
  ignored(commandId: string): void
  failed(commandId: string): void
}

/** The command id of a payload on the command topic, or null when it has none (the agent rejects it and says why). */
function commandId(payload: Buffer): string | null {
  try {
    const id = (JSON.parse(payload.toString()) as { id?: unknown }).id
    return typeof id === 'string' ? id : null
  } catch {
    return null
  }
}

export class FleetPhone extends Agent {
  private readonly delays: Clock

  /** `memory`: the device's commands counted so far, by this phone and those before it in the run (a phone of its own: new). */
  constructor(
    opts: AgentOptions,
    private readonly plan: PhonePlan,
    private readonly hooks: PhoneHooks,
    memory: CommandMemory = {},
  ) {
    super(opts)
    this.delays = opts.clock
    const receive = this.remote.receive.bind(this.remote)
    this.remote.receive = (payload) => {
      const id = commandId(payload)
      if (id === null) return receive(payload)
      const ignore = this.plan.answer(id).answer === 'ignore'
      if (!this.isOurs(id)) return ignore ? Promise.resolve() : receive(payload)
      const counted = (memory.counted ??= new Set())
      const first = !counted.has(id)
      counted.add(id)
      if (ignore) {
        if (first) this.hooks.ignored(id)
        return Promise.resolve()
      }
      if (first) this.hooks.received(id)
      return receive(payload)
    }
  }

  /** Whether `id` is a command this run sent this phone (counted by the hooks, answered as planned): a few per phone. */
  isOurs(id: string): boolean {
    return this.plan.commands.some((c) => c.id === id)
  }

  /**
   * A locate is answered at once (agent/remote.ts), past `run`: the plan decides it here too. A planned delay makes it a
   * command that takes its time, so it goes through `run` (its `executing` step journaled first, as for a ring).
   */
  override answerAtOnce(command: Command): Outcome | undefined {
    const { answer, delayMs } = this.plan.answer(command.id)
    if (delayMs > 0) return undefined
    if (answer === 'fail') return this.failed(command)
    return super.answerAtOnce(command)
  }

  override async run(command: Command): Promise<Outcome> {
    const { answer, delayMs } = this.plan.answer(command.id)
    if (delayMs > 0) await new Promise<void>((resolve) => this.delays.after(delayMs, resolve))
    if (answer === 'fail') return this.failed(command)
    return super.run(command)
  }

  private failed(command: Command): Outcome {
    if (this.isOurs(command.id)) this.hooks.failed(command.id)
    return { state: 'failed', reason: 'the fleet scenario has this phone fail the command' }
  }
}
