/**
 * Shards and merged reports (issue 12): histograms that merge exactly, the shard rule, how many workers, `fleet report
 * merge` joining shard reports and refusing reports of another fleet run with the reason.
 */
import t from 'tap'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { LatencyHistogram } from '../../fleet/histogram.js'
import { lostReport, mergeReports, readReport } from '../../fleet/merge.js'
import { planFleet } from '../../fleet/plan.js'
import { renderReport, scopeOf, type FleetReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import { inShard, parseShard, slicePlan, workerShard } from '../../fleet/shard.js'
import { autoWorkers, brokerRoomWarning, PHONES_PER_CORE } from '../../fleet/workers.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

const loaded = checkScenario({ name: 'm' }, 'm', '.')

/** A report of shard `part` of 3 of a 6-phone fleet: 2 phones that sent and had acknowledged `acks`. */
function shardReport(part: number, acks: number[], over: Partial<FleetReport> = {}): FleetReport {
  const r = lostReport({ scenario: 'm', seed: 's', fleet: scopeOf(loaded, 6, { index: part, count: 3 }), phones: 2 })
  const ack = new LatencyHistogram()
  for (const ms of acks) ack.add(ms)
  r.phones = { ...r.phones, lost: 0, started: 2, stopped: 2 }
  r.heartbeats = { sent: acks.length, acked: acks.length, stored: acks.length, lost: 0, duplicated: 0, ackMs: ack.percentiles() }
  r.histograms.heartbeatAckMs = ack.toJSON()
  r.resources = { ...r.resources, phones: 2, rssStartMb: 100, rssPeakMb: 101, cpuUserMs: 50, cpuSystemMs: 10, loopDelayP99Ms: part }
  r.durationMs = 1000 * part
  r.ok = true
  return { ...r, ...over }
}

t.test('the phones line says how many an outage took for good, so the stopped and those add up to the phones', async (t) => {
  const away = (part: number): FleetReport =>
    shardReport(part, [], { phones: { ...shardReport(part, []).phones, started: 5, restarts: 3, stopped: 1, outages: 4 } })
  t.match(renderReport(away(1)), /\n {2}phones +1 stopped, 4 outages \(1 not back by the end\), 0 switches/)
  t.match(renderReport(mergeReports([away(1), away(2)], ['a', 'b'])), /phones +2 stopped, 8 outages \(2 not back by the end\), /)
  t.match(renderReport(shardReport(1, [])), /phones +2 stopped, 0 outages, /, 'no outage: nothing more said')
  const older = shardReport(1, [], { phones: { ...shardReport(1, []).phones, outages: 1 } })
  delete older.phones.restarts
  t.match(renderReport(older), /phones +2 stopped, 1 outage, /, 'a report from before restarts were counted cannot tell')
})

t.test('F1, X1: the fleet summary counts in agreed words and says issued where the JSON does', async (t) => {
  const base = shardReport(1, [])
  const one = shardReport(1, [], { phones: { ...base.phones, outages: 1, restarts: 1, switches: 1 } })
  t.match(renderReport(one), /phones +2 stopped, 1 outage, 1 switch \(0 refused\), /, 'one of each: no plural s')
  const two = shardReport(1, [], { phones: { ...base.phones, outages: 2, restarts: 2, switches: 2 } })
  t.match(renderReport(two), /phones +2 stopped, 2 outages, 2 switches \(0 refused\), /, 'more than one: plural')
  const n = base.notifications
  t.match(renderReport(base), new RegExp(`notifications ${n.issued} issued, ${n.shown} shown, .*; issued→shown `), 'the JSON key')
  t.notMatch(renderReport(base), /queued/, 'no word the JSON does not use')
})

t.test('latency histograms: percentiles within 1 % of the samples, merged halves give the whole', async (t) => {
  const all = new LatencyHistogram()
  const halves = [new LatencyHistogram(), new LatencyHistogram()]
  for (let i = 1; i <= 1000; i++) {
    all.add(i / 10)
    halves[i % 2]!.add(i / 10)
  }
  const p = all.percentiles()
  t.equal(p.count, 1000)
  for (const [got, exact] of [
    [p.p50, 50],
    [p.p90, 90],
    [p.p99, 99],
  ] as const)
    t.ok(got >= exact && got <= exact * 1.01 + 0.05, `${got} is ${exact} within 1 %`)
  t.equal(p.max, 100, 'the maximum is exact')
  const merged = new LatencyHistogram().merge(halves[0]!.toJSON()).merge(halves[1]!.toJSON())
  t.same(merged.toJSON(), all.toJSON(), 'merging the halves gives the histogram of every sample')
  t.same(merged.percentiles(), p)
  t.same(new LatencyHistogram().percentiles(), { count: 0, p50: 0, p90: 0, p99: 0, max: 0 })
  const tiny = new LatencyHistogram()
  tiny.add(0)
  tiny.add(0.0005)
  t.same(tiny.toJSON().buckets, [[0, 2]], 'values at or below 1 µs share the first bucket')
})

t.test('shards: I/N takes every N-th phone; worker w of K inside a shard is a shard one level down', async (t) => {
  t.same(parseShard('2/3'), { index: 2, count: 3 })
  for (const bad of ['0/3', '4/3', '1/0', '1', 'a/b', '1/2/3'])
    t.throws(() => parseShard(bad), { message: `--shard "${bad}": expected I/N with 1 ≤ I ≤ N, e.g. 2/3` })
  const host = { index: 2, count: 3 }
  const phones = Array.from({ length: 20 }, (_, i) => i)
  const inHost = phones.filter((i) => inShard(i, host))
  t.same(inHost, [1, 4, 7, 10, 13, 16, 19])
  const byWorker = [0, 1].map((w) => phones.filter((i) => inShard(i, workerShard(host, w, 2))))
  t.same(byWorker, [
    [1, 7, 13, 19],
    [4, 10, 16],
  ])
  const plan = planFleet(loaded, 's', ['a', 'b', 'c', 'd'])
  const sliced = slicePlan(plan, { index: 2, count: 2 })
  t.same(
    sliced.phones.map((p) => [p.index, p.id]),
    [
      [1, 'b'],
      [3, 'd'],
    ],
  )
  t.equal(sliced.phones[0], plan.phones[1], "a phone keeps the whole fleet's plan")
})

t.test('--workers auto: enough processes for the open files, one per core for big fleets', async (t) => {
  const room = (connections: number): { limit: { soft: number; hard: number }; open: number; connections: number } => ({
    limit: { soft: connections + 100, hard: connections + 100 },
    open: 36,
    connections,
  })
  t.same(autoWorkers(100, 2, room(20_000), 2), {
    workers: 1,
    why:
      '1 process: 200 sockets (100 phones × 2) for an open-file room of 20000 per process; ' +
      `100 phones at up to ${PHONES_PER_CORE} per core, 2 cores`,
  })
  t.match(
    autoWorkers(1, 1, room(20_000), 1).why,
    /^1 process: 1 socket \(1 phone × 1\) for .*; 1 phone at up to \d+ per core, 1 core$/,
    'one of each in the singular',
  )
  t.equal(autoWorkers(15_000, 2, room(20_000), 8).workers, 3, '30,000 sockets need 2 processes by files, 3 by cores')
  t.equal(autoWorkers(30_000, 2, room(20_000), 2).workers, 3, 'files win over cores: 60,000 sockets in 3 processes')
  t.equal(autoWorkers(9_000, 1, room(20_000), 1).workers, 1, 'one core: one process while the sockets fit')
  const unknown = autoWorkers(10, 1, undefined, 4)
  t.equal(unknown.workers, 1)
  t.match(unknown.why, /an unknown open-file room \(no \/proc\)/)
})

t.test('fleet run on the broker it starts: a warning when its phones would not fit that process, none when they do', async (t) => {
  const room = { limit: { soft: 20_000, hard: 20_000 }, open: 19, connections: 19_917 }
  // This project's machine: 10,000 complete phones over workers put 20,000 sockets on the broker's process.
  t.match(
    brokerRoomWarning(10_000, 2, 2, room),
    new RegExp(
      '^warning: the broker this run starts holds 20000 sockets \\(10000 phones × 2\\), but the open-file limit 20000 leaves ' +
        'room for about 19917: .*limits\\.conf for a shell\\) or give --broker a running broker with room$',
    ),
  )
  t.equal(brokerRoomWarning(9_958, 2, 2, room), undefined, 'the workers hold the phones: the broker holds one end of each')
  t.match(
    brokerRoomWarning(5_000, 2, 1, room),
    /holds 10000 sockets \(5000 phones × 2\), and as many again for the phones, in the same process.*, run the phones in --workers or/,
  )
  t.equal(brokerRoomWarning(4_979, 2, 1, room), undefined, 'both ends fit')
  t.equal(brokerRoomWarning(1_000_000, 2, 1, undefined), undefined, 'no /proc: nothing to say')
})

t.test('merge: counts add up, percentiles come from the merged histograms, shards join', async (t) => {
  const a = shardReport(1, [1, 2, 3])
  const b = shardReport(3, [10, 20, 30, 40], { heartbeats: { ...shardReport(3, [10, 20, 30, 40]).heartbeats, stored: null } })
  const m = mergeReports([a, b], ['a.json', 'b.json'])
  t.same(m.fleet, { size: 6, scenarioHash: a.fleet.scenarioHash, shards: { count: 3, parts: [1, 3] } })
  t.same([m.phones.target, m.phones.started, m.heartbeats.sent, m.heartbeats.acked], [4, 4, 7, 7])
  t.equal(m.heartbeats.stored, null, 'a shard that could not ask the cloud makes the stored count unknown')
  t.same(m.heartbeats.ackMs, { count: 7, p50: 10, p90: 40, p99: 40, max: 40 })
  t.equal(m.durationMs, 3000, 'the longest shard')
  t.same([m.resources.phones, m.resources.cpuUserMs, m.resources.loopDelayP99Ms, m.resources.rssPerPhoneKb], [4, 100, 3, 512])
  t.equal(m.resources.cpuPerMessageUs, 120_000 / 7)
  t.match(renderReport(m), /shards +1, 3 of 3 \(1 missing\) of a 6-phone fleet/)
  const whole = mergeReports([a, b, shardReport(2, [])], ['a', 'b', 'c'])
  t.match(renderReport(whole), /shards +1, 2, 3 of 3 \(all\)/)
  t.same([whole.missingShards, whole.ok], [[], true])
  t.equal(whole.heartbeats.stored, null)
  t.equal(mergeReports([a], ['a']).heartbeats.stored, 3)
  t.equal(mergeReports([shardReport(1, []), shardReport(2, [])], ['a', 'b']).resources.cpuPerMessageUs, 0)
})

t.test('fleet shards (issue 12): a merge that lacks shards is INCOMPLETE, names them, and is not OK', async (t) => {
  const one = mergeReports([shardReport(1, [1]), shardReport(3, [2])], ['a', 'c'])
  t.same([one.missingShards, one.ok], [[2], false], 'the JSON says which shard is missing and is not ok')
  t.match(renderReport(one), /\nresult: INCOMPLETE, 1 of 3 shards missing \(shard 2\/3\): nothing lost in the shards given\n$/)
  const two = mergeReports([shardReport(2, [1])], ['b'])
  t.match(renderReport(two), /\nresult: INCOMPLETE, 2 of 3 shards missing \(shards 1\/3, 3\/3\): nothing lost/)
  const lost = shardReport(1, [1], { phones: { ...shardReport(1, []).phones, lost: 2 } })
  t.match(
    renderReport(mergeReports([lost, shardReport(2, [1])], ['a', 'b'])),
    /\nresult: FAILED, something was lost or a phone did not start; also 1 of 3 shards missing \(shard 3\/3\)\n$/,
    'lost and incomplete: FAILED first, the missing shards said too',
  )
})

t.test(
  "merge: the loop delay with every phone up is the worst shard's, and unknown when one shard never had its phones all up",
  async (t) => {
    const up = (part: number, ms: number | null): FleetReport => {
      const r = shardReport(part, [1])
      r.resources = { ...r.resources, loopDelayAllUpP99Ms: ms }
      return r
    }
    t.equal(mergeReports([up(1, 4.5), up(2, 7.25), up(3, 0)], ['a', 'b', 'c']).resources.loopDelayAllUpP99Ms, 7.25)
    t.equal(mergeReports([up(1, 4.5), up(2, null)], ['a', 'b']).resources.loopDelayAllUpP99Ms, null)
    t.equal(
      lostReport({ scenario: 'm', seed: 's', fleet: scopeOf(loaded, 6, { index: 1, count: 3 }), phones: 2 }).resources.loopDelayAllUpP99Ms,
      null,
      "a lost worker's phones were not up",
    )
    t.match(renderReport(mergeReports([up(1, 4.5)], ['a'])), /loop delay p99 1\.0 ms \(4\.5 ms with every phone up\)/)
  },
)

t.test('merge refuses reports of another run, naming both files and what differs', async (t) => {
  const a = shardReport(1, [1])
  const refuse = (other: FleetReport, message: string): void => {
    t.throws(() => mergeReports([a, other], ['a.json', 'b.json']), { code: 'MERGE', message })
  }
  refuse(shardReport(2, [1], { seed: 't' }), 'b.json is not of the fleet run of a.json: its seed is "t", not "s"')
  const hash = a.fleet.scenarioHash
  refuse(
    shardReport(2, [1], { fleet: { ...a.fleet, scenarioHash: 'ffffffff', shards: { count: 3, parts: [2] } } }),
    `b.json is not of the fleet run of a.json: its scenario is "m (ffffffff)", not "m (${hash})"`,
  )
  refuse(
    shardReport(2, [1], { fleet: { ...a.fleet, size: 7, shards: { count: 3, parts: [2] } } }),
    'b.json is not of the fleet run of a.json: its fleet size is 7, not 6',
  )
  refuse(
    shardReport(2, [1], { fleet: { ...a.fleet, shards: { count: 4, parts: [2] } } }),
    'b.json is not of the fleet run of a.json: its shard count is 4, not 3',
  )
  refuse(shardReport(1, [2]), 'shard 1/3 is in both a.json and b.json')
  t.throws(() => mergeReports([], []), { message: 'no reports to merge' })
})

t.test('fleet run --shard and fleet report merge from the command line', async (t) => {
  const dir = tempDir(t)
  const file = (name: string): string => join(dir, name)
  const shardRun = (i: number): Promise<{ code: number; out: string; err: string }> =>
    run(
      [
        'fleet',
        'run',
        '--count',
        '3',
        '--shard',
        `${i}/2`,
        '--workers',
        '1',
        '--duration',
        '1s',
        '--no-push',
        '--report',
        file(`s${i}.json`),
      ],
      new SystemClock(),
    )
  const [one, two] = await Promise.all([shardRun(1), shardRun(2)])
  t.equal(one.code, 0, one.err)
  t.match(one.out, /2 of 2 phones started/)
  t.match(one.out, /shards +1 of 2 \(1 missing\) of a 3-phone fleet/)
  t.match(two.out, /1 of 1 phones started/)
  const merged = await run(['fleet', 'report', 'merge', file('s1.json'), file('s2.json'), '--out', file('m.json')])
  t.equal(merged.code, 0, merged.err)
  t.match(merged.out, /3 of 3 phones started/)
  t.match(merged.out, /shards +1, 2 of 2 \(all\) of a 3-phone fleet/)
  const saved = JSON.parse(readFileSync(file('m.json'), 'utf8')) as FleetReport
  t.same([saved.phones.started, saved.ok], [3, true])
  t.same(saved.missingShards, [], 'every shard in')

  // fleet shards (issue 12): one of the two shard reports alone is INCOMPLETE, exit 3 (not 1, "lost something").
  const half = await run(['fleet', 'report', 'merge', file('s1.json'), '--out', file('m1.json')])
  t.equal(half.code, 3, 'exit 3: incomplete, nothing lost')
  t.match(half.out, /\nresult: INCOMPLETE, 1 of 2 shards missing \(shard 2\/2\): nothing lost in the shards given\n/)
  t.notMatch(half.out, /result: OK/)
  t.match(half.err, /error: the merged report is incomplete: 1 of 2 shards missing \(shard 2\/2\), not counted/)
  const halfSaved = JSON.parse(readFileSync(file('m1.json'), 'utf8')) as FleetReport
  t.same([halfSaved.missingShards, halfSaved.ok], [[2], false], 'the --out file says it too, for a CI script')
  const json = await run(['fleet', 'report', 'merge', file('s1.json'), '--out', file('m1.json'), '--json'])
  t.equal(json.code, 3)
  const parsed = JSON.parse(json.out) as FleetReport
  t.same([parsed.phones.target, parsed.missingShards, parsed.ok], [2, [2], false])
  const piped = await run(['fleet', 'report', 'merge', file('s1.json'), file('s2.json'), '--json'])
  t.equal(piped.code, 0, `--json without --out prints the merged report for a pipe: ${piped.err}`)
  t.same((JSON.parse(piped.out) as FleetReport).phones.started, 3)
  const summary = await run(['fleet', 'report', 'merge', file('s1.json'), file('s2.json')])
  t.match([summary.code, summary.out], [0, /\nresult: OK, nothing lost\n/], 'neither: the summary alone')
  const twice = await run(['fleet', 'report', 'merge', file('s1.json'), file('s1.json'), '--out', file('t.json')])
  t.equal(twice.code, 1)
  t.match(twice.err, /shard 1\/2 is in both .*s1\.json and .*s1\.json/)

  const other = shardReport(1, [1], { seed: 'x' })
  writeFileSync(file('x.json'), JSON.stringify(other))
  const mismatch = await run(['fleet', 'report', 'merge', file('s2.json'), file('x.json'), '--out', file('bad.json')])
  t.equal(mismatch.code, 1)
  t.match(mismatch.err, /x\.json is not of the fleet run of .*s2\.json: its scenario is "m \(\w+\)", not "fleet \(\w+\)"/)
  writeFileSync(
    file('lost.json'),
    JSON.stringify(lostReport({ scenario: 'm', seed: 's', fleet: scopeOf(loaded, 6, { index: 2, count: 3 }), phones: 2 })),
  )
  const lost = await run(['fleet', 'report', 'merge', file('lost.json'), '--out', file('l.json')])
  t.equal(lost.code, 1, 'lost phones exit 1 also when shards are missing')
  t.match(lost.err, /the fleet lost messages or phones; also 2 of 3 shards missing \(shards 1\/3, 3\/3\)/)

  const badShard = await run(['fleet', 'run', '--count', '3', '--workers', 'auto', '--shard', '3/2'])
  t.match(badShard.err, /--shard "3\/2": expected I\/N/)
  const badWorkers = await run(['fleet', 'run', '--count', '3', '--workers', 'many'])
  t.match(badWorkers.err, /--workers.*must be a whole number above 0/)
})

t.test('readReport: a missing file, not JSON, not a report', async (t) => {
  const dir = tempDir(t)
  await t.rejects(readReport(join(dir, 'none.json')), { code: 'MERGE', message: /cannot read .*none\.json as JSON: ENOENT/ })
  writeFileSync(join(dir, 'text.json'), 'hello')
  await t.rejects(readReport(join(dir, 'text.json')), { message: /text\.json as JSON: Unexpected token/ })
  writeFileSync(join(dir, 'old.json'), JSON.stringify({ ...shardReport(1, []), histograms: undefined }))
  await t.rejects(readReport(join(dir, 'old.json')), {
    message: /old\.json is not a fleet report from `fleet run --report`: histograms: Invalid input/,
  })
  writeFileSync(join(dir, 'arr.json'), '[]')
  await t.rejects(readReport(join(dir, 'arr.json')), { message: /arr\.json is not a fleet report .*: \(top\): Invalid input/ })
})

t.test(
  "a merged report's scenario name, seed and workers' reasons come from the shard reports: shown escaped, one line each",
  async (t) => {
    const evil = shardReport(1, [1], {
      scenario: 'm\x1b[2J\nresult: OK, nothing lost',
      seed: 's\x07',
      workers: [{ index: 0, pid: 7, phones: 2, outcome: 'lost', reason: 'killed\x1b]0;pwned\x07' }],
    })
    const lines = renderReport(evil).split('\n')
    t.equal(lines[0], 'fleet "m\\x1B[2J\\x0Aresult: OK, nothing lost" (seed s\\x07): 2 of 2 phones started, 1.0 s')
    t.match(
      lines.find((l) => l.startsWith('  workers')),
      /^ {2}workers {7}#1 pid 7: 2 phones lost \(killed\\x1B\]0;pwned\\x07\)$/,
    )
    t.notMatch(renderReport(evil), /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, 'no control character reaches the terminal')
  },
)

t.test('S1 B1: merged transfers add up by code; one shard not reconciled leaves stored unknown; an older report has none', async (t) => {
  const transfers = (stored: number | null, failures: Record<string, number>): FleetReport['transfers'] => ({
    phones: 2,
    seeded: 4,
    uploaded: 3,
    stored,
    failed: Object.values(failures).reduce((a, b) => a + b, 0),
    failures,
    pending: 1,
    held: 0,
    lost: 1,
    backups: { made: 1, failed: 0 },
  })
  const older = shardReport(3, [1]) as Partial<FleetReport>
  delete older.transfers
  const merged = mergeReports(
    [
      shardReport(1, [1], { transfers: transfers(3, { UNREACHABLE: 2 }) }),
      shardReport(2, [1], { transfers: transfers(null, { UNREACHABLE: 1, QUOTA_EXCEEDED: 1 }) }),
      older as FleetReport,
    ],
    ['a', 'b', 'c'],
  )
  t.same(merged.transfers, {
    phones: 4,
    seeded: 8,
    uploaded: 6,
    stored: null,
    failed: 4,
    failures: { UNREACHABLE: 3, QUOTA_EXCEEDED: 1 },
    pending: 2,
    held: 0,
    lost: 2,
    backups: { made: 2, failed: 0 },
  })
  t.notOk(merged.ok, 'a lost transfer fails the merge')
  t.match(renderReport(merged), /6 uploaded, n\/a stored, 4 failed attempts \(3 UNREACHABLE, 1 QUOTA_EXCEEDED\)/)
  t.equal(mergeReports([shardReport(1, [1], { transfers: transfers(3, {}) })], ['a']).transfers.stored, 3)
})
