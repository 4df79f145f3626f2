/**
 * Instruments for the remote-command scenario, all attached to single
 * instances (the broker's and the agents' code is unchanged):
 *  - CommandWatcher: one 'changed' listener on the broker's CommandCenter
 *    that notes when each tracked command reaches delivered, executing and
 *    its final state (one listener for all commands, not one per command; a
 *    state the phone skips counts as reached with the next);
 *  - JournalTimer: wraps `put` on agents' command journals and times each
 *    step until it is durable (appended and fdatasynced, the sync shared
 *    with concurrent steps), by the step it records, and counts the syncs;
 *  - BrokerTimer: wraps the CommandCenter's `submit` and `onResult` and the
 *    SQLite statements it runs, to time the broker's synchronous share.
 * Each attach returns its detach, for the scenario's clean-up.
 */
import type { CommandCenter, CommandView } from '../broker/devices/commands.js'
import type { StateStore } from '../broker/devices/state-store.js'
import type { CommandJournal, JournalEntry } from '../agent/journal.js'
import { FINAL_STATES, type CommandState, type Result } from '../common/contract.js'

export interface Tracked {
  /** performance.now() just before submit. */
  submittedAt: number
  deliveredAt: number | null
  executingAt: number | null
  finalAt: number | null
  /** A final state, or 'timed out'. */
  state: CommandState | 'timed out' | null
  reason: string | null
  receipt: Result | null
}

interface Waiting {
  tracked: Tracked
  resolve: (t: Tracked) => void
  timer: NodeJS.Timeout
}

export class CommandWatcher {
  private readonly waiting = new Map<string, Waiting>()
  private readonly onChanged = (v: CommandView): void => {
    const w = this.waiting.get(v.id)
    if (!w) return
    const now = performance.now()
    const t = w.tracked
    // A state the phone skipped (issue 14: it sends no `delivered`, and a locate no `executing`) is reached with the next one.
    if (v.state === 'delivered') t.deliveredAt ??= now
    else if (v.state === 'executing') {
      t.deliveredAt ??= now
      t.executingAt ??= now
    } else if (FINAL_STATES.has(v.state)) {
      t.deliveredAt ??= now
      t.executingAt ??= now
      t.finalAt = now
      this.settle(v.id, v.state, v.reason, v.receipt)
    }
  }
  private readonly onAbort = (): void => {
    for (const id of [...this.waiting.keys()]) this.settle(id, 'timed out', 'interrupted', null)
  }

  constructor(
    private readonly commands: CommandCenter,
    private readonly signal: AbortSignal,
  ) {}

  attach(): () => void {
    this.commands.on('changed', this.onChanged)
    this.signal.addEventListener('abort', this.onAbort, { once: true })
    return () => {
      this.commands.off('changed', this.onChanged)
      this.signal.removeEventListener('abort', this.onAbort)
      this.onAbort()
    }
  }

  /**
   * Call just before submitting command `id`; resolves when it reaches a
   * final state, or after `limitMs` with state 'timed out'.
   */
  expect(id: string, limitMs: number): Promise<Tracked> {
    const tracked: Tracked = {
      submittedAt: performance.now(),
      deliveredAt: null,
      executingAt: null,
      finalAt: null,
      state: null,
      reason: null,
      receipt: null,
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, 'timed out', `no final state within ${limitMs} ms`, null), limitMs)
      this.waiting.set(id, { tracked, resolve, timer })
    })
  }

  private settle(id: string, state: Tracked['state'], reason: string | null, receipt: Result | null): void {
    const w = this.waiting.get(id)
    if (!w) return
    this.waiting.delete(id)
    clearTimeout(w.timer)
    w.tracked.state = state
    w.tracked.reason = reason
    w.tracked.receipt = receipt
    w.resolve(w.tracked)
  }
}

export type JournalStep = 'received' | 'executing' | 'done' | 'reported'
const STEPS: readonly JournalStep[] = ['received', 'executing', 'done', 'reported']

const stepOf = (e: JournalEntry): JournalStep => (e.step === 'done' && e.reported ? 'reported' : e.step)

/** Count and total time of the journal writes, by step; resettable after a warm-up. */
export class JournalTimer {
  count: Record<JournalStep, number> = zeroSteps()
  totalMs: Record<JournalStep, number> = zeroSteps()
  private readonly journals: CommandJournal[] = []
  private syncBase = 0

  /** fsyncs and fdatasyncs of the attached journals since the last reset. */
  get syncs(): number {
    return this.journals.reduce((s, j) => s + j.syncs, 0) - this.syncBase
  }

  /** Wraps `put` on this one journal; returns the detach. */
  attach(journal: CommandJournal): () => void {
    this.journals.push(journal)
    this.syncBase += journal.syncs
    const original = journal.put
    journal.put = async (entry: JournalEntry): Promise<void> => {
      const started = performance.now()
      try {
        await original.call(journal, entry)
      } finally {
        const step = stepOf(entry)
        this.count[step]++
        this.totalMs[step] += performance.now() - started
      }
    }
    return () => {
      journal.put = original
    }
  }

  reset(): void {
    this.count = zeroSteps()
    this.totalMs = zeroSteps()
    this.syncBase += this.syncs
  }

  /** Writes a command waits for before its final receipt goes out: executing (not for a locate), done; `received` from older agents. */
  get inPath(): { count: number; totalMs: number } {
    const steps: JournalStep[] = ['received', 'executing', 'done']
    return { count: steps.reduce((s, k) => s + this.count[k], 0), totalMs: steps.reduce((s, k) => s + this.totalMs[k], 0) }
  }
}

function zeroSteps(): Record<JournalStep, number> {
  return Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<JournalStep, number>
}

type Fn = (...args: never[]) => unknown
interface StatementLike {
  run?: Fn
  get?: Fn
  all?: Fn
}

/**
 * Times the broker's synchronous command work: CommandCenter.submit and
 * onResult as a whole, and inside them every SQLite statement of the
 * CommandCenter (its private prepared statements, reached by name) plus
 * the store's device lookup. SQLite is synchronous in better-sqlite3, so
 * these times are exact, and they block the event loop.
 */
export class BrokerTimer {
  handlerMs = 0
  sqliteMs = 0
  writes = 0
  reads = 0
  /** False when the CommandCenter's statements could not be found (its internals changed): SQLite figures are then missing. */
  statementsFound = false

  attach(commands: CommandCenter, store: StateStore): () => void {
    const restores: (() => void)[] = []
    const wrap = <O extends object, K extends keyof O>(obj: O, key: K, onDone: (ms: number) => void): void => {
      // Only methods are wrapped (the keys named below); TypeScript cannot tell a key of O names a function.
      const original = obj[key] as unknown as Fn
      const timed = (...args: never[]): unknown => {
        const started = performance.now()
        try {
          return original.apply(obj, args)
        } finally {
          onDone(performance.now() - started)
        }
      }
      ;(obj as Record<K, unknown>)[key] = timed
      restores.push(() => {
        ;(obj as Record<K, unknown>)[key] = original
      })
    }
    wrap(commands, 'submit', (ms) => (this.handlerMs += ms))
    wrap(commands, 'onResult', (ms) => (this.handlerMs += ms))
    wrap(store, 'device', (ms) => {
      this.sqliteMs += ms
      this.reads++
    })
    // The commands' prepared statements are private: the probe times them from outside, as a profiler would.
    const sql = (commands as unknown as { sql?: Record<string, StatementLike> }).sql
    if (sql && typeof sql === 'object') {
      for (const stmt of Object.values(sql)) {
        if (typeof stmt?.run === 'function') {
          wrap(stmt, 'run', (ms) => {
            this.sqliteMs += ms
            this.writes++
          })
          this.statementsFound = true
        }
        for (const m of ['get', 'all'] as const) {
          if (typeof stmt?.[m] === 'function')
            wrap(stmt, m, (ms) => {
              this.sqliteMs += ms
              this.reads++
            })
        }
      }
    }
    return () => {
      for (let r = restores.pop(); r; r = restores.pop()) r()
    }
  }

  reset(): void {
    this.handlerMs = 0
    this.sqliteMs = 0
    this.writes = 0
    this.reads = 0
  }
}
