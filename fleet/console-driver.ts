/**
 * The fleet's own console: what a scenario's `console` section asks of the
 * phones, sent through the console API as `fakephone console` would send it
 * (commands signed with the account's owner key, notifications queued for
 * the push channel), so a run exercises the whole round trip and can count
 * every answer. A console API that stops answering is said once, not per call
 * (fleet/api-outage.ts).
 */
import type { KeyObject } from 'node:crypto'
import { ConsoleApiError, type ConsoleClient } from '../cli/console-client.js'
import { commandAt } from '../cli/sign-command.js'
import { FINAL_STATES, type CommandState } from '../common/contract.js'
import { NotifyReplySchema, type CommandsReply } from '../common/console-api.js'
import type { Logger } from '../common/log.js'
import { plural } from '../common/plural.js'
import type { OwnerKeys } from '../common/signing.js'
import { ApiOutage } from './api-outage.js'
import type { Answer } from './plan.js'

/**
 * What became of one command the fleet sent: answered as planned, refused by the cloud or phone (F3), or no final state
 * in time; `unreconciled`: unknown, the console API having stopped answering before the cloud could be asked.
 */
export type CommandFate = 'answered' | 'refused' | 'ignored' | 'lost' | 'unreconciled'

/**
 * The fleet's console. A call the console API does not answer rejects with the ConsoleApiError that says so
 * (`notAnswering`, fleet/api-outage.ts), which the console has told the log of already (once per outage): the caller
 * counts it and says nothing more.
 */
export interface FleetConsole {
  /** Submits a signed command; 'refused' when the cloud refuses it (F3), 'submitted' otherwise. */
  command(c: {
    device: string
    account: string
    type: 'locate' | 'ring'
    id: string
    expected: Answer
    now: number
  }): Promise<'submitted' | 'refused'>
  /**
   * What became of every submitted command, after waiting (bounded) for the answers still due; `waiting` hears how many
   * it waits for, once, when it has to. Never rejects: when the console API stops answering, the commands not yet
   * reconciled count `unreconciled` and `apiError` says why.
   */
  fates(limitMs: number, waiting?: (commands: number) => void): Promise<Record<CommandFate, number>>
  /** The console API's error, once it has failed a call that the report needs (set by `fates`). */
  readonly apiError?: string
  /** Queues a notification; resolves with the cloud's id for it. */
  notify(device: string, title: string): Promise<string>
}

/** An ignored command must stay unanswered; the others must reach the final state the plan says. */
export function fate(expected: Answer, state: CommandState | undefined): CommandFate {
  if (state === 'rejected') return 'refused'
  if (expected === 'ignore') return state !== undefined && FINAL_STATES.has(state) ? 'lost' : 'ignored'
  return state === (expected === 'succeed' ? 'succeeded' : 'failed') ? 'answered' : 'lost'
}

/** Why a command counts lost, in words: what the plan expected against the state the cloud has. */
function lostBecause(expected: Answer, state: CommandState | undefined): string {
  if (expected === 'ignore') return `${state}, though the plan has the phone ignore it`
  return `${state ?? 'unknown to the cloud'}, not ${expected === 'succeed' ? 'succeeded' : 'failed'} as planned`
}

export class HttpFleetConsole implements FleetConsole {
  private readonly signing = new Map<string, KeyObject>()
  /** Every call to the console API goes through it: an outage is said once, with its failed calls counted. */
  private readonly outage: ApiOutage

  /**
   * `log` hears of each command counted lost (the report has only the count): which, to which phone, and its state; and
   * of the console API stopping answering and answering again (fleet/api-outage.ts).
   */
  constructor(
    private readonly client: ConsoleClient,
    private readonly keys: OwnerKeys,
    private readonly log?: Logger,
  ) {
    this.outage = new ApiOutage(log)
  }

  /** Submitted commands per device, with the answer the plan expects. */
  private readonly submitted = new Map<string, Map<string, Answer>>()

  /**
   * Each device's submissions, one after the other: a command must reach the
   * cloud before the next (higher seq) one, or the phone takes the earlier for a replay.
   */
  private readonly queues = new Map<string, Promise<unknown>>()

  command(c: Parameters<FleetConsole['command']>[0]): Promise<'submitted' | 'refused'> {
    const done = (this.queues.get(c.device) ?? Promise.resolve()).then(() => this.submit(c))
    const settled = done.catch(() => {})
    this.queues.set(c.device, settled)
    void settled.then(() => this.queues.get(c.device) === settled && this.queues.delete(c.device))
    return done
  }

  private async submit(c: Parameters<FleetConsole['command']>[0]): Promise<'submitted' | 'refused'> {
    try {
      const command = commandAt(this.keys, this.key(c.account), {
        id: c.id,
        device: c.device,
        type: c.type,
        args: c.type === 'ring' ? { seconds: 5 } : {},
        now: c.now,
      })
      await this.outage.call(() => this.client.submit(command))
    } catch (err) {
      if (err instanceof ConsoleApiError && err.status === 409) return 'refused'
      throw err
    }
    let mine = this.submitted.get(c.device)
    if (!mine) this.submitted.set(c.device, (mine = new Map<string, Answer>()))
    mine.set(c.id, c.expected)
    return 'submitted'
  }

  apiError?: string

  async fates(limitMs: number, waiting?: (commands: number) => void): Promise<Record<CommandFate, number>> {
    const fates: Record<CommandFate, number> = { answered: 0, refused: 0, ignored: 0, lost: 0, unreconciled: 0 }
    const until = performance.now() + limitMs
    let pending = [...this.submitted.keys()]
    while (pending.length > 0) {
      const last = performance.now() > until
      const next: string[] = []
      let awaited = 0
      for (const [i, device] of pending.entries()) {
        let commands: CommandsReply['commands']
        try {
          commands = (await this.outage.call(() => this.client.commands(device))).commands
        } catch (err) {
          this.unreconciled(pending.slice(i).concat(next), fates, err as Error)
          return fates
        }
        const states = new Map(commands.map((v) => [v.id, v.state]))
        const mine = this.submitted.get(device) as Map<string, Answer>
        const due = [...mine].filter(([id, expected]) => expected !== 'ignore' && !FINAL_STATES.has(states.get(id) as CommandState))
        if (due.length > 0 && !last) {
          next.push(device)
          awaited += due.length
          continue
        }
        for (const [id, expected] of mine) {
          const state = states.get(id)
          const f = fate(expected, state)
          fates[f]++
          if (f === 'lost')
            this.log?.warn(
              { device, command: id, expected, state: state ?? null },
              `fleet command lost: ${lostBecause(expected, state)} (see \`fakephone console commands ${device}\`)`,
            )
        }
      }
      pending = next
      if (pending.length > 0) waiting?.(awaited)
      waiting = undefined
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    return fates
  }

  /**
   * The console API failed: the commands of `devices` cannot be reconciled; said once on the log, with the calls failed
   * since it stopped answering, kept for the report.
   */
  private unreconciled(devices: readonly string[], fates: Record<CommandFate, number>, err: Error): void {
    let commands = 0
    for (const device of devices) commands += (this.submitted.get(device) as Map<string, Answer>).size
    fates.unreconciled += commands
    this.apiError = err.message
    const failedCalls = this.outage.failedCalls
    this.log?.warn(
      { err: err.message, commands, phones: devices.length, failedCalls },
      `the console API does not answer: ${plural(commands, 'command')} to ${plural(devices.length, 'phone')} not reconciled, ` +
        `${plural(failedCalls, 'call')} failed since it stopped answering`,
    )
  }

  async notify(device: string, title: string): Promise<string> {
    const path = `/api/devices/${encodeURIComponent(device)}/notifications`
    const reply = await this.outage.call(() => this.client.read(NotifyReplySchema, 'POST', path, { title }))
    return reply.notification.id
  }

  private key(account: string): KeyObject {
    let key = this.signing.get(account)
    if (!key) {
      key = this.keys.existingSigningKey(account)
      if (!key) throw new Error(`no owner key for account "${account}" in ${this.keys.dir}`)
      this.signing.set(account, key)
    }
    return key
  }
}
