/**
 * `fakephone fleet run` as a QA engineer new to it runs it from the README, with the mistakes such a user makes: a broker
 * that is not running, a credentials file of another cloud, a credentials file without --broker, a duration written
 * without its unit. Each is said, in words naming what to do, and none ends in "result: OK, nothing lost" (F1).
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { remoteFleet } from '../fixtures/fleet-remote.js'
import { run } from '../fixtures/io.js'
import { closedPort } from '../fixtures/ports.js'
import { tempDir } from '../fixtures/scope.js'

t.test('F1 a --broker nothing listens on is said at once, naming the URL, --broker and its start-up line: no run, no report', async (t) => {
  const dir = tempDir(t)
  const creds = join(dir, 'fleet.json')
  writeFileSync(creds, JSON.stringify({ version: 1, keysDir: join(dir, 'keys'), devices: [{ id: 'qa-00001', account: 'a', secret: 's' }] }))
  // `every: 30` meant 30 s: a bare number is milliseconds, said before the run.
  const scenario = join(dir, 'morning.yaml')
  writeFileSync(scenario, 'groups:\n  - name: walkers\n    heartbeat: { every: 30, jitter: 0.2 }\n')
  const url = `mqtt://127.0.0.1:${await closedPort()}`
  const argv = ['fleet', 'run', '--count', '1', '--scenario', scenario, '--duration', '500ms']
  const r = await run([...argv, '--broker', url, '--credentials', creds], new SystemClock())
  t.equal(r.code, 1)
  t.match(
    r.err,
    `warning: ${scenario}: groups.0.heartbeat.every: 30 is 30 ms (a bare number is milliseconds): write 30s for seconds, ` +
      `or "30ms" if you mean it\n`,
  )
  t.match(
    r.err,
    `error: cannot reach the broker at ${url} (--broker): connect ECONNREFUSED 127.0.0.1:${url.split(':')[2]}; is the broker ` +
      'running there? --broker takes its MQTT address, mqtt://HOST:PORT with its --mqtt-port (fakephone broker says it at ' +
      'start: `Broker on mqtt://HOST:N and http://HOST:M`)\n',
  )
  t.equal(r.out, '', 'no report of a run that sent nothing')
  // The broker's HTTP address given for its MQTT one, no port, no URL: refused before any connection.
  for (const wrong of ['http://127.0.0.1:1', 'mqtt://127.0.0.1', 'the-broker']) {
    const r = await run(['fleet', 'run', '--count', '1', '--broker', wrong, '--credentials', creds])
    t.equal(r.code, 1)
    const schemes = '(mqtt, mqtts, tcp, tls, ssl, ws or wss, with its port)'
    t.match(r.err, `\nerror: --broker ${wrong}: give the broker's MQTT address, mqtt://HOST:PORT ${schemes}\n`)
  }
})

t.test("F1 phones whose credentials the broker refuses (another cloud's file) fail to start: the run says so and exits 1", async (t) => {
  const here = await remoteFleet(t, 1, 'qa', { name: 'morning', groups: [{ name: 'walkers' }] })
  // Provisioned on another data directory: the broker here knows none of these devices.
  const elsewhere = await remoteFleet(t, 4, 'other', { name: 'morning', groups: [{ name: 'walkers' }] })
  const argv = ['fleet', 'run', '--count', '4', '--scenario', here.scenario, '--duration', '500ms', '--no-push']
  const r = await run([...argv, '--broker', here.cloud.mqttUrl, '--credentials', elsewhere.creds], new SystemClock())
  t.equal(r.code, 1, 'not "OK, nothing lost"')
  t.match(r.out, /phones +4 stopped, 0 outages, 0 switches \(0 refused\), 4 failed to start/)
  t.match(r.out, /heartbeats +0 sent/)
  t.match(r.err, /\nwaiting up to 35 s for 4 phones not connected once yet before the report\n/, 'not "reconnecting"')
  t.match(r.out, /result: FAILED, something was lost or a phone did not start/)
  t.equal(
    r.err
      .split('\n')
      .filter((l) => l.startsWith('error:'))
      .join('\n'),
    'error: the fleet lost messages or phones (see the report)',
  )
  t.ok(
    r.logs.has(
      `4 phones (other-00001, other-00002, other-00003, …) never connected to ${here.cloud.mqttUrl}: counted as failed to ` +
        "start (are their credentials from that broker's data directory?)",
    ),
    'the log names them and what to check',
  )
})

t.test('F1 the flags of a running broker go together: --credentials or --api alone is refused, not ignored', async (t) => {
  const base = ['fleet', 'run', '--count', '1']
  const alone = await run([...base, '--credentials', 'fleet.json'])
  t.equal(alone.code, 1)
  t.equal(
    alone.err,
    "error: --credentials goes with --broker mqtt://HOST:PORT (a running broker's MQTT address): without it the run starts " +
      'a broker of its own and provisions phones of its own\n',
  )
  t.match(
    (await run([...base, '--credentials', 'f.json', '--api', 'http://127.0.0.1:1', '--console-token', 't'])).err,
    /^error: --credentials, --api, --console-token go with --broker/,
  )
  const remote = [...base, '--broker', 'mqtt://127.0.0.1:1', '--credentials', 'f.json']
  t.equal(
    (await run([...remote, '--api', 'http://127.0.0.1:1'])).err,
    "error: --api needs the broker's console token: --console-token-file DIR/console.token (the broker's --data DIR)\n",
  )
  t.equal(
    (await run([...remote, '--console-token-file', 'console.token'])).err,
    "error: the console token goes with --api http://HOST:PORT, the broker's HTTP address\n",
  )
})

t.test('a --metrics-port another program holds is said in a line with what to give, not a stack trace under fatal:', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  const port = (taken.address() as AddressInfo).port
  const r = await run([
    'fleet',
    'run',
    '--count',
    '1',
    '--no-push',
    '--duration',
    '500ms',
    '--workers',
    '1',
    '--metrics-port',
    String(port),
  ])
  t.equal(r.code, 1)
  t.match(
    r.err,
    `error: --metrics-port ${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}; ` +
      'give another port, or 0 for one the OS picks\n',
  )
  t.notMatch(r.err, /fatal|    at /, 'no stack')
  t.equal(r.out, '', 'no report of a run that never started')
})
