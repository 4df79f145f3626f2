/**
 * `fleet run --workers K` (issue 12): the phones split over forked worker processes against one broker, one
 * `/metrics` and one report for the whole fleet; a worker killed mid-run is named and its phones counted lost.
 */
import t from 'tap'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { renderReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import { openTarget } from '../../fleet/session.js'
import { runFleet, type FleetOptions, type ToParent, type ToWorker } from '../../fleet/workers.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

const loaded = checkScenario(
  {
    name: 'workers',
    groups: [{ name: 'g', heartbeat: { every: '400ms' } }],
    console: { commands: { every: '1s' }, notifications: { every: '1s' } },
  },
  'workers',
  '.',
)

function options(dir: string, o: Partial<FleetOptions>): FleetOptions {
  return {
    count: 6,
    loaded,
    seed: 'w',
    push: true,
    clock: new SystemClock(),
    log: new LogCapture().logger(),
    signal: new AbortController().signal,
    workDir: dir,
    workers: 2,
    logLevel: 'warn',
    ...o,
  }
}

t.test('--workers 2: both workers report, the merged report has every phone and reconciles to nothing lost', async (t) => {
  const dir = tempDir(t)
  let metricsUrl = ''
  let scraped: Promise<string> | undefined
  const ticks: number[] = []
  const report = await runFleet(
    options(dir, {
      durationMs: 1500,
      metricsPort: 0,
      serving: (url) => (metricsUrl = url),
      tick: (p) => {
        ticks.push(p.target)
        // Once both workers have sent their metrics, once.
        if (p.target === 6) scraped ??= fetch(metricsUrl).then((r) => r.text())
      },
    }),
  )
  t.comment(renderReport(report))
  t.same(
    report.workers?.map((w) => [w.phones, w.outcome]),
    [
      [3, 'reported'],
      [3, 'reported'],
    ],
  )
  t.same([report.phones.target, report.phones.started, report.phones.lost], [6, 6, 0], 'every phone, in one report')
  t.same(report.fleet.shards, { count: 1, parts: [1] })
  t.ok(report.heartbeats.sent > 12, `${report.heartbeats.sent} heartbeats`)
  t.equal(report.heartbeats.stored, report.heartbeats.sent, 'the cloud stored every heartbeat the workers sent')
  t.equal(report.histograms.heartbeatAckMs.count, report.heartbeats.acked, "the merged histogram holds every worker's samples")
  t.ok(report.commands.answered > 0 && report.notifications.shown > 0)
  t.ok(report.ok, 'nothing lost')
  t.ok(report.resources.brokerInProcess && report.resources.cpuUserMs > 0)
  t.ok(ticks.includes(6), 'the live view summed both workers')
  const metrics = await (scraped as unknown as Promise<string>)
  t.match(metrics, /fakephone_fleet_phones_connected \d/, "one /metrics for the whole fleet, from the workers' registries")
  t.match(metrics, /fakephone_fleet_outcomes_total\{outcome="heartbeat-sent"\} \d+/)
  await t.rejects(fetch(metricsUrl), 'the metrics endpoint closes with the run')
})

t.test('a worker killed mid-run: named on the log, its phones lost, the run failed; Ctrl-C stops the others', async (t) => {
  const dir = tempDir(t)
  const logs = new LogCapture()
  const stop = new AbortController()
  const report = await runFleet(
    options(dir, {
      // An open run: it ends at Ctrl-C.
      loaded: checkScenario({ groups: [{ name: 'g', heartbeat: { every: '300ms' } }] }, 'open', '.'),
      log: logs.logger(),
      signal: stop.signal,
      metricsPort: 0,
      spawned: (pids) => process.kill(pids[1]!, 'SIGKILL'),
      tick: (p) => p.heartbeatsAcked > 0 && stop.abort(),
    }),
  )
  t.comment(renderReport(report))
  t.same(
    report.workers?.map((w) => [w.outcome, w.reason]),
    [
      ['reported', undefined],
      ['lost', 'killed by SIGKILL'],
    ],
  )
  t.same([report.phones.target, report.phones.lost], [6, 3])
  t.notOk(report.ok)
  t.match(renderReport(report), /workers +#1 pid \d+: 3 phones reported; #2 pid \d+: 3 phones lost \(killed by SIGKILL\)/)
  t.match(renderReport(report), /3 lost with their worker/)
  const line = logs.lines.find((l) => l.msg === 'fleet worker 2 ended without a report; its 3 phones are lost')
  t.match(line, { worker: 2, reason: 'killed by SIGKILL' })
})

t.test('a worker whose session fails says why and exits 1', async (t) => {
  const dir = tempDir(t)
  const target = await openTarget({ count: 1, workDir: dir, clock: new SystemClock(), log: new LogCapture().logger() })
  t.teardown(() => target.stop())
  const worker = fork(fileURLToPath(new URL('../../fleet/worker.ts', import.meta.url)), [], { serialization: 'advanced' })
  const said = once(worker, 'message') as Promise<[ToParent]>
  const job: ToWorker = {
    type: 'run',
    job: {
      count: 2,
      loaded,
      seed: 's',
      push: false,
      workDir: join(dir, 'w'),
      remote: target.shared,
      shard: { index: 1, count: 1 },
      worker: 1,
      logLevel: 'warn',
    },
  }
  worker.send(job)
  t.same((await said)[0], { type: 'failed', message: '--count 2, but the credentials file has only 1 devices: provision more' })
  t.same(await once(worker, 'exit'), [1, null])
})
