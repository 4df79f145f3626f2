/**
 * `fleet run --workers K`: the fleet split over K child processes
 * (fleet/worker.ts, forked with an IPC channel), each running its slice of
 * the phones (fleet/shard.ts) against one broker: the named one, or one this
 * process starts. This process gathers the workers' progress for the live
 * line and their Prometheus metrics for one `/metrics` of the whole fleet,
 * sends `stop` on Ctrl-C, and merges their reports (fleet/merge.ts). A worker
 * that ends without a report is named on the log, and its phones are counted
 * lost, so the run fails.
 *
 * How many workers when not told (`--workers auto`): enough that no process
 * holds more sockets than its open-file limit leaves room for (one per phone,
 * two with the push channel), and one per PHONES_PER_CORE phones up to the
 * cores there are.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import { RAISE_THE_LIMIT, type ConnectionRoom } from '../common/open-files.js'
import { joinReports, lostReport, mergedResources } from './merge.js'
import { serveMetrics } from './metrics.js'
import { promClient } from '../common/prom.js'
import { progressOf, sumProgress, type Progress } from './progress.js'
import { scopeOf, type FleetReport, type WorkerOutcome } from './report.js'
import { fleetDevices, openTarget, runSession, sayOnce, type RemoteBroker, type SessionOptions } from './session.js'
import { shardSize, WHOLE, workerShard, type Shard } from './shard.js'
import { plural } from '../common/plural.js'

/** What one core holds: the issue's target, 10,000 complete phones on 2 cores at 1,000 heartbeats/s in all. */
export const PHONES_PER_CORE = 5_000

/**
 * V8's heap for a worker, a process that holds nothing but phones: a young generation of at most 2 × 4 MB (Node's
 * default grows it to 2 × 16 MB) and the old generation allowed to grow by 30 % after each full GC (V8's default lets
 * it grow up to 4 ×, so the garbage a ramp promotes stays until the run ends). At 1,000 phones: ~78 KB of RSS per
 * phone by the report's peak instead of ~120, for ~7 % more CPU (docs/PERFORMANCE.md, "Sixth round"). The young generation's size
 * is fixed when V8 starts, so a run in one process (`--workers 1`) keeps Node's defaults unless started with these
 * flags (`node --max-semi-space-size=4 --heap-growing-percent=30 dist/cli/main.js fleet run ...`).
 */
export const WORKER_HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=30']

/** A worker's Node flags: the heap's, then this process's own (later flags win, so a flag given to `node` stands). */
export function workerExecArgv(own: readonly string[] = process.execArgv): string[] {
  return [...WORKER_HEAP_FLAGS, ...own]
}

/** What a worker is asked to run (sent over IPC with the advanced serialisation: the scenario's Map of tracks survives). */
export type WorkerJob = Pick<
  SessionOptions,
  'count' | 'loaded' | 'seed' | 'durationMs' | 'push' | 'workDir' | 'settleMs' | 'answersMs' | 'profile' | 'phonesAtOnce'
> & {
  remote: RemoteBroker
  shard: Shard
  worker: number
  logLevel: string
  /** The fleet's log format: human-readable lines (on a terminal) or JSON lines, both on stderr (stdout is the report). */
  prettyLog: boolean
}

export type ToWorker = { type: 'run'; job: WorkerJob } | { type: 'stop' }
export type ToParent =
  | { type: 'progress'; progress: Progress; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { type: 'report'; report: FleetReport }
  | { type: 'waiting'; line: string }

/** How many processes a fleet of `count` phones needs, and why (printed on stderr by `fleet run --workers auto`). */
export function autoWorkers(
  count: number,
  socketsPerPhone: number,
  room: ConnectionRoom | undefined,
  cores = availableParallelism(),
): { workers: number; why: string } {
  const sockets = count * socketsPerPhone
  const byFiles = room ? Math.ceil(sockets / Math.max(1, room.connections)) : 1
  const byCpu = Math.min(cores, Math.ceil(count / PHONES_PER_CORE))
  const workers = Math.max(1, byFiles, byCpu)
  const files = room ? `an open-file room of ${room.connections} per process` : 'an unknown open-file room (no /proc)'
  return {
    workers,
    why:
      `${workers === 1 ? '1 process' : `${workers} worker processes`}: ${plural(sockets, 'socket')} (${plural(count, 'phone')} × ` +
      `${socketsPerPhone}) for ${files}; ${plural(count, 'phone')} at up to ${PHONES_PER_CORE} per core, ${plural(cores, 'core')}`,
  }
}

/**
 * The warning `fleet run` prints when the broker it starts (no --broker) has no room for the phones it is asked for, or
 * undefined when they fit or the room is unknown. That broker lives in this process and holds the other end of every
 * phone's socket; with one process the phones' own ends are here too. Past the room the OS refuses sockets unlogged
 * and phones wait, retrying, until others let go (README, "Room for the fleet").
 */
export function brokerRoomWarning(
  count: number,
  socketsPerPhone: number,
  workers: number,
  room: ConnectionRoom | undefined,
): string | undefined {
  const sockets = count * socketsPerPhone
  const need = workers <= 1 ? 2 * sockets : sockets
  if (!room || need <= room.connections) return undefined
  const phonesHere = workers <= 1 ? ', and as many again for the phones, in the same process' : ''
  const workersToo = workers <= 1 ? ', run the phones in --workers' : ''
  return (
    `warning: the broker this run starts holds ${sockets} sockets (${count} phones × ${socketsPerPhone})${phonesHere}, ` +
    `but the open-file limit ${room.limit.soft} leaves room for about ${room.connections}: the phones past it are refused ` +
    `unlogged and wait until others let go; ${RAISE_THE_LIMIT}${workersToo} or give --broker a running broker with room`
  )
}

export interface FleetOptions extends Omit<SessionOptions, 'tick'> {
  /** Processes to run the phones in; 1: this one. */
  workers: number
  /** The workers' log level. */
  logLevel: string
  /** The workers' log lines human-readable, as this process's are on a terminal; JSON otherwise. */
  prettyLog?: boolean
  /** About once a second: the whole fleet's progress. */
  tick?: (p: Progress) => void
  /** The workers' process ids, once forked. */
  spawned?: (pids: number[]) => void
}

/** One `fleet run`: in this process, or over `workers` child processes. */
export function runFleet(o: FleetOptions): Promise<FleetReport> {
  const tick = o.tick
  if (o.workers <= 1) return runSession({ ...o, tick: tick && ((run) => tick(progressOf(run))) })
  return runWorkers(o)
}

/** The worker entry beside this module: worker.ts from the sources (tests), worker.js when built. */
const WORKER = fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

interface Child {
  index: number
  pid: number
  phones: number
  progress?: Progress
  metrics?: MetricObjectWithValues<MetricValue<string>>[]
  report?: FleetReport
  exited: Promise<[number | null, NodeJS.Signals | null]>
  send(msg: ToWorker): void
}

async function runWorkers(o: FleetOptions): Promise<FleetReport> {
  const rssStart = process.memoryUsage.rss()
  let rssPeak = rssStart
  const cpuStart = process.cpuUsage()
  const started = performance.now()
  const target = await openTarget(o)
  const shard = o.shard ?? WHOLE
  const children: Child[] = []
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | null = null
  const ticker = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
    o.tick?.(sumProgress(children.flatMap((c) => (c.progress ? [c.progress] : []))))
  }, 1000)
  try {
    // Short of devices: said here, before any worker starts.
    fleetDevices(target.credentials, o.count)
    // The first worker to wait for what is still due says so for the fleet; the others wait as long at most.
    const waiting = sayOnce(o.waiting)
    // Served before any worker starts: a port in use stops the run before there is any to stop.
    if (o.metricsPort !== undefined) {
      metrics = await serveMetrics(o.metricsPort, () =>
        children.some((c) => c.metrics)
          ? promClient().AggregatorRegistry.aggregate(children.flatMap((c) => (c.metrics ? [c.metrics] : [])))
          : new (promClient().Registry)(),
      )
      o.serving?.(`http://127.0.0.1:${metrics.port}/metrics`)
    }
    for (let w = 0; w < o.workers; w++) children.push(forkWorker(o, target.shared, shard, w, waiting))
    o.spawned?.(children.map((c) => c.pid))
    const stop = (): void => children.forEach((c) => c.send({ type: 'stop' }))
    o.signal.addEventListener('abort', stop, { once: true })
    const exits = await Promise.all(children.map((c) => c.exited))
    o.signal.removeEventListener('abort', stop)
    const outcomes: WorkerOutcome[] = children.map((c, i) => {
      const [code, signal] = exits[i] as [number | null, NodeJS.Signals | null]
      if (c.report) return { index: c.index, pid: c.pid, phones: c.phones, outcome: 'reported' }
      const reason = signal ? `killed by ${signal}` : `exited with status ${code}`
      o.log.error(
        { worker: c.index + 1, pid: c.pid, reason },
        `fleet worker ${c.index + 1} ended without a report; its ${c.phones} phones are lost`,
      )
      return { index: c.index, pid: c.pid, phones: c.phones, outcome: 'lost', reason }
    })
    const reports = children.map(
      (c) =>
        c.report ??
        lostReport({
          scenario: o.loaded.scenario.name,
          seed: o.seed,
          fleet: scopeOf(o.loaded, o.count, workerShard(shard, c.index, o.workers)),
          phones: c.phones,
        }),
    )
    const merged = joinReports(
      reports,
      children.map((c) => `worker ${c.index + 1}`),
    )
    const cpu = process.cpuUsage(cpuStart)
    merged.resources = mergedResources(
      [
        merged.resources,
        {
          phones: 0,
          rssStartMb: rssStart / 2 ** 20,
          rssPeakMb: Math.max(rssPeak, process.memoryUsage.rss()) / 2 ** 20,
          rssPerPhoneKb: 0,
          cpuUserMs: cpu.user / 1000,
          cpuSystemMs: cpu.system / 1000,
          cpuPerMessageUs: 0,
          loopDelayP99Ms: 0,
          // This process holds no phones: the workers' stretches are the figure.
          loopDelayAllUpP99Ms: 0,
          brokerInProcess: !o.remote,
        },
      ],
      merged.heartbeats.sent + merged.commands.received + merged.notifications.shown,
    )
    merged.durationMs = performance.now() - started
    // The workers' slices make up this host's shard whole (a lost worker's phones count as lost): a `--shard` run reports
    // its own slice, as one process does, and `fleet report merge` of the hosts' reports says which shards are missing.
    merged.fleet.shards = { count: shard.count, parts: [shard.index] }
    merged.workers = outcomes
    return merged
  } finally {
    clearInterval(ticker)
    for (const c of children) c.send({ type: 'stop' })
    await Promise.all(children.map((c) => c.exited))
    await metrics?.close()
    await target.stop()
  }
}

function forkWorker(o: FleetOptions, remote: RemoteBroker, shard: Shard, w: number, waiting: (line: string) => void): Child {
  const proc = fork(WORKER, [], { execArgv: workerExecArgv(), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const child: Child = {
    index: w,
    pid: proc.pid as number,
    phones: shardSize(o.count, workerShard(shard, w, o.workers)),
    exited: once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>,
    // With a callback, a message the worker can no longer take (it exited after its report, the pipe closing: EPIPE) is
    // dropped there instead of being an 'error' event no one listens to, which crashed the parent; its end is `exited`.
    send: (msg) => void (proc.connected && proc.send(msg, () => {})),
  }
  proc.on('message', (msg: ToParent) => {
    if (msg.type === 'progress') Object.assign(child, { progress: msg.progress, metrics: msg.metrics })
    else if (msg.type === 'waiting') waiting(msg.line)
    else child.report = msg.report
  })
  child.send({
    type: 'run',
    job: {
      count: o.count,
      loaded: o.loaded,
      seed: o.seed,
      durationMs: o.durationMs,
      push: o.push,
      settleMs: o.settleMs,
      answersMs: o.answersMs,
      profile: o.profile,
      phonesAtOnce: o.phonesAtOnce,
      workDir: join(o.workDir, `worker-${w + 1}`),
      remote,
      shard: workerShard(shard, w, o.workers),
      worker: w + 1,
      logLevel: o.logLevel,
      prettyLog: o.prettyLog === true,
    },
  })
  return child
}
