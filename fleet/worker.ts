/**
 * A `fleet run --workers` child process (forked by fleet/workers.ts): it gets
 * its job over IPC, runs its slice of the fleet against the shared broker as
 * one process would (fleet/session.ts), sends its progress and Prometheus
 * metrics about once a second, and its report at the end. A `stop` message
 * (the parent's Ctrl-C) ends the run early, with a report as well.
 */
import { pino } from 'pino'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { progressOf } from './progress.js'
import { runSession } from './session.js'
import type { ToParent, ToWorker } from './workers.js'

const send = (msg: ToParent, done?: () => void): void => void process.send?.(msg, undefined, undefined, done)

const controller = new AbortController()
process.on('message', (msg: ToWorker) => {
  if (msg.type === 'stop') return controller.abort()
  const job = msg.job
  runSession({
    ...job,
    clock: new SystemClock(),
    // stdout is the parent's report; this worker's log lines go to stderr.
    log: createLogger({ level: job.logLevel, destination: pino.destination(2) }).child({ worker: job.worker }),
    signal: controller.signal,
    tick: (run) =>
      void run.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: 'progress', progress: progressOf(run), metrics })),
  }).then(
    (report) => send({ type: 'report', report }, () => process.exit(0)),
    (err: unknown) => send({ type: 'failed', message: (err as Error).message }, () => process.exit(1)),
  )
})
