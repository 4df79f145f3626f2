/**
 * `fakephone fleet run --api URL` whose console API stops answering mid-run (issue 12): the run still ends with its
 * report (summary, JSON file), the commands it could not reconcile counted as such, what the phones answered counted by
 * their own receipts, and exit 1 saying why. Its log says once that the API stopped answering and, if it comes back,
 * once that it answers again, with how many calls failed: not one line per failed call.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, request, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import type { FleetReport } from '../../fleet/report.js'
import type { Cloud } from '../fixtures/cloud.js'
import { remoteFleet } from '../fixtures/fleet-remote.js'
import type { LogLine } from '../fixtures/logs.js'
import { run } from '../fixtures/io.js'
import { otherVersionBroker } from '../fixtures/http.js'

/**
 * The console API as the fleet sees it: a relay to the cloud's. `pass` decides each request as it comes: relayed, cut
 * (its connection destroyed unanswered), after relaying it the relay goes away for good, or answered 200 with `answer`
 * instead (another version's broker).
 */
async function relay(
  t: Test,
  cloud: Cloud,
  pass: (req: IncomingMessage) => 'relay' | 'cut' | 'relay, then go' | { answer: unknown },
): Promise<string> {
  const server = createServer((req, res) => {
    const what = pass(req)
    if (what === 'cut') return void req.socket.destroy()
    if (typeof what === 'object') {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify(what.answer))
    }
    const upstream = request(new URL(req.url as string, cloud.apiUrl), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode as number, answer.headers)
      answer.pipe(res)
      if (what === 'relay, then go')
        res.on('finish', () => {
          server.close()
          server.closeAllConnections()
        })
    })
    req.pipe(upstream)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Runs a 2-phone fleet with commands through `api`, as a user would (the CLI); its report file read back. */
async function fleetThrough(cloud: Cloud, dir: string, creds: string, scenario: string, api: string) {
  const reportFile = join(dir, 'report.json')
  const tokenFile = join(cloud.dataDir, 'console.token')
  const argv = ['fleet', 'run', '--count', '2', '--scenario', scenario, '--duration', '2s', '--no-push', '--report', reportFile]
  const ran = await run(
    [...argv, '--broker', cloud.mqttUrl, '--credentials', creds, '--api', api, '--console-token-file', tokenFile],
    new SystemClock(),
  )
  return { ...ran, report: JSON.parse(readFileSync(reportFile, 'utf8')) as FleetReport }
}

const SCENARIO = {
  groups: [{ name: 'g', heartbeat: { every: 500 }, commands: { answer: { succeed: 1 } } }],
  console: { commands: { every: 300 } },
}

/** The log's lines whose message matches `msg`. */
const said = (lines: readonly LogLine[], msg: RegExp): LogLine[] => lines.filter((l) => msg.test(l.msg))

t.test(
  'a console API that stops answering mid-run: the report still comes, commands not reconciled counted, exit 1 says why',
  async (t) => {
    const { cloud, dir, creds, scenario } = await remoteFleet(t, 2, 'al', { name: 'api-lost', ...SCENARIO })
    // It goes away for good once it has passed one command on.
    const api = await relay(t, cloud, (req) => (req.method === 'POST' ? 'relay, then go' : 'relay'))
    const ran = await fleetThrough(cloud, dir, creds, scenario, api)
    t.equal(ran.code, 1)
    t.match(ran.out, /^fleet "api-lost" \(seed 1\): 2 of 2 phones started/, 'the summary is printed')
    t.match(
      ran.out,
      new RegExp(
        `\\n  console API   stopped answering before the report: cannot reach the broker's HTTP API at ${api} \\(--api\\): .*ECONNREFUSED`,
      ),
    )
    t.match(ran.out, /\nresult: FAILED, the console API stopped answering \(\d+ commands? not reconciled, heartbeats stored unknown\)\n$/)
    t.match(
      ran.err,
      new RegExp(
        `\\nerror: the console API stopped answering \\(\\d+ commands? not reconciled, heartbeats stored unknown\\): cannot ` +
          `reach the broker's HTTP API at ${api} \\(--api\\): .*; is the broker running there\\? --api takes its HTTP address, ` +
          `.* \\(see the report\\)\\n$`,
      ),
      'the exit status comes with why',
    )
    const { report } = ran
    const c = report.commands
    t.ok(c.unreconciled > 0, `${c.unreconciled} commands submitted before the API went are not reconciled`)
    t.equal(c.answered + c.refused + c.ignoredByScenario + c.lost + c.unreconciled, c.issued, 'every issued command counted once')
    t.equal(c.answered, 0, 'none reconciled with the console')
    t.ok(
      c.answeredByPhones >= c.unreconciled,
      `the phones' own count: ${c.answeredByPhones} answered, every command that reached the cloud before it went`,
    )
    const answered = `${c.answeredByPhones} answered by the phones (0 reconciled with the console)`
    t.match(ran.out, `\n  commands      ${c.issued} issued, ${c.received} received, ${answered}, `, 'the summary says both')
    t.equal(report.heartbeats.stored, null, 'what the cloud stored is unknown')
    t.ok(
      report.heartbeats.sent > 0 && report.heartbeats.lost === report.heartbeats.sent - report.heartbeats.acked,
      'heartbeats by their PUBACKs',
    )
    t.match(report.apiError, `cannot reach the broker's HTTP API at ${api} (--api): `)
    t.equal(report.ok, false)

    const lines = ran.logs.lines
    const stopped = said(lines, /^the console API stopped answering/)
    t.equal(stopped.length, 1, 'one line says it stopped answering')
    t.match(stopped[0]?.msg, `the console API stopped answering: cannot reach the broker's HTTP API at ${api} (--api): `, 'with why')
    t.same(said(lines, /^fleet console call failed/), [], 'not one line per failed call')
    t.same(said(lines, /answers again/), [], 'it never came back')
    const atReport = said(lines, /^the console API does not answer: /)
    t.equal(atReport.length, 1, 'one line says what the report could not reconcile')
    t.match(atReport[0], { commands: c.unreconciled, failedCalls: Number })
    const failedCalls = atReport[0]?.failedCalls as number
    t.ok(failedCalls > 1, `with the calls failed since it stopped answering (${failedCalls})`)
  },
)

t.test('a console API that stops answering and comes back: said once each way, with the calls that failed meanwhile', async (t) => {
  const { cloud, dir, creds, scenario } = await remoteFleet(t, 2, 'ab', { name: 'api-back', ...SCENARIO })
  // The first command goes through; the next three calls find it gone (their connections cut); then it is back.
  let calls = 0
  const api = await relay(t, cloud, () => (++calls >= 2 && calls <= 4 ? 'cut' : 'relay'))
  const ran = await fleetThrough(cloud, dir, creds, scenario, api)
  const lines = ran.logs.lines
  const stopped = said(lines, /^the console API stopped answering/)
  t.equal(stopped.length, 1, 'one line says it stopped answering')
  // Its connections were cut as requests went out on them, after answers: said as closed mid-request, not as a broker that may be down.
  t.match(
    stopped[0]?.msg,
    `the console API stopped answering: the broker's HTTP API at ${api} (--api) closed the connection mid-request (socket hang up)`,
  )
  const back = said(lines, /^the console API answers again/)
  t.equal(back.length, 1, 'one line says it answers again')
  t.match(back[0], { msg: /^the console API answers again after \d+\.\d s; 3 calls failed meanwhile$/, failedCalls: 3, downMs: Number })
  t.same(said(lines, /^fleet console call failed/), [], 'not one line per failed call')

  const c = ran.report.commands
  t.equal(ran.report.apiError, undefined, 'it answered for the report')
  t.equal(c.lost, 3, 'the three commands it did not take are lost')
  t.equal(c.unreconciled, 0)
  t.equal(c.answered + c.refused + c.ignoredByScenario + c.lost, c.issued, 'every issued command counted once')
  t.ok(c.answered > 0, `${c.answered} answered`)
  t.equal(c.answeredByPhones, c.answered, 'the phones and the console agree on what was answered')
  t.equal(ran.code, 1)
  t.match(ran.err, /\nerror: the fleet lost messages or phones \(see the report\)\n$/)
})

t.test(
  'A3: a broker whose clock answer the fleet cannot read: the run stops before any phone starts, naming the call and field',
  async (t) => {
    const { cloud, dir, creds, scenario } = await remoteFleet(t, 2, 'ac', { name: 'api-clock', ...SCENARIO })
    const other = await otherVersionBroker(t, () => ({ now: 'noon', simulated: false, aheadMs: 0 }))
    const ran = await run(
      [
        'fleet',
        'run',
        '--count',
        '2',
        '--scenario',
        scenario,
        '--duration',
        '2s',
        '--no-push',
        '--report',
        join(dir, 'report.json'),
      ].concat([
        '--broker',
        cloud.mqttUrl,
        '--credentials',
        creds,
        '--api',
        other.url,
        '--console-token-file',
        join(cloud.dataDir, 'console.token'),
      ]),
      new SystemClock(),
    )
    t.equal(ran.code, 1)
    t.match(
      ran.err,
      `error: --api ${other.url}: ${other.url} answered GET /api/clock with what this console cannot read (`,
      'one line naming the call',
    )
    t.match(ran.err, /at now\b.*is it a fakephone broker of another version\?\n$/, '...and the field')
    t.notMatch(ran.out, /phones started/, 'no phone started, no report')
  },
)

t.test(
  'issue 12, F1, X2: a broker answering notifications and histories the fleet cannot read: said once, the report names the field',
  async (t) => {
    const { cloud, dir, creds, scenario } = await remoteFleet(t, 2, 'au', {
      name: 'api-unreadable',
      groups: [{ name: 'g', heartbeat: { every: 500 } }],
      console: { notifications: { every: 300 } },
    })
    // Another version's broker: a notification queued without its id, a history whose fixes have no seq.
    const api = await relay(t, cloud, (req) => {
      if (req.method === 'POST') return { answer: { now: 1, notification: { title: 'x' } } }
      if (req.url?.includes('/history')) return { answer: { now: 1, device: 'x', history: [{ at: 1 }] } }
      return 'relay'
    })
    const ran = await fleetThrough(cloud, dir, creds, scenario, api)
    const lines = ran.logs.lines
    const unreadable = said(lines, /^the console API answers what this fleet cannot read/)
    t.equal(unreadable.length, 1, 'one line says so')
    t.match(
      unreadable[0]?.msg,
      new RegExp(`: ${api} answered POST /api/devices/au-\\d+/notifications with what this console cannot read \\(.*notification\\.id`),
    )
    t.same(said(lines, /^fleet console call failed/), [], 'not one line per call')
    t.same(said(lines, /stopped answering/), [], 'it answers: no outage')
    const { report } = ran
    t.ok(report.notifications.issued > 1, `${report.notifications.issued} notifications issued`)
    t.match(
      report.apiError,
      new RegExp(`${api} answered GET /api/devices/au-\\d+/history\\?limit=10000 with what this console cannot read \\(.*history\\[0\\]`),
    )
    t.equal(report.heartbeats.stored, null, 'what the cloud stored is unknown, not counted from a history it could not read')
    t.equal(ran.code, 1)
  },
)
