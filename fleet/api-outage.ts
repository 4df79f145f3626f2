/**
 * The fleet's console API, as the fleet's log tells of it (issue 12): a console API that stops answering mid-run
 * would otherwise give one log line per failed call (every command, notification and reconciliation of every phone).
 * Here it is said once when it stops answering, with why; the calls that fail meanwhile are counted; and once when it
 * answers again, with how long it was down and how many calls failed. Per process: each worker of a `--workers` run
 * says its own.
 */
import { ConsoleApiError } from '../cli/console-client.js'
import type { Logger } from '../common/log.js'
import { plural } from '../common/plural.js'

/**
 * Whether a console API call's error is the API not answering: unreachable or the connection cut (status 0), or an
 * error status from it or a proxy before it (5xx). A refusal (4xx) is an answer.
 */
export const notAnswering = (err: unknown): boolean => err instanceof ConsoleApiError && (err.status === 0 || err.status >= 500)

export class ApiOutage {
  /** When the current outage began (performance.now()), or undefined while the API answers. */
  private since: number | undefined
  /** Calls failed since the current outage began, the first included. */
  private failed = 0
  /** Counts outages begun and ended: a call's answer ends an outage only if the call began during it. */
  private epoch = 0

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
      else this.answered(epoch)
      throw err
    }
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
