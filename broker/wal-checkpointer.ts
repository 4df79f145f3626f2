/**
 * Issue 14 (the PUBACK tail): SQLite's WAL checkpoints off the event loop. The broker's connection checkpoints inside
 * the commit that takes the WAL past its autocheckpoint size, and that commit then copies every page written since the
 * last one and fsyncs the database: 70-120 ms with the event loop stopped, measured on this project's machine (the
 * heartbeat batches commit in 0.2 ms otherwise), which is where a PUBACK p99 of a hundred milliseconds comes from.
 *
 * Here a worker thread with its own connection to the same database runs a PASSIVE checkpoint (it never waits for a
 * lock, and writers go on while it copies) every `everyMs`, once the WAL file has grown past `walBytes`. Once it has
 * copied every frame, the broker's next commit starts the WAL over from its beginning, so its own autocheckpoint never
 * falls due; it stays as the safety net should the worker fail. The worker starts only when the WAL first grows that
 * large, so a quiet broker (and a short test) never has one. Nothing about durability
 * changes: a checkpoint copies committed pages from the WAL into the database, whichever connection runs it.
 */
import { EventEmitter } from 'node:events'
import { statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Logger } from '../common/log.js'

export interface WalCheckpointOptions {
  /** How often the WAL file's size is looked at, ms; 0 turns the worker off (the broker's own autocheckpoint remains). */
  everyMs: number
  /** WAL size that calls for a checkpoint, bytes. */
  walBytes: number
}

/**
 * Once the WAL passes 1 MB, a checkpoint a second keeps it from the autocheckpoint. At 1,000 heartbeats/s from 1,000
 * devices the WAL grows about 1.1 MB/s, so the worker starts within the first seconds of such a load rather than in
 * the middle of it (starting it, a V8 isolate and the driver, takes 60-110 ms of CPU once); a broker that writes
 * little takes long to get there, and a short test never does.
 */
export const DEFAULT_WAL_CHECKPOINT: WalCheckpointOptions = { everyMs: 1000, walBytes: 1024 * 1024 }

/** What SQLite's `PRAGMA wal_checkpoint` answers: 1 in `busy` when it could not finish, frames in the WAL and copied. */
export interface CheckpointResult {
  busy: number
  log: number
  checkpointed: number
}

// CommonJS, evaluated in the worker: it loads the same better-sqlite3 the broker does, by its resolved path. It never
// waits for a lock (timeout 0); a PASSIVE checkpoint that meets one reports it in `busy` and the next look tries again.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true, timeout: 0 })
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close()
    process.exit(0) // ends this thread only
    return
  }
  // A failure ends the worker ('error' in the broker): the broker's own autocheckpoint takes over again.
  parentPort.postMessage(db.pragma('wal_checkpoint(PASSIVE)')[0])
})
`

interface CheckpointerEvents {
  /** A checkpoint finished; null when the worker failed (its reason logged). */
  checkpointed: [result: CheckpointResult | null]
}

export class WalCheckpointer extends EventEmitter<CheckpointerEvents> {
  private worker: Worker | null = null
  private timer: NodeJS.Timeout | null = null
  private running = false
  /** Checkpoints that finished. */
  done = 0

  /** True once the worker runs. */
  get working(): boolean {
    return this.worker !== null
  }

  constructor(
    private readonly dbFile: string,
    private readonly opts: WalCheckpointOptions,
    private readonly log: Logger,
  ) {
    super()
  }

  start(): void {
    if (this.opts.everyMs > 0) this.timer = setInterval(() => this.tick(), this.opts.everyMs).unref()
  }

  /** Stops looking, and closes the worker's connection before the broker closes its own. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    const worker = this.worker
    this.worker = null
    if (!worker) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    worker.postMessage('close')
    await exited
  }

  /**
   * A checkpoint in the worker unless one is running. The worker starts once the WAL file first grows past `walBytes`;
   * from then on every look checkpoints (SQLite reuses the WAL file from its start without shrinking it, so its size no
   * longer says how much is new; a checkpoint with nothing to copy costs the worker next to nothing).
   */
  tick(): void {
    if (this.running || (!this.worker && this.walSize() < this.opts.walBytes)) return
    this.running = true
    const worker = (this.worker ??= this.startWorker())
    worker.postMessage('checkpoint')
  }

  private walSize(): number {
    return statSync(`${this.dbFile}-wal`, { throwIfNoEntry: false })?.size ?? 0
  }

  private startWorker(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3')
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.dbFile, driver } })
    worker.on('message', (result: CheckpointResult) => {
      this.running = false
      this.done++
      this.log.debug({ frames: result.log, copied: result.checkpointed }, 'WAL checkpointed')
      this.emit('checkpointed', result)
    })
    worker.on('error', (err) => {
      // The broker's own autocheckpoint still keeps the WAL bounded; only its pauses come back.
      this.log.warn({ err }, 'the WAL checkpoint worker stopped; checkpoints go back to the broker connection')
      if (this.timer) clearInterval(this.timer)
      this.worker = null
      this.emit('checkpointed', null)
    })
    return worker
  }
}
