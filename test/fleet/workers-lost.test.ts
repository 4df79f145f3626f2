/**
 * `fleet run --workers K` (issue 12) when workers go wrong: a worker killed mid-run (or one that cannot run) is named
 * on the log and its phones are counted lost; a Ctrl-C reaches the others, which still report. (Apart from
 * workers.test.ts so that each file's forks finish well inside tap's per-file time limit on a loaded machine.)
 */
import t from 'tap'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { renderReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import { runFleet } from '../../fleet/workers.js'
import { workerOptions } from '../fixtures/fleet-workers.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

t.test('a worker killed mid-run: named on the log, its phones lost, the run failed; Ctrl-C stops the others', async (t) => {
  const dir = tempDir(t)
  const logs = new LogCapture()
  const stop = new AbortController()
  let url = ''
  let pids: number[] = []
  const scrapes: Promise<string>[] = []
  const report = await runFleet(
    workerOptions(dir, {
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
      spawned: (forked) => {
        pids = forked
        process.kill(pids[1]!, 'SIGKILL')
      },
      tick: (p) => {
        if (p.heartbeatsAcked === 0) return
        scrapes.push(fetch(url).then((r) => r.text()))
        // A Ctrl-C on a terminal: SIGINT to every process of the group. The worker stops and reports, as the parent asks.
        process.kill(pids[0]!, 'SIGINT')
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
  t.match(during, /fakephone_fleet_heartbeats_acked_total \d+/, "the one live worker's metrics")
  t.match(renderReport(report), /workers +#1 pid \d+: 3 phones reported; #2 pid \d+: 3 phones lost \(killed by SIGKILL\)/)
  t.match(renderReport(report), /3 lost with their worker/)
  const line = logs.lines.find((l) => l.msg === 'fleet worker 2 ended without a report; its 3 phones are lost')
  t.match(line, { worker: 2, reason: 'killed by SIGKILL' })
})

t.test('a fleet short of devices is refused before any worker starts; workers that cannot run are lost', async (t) => {
  const dir = tempDir(t)
  const device = { id: 'wk-00001', account: 'wk-owner', secret: 'x' }
  // Something takes TCP connections there (the run tries --broker before anything else), but no MQTT: the workers fail
  // before their phones start.
  const silent = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => silent.close())
  const brokerUrl = `mqtt://127.0.0.1:${(silent.address() as AddressInfo).port}`
  const remote = { brokerUrl, credentials: { version: 1 as const, keysDir: dir, devices: [device] } }
  let forked = false
  await t.rejects(runFleet(workerOptions(join(dir, 'a'), { count: 2, remote, spawned: () => (forked = true) })), {
    code: 'CREDENTIALS',
    message: '--count 2, but the credentials file has only 1 devices: provision more',
  })
  t.notOk(forked)
  const logs = new LogCapture()
  // A log level pino does not know: each worker says so on stderr and exits 1.
  const crashed = await runFleet(workerOptions(join(dir, 'b'), { count: 1, remote, logLevel: 'bogus', log: logs.logger() }))
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

t.test('--metrics-port on a port in use is refused before any worker starts, naming the port and what to give', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  const port = (taken.address() as AddressInfo).port
  let forked = false
  await t.rejects(runFleet(workerOptions(tempDir(t), { metricsPort: port, spawned: () => (forked = true) })), {
    code: 'USAGE',
    message:
      `--metrics-port ${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}; ` +
      'give another port, or 0 for one the OS picks',
  })
  t.notOk(forked, 'no worker was started')
})
