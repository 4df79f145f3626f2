/**
 * Config files as an operator meets them: `fakephone config check` before a
 * service starts, `config env`, and the broker and agent started from a file
 * with environment and flag overrides and the secret as a systemd credential.
 */
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { controlSocketPath } from '../../agent/control.js'
import { main } from '../../cli/main.js'
import type { ManualClock } from '../../common/clock.js'
import { addDevice, connectConsole, startCloud, storedHeartbeats, type Cloud } from '../fixtures/cloud.js'
import { fakeGpsd } from '../fixtures/gpsd.js'
import { run, testIo } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'
import { assertBuilt, cliCommand } from '../fixtures/child.js'
import { takeViolations } from '../fixtures/port-guard.js'

const write = (dir: string, name: string, value: unknown): string => {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(value, null, 2))
  return file
}

/** Resolves once `id` says it is online (its data channel is up, so a heartbeat due now is sent). */
async function online(t: Test, cloud: Cloud, id: string): Promise<void> {
  const watcher = await connectConsole(t, cloud)
  const said = new Promise<void>((resolve) =>
    watcher.on('message', (_topic, payload) => payload.toString().includes('"online"') && resolve()),
  )
  await watcher.subscribeAsync(`fp/v1/${id}/presence`)
  await said
}

t.test('config check: a valid file is said to be valid; a broken one gets every problem with its key and exit 1', async (t) => {
  const dir = tempDir(t)
  const good = write(dir, 'broker.json', { dataDir: '/var/lib/fakephone', mqttPort: 1883, connectTimeout: '5s' })
  t.match(await run(['config', 'check', good]), { code: 0, out: `${good}: a valid broker config\n`, err: '' })
  const bad = write(dir, 'broker-bad.json', { mqttPort: 'x', httpPort: -1, hots: '0.0.0.0' })
  const r = await run(['config', 'check', bad])
  t.equal(r.code, 1)
  t.equal(
    r.err,
    [
      'error: invalid broker config (3 problems):',
      `  ${bad}: mqttPort: Invalid input: expected number, received string`,
      `  ${bad}: httpPort: Too small: expected number to be >=0`,
      `  ${bad}: hots: unknown setting; did you mean "host"?`,
      '',
    ].join('\n'),
  )
  const agent = write(dir, 'agent-kitchen.json', { id: 'Kitchen', location: 'gpsd:localhost', interval: '5 minutes' })
  t.match(
    (await run(['config', 'check', agent])).err,
    /invalid agent config \(3 problems\):\n.*id: device id.*\n.*location: "localhost" is not HOST:PORT.*\n.*interval: not a duration/,
  )
  const fine = write(dir, 'phone.json', { id: 'kitchen', location: 'gpsd' })
  t.equal(
    (await run(['config', 'check', fine, '--kind', 'agent'])).out,
    `${fine}: a valid agent config\n`,
    '--kind when the name does not say',
  )
  t.match((await run(['config', 'check', join(dir, 'agent-none.json')])).err, /agent-none\.json: cannot read it: no such file \(ENOENT\)/)
})

t.test(
  'config check tells an agent from a broker config by its keys when the name says neither; ambiguous: which kinds, and --kind',
  async (t) => {
    const dir = tempDir(t)
    const pi = write(dir, 'pi.json', { id: 'kitchen-pi', dataDir: join(dir, 'phone'), interval: '10s' })
    t.match(await run(['config', 'check', pi]), { code: 0, out: `${pi}: a valid agent config\n` }, 'agent keys: an agent config')
    const laptop = write(dir, 'laptop.json', { dataDir: join(dir, 'cloud'), mqttPort: 0, httpPort: 0 })
    t.match(await run(['config', 'check', laptop]), { code: 0, out: `${laptop}: a valid broker config\n` }, 'broker keys: a broker config')
    const typo = write(dir, 'pi-typo.json', { id: 'kitchen-pi', intervall: '10s' })
    t.match((await run(['config', 'check', typo])).err, /invalid agent config .*\n.*intervall: unknown setting; did you mean "interval"\?/s)
    const both = write(dir, 'both.json', { id: 'kitchen-pi', mqttPort: 1883, dataDir: 'x' })
    t.match(await run(['config', 'check', both]), {
      code: 1,
      err:
        `error: cannot tell whether ${both} is a broker or an agent config: its name holds neither "broker" nor "agent" and it has ` +
        'keys of both: mqttPort (broker) and id (agent); the kinds are broker and agent: add --kind broker or --kind agent\n',
    })
    const neither = write(dir, 'shared.json', { dataDir: 'x', logLevel: 'debug' })
    t.match(await run(['config', 'check', neither]), {
      code: 1,
      err: /cannot tell whether .*shared\.json .* it has no key only one of them has .*: add --kind broker or --kind agent\n$/,
    })
    t.match(await run(['config', 'check', neither, '--kind', 'broker']), { code: 0, out: `${neither}: a valid broker config\n` })
    t.match(await run(['config', 'check', join(dir, 'gone.json')]), {
      code: 1,
      err: /gone\.json: cannot read it: no such file \(ENOENT\)\n$/,
    })
    t.match(await run(['config', 'check', write(dir, 'list.json', [1])]), { code: 1, err: /list\.json: must hold one JSON object/ })
    t.match((await run(['config', 'check', '--help'])).out, /else from its keys: one only an agent\s+config has/)
  },
)

t.test('config check reads the file once: a config given as a pipe (`config check <(…)`) is told by its keys and checked', async (t) => {
  assertBuilt()
  const dir = tempDir(t)
  const pi = write(dir, 'pi.json', { id: 'kitchen-pi', dataDir: join(dir, 'phone'), interval: '10s' })
  // bash gives `<(cat FILE)` as /dev/fd/63, a pipe: its name says neither kind, and what is read of it is gone.
  const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`
  const [program, args] = cliCommand(['config', 'check'])
  const bash = spawn('bash', ['-c', `${[program, ...args].map(quote).join(' ')} <(cat ${quote(pi)})`], { stdio: 'pipe' })
  let out = ''
  bash.stdout.on('data', (d: Buffer) => (out += d.toString()))
  bash.stderr.resume()
  const [code] = (await once(bash, 'close')) as [number]
  t.match({ code, out }, { code: 0, out: /^\/dev\/fd\/\d+: a valid agent config\n$/ })
})

t.test('config check applies FAKEPHONE_* variables exactly as the daemon does', async (t) => {
  const dir = tempDir(t)
  const good = write(dir, 'broker.json', { mqttPort: 1883 })
  const overridden = await run(['config', 'check', good], undefined, {
    FAKEPHONE_BROKER_HTTP_PORT: '8081',
    FAKEPHONE_AGENT_INTERVAL: 'x',
    PATH: '/bin',
  })
  t.match(
    overridden,
    { code: 0, out: `${good}: a valid broker config with FAKEPHONE_BROKER_HTTP_PORT from the environment\n` },
    'a valid override is named; another kind of variable is not',
  )
  const broken = await run(['config', 'check', good], undefined, { FAKEPHONE_BROKER_MQTT_PORT: '"x"', FAKEPHONE_BROKER_HOTS: '0.0.0.0' })
  t.equal(broken.code, 1, 'a config the daemon would refuse for its environment is refused')
  t.match(broken.err, /FAKEPHONE_BROKER_MQTT_PORT: Invalid input: expected number/)
  t.match(broken.err, /FAKEPHONE_BROKER_HOTS: no such broker setting \(did you mean FAKEPHONE_BROKER_HOST\?\)/)
  const daemon = await run(['broker', '--config', good, '--mqtt-port', '0', '--http-port', '0', '--data', dir], undefined, {
    FAKEPHONE_BROKER_HOTS: '0.0.0.0',
  })
  t.match(daemon.err, /FAKEPHONE_BROKER_HOTS: no such broker setting/, 'the daemon refuses the same environment the same way')
})

t.test('F1 a duration given as a bare number under a second is said to be milliseconds, by config check and the agent', async (t) => {
  const dir = tempDir(t)
  // A hobbyist meant 30 seconds: the agent stored a heartbeat every 30 ms (~166 in 6 s) and `config check` called it valid.
  const file = write(dir, 'agent-pi.json', { id: 'pi', interval: 30, gpsdMaxAge: '500ms' })
  const checked = await run(['config', 'check', file])
  t.match(checked, { code: 0, out: `${file}: a valid agent config\n` }, 'still valid: short intervals are allowed')
  const warnings = checked.err.split('\n').filter((line) => line.startsWith('warning: '))
  t.same(
    warnings,
    [`warning: ${file}: interval: 30 is in milliseconds (30 ms); for 30 seconds give 30000 (or "30s")`],
    'a bare number is warned about; a duration with its unit (500ms) is not',
  )
  const fromEnv = await run(['config', 'check', write(dir, 'agent-ok.json', { id: 'pi' })], undefined, { FAKEPHONE_AGENT_INTERVAL: '5' })
  t.match(fromEnv.err, /^warning: FAKEPHONE_AGENT_INTERVAL: 5 is in milliseconds \(5 ms\); for 5 seconds give 5000/)
  t.notMatch(
    (await run(['config', 'check', write(dir, 'agent-ms.json', { id: 'pi', interval: 30_000, gpsdMaxAge: 0 })])).err,
    /warning/,
    '30000 is fine, and so is 0',
  )
  // The agent says it at its start too, on stderr in config check's words and in its log (here it then stops for want of
  // a secret: the warning came first).
  const started = await run(['agent', '--config', file, '--data', join(dir, 'phone')])
  t.match(started.logs.lines, [
    { level: 40, msg: `${file}: interval: 30 is in milliseconds (30 ms); for 30 seconds give 30000 (or "30s")` },
  ])
  t.equal(started.err.split('\n')[0], warnings[0], 'the same warning line as config check, first on stderr')
  t.match(started.err, /no device secret/)
  const flagged = await run(['agent', '--config', file, '--data', join(dir, 'phone'), '--interval', '100ms'])
  t.notOk(
    flagged.logs.lines.some((l) => l.msg.includes('milliseconds')),
    'a flag gives its unit: --interval 100ms over the file is not warned about',
  )
})

t.test('a config that is not JSON is said in one wording, at its line and column, by config check and both daemons', async (t) => {
  const dir = tempDir(t)
  // A hobbyist's pi.json with a comma before the }: config check tells its kind from its keys, which it cannot read.
  const file = join(dir, 'pi.json')
  writeFileSync(file, '{\n  "id": "pi",\n}\n')
  const said = new RegExp(`^error: ${file}: not valid JSON at line 3, column 1 \\([^\\n]*position 16\\)\\n$`)
  const checked = await run(['config', 'check', file])
  t.match(checked, { code: 1, err: said })
  t.match(await run(['config', 'check', '--kind', 'agent', file]), { code: 1, err: checked.err }, 'its kind known, the same')
  // The daemons exit 78 (EX_CONFIG), which the units' RestartPreventExitStatus= keeps systemd from restarting in a loop.
  t.match(await run(['agent', '--config', file, '--data', join(dir, 'phone')]), { code: 78, err: checked.err }, 'the agent says it so')
  t.match(await run(['broker', '--config', file, '--data', join(dir, 'cloud')]), { code: 78, err: checked.err }, 'and the broker')
})

t.test('a named pipe as --config is refused at once by config check and both daemons, not a start that hangs', async (t) => {
  const dir = tempDir(t)
  const fifo = join(dir, 'broker.json')
  execFileSync('mkfifo', [fifo])
  const said = `error: ${fifo}: cannot read it: a named pipe (FIFO), not a file: give the file itself, or <(cat FILE)\n`
  t.match(await run(['broker', '--config', fifo, '--data', join(dir, 'cloud')]), { code: 78, err: said })
  t.match(await run(['agent', '--config', fifo, '--data', join(dir, 'phone')]), { code: 78, err: said })
  t.match(await run(['config', 'check', fifo]), { code: 1, err: said })
})

t.test('config env lists the variable that overrides each setting', async (t) => {
  const r = await run(['config', 'env', '--kind', 'broker'])
  t.match(r.out, /^SETTING\s+VARIABLE\ndataDir\s+FAKEPHONE_BROKER_DATA_DIR\n/)
  t.match(r.out, /rateLimit\.perSecond\s+FAKEPHONE_BROKER_RATE_LIMIT_PER_SECOND\n/)
  t.match((await run(['config', 'env', '--kind', 'agent'])).out, /gpsdMaxAge\s+FAKEPHONE_AGENT_GPSD_MAX_AGE\n/)
  t.match((await run(['config', 'env'])).err, /required option '--kind <kind>'/)
})

t.test('broker --config: the file is overridden by FAKEPHONE_BROKER_* and both by flags', async (t) => {
  const dir = tempDir(t)
  const fromEnv = join(dir, 'env-data')
  const file = write(dir, 'broker.json', { dataDir: join(dir, 'file-data'), mqttPort: 0, httpPort: 0, logLevel: 'error' })
  const ui = testIo(undefined, {
    FAKEPHONE_BROKER_DATA_DIR: fromEnv,
    FAKEPHONE_BROKER_LOG_LEVEL: 'warn',
    FAKEPHONE_BROKER_CONNECT_TIMEOUT: '50',
  })
  const running = main(['broker', '--config', file, '--log-level', 'info', '--simulated-time', '--free-quota', '1GB'], ui.io)
  await ui.logs.waitFor(
    (l) => l.msg === 'FAKEPHONE_BROKER_CONNECT_TIMEOUT: 50 is in milliseconds (50 ms); for 50 seconds give 50000 (or "50s")',
  )
  await ui.logs.waitFor((l) => /simulated time/.test(l.msg))
  const listening = await ui.logs.waitFor((l) => l.msg === 'broker listening')
  t.equal(listening.dataDir, fromEnv, 'the environment beat the file')
  t.pass('an info line was logged: the flag beat the environment and the file')
  ui.abort()
  t.equal(await running, 0)
  const broken = await run(['broker', '--config', file], undefined, { FAKEPHONE_BROKER_HTTP_PORT: 'http' })
  t.equal(
    broken.err,
    'error: invalid broker config (1 problem):\n  FAKEPHONE_BROKER_HTTP_PORT: Invalid input: expected number, received string\n',
    'a bad override is named by its variable',
  )
})

t.test('agent --config: the secret is a systemd credential and never on the command line; the location comes from the file', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'kitchen-pi')
  const dir = tempDir(t)
  const credentials = join(dir, 'credentials')
  mkdirSync(credentials)
  writeFileSync(join(credentials, 'device-secret'), secret + '\n', { mode: 0o600 })
  const file = write(dir, 'agent-kitchen-pi.json', {
    id: 'kitchen-pi',
    broker: cloud.mqttUrl,
    dataDir: join(dir, 'phone'),
    location: 'fixed:55.9486,-3.1999',
    interval: '10s',
    jitter: 0,
  })
  const ui = testIo(clock, { CREDENTIALS_DIRECTORY: credentials })
  const isOnline = online(t, cloud, 'kitchen-pi')
  const running = main(['agent', '--config', file], ui.io)
  await isOnline
  t.match(await ui.logs.waitFor((l) => l.msg === 'agent started'), { id: 'kitchen-pi', location: 'fixed' })
  const stored = storedHeartbeats(cloud, 1)
  clock.advance(10_000)
  await stored
  t.match(cloud.broker.store.device('kitchen-pi')?.last, { lat: 55.9486, lon: -3.1999 })
  t.notOk(JSON.stringify(ui.logs.lines).includes(secret), 'the secret is in no log line')
  ui.abort()
  t.equal(await running, 0)

  const none = await run(['agent', '--config', file])
  t.match(
    none.err,
    /no device secret: set secretFile in the config \(or --secret-file\), or run under systemd with LoadCredential=device-secret:FILE/,
  )
})

t.test(
  'F1 phone status says where the position comes from: gpsd with its connection and last fix, a GPX track, a point, the route',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const secret = await addDevice(cloud, 'pi-gps')
    const dir = tempDir(t)
    writeFileSync(join(dir, 'secret'), secret)
    const phone = join(dir, 'phone')
    const base = ['agent', '--id', 'pi-gps', '--secret-file', join(dir, 'secret'), '--broker', cloud.mqttUrl, '--data', phone]
    const status = async (): Promise<string> => {
      const { out } = await run(['phone', '--data', phone, 'status'])
      return /^location +(.*)$/m.exec(out)?.[1] ?? `no location line in:\n${out}`
    }
    const started = async (args: string[]): Promise<{ logged: (msg: string) => Promise<unknown>; stop: () => Promise<number> }> => {
      const ui = testIo(clock)
      const running = main([...base, ...args], ui.io)
      await ui.logs.waitFor((l) => l.msg === 'agent started')
      return {
        logged: (msg) => ui.logs.waitFor((l) => l.msg === msg),
        stop: () => {
          ui.abort()
          return running
        },
      }
    }

    const gpsd = await fakeGpsd(t)
    const agent = await started(['--gpsd', `127.0.0.1:${gpsd.port}`, '--gpsd-max-age', '30s'])
    const client = await gpsd.nextClient()
    await client.line()
    t.equal(await status(), `gpsd 127.0.0.1:${gpsd.port}: connected, no fix yet; no heartbeats until one`, 'watching, no fix yet')
    client.send({ class: 'TPV', mode: 3, lat: 57.1497, lon: -2.0943, eph: 6.4 })
    await agent.logged('gpsd has a fix')
    clock.advance(12_000)
    t.equal(await status(), `gpsd 127.0.0.1:${gpsd.port}: connected, last fix 12s ago, accurate to 6 m`, 'the fix, its age and accuracy')
    clock.advance(20_000)
    t.equal(
      await status(),
      `gpsd 127.0.0.1:${gpsd.port}: connected, last fix 32s ago, accurate to 6 m: older than 30s, so no heartbeats until a new one`,
      'a fix older than --gpsd-max-age is said to be no fix',
    )
    client.send({ class: 'TPV', mode: 1 })
    await agent.logged('gpsd lost the fix')
    t.equal(await status(), `gpsd 127.0.0.1:${gpsd.port}: connected, the receiver lost its fix; no heartbeats until one`)
    client.socket.destroy()
    await agent.logged('gpsd disconnected, retrying')
    t.match(
      await status(),
      new RegExp(`^gpsd 127\\.0\\.0\\.1:${gpsd.port}: not connected, trying again in \\d+s \\(retry 1\\); no fix, no heartbeats$`),
      'gpsd gone: the retry it waits for',
    )
    const json = JSON.parse((await run(['phone', '--data', phone, '--json', 'status'])).out) as { location: unknown }
    t.match(json.location, { kind: 'gpsd', host: '127.0.0.1', port: gpsd.port, state: 'waiting', lost: true, fix: null, maxAgeMs: 30_000 })
    t.equal(await agent.stop(), 0)

    writeFileSync(join(dir, 'walk.gpx'), '<gpx><trk><trkpt lat="57.1" lon="-2.1"/><trkpt lat="57.2" lon="-2.2"/></trk></gpx>')
    const walking = await started(['--gpx', join(dir, 'walk.gpx'), '--speed', '2'])
    t.equal(await status(), `GPX track ${join(dir, 'walk.gpx')}, walked at 2 m/s`)
    t.equal(await walking.stop(), 0)
    const standing = await started(['--fixed', '57.1,-2.1'])
    t.equal(await status(), 'fixed at 57.10000,-2.10000')
    t.equal(await standing.stop(), 0)
    const demo = await started([])
    t.equal(await status(), 'the built-in route, walked at 1.4 m/s')
    const { location, ...older } = JSON.parse((await run(['phone', '--data', phone, '--json', 'status'])).out) as Record<string, unknown>
    t.equal(await demo.stop(), 0)

    // An agent started before `location` existed answers without it: its status shows, with no location line.
    t.ok(location)
    const fake = createServer((socket) => socket.once('data', () => socket.end(JSON.stringify({ ok: true, status: older }) + '\n')))
    await new Promise<void>((resolve) => fake.listen(controlSocketPath(phone), resolve))
    t.teardown(() => fake.close())
    const { out, code } = await run(['phone', '--data', phone, 'status'])
    t.equal(code, 0)
    t.match(out, /^device +pi-gps$/m, "the older agent's status is shown")
    t.notMatch(out, /^location/m, 'with no location line')
  },
)

t.test('agent --gpsd: heartbeats carry where gpsd says the phone is', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'pi-gps')
  const dir = tempDir(t)
  writeFileSync(join(dir, 'secret'), secret)
  const gpsd = await fakeGpsd(t)
  const ui = testIo(clock)
  const isOnline = online(t, cloud, 'pi-gps')
  const base = [
    'agent',
    '--id',
    'pi-gps',
    '--secret-file',
    join(dir, 'secret'),
    '--broker',
    cloud.mqttUrl,
    '--data',
    join(dir, 'phone'),
    '--interval',
    '10s',
    '--jitter',
    '0',
  ]
  const running = main([...base, '--gpsd', `127.0.0.1:${gpsd.port}`, '--gpsd-max-age', '30s'], ui.io)
  const client = await gpsd.nextClient()
  t.match(await client.line(), /^\?WATCH=/)
  // Connected before gpsd has a fix: the first fix the phone takes at once (F1) finds none, and sends nothing.
  await isOnline
  client.send({ class: 'TPV', mode: 3, lat: 57.1497, lon: -2.0943, eph: 6, speed: 0.5 })
  await ui.logs.waitFor((l) => l.msg === 'gpsd has a fix')
  const stored = storedHeartbeats(cloud, 1)
  clock.advance(10_000)
  await stored
  t.match(cloud.broker.store.device('pi-gps')?.last, { lat: 57.1497, lon: -2.0943, accuracy: 6, speed: 0.5 })

  client.send({ class: 'TPV', mode: 1 })
  await ui.logs.waitFor((l) => l.msg === 'gpsd lost the fix')
  clock.advance(10_000)
  t.equal(
    (await run(['phone', '--data', join(dir, 'phone'), '--json', 'status'])).out.includes('"heartbeatsSent":1'),
    true,
    'no fix, no heartbeat',
  )
  ui.abort()
  t.equal(await running, 0)

  const later = testIo(clock)
  const waiting = main([...base, '--gpsd'], later.io)
  t.match(await later.logs.waitFor((l) => l.msg === 'agent started'), { location: 'gpsd' })
  await later.logs.waitFor((l) => l.msg === 'gpsd disconnected, retrying')
  // The port guard kept the connection from reaching a gpsd on this machine, and says where it went.
  t.match(takeViolations(), [/127\.0\.0\.1:2947/], 'bare --gpsd: gpsd on 127.0.0.1:2947')
  later.abort()
  t.equal(await waiting, 0, 'a phone whose gpsd is not up yet runs, retries and stops cleanly')

  writeFileSync(join(dir, 'walk.gpx'), '<gpx><trk><trkpt lat="57.1" lon="-2.1"/><trkpt lat="57.2" lon="-2.2"/></trk></gpx>')
  const walking = testIo(clock)
  const gpx = main([...base, '--gpx', join(dir, 'walk.gpx')], walking.io)
  t.match(await walking.logs.waitFor((l) => l.msg === 'agent started'), { location: 'gpx' }, '--gpx: the track of a GPX file')
  walking.abort()
  t.equal(await gpx, 0)

  t.match((await run([...base, '--gpsd', 'nowhere'])).err, /--gpsd \[host:port\]' argument 'nowhere' is invalid. must be HOST:PORT/)
  t.match((await run([...base, '--gpsd', '--fixed', '1,2'])).err, /cannot be used with/)
  t.match(
    (await run(base, undefined, { FAKEPHONE_AGENT_LOCATION: 'gpsd:nowhere' })).err,
    /FAKEPHONE_AGENT_LOCATION: "nowhere" is not HOST:PORT/,
  )
})
