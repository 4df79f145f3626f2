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
 *
 * With `frames`, a look checkpoints only when the WAL would hold that many frames by the next look (the frames it
 * holds, plus as many again as came since the last look: `PRAGMA wal_checkpoint(NOOP)` counts them and copies
 * nothing). A checkpoint copies each page once however often the WAL holds it, and the heartbeat batches rewrite the
 * same pages (each device's last `locations` leaf, `device_state`'s): checkpoints every few seconds copy a device's
 * leaf once for several heartbeats instead of once for each (issue 14, the tenth ingest part). The count is the WAL's
 * whole length, copied frames included, as SQLite's autocheckpoint counts it: a WAL that did not start over after a
 * checkpoint (a commit came while it copied) is checkpointed at every look once it is that long, as without
 * `frames`, so the autocheckpoint finds no more to copy than before. A load that adds `frames` in one interval is
 * checkpointed at every look too.
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
  /**
   * WAL frames a look lets the next look find (see the module comment); a look predicting fewer copies nothing. 0 or
   * absent: every look checkpoints.
   */
  frames?: number
}

/**
 * Once the WAL passes 1 MB, a look a second, and a checkpoint once the WAL would hold 5,000 frames by the next look:
 * half the broker's autocheckpoint size (WAL_CHECKPOINT_PAGES in server.ts), so a load may double between two looks
 * before that falls due on the event loop. At 1,000 heartbeats/s from 1,000 devices the WAL grows about 1,300 frames
 * (5 MB) a second: a checkpoint every 3-4 s instead of every second, which took 4-6 µs of CPU off each stored heartbeat
 * (bench/heartbeat-rows.ts, README "Tenth part"); from about 5,000 heartbeats/s on, every look checkpoints, as before.
 * The worker starts within the first second of such a load rather than in the middle of it (starting it, a V8 isolate
 * and the driver, takes 60-110 ms of CPU once); a broker that writes little takes long to get there, and a short test
 * never does.
 */
export const DEFAULT_WAL_CHECKPOINT: WalCheckpointOptions = { everyMs: 1000, walBytes: 1024 * 1024, frames: 5000 }

/** What SQLite's `PRAGMA wal_checkpoint` answers: 1 in `busy` when it could not finish, frames in the WAL and copied. */
export interface CheckpointResult {
  busy: number
  log: number
  checkpointed: number
}

/** A look's answer from the worker: the checkpoint's result, or (`checkpointed` false) the count that let it copy nothing. */
interface WorkerAnswer {
  checkpointed: boolean
  result: CheckpointResult
}

// CommonJS, evaluated in the worker: it loads the same better-sqlite3 the broker does, by its resolved path. It never
// waits for a lock (timeout 0); a PASSIVE checkpoint that meets one reports it in `busy` and the next look tries again.
// With the frames option, a look first counts the WAL's frames (NOOP copies nothing); `lastLog` is the count the last
// look or checkpoint saw, and a count below it means the WAL started over since (every frame then is new).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true, timeout: 0 })
let lastLog = 0
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close()
    process.exit(0) // ends this thread only
    return
  }
  // A failure ends the worker ('error' in the broker): the broker's own autocheckpoint takes over again.
  if (message.frames > 0) {
    const found = db.pragma('wal_checkpoint(NOOP)')[0]
    const added = found.log >= lastLog ? found.log - lastLog : found.log
    lastLog = found.log
    if (found.log + added < message.frames) {
      parentPort.postMessage({ checkpointed: false, result: found })
      return
    }
  }
  const result = db.pragma('wal_checkpoint(PASSIVE)')[0]
  lastLog = result.log
  parentPort.postMessage({ checkpointed: true, result })
})
`

interface CheckpointerEvents {
  /** A checkpoint finished; null when the worker failed (its reason logged). */
  checkpointed: [result: CheckpointResult | null]
  /** A look copied nothing: the WAL's frames (`log`) and those already copied, as it counted them. */
  skipped: [found: CheckpointResult]
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
   * A look in the worker unless one is running. The worker starts once the WAL file first grows past `walBytes`; from
   * then on every look checkpoints, or with `frames` counts the WAL's frames and checkpoints when they call for it
   * (SQLite reuses the WAL file from its start without shrinking it, so its size no longer says how much is new; a
   * checkpoint with nothing to copy costs the worker next to nothing).
   */
  tick(): void {
    if (this.running || (!this.worker && this.walSize() < this.opts.walBytes)) return
    this.running = true
    const worker = (this.worker ??= this.startWorker())
    worker.postMessage({ frames: this.opts.frames ?? 0 })
  }

  private walSize(): number {
    return statSync(`${this.dbFile}-wal`, { throwIfNoEntry: false })?.size ?? 0
  }

  private startWorker(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3')
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.dbFile, driver } })
    worker.on('message', ({ checkpointed, result }: WorkerAnswer) => {
      this.running = false
      if (!checkpointed) {
        this.emit('skipped', result)
        return
      }
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
