/**
 * `fleet run --workers K` (issue 12): the phones split over forked worker processes against one broker, one
 * `/metrics` and one report for the whole fleet; a worker killed mid-run is named and its phones counted lost.
 */
import t from 'tap'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { renderReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import { runFleet, type FleetOptions } from '../../fleet/workers.js'
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
      durationMs: 2500,
      metricsPort: 0,
      serving: (url) => (metricsUrl = url),
      tick: (p) => {
        ticks.push(p.target)
        // Once both workers have sent their metrics, with heartbeats counted.
        if (p.target === 6 && p.heartbeatsSent > 0) scraped ??= fetch(metricsUrl).then((r) => r.text())
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
  t.ok(report.heartbeats.sent >= 6, `${report.heartbeats.sent} heartbeats`)
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
  let url = ''
  const scrapes: Promise<string>[] = []
  const report = await runFleet(
    options(dir, {
      // An open run: it ends at Ctrl-C.
      loaded: checkScenario({ groups: [{ name: 'g', heartbeat: { every: '300ms' } }] }, 'open', '.'),
      log: logs.logger(),
      signal: stop.signal,
      metricsPort: 0,
      // Scraped before any worker has sent its metrics, and once only one worker can.
      serving: (u) => {
        url = u
        scrapes.push(fetch(url).then((r) => r.text()))
      },
      spawned: (pids) => process.kill(pids[1]!, 'SIGKILL'),
      tick: (p) => {
        if (p.heartbeatsAcked === 0) return
        scrapes.push(fetch(url).then((r) => r.text()))
        stop.abort()
      },
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
  const [before, during] = await Promise.all(scrapes)
  t.equal(before, '\n', 'before any worker has sent metrics: none')
  t.match(during, /fakephone_fleet_outcomes_total\{outcome="heartbeat-acked"\} \d+/, "the one live worker's metrics")
  t.match(renderReport(report), /workers +#1 pid \d+: 3 phones reported; #2 pid \d+: 3 phones lost \(killed by SIGKILL\)/)
  t.match(renderReport(report), /3 lost with their worker/)
  const line = logs.lines.find((l) => l.msg === 'fleet worker 2 ended without a report; its 3 phones are lost')
  t.match(line, { worker: 2, reason: 'killed by SIGKILL' })
})

t.test("workers that refuse the job make it the run's error; workers that crash before a report are lost", async (t) => {
  const dir = tempDir(t)
  const device = { id: 'wk-00001', account: 'wk-owner', secret: 'x' }
  // Nothing connects: the workers fail before their phones start.
  const remote = { brokerUrl: 'mqtt://127.0.0.1:9', credentials: { version: 1 as const, keysDir: dir, devices: [device] } }
  const logs = new LogCapture()
  const [short, crashed] = await Promise.all([
    runFleet(options(join(dir, 'a'), { count: 2, remote })).then(
      () => t.fail('a run short of devices does not start'),
      (err: Error) => err,
    ),
    // A log level pino does not know: each worker throws before it can answer.
    runFleet(options(join(dir, 'b'), { count: 1, remote, logLevel: 'bogus', log: logs.logger() })),
  ])
  t.match(short, { code: 'WORKERS', message: '--count 2, but the credentials file has only 1 devices: provision more' })
  t.same(
    crashed.workers?.map((w) => [w.phones, w.outcome, w.reason]),
    [
      [1, 'lost', 'exited with status 1'],
      [0, 'lost', 'exited with status 1'],
    ],
  )
  t.same([crashed.phones.target, crashed.phones.lost, crashed.ok], [1, 1, false])
  t.equal(logs.lines.filter((l) => /^fleet worker \d ended without a report/.test(l.msg as string)).length, 2)
})
