/**
 * `fleet run --workers K` (issue 12): the phones split over forked worker processes against one broker, one
 * `/metrics` and one report for the whole fleet (workers-lost.test.ts: workers that die).
 */
import t from 'tap'
import { mergeReports } from '../../fleet/merge.js'
import { renderReport } from '../../fleet/report.js'
import { readFileSync } from 'node:fs'
import { runFleet, WORKER_HEAP_FLAGS, workerExecArgv } from '../../fleet/workers.js'
import { workerOptions } from '../fixtures/fleet-workers.js'
import { tempDir } from '../fixtures/scope.js'

t.test('--workers 2: both workers report, the merged report has every phone and reconciles to nothing lost', async (t) => {
  const dir = tempDir(t)
  let metricsUrl = ''
  let scraped: Promise<string> | undefined
  const ticks: number[] = []
  let commandLines: string[][] = []
  const report = await runFleet(
    workerOptions(dir, {
      durationMs: 2500,
      spawned: (pids) => (commandLines = pids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'))),
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
  t.equal(commandLines.length, 2)
  for (const line of commandLines) t.same(line.slice(1, 3), WORKER_HEAP_FLAGS, "each worker runs with the fleet's heap flags")
  const metrics = await (scraped as unknown as Promise<string>)
  t.match(metrics, /fakephone_fleet_phones_connected \d/, "one /metrics for the whole fleet, from the workers' registries")
  t.match(metrics, /fakephone_fleet_heartbeats_sent_total \d+/)
  t.match(metrics, /^fakephone_fleet_notifications_lost_total 0$/m, "the report's counts, summed over the workers")
  await t.rejects(fetch(metricsUrl), 'the metrics endpoint closes with the run')
})

t.test('--workers 2: the first worker to wait for what is still due before its report says so, once for the fleet', async (t) => {
  const said: string[] = []
  // Without the push channel no notification is shown: each worker waits its (here short) time for them.
  const report = await runFleet(workerOptions(tempDir(t), { durationMs: 2500, push: false, answersMs: 300, waiting: (l) => said.push(l) }))
  t.ok(report.notifications.issued > 0 && report.notifications.shown === 0, `${report.notifications.issued} notifications, none shown`)
  t.match(said, [/^waiting up to \d+ s for .+ before the report$/])
  t.equal(said.length, 1)
})

t.test("a worker's Node flags: the heap's, then the parent's own, which win", (t) => {
  t.same(workerExecArgv(['--max-semi-space-size=16', '--inspect']), [...WORKER_HEAP_FLAGS, '--max-semi-space-size=16', '--inspect'])
  t.same(workerExecArgv(), [...WORKER_HEAP_FLAGS, ...process.execArgv])
  t.end()
})

t.test('fleet shards (issue 12): --shard 1/2 over --workers 2 is its shard whole; a merge of it names shard 2 missing', async (t) => {
  const report = await runFleet(workerOptions(tempDir(t), { count: 4, durationMs: 1000, shard: { index: 1, count: 2 } }))
  t.same(report.fleet.shards, { count: 2, parts: [1] })
  t.same([report.phones.target, report.phones.lost], [2, 0])
  t.equal(report.missingShards, undefined, "the workers' shards 1/4 and 3/4 are this host's 1/2 whole")
  t.ok(report.ok, renderReport(report))
  t.match(renderReport(report), /\nresult: OK, nothing lost\n$/)
  // `fleet report merge` of this host's report alone: the fleet's shard 2 is missing, not the workers' 2/4 and 4/4.
  const half = mergeReports([report], ['s1.json'])
  t.same([half.missingShards, half.fleet.shards, half.ok], [[2], { count: 2, parts: [1] }, false])
  t.match(renderReport(half), /result: INCOMPLETE, 1 of 2 shards missing \(shard 2\/2\)/)
})
