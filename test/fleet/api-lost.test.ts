/**
 * `fakephone fleet run --api URL` whose console API stops answering mid-run (issue 12): the run still ends with its
 * report (summary, JSON file), the commands it could not reconcile counted as such, and exit 1 saying why.
 */
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import type { FleetReport } from '../../fleet/report.js'
import { remoteFleet } from '../fixtures/fleet-remote.js'
import { run } from '../fixtures/io.js'

t.test(
  'a console API that stops answering mid-run: the report still comes, commands not reconciled counted, exit 1 says why',
  async (t) => {
    const { cloud, dir, creds, scenario } = await remoteFleet(t, 2, 'al', {
      name: 'api-lost',
      groups: [{ name: 'g', heartbeat: { every: 500 }, commands: { answer: { succeed: 1 } } }],
      console: { commands: { every: 300 } },
    })
    // The console API as the fleet sees it: a relay to the cloud's that goes away for good once it has passed one command on.
    const relay = createServer((req, res) => {
      const upstream = request(new URL(req.url as string, cloud.apiUrl), { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode as number, answer.headers)
        answer.pipe(res)
        if (req.method === 'POST')
          res.on('finish', () => {
            relay.close()
            relay.closeAllConnections()
          })
      })
      req.pipe(upstream)
    })
    relay.listen(0, '127.0.0.1')
    await once(relay, 'listening')
    t.teardown(() => relay.close())
    const api = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`
    const reportFile = join(dir, 'report.json')
    const tokenFile = join(cloud.dataDir, 'console.token')
    const argv = ['fleet', 'run', '--count', '2', '--scenario', scenario, '--duration', '2s', '--no-push', '--report', reportFile]
    const ran = await run(
      [...argv, '--broker', cloud.mqttUrl, '--credentials', creds, '--api', api, '--console-token-file', tokenFile],
      new SystemClock(),
    )
    t.equal(ran.code, 1)
    t.match(ran.out, /^fleet "api-lost" \(seed 1\): 2 phone starts of 2/, 'the summary is printed')
    t.match(
      ran.out,
      new RegExp(`\\n  console API   stopped answering before the report: cannot reach the broker at ${api}: .*ECONNREFUSED`),
    )
    t.match(ran.out, /\nresult: FAILED, the console API stopped answering \(\d+ commands? not reconciled, heartbeats stored unknown\)\n$/)
    t.match(
      ran.err,
      new RegExp(
        `\\nerror: the console API stopped answering \\(\\d+ commands? not reconciled, heartbeats stored unknown\\): cannot ` +
          `reach the broker at ${api}: .* \\(see the report\\)\\n$`,
      ),
      'the exit status comes with why',
    )
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as FleetReport
    const c = report.commands
    t.ok(c.unreconciled > 0, `${c.unreconciled} commands submitted before the API went are not reconciled`)
    t.equal(c.answered + c.refused + c.ignoredByScenario + c.lost + c.unreconciled, c.issued, 'every issued command counted once')
    t.equal(report.heartbeats.stored, null, 'what the cloud stored is unknown')
    t.ok(
      report.heartbeats.sent > 0 && report.heartbeats.lost === report.heartbeats.sent - report.heartbeats.acked,
      'heartbeats by their PUBACKs',
    )
    t.match(report.apiError, `cannot reach the broker at ${api}`)
    t.equal(report.ok, false)
  },
)
