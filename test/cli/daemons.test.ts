/** `fakephone broker`, `agent`, `phone`, `console` and `demo`, run in-process against real sockets. */
import t from 'tap'
import { once } from 'node:events'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { main } from '../../cli/main.js'
import { ManualClock, SystemClock, utcText } from '../../common/clock.js'
import { OwnerKeys } from '../../common/signing.js'
import { deviceOnDisk, addDevice, connectConsole, nextMessage, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { closedPort } from '../fixtures/ports.js'
import { run, testIo } from '../fixtures/io.js'
import { startCliAgent } from '../fixtures/cli-agent.js'
import { tempDir } from '../fixtures/scope.js'

t.test('broker runs until aborted and explains a port that is in use', async (t) => {
  const data = tempDir(t)
  const first = testIo()
  const running = main(['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0', '--log-level', 'info'], first.io)
  const listening = await first.logs.waitFor((l) => l.msg === 'broker listening')
  const busy = await run(['broker', '--data', tempDir(t), '--mqtt-port', String(listening.mqttPort), '--http-port', '0'])
  t.equal(busy.code, 1)
  t.match(
    busy.err,
    new RegExp(`MQTT port 127\\.0\\.0\\.1:${String(listening.mqttPort)} is in use \\(EADDRINUSE\\)`),
    'the port and address that are taken are named',
  )
  first.abort()
  t.equal(await running, 0, 'a stopped broker exits 0')
  t.equal(
    first.err(),
    `Broker on mqtt://127.0.0.1:${String(listening.mqttPort)} and http://127.0.0.1:${String(listening.httpPort)}; its console: ` +
      `fakephone console --api http://127.0.0.1:${String(listening.httpPort)} --data ${data} …\n`,
    'ports the OS chose are said in one line to copy',
  )
  const notADir = join(tempDir(t), 'file')
  writeFileSync(notADir, '')
  const unusable = await run(['broker', '--data', notADir, '--mqtt-port', '0', '--http-port', '0'])
  t.equal(unusable.code, 1)
  t.equal(
    unusable.err,
    `error: cannot start the broker: ${notADir} is a file, not a folder: give a folder, or move the file away\n`,
    'a data directory that cannot be used is named, and why',
  )
  // /proc refuses a new folder (ENOENT, to root too), where Node's recursive mkdir tried it again for ever.
  const proc = await run(['broker', '--data', '/proc/self/fakephone-test', '--mqtt-port', '0', '--http-port', '0'])
  t.equal(proc.code, 1)
  t.equal(proc.err, "error: cannot start the broker: ENOENT: no such file or directory, mkdir '/proc/self/fakephone-test'\n")
  // A console token it cannot use is a file of its config's data directory to fix: exit 78 (EX_CONFIG), not restarted.
  const emptied = tempDir(t)
  writeFileSync(join(emptied, 'console.token'), '\n', { mode: 0o600 })
  t.match(await run(['broker', '--data', emptied, '--mqtt-port', '0', '--http-port', '0']), {
    code: 78,
    err:
      `error: cannot start the broker: the console token ${join(emptied, 'console.token')} is empty: ` +
      'delete it and the broker makes a new one on its next start\n',
  })
  // A damaged database (or another file in its place) is restored from a backup, not mended by a restart: exit 78.
  const damaged = tempDir(t)
  writeFileSync(join(damaged, 'cloud.sqlite'), 'garbage{')
  t.match(await run(['broker', '--data', damaged, '--mqtt-port', '0', '--http-port', '0']), {
    code: 78,
    err: /^error: cannot start the broker: the database .*cloud\.sqlite cannot be used: it is not a database .*restore it from a backup/,
  })
  t.ok(first.logs.has('broker stopped'))
})

t.test('agent and phone: a fake phone is started, controlled by its user and stopped', async (t) => {
  const cloud = await startCloud(t)
  const { secretFile, phoneDir } = await deviceOnDisk(t, cloud)
  const watcher = await connectConsole(t, cloud)
  await watcher.subscribeAsync('fp/v1/phone-a/presence')
  const online = nextMessage(watcher)
  const { io: agentIo, running } = await startCliAgent(
    t,
    cloud,
    { secretFile, phoneDir },
    { push: false, args: ['--interval', '10s', '--jitter', '0'] },
  )
  t.ok(
    agentIo.logs.has('no owner key (--owner-key, or "ownerKey" in its --config file): this phone will refuse every remote command'),
    'a phone that obeys no one says so, and where a service sets the key',
  )
  t.match(JSON.parse((await online)[1].toString()), { state: 'online' }, 'the phone said it is online')
  // F1: the first fix goes out as soon as the phone is connected, without the clock moving on.
  while (!cloud.broker.store.device('phone-a')?.last) await once(cloud.broker.store, 'stored')
  t.equal(cloud.broker.store.device('phone-a')?.last?.lat, 55.95, 'the fixed point arrived')

  const status = await run(['phone', '--data', phoneDir, 'status'])
  t.match(
    status.out,
    /device\s+phone-a\ndata channel\s+connected\ncloud service on\nFind Device\s+on\nnetwork\s+wifi\nheartbeats\s+1 sent this run/,
  )
  t.match((await run(['phone', '--data', phoneDir, 'find-device', 'off'])).out, /Find Device\s+off/)
  t.match(JSON.parse((await run(['phone', '--data', phoneDir, '--json', 'find-device', 'on'])).out), {
    findDevice: true,
    dataChannel: 'connected',
  })
  t.match((await run(['phone', '--data', phoneDir, 'cloud-service', 'off'])).out, /cloud service off/)
  t.match((await run(['phone', '--data', phoneDir, 'network', 'mobile'])).out, /network\s+mobile/)
  t.match((await run(['phone', '--data', tempDir(t), 'status'])).err, /no agent is running with data directory/)
  // A second phone on the same data directory would take this one's session over and over and share its journal.
  const second = await run(['agent', '--id', 'phone-a', '--secret-file', secretFile, '--broker', cloud.mqttUrl, '--data', phoneDir])
  t.equal(second.code, 1)
  t.match(
    second.err,
    new RegExp(`(^|\\n)error: the data directory ${phoneDir} is in use by another agent: process ${process.pid}, running since .*\\n$`),
  )
  t.match((await run(['phone', '--data', phoneDir, 'status'])).out, /device\s+phone-a\n/, 'the first phone runs on')

  agentIo.abort()
  t.equal(await running, 0)
  t.notOk(existsSync(join(phoneDir, 'agent.lock')), 'a stopped agent lets go of its data directory')
})

t.test('agent start-up errors name the problem', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'secret'), 's', { mode: 0o600 })
  writeFileSync(join(dir, 'bad.gpx'), '<gpx></gpx>')
  const base = ['agent', '--secret-file', join(dir, 'secret'), '--data', dir]
  t.match((await run([...base, '--id', 'Bad Id'])).err, /--id: device id: 1-63 of a-z/)
  // A file the config names that the agent cannot use exits 78 (EX_CONFIG), which systemd does not start again every 5 s.
  const config = { code: 78 }
  t.match(await run(['agent', '--id', 'a', '--secret-file', join(dir, 'none')]), {
    ...config,
    err: /^error: cannot read the secret file .*none: ENOENT \(no such file\): `fakephone device add ID --secret-out FILE` writes/,
  })
  writeFileSync(join(dir, 'empty'), '\n', { mode: 0o600 })
  t.match(await run(['agent', '--id', 'a', '--secret-file', join(dir, 'empty')]), {
    ...config,
    err: /^error: the secret file .*empty is empty: put the device's secret in it/,
  })
  t.match(await run(['agent', '--id', 'a', '--data', dir]), { ...config, err: /^error: no device secret: set secretFile/ })
  t.match(await run([...base, '--id', 'a', '--gpx', join(dir, 'bad.gpx')]), { ...config, err: /at least two <trkpt>/ })
  t.match(
    await run([...base, '--id', 'a', '--gpx', dir]),
    { ...config, err: /^error: \/.*: EISDIR: illegal operation on a directory, read\n$/ },
    'a folder as --gpx is named',
  )
  const proc = await run([...base.slice(0, -1), '/proc/self/fakephone-test', '--id', 'a', '--broker', 'mqtt://127.0.0.1:1'])
  t.equal(proc.code, 1)
  t.match(
    proc.err,
    /(^|\n)error: ENOENT: no such file or directory, mkdir '\/proc\/self\/fakephone-test'\n$/,
    'a data folder /proc refuses: one line',
  )
  t.match(await run([...base, '--id', 'a', '--owner-key', join(dir, 'no.pub')]), {
    ...config,
    err: /cannot read the owner key .*no\.pub: no such file \(`fakephone device add/,
  })
  writeFileSync(join(dir, 'garbage.pub'), 'not a key')
  t.match(await run([...base, '--id', 'a', '--owner-key', join(dir, 'garbage.pub')]), {
    ...config,
    err: /^error: cannot read the owner key .*garbage\.pub: .*; give it the owner's public key \(ACCOUNT\.pub of `fakephone device add`\)/,
  })
  // A link to /dev/zero or a FIFO as --owner-key: one line naming it, not an agent that never starts.
  symlinkSync('/dev/zero', join(dir, 'zero.pub'))
  execFileSync('mkfifo', [join(dir, 'fifo.pub')])
  for (const [name, kind] of [
    ['zero.pub', 'a character device'],
    ['fifo.pub', 'a FIFO'],
  ] as const)
    t.match(await run([...base, '--id', 'a', '--owner-key', join(dir, name)]), {
      ...config,
      err: `error: cannot read the owner key: ${join(dir, name)} is ${kind}, not a regular file\n`,
    })
  const NEXT_STEP = 'restore it from a backup, or move it away to start without what it held'
  // A state file damaged on disk (cut short, emptied, garbage): one line naming it and what to do, not a stack trace.
  const damaged = async (file: string, text: string, where: string): Promise<void> => {
    const data = tempDir(t)
    writeFileSync(join(data, file), text)
    const started = await run([...base.slice(0, -1), data, '--id', 'a', '--broker', 'mqtt://127.0.0.1:1'])
    t.equal(started.code, 1)
    t.equal(started.err, `error: ${join(data, where)}: payload is not valid JSON: the file is damaged; ${NEXT_STEP}\n`, `${file} damaged`)
  }
  await damaged('settings.json', '', 'settings.json')
  await damaged('settings.json', '{"cloudService": tr', 'settings.json')
  await damaged('commands.jsonl', '{"lastSeq":1}\n\u0000\u0017garbage\n{"lastSeq":2}\n', 'commands.jsonl line 2')
})

t.test('F2 agent: the owner private key is refused as --owner-key, in the config file and in the environment', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'secret'), 's', { mode: 0o600 })
  const keys = new OwnerKeys(join(dir, 'keys'))
  keys.ensureSigningKey('me')
  const pub = keys.ownerKeyFile('me')
  const priv = join(dir, 'keys', 'me.key')
  const refusal = `${priv} is the owner's PRIVATE key, which must stay with the owner's console: give the public key, ${pub}`
  const base = ['agent', '--id', 'a', '--secret-file', join(dir, 'secret'), '--data', dir]
  const flag = await run([...base, '--owner-key', priv])
  t.equal(flag.code, 78, "EX_CONFIG: the daemon's command line is its unit's ExecStart")
  t.equal(flag.err, `error: option '--owner-key <file>' argument '${priv}' is invalid. ${refusal}\n`, 'one error line naming the .pub')
  const config = join(dir, 'agent.json')
  writeFileSync(config, JSON.stringify({ ownerKey: priv }))
  const file = await run([...base, '--config', config])
  t.equal(file.code, 78, 'EX_CONFIG: a config that cannot be used, which systemd does not restart in a loop')
  t.equal(file.err, `error: invalid agent config (1 problem):\n  ${config}: ownerKey: ${refusal}\n`, 'the config key is named')
  const checked = await run(['config', 'check', config])
  t.equal(checked.code, 1, '`config check` refuses it too')
  const env = await run(base, undefined, { FAKEPHONE_AGENT_OWNER_KEY: priv })
  t.match(env.err, `FAKEPHONE_AGENT_OWNER_KEY: ${refusal}`)
  const renamed = join(dir, 'owner')
  writeFileSync(renamed, readFileSync(priv))
  t.match(
    (await run([...base, '--owner-key', renamed])).err,
    /owner is the owner's PRIVATE key.*give the public key, the \.pub file beside it/,
  )
})

t.test('console devices, history and watch show what the cloud knows, in words and in JSON', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  await addDevice(cloud, 'phone-b')
  const { connectDevice, heartbeat } = await import('../fixtures/cloud.js')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 2)
  const now = cloud.clock.now()
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(1, { at: now - 120_000, charging: true })), { qos: 1 })
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(2, { at: now - 60_000, battery: 79.6 })), { qos: 1 })
  await stored
  const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

  const devices = await run([...api, 'devices'])
  t.match(devices.out, /DEVICE\s+ACCOUNT\s+STATE\s+LOCATION\s+AGE\s+BATTERY\s+NETWORK/)
  t.match(devices.out, /phone-a\s+alice\s+online\s+55\.95000,-3\.19000\s+1m 0s\s+80%\s+wifi/)
  t.match(devices.out, /phone-b\s+alice\s+offline\s+no fix yet\s+-\s+-\s+-/)
  const json = JSON.parse((await run([...api, '--json', 'devices'])).out)
  t.equal(json.devices[0].last.seq, 2)

  const history = await run([...api, 'history', 'phone-a', '--limit', '5'])
  t.match(history.out, /SEQ\s+TIME \(UTC\)\s+AGE\s+POSITION/)
  t.match(history.out, /\n2\s+2025-12-31 23:59:00\s+1m 0s\s+55\.95000,-3\.19000\s+8 m\s+1\.4 m\/s\s+80%\s+wifi\n1\s/)
  t.match(
    JSON.parse((await run([...api, '--json', 'history', 'phone-a'])).out),
    { now: Number, device: 'phone-a', history: { length: 2 } },
    '--json is an object',
  )
  t.equal((await run([...api, 'history', 'phone-b'])).out, 'No locations recorded for phone-b.\n')
  t.match((await run([...api, 'history', 'nobody'])).err, /device "nobody" not found/)

  // This machine's clock a day behind the cloud's, as under simulated time after `clock advance 24h`.
  const ui = testIo(new ManualClock(cloud.clock.now() - 86_400_000))
  const watching = main([...api, 'watch', '--every', '20ms'], ui.io)
  await ui.waitForOut(/fakephone console[\s\S]*phone-a[\s\S]*Try, in another terminal/)
  // Not a terminal: a table is printed again when what the cloud reports changes, not every 20 ms.
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(3, { at: now - 30_000, battery: 50 })), { qos: 1 })
  await ui.waitForOut(/Try, in another terminal[\s\S]*fakephone console[\s\S]*phone-a\s+alice\s+online\s+\S+\s+30s\s+50%/)
  ui.abort()
  t.equal(await watching, 0, 'watch redraws until stopped')
  t.equal(ui.out().split('Try, in another terminal').length, 2, 'the guide is printed once, not with every table')
  t.match(ui.out(), `fakephone console -- ${utcText(now)} (Ctrl-C to stop)`, "headed by the cloud's time, as its ages are")
  t.match(
    ui.out(),
    /\nConsole token: .*console\.token\nTry, in another terminal: fakephone console history ID, fakephone console locate ID\n/,
    'watch says where its token is and what to try',
  )
  t.notMatch(ui.out(), /\x1b/, 'no terminal codes when stdout is not a terminal')
  t.match((await run([...api, '--json', 'watch'])).err, /no --json form/)
  await phone.endAsync()
})

t.test("F1: a fleet phone's history keeps SEQ narrow, counted from the lowest seq shown; --json has each seq whole", async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'fleet-00001')
  const { connectDevice, heartbeat } = await import('../fixtures/cloud.js')
  const phone = await connectDevice(t, cloud, 'fleet-00001', secret)
  // A fleet run's phone numbers its heartbeats from its run's start time in ms (docs/CONTRACT.md); one went missing.
  const first = 1_796_628_437_912
  const seqs = [first, first + 1, first + 3]
  const stored = storedHeartbeats(cloud, seqs.length)
  const now = cloud.clock.now()
  for (const [i, seq] of seqs.entries())
    await phone.publishAsync('fp/v1/fleet-00001/heartbeat', JSON.stringify(heartbeat(seq, { at: now - 3000 + i * 1000 })), { qos: 1 })
  await stored
  const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

  const history = (await run([...api, 'history', 'fleet-00001'])).out
  t.equal(
    history.split('\n')[0],
    `SEQ +N is seq ${first} + N (a phone's seqs start at the time in ms it started without settings; --json has them whole)`,
    'the line above the table says what the seqs count from',
  )
  t.match(
    history,
    /\nSEQ  TIME \(UTC\) +AGE +POSITION +ACCURACY +SPEED +BATTERY +NETWORK\n\+3   2025-/,
    'the SEQ column is as wide as its header',
  )
  t.same(
    history
      .split('\n')
      .slice(2, -1)
      .map((l) => l.split(/\s+/)[0]),
    ['+3', '+1', '+0'],
    'newest first, the missing heartbeat a jump',
  )
  const json = JSON.parse((await run([...api, '--json', 'history', 'fleet-00001'])).out) as { history: { seq: number }[] }
  t.same(
    json.history.map((h) => h.seq),
    [...seqs].reverse(),
    '--json: each seq as stored',
  )
})

t.test('console errors: no token, a wrong token, no broker', async (t) => {
  const cloud = await startCloud(t)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'wrong.token'), 'nope\n')
  // A broker started with `--data cloud` and a console given none (./data), or another: said how to give the right one.
  t.equal(
    (await run(['console', '--data', dir, 'devices'])).err,
    `error: cannot read the console token ${join(dir, 'console.token')} (ENOENT); the broker writes it in its data directory ` +
      "on first start: give that broker's data directory with --data DIR, or the token's file with --token-file FILE\n",
  )
  t.equal(
    (await run(['console', '--api', cloud.apiUrl, '--token-file', join(dir, 'wrong.token'), 'devices'])).err,
    `error: missing or wrong console token: ${cloud.apiUrl} did not take the token in ${join(dir, 'wrong.token')}; give ` +
      "that broker's data directory with --data DIR (it holds console.token), or the token's file with --token-file FILE\n",
    'a refused token says which file it came from and how to give the right one',
  )
  writeFileSync(join(dir, 'console.token'), 'another-brokers-token\n')
  t.match(
    (await run(['console', '--api', cloud.apiUrl, '--data', dir, 'devices'])).err,
    `did not take the token in ${join(dir, 'console.token')}; give that broker's data directory with --data DIR`,
    'from --data: the token of that data directory is named',
  )
  const closedUrl = `http://127.0.0.1:${await closedPort()}`
  const closed = await run(['console', '--api', closedUrl, '--token-file', join(dir, 'wrong.token'), 'devices'])
  t.match(closed.err, `cannot reach the broker's HTTP API at ${closedUrl} (--api): `, 'it says which address, given by which option')
  t.match(closed.err, /; is the broker running\? If it listens elsewhere, give its HTTP address with --api URL\n$/, 'and what to do')
  // The MQTT port given as --api: the broker runs, so "is the broker running?" sent the user the wrong way.
  const mqttPort = cloud.mqttUrl.replace('mqtt://', 'http://')
  t.equal(
    (await run(['console', '--api', mqttPort, '--data', cloud.dataDir, 'devices'])).err,
    `error: cannot reach the broker's HTTP API at ${mqttPort} (--api): Error: socket hang up: it took the connection but gave ` +
      'no HTTP answer; if the broker is running, this is probably its MQTT port: give the HTTP port the broker printed at ' +
      'its start (`Broker on mqtt://HOST:N and http://HOST:M`)\n',
    'the MQTT port given as --api is said to be probably the MQTT port',
  )
  const stranger = createServer((_req, res) => res.end('<html>hello</html>'))
  await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve))
  t.teardown(() => stranger.close())
  const strangerUrl = `http://127.0.0.1:${(stranger.address() as AddressInfo).port}`
  t.match(
    (await run(['console', '--api', strangerUrl, '--token-file', join(dir, 'wrong.token'), 'devices'])).err,
    /did not answer like a fakephone broker \(HTTP 200, no content type: "<html>hello<\/html>"\)\n$/,
  )
  const ui = testIo()
  const watching = main(['console', '--api', closedUrl, '--token-file', join(dir, 'wrong.token'), 'watch'], ui.io)
  await ui.waitForOut("cannot reach the broker's HTTP API")
  ui.abort()
  t.equal(await watching, 0, 'watch keeps going when the broker is away, saying so')
  // A refusal quoting a name from others is shown on the live view as on any other command's error line.
  const refusing = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'device "x\x9b2J\x1b]0;pwned\x07" not found', code: 'NOT_FOUND' }))
  })
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => refusing.close())
  const refusingUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`
  const shown = testIo()
  const refused = main(['console', '--api', refusingUrl, '--token-file', join(dir, 'wrong.token'), 'watch'], shown.io)
  await shown.waitForOut('not found')
  shown.abort()
  t.equal(await refused, 0)
  t.match(shown.out(), /\ndevice "x\\x9B2J\\x1B\]0;pwned\\x07" not found\n/)
  t.notMatch(shown.out(), /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, 'no control character reaches the terminal')
})

t.test('demo: broker, a registered phone walking its route and the live console, in one command', async (t) => {
  const data = tempDir(t)
  const keys = tempDir(t)
  for (const round of [
    'first start registers the demo phone',
    'a second start reuses it',
    'a lost secret file re-registers it',
    'lost owner keys re-register it',
  ]) {
    if (round.startsWith('a lost')) rmSync(join(data, 'demo-phone.secret'))
    if (round.startsWith('lost owner')) rmSync(join(keys, 'devices'), { recursive: true })
    const ui = testIo(new SystemClock())
    ui.io.tty = true
    // The last round runs the cloud on real time; the others on simulated time (the default).
    const realTime = round.startsWith('lost owner') ? ['--real-time'] : []
    const running = main(
      ['demo', '--data', data, '--keys', keys, '--mqtt-port', '0', '--http-port', '0', '--interval', '100ms', ...realTime],
      ui.io,
    )
    const screen = await ui.waitForOut(/demo-phone\s+demo\s+online\s+55\.\d+,-3\.\d+/)
    t.match(screen, /Broker on mqtt:\/\/127\.0\.0\.1:\d+ and http:\/\/127\.0\.0\.1:\d+; logs in .*fakephone\.log/, round)
    t.match(
      screen.slice(screen.lastIndexOf('\x1b[2J')),
      /Broker on mqtt:\/\/127\.0\.0\.1:\d+ and http:\/\/127\.0\.0\.1:\d+; logs in .*fakephone\.log\x1b\[K\n/,
      'the live screen, which clears the line printed before it, keeps saying the ports (--mqtt-port 0 is known only there)',
    )
    t.ok(
      screen.includes(
        `Device secret: ${join(data, 'demo-phone.secret')}   console token: ${join(data, 'console.token')}   owner keys: ${keys}\x1b[K\n`,
      ),
      'the first screen says where the secret, token and owner keys are',
    )
    t.match(
      screen,
      /Try, in another terminal:\x1b\[K\n  fakephone console --api http:\/\/127\.0\.0\.1:\d+ --data .* locate demo-phone --keys /,
      'and what to try next',
    )
    t.match(screen, /Web console \(map, commands, cloud data, clock\): open http:\/\/127\.0\.0\.1:\d+\/login\?token=[\w-]+ once/)
    if (round.startsWith('first')) {
      // Once the link is used the screen says so, and how to get another, instead of a dead link.
      const [, link, page] =
        /Web console \(map, commands, cloud data, clock\): open ((http:\/\/127\.0\.0\.1:\d+\/)login\S+) once/.exec(screen) ?? []
      t.equal((await fetch(link as string, { redirect: 'manual' })).status, 303)
      const used = await ui.waitForOut('The sign-in link was used')
      t.ok(
        used.includes(
          `Web console on ${page}: The sign-in link was used (a link works once). ` +
            `For another browser: fakephone console --data ${data} web-link ${page}\x1b[K\n`,
        ),
        'the dead link is replaced by the command that makes another',
      )
      const made = await run(['console', '--data', data, 'web-link', page as string], new SystemClock())
      const fresh = /\S+login\S+/.exec(made.out)?.[0] as string
      t.equal((await fetch(fresh, { redirect: 'manual' })).status, 303, "and that command's link signs a browser in")
    }
    await ui.waitForOut(/(?:\x1b\[H[\s\S]*?\x1b\[J[\s\S]*?){2}/)
    const screens = ui.out().split('\x1b[H').slice(1)
    t.equal(ui.out().match(/\x1b\[2J/g)?.length, 1, 'the screen is wiped once, not on every redraw (no scrollback flood)')
    t.ok(screens.length >= 2 && screens.every((s) => s.endsWith('\x1b[J')), 'each redraw goes home and clears what is left below it')
    ui.abort()
    t.equal(await running, 0, round)
  }
})

t.test('F1: an agent whose secret file every user can read starts, with one warning in the words of config check', async (t) => {
  const cloud = await startCloud(t)
  const { secretFile, phoneDir } = await deviceOnDisk(t, cloud)
  const quiet = await startCliAgent(t, cloud, { secretFile, phoneDir }, { push: false })
  t.equal(quiet.io.err(), '', 'mode 0600 (as device add --secret-out writes it): nothing to say')
  quiet.io.abort()
  t.equal(await quiet.running, 0)
  chmodSync(secretFile, 0o644)
  const words = `${secretFile} can be read by every user (mode 0644): chmod 600 ${secretFile}`
  const config = join(tempDir(t), 'agent.json')
  writeFileSync(config, JSON.stringify({ id: 'phone-a', secretFile }))
  t.match((await run(['config', 'check', config])).err, `secretFile: ${words}\n`, "config check's words")
  const { io, running } = await startCliAgent(t, cloud, { secretFile, phoneDir }, { push: false })
  t.equal(io.err(), `warning: ${words}\n`, 'said once, at the start, on stderr')
  t.ok(io.logs.has(words), 'and in the log')
  io.abort()
  t.equal(await running, 0)
})
