/**
 * Says to the console, as it happens, that an account's cloud data changed (S, R, B, D, A, M1), so the web console's
 * data panel follows the cloud without a reload. Whatever changes an account's data either goes through a request with
 * a known account (a phone's sync, backup or drive upload; the console's bin, membership or drive actions), or through
 * a rule that writes the account's cloud log (a purge, a clean-up batch, a freeze, a retirement step); a move of the
 * cloud clock changes every account's days left and retention. Changes are gathered for `delayMs` and said once per
 * account (or once for every account): a phone syncing 1,000 photos makes a few announcements, not 2,000. Nothing is
 * gathered while no console listens.
 */
import type { AccountChanged } from '../../common/contract.js'

/** How long changes are gathered before they are said, ms. */
const ACCOUNT_CHANGES_DELAY_MS = 100

export class AccountChanges {
  private readonly accounts = new Set<string>()
  private every = false
  private clock = false
  private timer: NodeJS.Timeout | undefined
  /** False once stopped: a change that comes while the broker stops (a request answered after this part stopped) is not gathered. */
  private open = true

  constructor(
    /** Says one change (the broker publishes it to the console). */
    private readonly announce: (change: AccountChanged) => void,
    /** Whether a console may hear it: nothing is gathered otherwise. */
    private readonly listening: () => boolean,
    private readonly delayMs = ACCOUNT_CHANGES_DELAY_MS,
  ) {}

  /** `account`'s data changed. */
  touch(account: string): void {
    if (!this.open || !this.listening()) return
    this.accounts.add(account)
    this.schedule()
  }

  /** Every account's data changed; `clock`: because the cloud clock moved. */
  everything(clock = false): void {
    if (!this.open || !this.listening()) return
    this.every = true
    this.clock ||= clock
    this.schedule()
  }

  private schedule(): void {
    if (this.timer) return
    // Not unref'd: what was gathered is said before the process may end (stop() drops it).
    this.timer = setTimeout(() => this.flush(), this.delayMs)
  }

  /** Says what was gathered: once for every account when that is what changed, else once per account. */
  flush(): void {
    if (this.every) this.announce({ account: null, clock: this.clock })
    else for (const account of this.accounts) this.announce({ account, clock: false })
    this.drop()
  }

  /** Gathers again after stop() (the broker started again). */
  start(): void {
    this.open = true
  }

  /** Stops gathering (the broker stopping): drops what was gathered and its timer. */
  stop(): void {
    this.open = false
    this.drop()
  }

  /** Drops what was gathered and its timer (once it was said, or the broker stopping). */
  private drop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.accounts.clear()
    this.every = false
    this.clock = false
  }
}
