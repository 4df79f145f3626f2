/** `fakephone fleet run` from the command line, in-process (issue 12): its own broker, a running one, errors. */
import t from 'tap'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { main } from '../../cli/main.js'
import { startCloud } from '../fixtures/cloud.js'
import { remoteFleet } from '../fixtures/fleet-remote.js'
import { run, testIo } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

t.test('fleet run with its own broker prints the report; --json and --report give it as JSON', async (t) => {
  const dir = tempDir(t)
  const scenario = join(dir, 's.yaml')
  writeFileSync(scenario, 'name: cli\ngroups:\n  - name: g\n    heartbeat: { every: 500ms }\n')
  const text = await run(
    ['fleet', 'run', '--count', '3', '--scenario', scenario, '--duration', '2s', '--no-push', '--phones-at-once', '1'],
    new SystemClock(),
  )
  t.equal(text.code, 0, text.err)
  t.match(text.out, /fleet "cli" \(seed 1\): 3 of 3 phones started/)
  t.match(text.out, /result: OK, nothing lost/)
  const none = await run(['fleet', 'run', '--count', '1', '--phones-at-once', '0'])
  t.equal(none.code, 1)
  t.match(none.err, /--phones-at-once/)
  const report = join(dir, 'r.json')
  const json = await run(
    ['fleet', 'run', '--count', '2', '--duration', '1s', '--json', '--report', report, '--work', join(dir, 'w')],
    new SystemClock(),
  )
  t.equal(json.code, 0, json.err)
  const parsed = JSON.parse(json.out) as { ok: boolean; phones: { target: number } }
  t.same([parsed.ok, parsed.phones.target], [true, 2])
  t.same(JSON.parse(readFileSync(report, 'utf8')), parsed)
  const bad = await run(['fleet', 'run', '--count', '1', '--scenario', join(dir, 'none.yaml')])
  t.equal(bad.code, 1)
  t.match(bad.err, /none\.yaml: 1 error\n {2}cannot read it/)
})

t.test('off a terminal, a run that waits for what is still due before its report says what and how long at most, once', async (t) => {
  const dir = tempDir(t)
  const scenario = join(dir, 's.json')
  // Without the push channel no notification can be shown: the report waits for them its 10 s, then counts them lost.
  writeFileSync(scenario, JSON.stringify({ name: 'due', groups: [{ name: 'g' }], console: { notifications: { every: 300 } } }))
  const argv = ['fleet', 'run', '--count', '1', '--scenario', scenario, '--duration', '1s', '--no-push']
  const [plain, json] = await Promise.all([run(argv, new SystemClock()), run([...argv, '--json'], new SystemClock())])
  t.equal(plain.code, 1, 'the notifications are lost')
  t.match(plain.out, /notifications +\d+ issued, 0 shown/)
  const lines = plain.err.split('\n').filter((l) => l.startsWith('waiting'))
  // Its notifications, most likely: a PUBACK or reconnect still due at the end would come first.
  t.match(lines, [/^waiting up to ([1-2]\d|3[0-5]) s for .+ before the report$/])
  t.equal(lines.length, 1, 'one line')
  t.equal(json.code, 1)
  t.notMatch(json.err, /waiting/, 'quiet under --json')
})

t.test('fleet run warns when the phones it is asked for would not fit the open-file room of the broker it starts', async (t) => {
  const args = ['fleet', 'run', '--count', '3', '--duration', '1s', '--no-push', '--phones-at-once', '3']
  const small = testIo(new SystemClock())
  // 3 phones × 1 socket, both ends in this one process: 6 descriptors for a room of 5.
  small.io.connectionRoom = () => ({ limit: { soft: 100, hard: 100 }, open: 31, connections: 5 })
  t.equal(await main(args, small.io), 0, small.err())
  t.match(
    small.err(),
    'warning: the broker this run starts holds 3 sockets (3 phones × 1), and as many again for the phones, in the same ' +
      'process, but the open-file limit 100 leaves room for about 5: the phones past it are refused unlogged and wait until ' +
      'others let go; raise the hard limit (LimitNOFILE=',
  )
  const roomy = testIo(new SystemClock())
  roomy.io.connectionRoom = () => ({ limit: { soft: 100, hard: 100 }, open: 30, connections: 6 })
  t.equal(await main(args, roomy.io), 0, roomy.err())
  t.notMatch(roomy.err(), /warning/, 'room for both ends of every socket: no warning')
})

t.test('fleet run against a running broker with provisioned credentials; the live line on a terminal', async (t) => {
  const cloud = await startCloud(t, { rateLimit: { burst: 1000, perSecond: 1000 } }, new SystemClock())
  const dir = tempDir(t)
  const creds = join(dir, 'fleet.json')
  const keys = join(dir, 'keys')
  t.equal(
    (await run(['fleet', 'provision', '--count', '3', '--account-prefix', 'rm', '--data', cloud.dataDir, '--keys', keys, '--out', creds]))
      .code,
    0,
  )
  const scenario = join(dir, 's.json')
  writeFileSync(
    scenario,
    JSON.stringify({
      name: 'remote',
      groups: [{ name: 'g', heartbeat: { every: '300ms' } }],
      console: { notifications: { every: '400ms' }, commands: { every: '700ms' } },
    }),
  )
  const live = testIo(new SystemClock())
  live.io.tty = true
  const argv = [
    'fleet',
    'run',
    '--count',
    '3',
    '--scenario',
    scenario,
    '--duration',
    '2500ms',
    '--broker',
    cloud.mqttUrl,
    '--credentials',
    creds,
  ]
  // The token from its file, as the README runs it: on the command line `ps` would show it to every user.
  const tokenFile = join(cloud.dataDir, 'console.token')
  const code = await main([...argv, '--api', cloud.apiUrl, '--console-token-file', tokenFile], live.io)
  t.equal(code, 0, live.err())
  t.match(live.out(), /\r\x1b\[K\d+ s: \d\/3 connected/)
  // The live line has no newline of its own: it is cleared before the report, which starts on a line of its own.
  t.match(live.out(), /start failures\r\x1b\[Kfleet "remote" \(seed 1\)/)
  const url = /metrics: (\S+)/.exec(live.err())?.[1] as string
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
  await t.rejects(fetch(url), 'the metrics endpoint closes with the run')
  t.match(live.out(), /notifications \d+ issued, \d+ shown, 0 lost/)
  t.match(live.out(), /resources .*MB(?! -- broker included)/)

  const noApi = await run([...argv, '--no-push'], new SystemClock())
  t.equal(noApi.code, 0, noApi.err)
  t.match(noApi.out, /heartbeats +\d+ sent, \d+ acked, n\/a stored/)
  t.match(
    noApi.err,
    /warning: the scenario's console \(commands, notifications\) is skipped: with --broker it needs --api and --console-token-file\n/,
  )
  t.notMatch(live.err(), /is skipped/, 'with --api and --console-token-file the console runs')
  const remote = [...argv, '--api', cloud.apiUrl]
  const missing = await run([...remote, '--console-token-file', join(dir, 'nowhere.token')])
  t.equal(missing.code, 1)
  // The console's own reader (cli/console-token-file), with the fleet's flag and hint.
  t.equal(
    missing.err,
    `error: --console-token-file: cannot read the console token ${join(dir, 'nowhere.token')} (ENOENT): give the broker's ` +
      `DIR/console.token\n`,
  )
  const notAFile = await run([...remote, '--console-token-file', dir])
  t.equal(notAFile.err, `error: --console-token-file: cannot read the console token: ${dir} is a directory, not a regular file\n`)
  const empty = join(dir, 'empty.token')
  writeFileSync(empty, '\n')
  t.equal(
    (await run([...remote, '--console-token-file', empty])).err,
    `error: --console-token-file: ${empty} is empty: give the broker's DIR/console.token\n`,
  )
  const both = await run([...remote, '--console-token', cloud.consoleToken, '--console-token-file', tokenFile])
  t.equal(both.code, 1)
  t.match(both.err, /cannot be used with option '--console-token/)

  // A wrong --api or token is said before any phone starts, not after the run with no report.
  const token = ['--console-token-file', tokenFile]
  const mqttPortAsApi = await run([...argv, '--api', `http://127.0.0.1:${cloud.mqttPort}`, ...token], new SystemClock())
  t.equal(mqttPortAsApi.code, 1)
  t.match(
    mqttPortAsApi.err,
    `error: cannot reach the broker's HTTP API at http://127.0.0.1:${cloud.mqttPort} (--api): `,
    'it names the address and the option it came from, not "the broker" the phones reached',
  )
  t.match(
    mqttPortAsApi.err,
    ': it took the connection but gave no HTTP answer; if the broker is running, this is probably its MQTT port: give the HTTP ' +
      'port the broker printed at its start',
    'the MQTT port is said to be probably the MQTT port, not "is the broker running there?"',
  )
  t.notMatch(mqttPortAsApi.out, /fleet "remote"/, 'no run, no report')
  const wrongToken = join(dir, 'wrong.token')
  writeFileSync(wrongToken, 'x'.repeat(43))
  t.match(
    (await run([...remote, '--console-token-file', wrongToken])).err,
    `error: --api ${cloud.apiUrl}: the broker there refuses the console token: give --console-token-file that broker's DIR/console.token\n`,
  )
  // Some other web server on that port.
  const other = createServer((_, res) => res.writeHead(404).end('Not Found')).listen(0, '127.0.0.1')
  await once(other, 'listening')
  t.teardown(() => other.close())
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
  const notApi = await run([...argv, '--api', otherUrl, ...token])
  t.match(
    notApi.err,
    `error: --api ${otherUrl}: ${otherUrl} did not answer like a fakephone broker (HTTP 404, no content type: "Not Found"): give ` +
      `the broker's HTTP address`,
  )

  const tooMany = await run(['fleet', 'run', '--count', '4', '--broker', cloud.mqttUrl, '--credentials', creds])
  t.equal(tooMany.code, 1)
  t.match(tooMany.err, /--count 4, but the credentials file has only 3 devices/)
  const noCreds = await run(['fleet', 'run', '--count', '1', '--broker', cloud.mqttUrl])
  t.match(noCreds.err, /--broker needs --credentials/)
})

t.test("F2: the same fleet run twice against one broker: the second run's commands are answered, not refused", async (t) => {
  const { cloud, creds, scenario } = await remoteFleet(t, 2, 'rr', {
    name: 'again',
    groups: [{ name: 'g', heartbeat: { every: 1000 }, commands: { answer: { succeed: 1, fail: 0, ignore: 0 } } }],
    console: { commands: { every: 400 } },
  })
  const argv = ['fleet', 'run', '--count', '2', '--scenario', scenario, '--seed', '42', '--duration', '2500ms', '--json']
  const remote = ['--broker', cloud.mqttUrl, '--credentials', creds, '--api', cloud.apiUrl, '--console-token', cloud.consoleToken]
  type Commands = { issued: number; refused: number; answered: number; lost: number }
  const commandsOf = async (): Promise<Commands> => {
    const r = await run([...argv, ...remote], new SystemClock())
    t.equal(r.code, 0, r.err)
    // Say what it printed when it is not one JSON report (once it was the version: a token that began -V, cli/main.ts).
    try {
      return (JSON.parse(r.out) as { commands: Commands }).commands
    } catch (err) {
      throw new Error(`fleet run --json printed what is not one JSON report: ${JSON.stringify(r.out.slice(0, 400))}`, { cause: err })
    }
  }
  const first = await commandsOf()
  const second = await commandsOf()
  t.ok(first.issued > 0, 'the scenario sends commands')
  t.equal(second.issued, first.issued, 'the same seed plans the same commands')
  t.same(
    [second.refused, second.answered, second.lost],
    [0, second.issued, 0],
    'none refused as if Find Device were off: the cloud has not seen their ids',
  )
})

t.test('S1 B1: fleet run with its own broker syncs a seeded group and reports its transfers; merged, they add up', async (t) => {
  const dir = tempDir(t)
  const scenario = join(dir, 's.yaml')
  writeFileSync(scenario, 'name: data\ngroups:\n  - name: camera\n    data: { photos: 1, notes: 2 }\n')
  const report = join(dir, 'r.json')
  const ran = await run(
    ['fleet', 'run', '--count', '2', '--scenario', scenario, '--duration', '1s', '--no-push', '--report', report],
    new SystemClock(),
  )
  t.equal(ran.code, 0, ran.err)
  t.match(ran.out, /transfers {5}6 items seeded on 2 phones, 6 uploaded, 6 stored, 0 failed attempts, 0 pending at the end/)
  const merged = await run(['fleet', 'report', 'merge', report, '--out', join(dir, 'm.json'), '--json'])
  t.match(JSON.parse(merged.out), { transfers: { phones: 2, seeded: 6, uploaded: 6, stored: 6, lost: 0 }, ok: true })
})

t.test('S1: a syncing scenario with --broker but no --api, or with the OwnTracks profile, is refused before the run', async (t) => {
  const { cloud, creds, scenario } = await remoteFleet(t, 1, 'nosync', {
    groups: [{ name: 'plain' }, { name: 'camera', sync: { photos: false } }],
  })
  const argv = ['fleet', 'run', '--count', '1', '--scenario', scenario, '--duration', '1s', '--broker', cloud.mqttUrl]
  const noApi = await run([...argv, '--credentials', creds])
  t.equal(noApi.code, 1)
  t.equal(
    noApi.err,
    `error: the phones of groups.1 (camera) in ${scenario} sync (data, sync, a sync or backup switch): with --broker it needs ` +
      "--api http://HOST:PORT, the broker's HTTP side its phones upload to\n",
  )
  t.equal(noApi.out, '', 'no run')
  const owntracks = await run([...argv, '--profile', 'owntracks'])
  t.equal(owntracks.code, 1)
  t.match(
    owntracks.err,
    /groups\.1 \(camera\) in .* sync \(data, sync, a sync or backup switch\): OwnTracks phones \(--profile owntracks\) have no sync\n$/,
  )
})
