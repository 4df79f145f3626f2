/**
 * The fleet's console API, as the fleet's log tells of it (issue 12): a console API that stops answering mid-run
 * would otherwise give one log line per failed call (every command, notification and reconciliation of every phone).
 * Here it is said once when it stops answering, with why; the calls that fail meanwhile are counted; and once when it
 * answers again, with how long it was down and how many calls failed. An API that answers what the fleet cannot read
 * (another version's broker: the answers are read through their schemas, common/console-api.ts) is said once, with the
 * call and the field. Per process: each worker of a `--workers` run says its own.
 */
import { ConsoleAnswerError, ConsoleApiError } from '../cli/console-client.js'
import type { Logger } from '../common/log.js'
import { plural } from '../common/plural.js'

/**
 * Whether a console API call's error is the API not answering: unreachable or the connection cut (status 0), or an
 * error status from it or a proxy before it (5xx). A refusal (4xx) is an answer, and so is one the fleet cannot read
 * (a ConsoleAnswerError, a 502 of the console's own making): it answered.
 */
export const notAnswering = (err: unknown): boolean =>
  err instanceof ConsoleApiError && !(err instanceof ConsoleAnswerError) && (err.status === 0 || err.status >= 500)

/** Whether the console has told the log of a call's error already: the API not answering, or answering what the fleet cannot read. */
export const toldOnLog = (err: unknown): boolean => notAnswering(err) || err instanceof ConsoleAnswerError

export class ApiOutage {
  /** When the current outage began (performance.now()), or undefined while the API answers. */
  private since: number | undefined
  /** Calls failed since the current outage began, the first included. */
  private failed = 0
  /** Counts outages begun and ended: a call's answer ends an outage only if the call began during it. */
  private epoch = 0
  /** Whether an answer the fleet cannot read has been said. */
  private toldUnreadable = false

  constructor(private readonly log?: Logger) {}

  /** Calls failed since the console API stopped answering; 0 while it answers. */
  get failedCalls(): number {
    return this.failed
  }

  /** Runs one console API call, its outcome told; resolves or rejects as the call does. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    const epoch = this.epoch
    try {
      const value = await fn()
      this.answered(epoch)
      return value
    } catch (err) {
      if (notAnswering(err)) this.failedCall(err as ConsoleApiError)
      else {
        if (err instanceof ConsoleAnswerError) this.unreadable(err)
        this.answered(epoch)
      }
      throw err
    }
  }

  /**
   * An answer the fleet cannot read (another version's broker): the API answers, so no outage; said once per process,
   * with the call and the field (in the error's words), since every later call of its kind would say the same.
   */
  private unreadable(err: ConsoleAnswerError): void {
    if (this.toldUnreadable) return
    this.toldUnreadable = true
    this.log?.warn({ err: err.message }, `the console API answers what this fleet cannot read: ${err.message}`)
  }

  private failedCall(err: ConsoleApiError): void {
    this.failed++
    if (this.since !== undefined) return
    this.since = performance.now()
    this.epoch++
    this.log?.warn({ err: err.message }, `the console API stopped answering: ${err.message}`)
  }

  /**
   * A call began in epoch `epoch` was answered. One that began before the outage (sent before it went, answered
   * late) does not end it: only a call sent while it was down shows that it answers again.
   */
  private answered(epoch: number): void {
    if (this.since === undefined || epoch !== this.epoch) return
    const downMs = Math.round(performance.now() - this.since)
    const failedCalls = this.failed
    this.since = undefined
    this.failed = 0
    this.epoch++
    this.log?.warn(
      { downMs, failedCalls },
      `the console API answers again after ${(downMs / 1000).toFixed(1)} s; ${plural(failedCalls, 'call')} failed meanwhile`,
    )
  }
}
