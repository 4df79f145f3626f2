/**
 * One phone of a fleet: a complete Agent (both channels, journal, signed
 * receipts) whose answers to commands follow its plan. The plan decides per
 * command id, so a redelivery gets the same answer: `succeed` runs it as any
 * agent does (after the planned delay), `fail` answers with a failure
 * receipt, `ignore` drops it unseen, as a phone killed in the background
 * would (no receipt at all).
 */
import { Agent, type AgentOptions } from '../agent/agent.js'
import type { Outcome } from '../agent/remote.js'
import type { Clock } from '../common/clock.js'
import type { Command } from '../common/contract.js'
import type { PhonePlan } from './plan.js'

export interface PhoneHooks {
  /** A command arrived and will be answered (not ignored). */
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

  constructor(
    opts: AgentOptions,
    private readonly plan: PhonePlan,
    private readonly hooks: PhoneHooks,
  ) {
    super(opts)
    this.delays = opts.clock
    const receive = this.remote.receive.bind(this.remote)
    this.remote.receive = (payload) => {
      const id = commandId(payload)
      if (id !== null && this.plan.answer(id).answer === 'ignore') {
        this.hooks.ignored(id)
        return Promise.resolve()
      }
      if (id !== null) this.hooks.received(id)
      return receive(payload)
    }
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
    this.hooks.failed(command.id)
    return { state: 'failed', reason: 'the fleet scenario has this phone fail the command' }
  }
}
