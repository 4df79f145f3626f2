/**
 * A `fleet run --workers` child process (forked by fleet/workers.ts): it gets
 * its job over IPC, runs its slice of the fleet against the shared broker as
 * one process would (fleet/session.ts), sends its progress and Prometheus
 * metrics about once a second, and its report at the end. A `stop` message
 * (the parent's Ctrl-C), SIGINT or SIGTERM (a Ctrl-C on the terminal reaches
 * the workers too) or the parent going away ends the run early, with a report.
 * A worker that cannot run says why on stderr and exits with status 1.
 */
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { progressOf } from './progress.js'
import type { ToParent, ToWorker } from './workers.js'

const send = (msg: ToParent, done?: () => void): void => void process.send?.(msg, undefined, undefined, done)

const controller = new AbortController()
const stop = (): void => controller.abort()
// A terminal's Ctrl-C reaches every process of the group, and a parent that dies closes the channel: either stops the run.
process.on('SIGINT', stop).on('SIGTERM', stop).on('disconnect', stop)
process.on('message', (msg: ToWorker) => {
  if (msg.type === 'stop') return stop()
  const job = msg.job
  Promise.resolve()
    .then(async () => {
      // stdout is the parent's report; this worker's log lines go to stderr, in the parent's format (pino-pretty writes there).
      const log = createLogger({ level: job.logLevel, pretty: job.prettyLog, jsonFd: 2 }).child({ worker: job.worker })
      // The phones' modules load once the job is known to be sound (a bad one fails at once).
      const { runSession } = await import('./session.js')
      return runSession({
        ...job,
        clock: new SystemClock(),
        log,
        signal: controller.signal,
        waiting: (line) => send({ type: 'waiting', line }),
        // The report's losses, counted in the metrics at the end: the parent's /metrics has them before the report.
        ended: (run) =>
          run.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: 'progress', progress: progressOf(run), metrics })),
        tick: (run) =>
          void run.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: 'progress', progress: progressOf(run), metrics })),
      })
    })
    .then(
      (report) => send({ type: 'report', report }, () => process.exit(0)),
      (err: unknown) => {
        // The parent names this worker as lost, with its exit status; the reason is here, on the shared stderr.
        process.stderr.write(`fleet worker ${job.worker}: ${(err as Error).message}\n`)
        process.exit(1)
      },
    )
})
