/**
 * `fakephone agent` on a terminal says in plain lines which phone starts, on which broker, with which data directory,
 * push channel and owner key (F2), then whether it connected and why not; off a terminal (systemd's journal, a pipe) its
 * output is the JSON log lines alone, as before.
 */
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../cli/main.js'
import { DEFAULT_BACKOFF } from '../../common/backoff.js'
import { ManualClock, SystemClock, utcSeconds } from '../../common/clock.js'
import { NOT_MQTT_WHY, REFUSED_WHY } from '../../common/mqtt.js'
import { OwnerKeys } from '../../common/signing.js'
import { assertBuilt, cliCommand, spawnCli } from '../fixtures/child.js'
import { deviceOnDisk, startCloud, type Cloud } from '../fixtures/cloud.js'
import { dataChannelRefused } from '../../cli/render.js'
import { testIo, run } from '../fixtures/io.js'
import type { LogCapture, LogLine } from '../fixtures/logs.js'
import { closedPort } from '../fixtures/ports.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

const hasScript = spawnSync('script', ['--version']).status === 0

/** The agent run in-process as on a terminal (`io.tty`): its stderr, and a wait for a line on it. */
function onTerminal(t: Test, argv: string[], clock = new ManualClock()) {
  const io = testIo(clock)
  let err = ''
  let heard: (() => void) | null = null
  io.io.tty = true
  io.io.err = (s) => {
    err += s
    heard?.()
  }
  const running = main(argv, io.io)
  onEnd(t, async () => {
    io.abort()
    await running
  })
  return {
    logs: io.logs,
    err: () => err,
    /** Resolves once stderr contains `text`. */
    said: (text: string): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (err.includes(text)) resolve()
        }
        heard = check
        check()
      }),
    stop: async (): Promise<number> => {
      io.abort()
      return running
    },
  }
}

/** Resolves once the cloud stored phone-a's first fix: it went out when the phone connected, after it said so. */
async function firstFixStored(cloud: Cloud): Promise<void> {
  while (!cloud.broker.store.device('phone-a')?.last) await once(cloud.broker.store, 'stored')
}

async function phoneOf(t: Test, cloud: Cloud) {
  const { secret, secretFile, phoneDir } = await deviceOnDisk(t, cloud)
  return {
    secret,
    secretFile,
    phoneDir,
    base: ['agent', '--id', 'phone-a', '--secret-file', secretFile, '--data', phoneDir, '--fixed', '55.95,-3.19'],
  }
}

t.test('on a terminal: the phone, its broker, data directory, push channel and owner key, then "Connected"', async (t) => {
  const cloud = await startCloud(t)
  const { base, phoneDir } = await phoneOf(t, cloud)
  const keys = new OwnerKeys(join(tempDir(t), 'keys'))
  keys.ensureSigningKey('alice')
  const pub = keys.ownerKeyFile('alice')
  const agent = onTerminal(t, [...base, '--broker', cloud.wsUrl, '--owner-key', pub], cloud.clock as ManualClock)
  await firstFixStored(cloud)
  const said = t.equal(
    agent.err(),
    [
      `Phone phone-a, data directory ${phoneDir}`,
      `  broker        ${cloud.wsUrl}`,
      `  push channel  on, ${cloud.pushUrl}`,
      `  cloud         ${cloud.apiUrl}`,
      `  owner key     ${pub}`,
      `Connected to the broker ${cloud.wsUrl}`,
      '',
    ].join('\n'),
  )
  if (!said) return

  // X1: the cloud service switched off on the phone closes the data channel: said, with the way back; on again, connected.
  t.equal((await run(['phone', '--data', phoneDir, 'cloud-service', 'off'])).code, 0)
  await agent.said('Not connected: the cloud service is off on this phone')
  t.match(agent.err(), `(fakephone phone --data ${phoneDir} cloud-service on)\n`)
  t.equal((await run(['phone', '--data', phoneDir, 'cloud-service', 'on'])).code, 0)
  await agent.said(`off on this phone (fakephone phone --data ${phoneDir} cloud-service on)\nConnected to the broker`)
  t.equal(await agent.stop(), 0)
})

t.test('on a terminal: no push channel, no owner key, a broker that goes away', async (t) => {
  const cloud = await startCloud(t)
  const { base, phoneDir } = await phoneOf(t, cloud)
  const agent = onTerminal(t, [...base, '--broker', cloud.mqttUrl], cloud.clock as ManualClock)
  await firstFixStored(cloud)
  t.match(agent.err(), /push channel {2}off: an mqtt:\/\/ broker URL does not say where the cloud listens; give --push ws:/)
  t.match(agent.err(), /cloud {9}none: no sync, backup or drive \(--cloud http:\/\/HOST:PORT, or a push channel\)/)
  t.match(agent.err(), /owner key {5}none: every remote command is refused \(--owner-key ACCOUNT\.pub, or "ownerKey" in the config file\)/)
  await cloud.broker.stop()
  // The line comes as the retry is planned, before the log says it.
  await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying')
  t.match(agent.err(), new RegExp(`\\nNot connected: .*; is it running at ${cloud.mqttUrl}\\? It keeps retrying\\n$`), 'said once')
  // Its control socket opens once the phone has started, which may be after its first retry.
  await agent.logs.waitFor((l) => l.msg === 'agent started')
  t.match(
    (await run(['phone', '--data', phoneDir, 'status'])).out,
    /\ndata channel {2}waiting since [\d-]+ [\d:]+ UTC: the broker closed the connection; it keeps retrying\n/,
    'phone status says why it waits',
  )
})

t.test('on a terminal: why not connected -- nothing listening, a wrong secret', async (t) => {
  const cloud = await startCloud(t)
  const { base, secretFile } = await phoneOf(t, cloud)
  const port = await closedPort()
  const clock = new ManualClock()
  const nobodyDir = tempDir(t)
  const failedAt = clock.now()
  const nobody = onTerminal(t, [...base, '--broker', `mqtt://127.0.0.1:${port}`, '--data', nobodyDir], clock)
  await nobody.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying')
  // F1 `phone status` says why too, and since when: the first failure's time stays through the retries after it.
  clock.advance(DEFAULT_BACKOFF.capMs)
  await nobody.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 2)
  // Its control socket opens once the phone has started, which may be after its first retry.
  await nobody.logs.waitFor((l) => l.msg === 'agent started')
  t.match(
    (await run(['phone', '--data', nobodyDir, 'status'])).out,
    `\ndata channel  waiting since ${utcSeconds(failedAt)} UTC: connection refused by 127.0.0.1:${port} (is the broker ` +
      'running?); it keeps retrying\n',
  )
  // Said once the phone has started (the connection may fail before): the start-up lines first, then why.
  if (!t.match(nobody.err(), /^Phone phone-a, /)) return
  await nobody.said('Not connected')
  t.match(
    nobody.err(),
    `\nNot connected: cannot reach the broker (connect ECONNREFUSED 127.0.0.1:${port}); is it running at ` +
      `mqtt://127.0.0.1:${port}? It keeps retrying\n`,
  )
  t.equal(await nobody.stop(), 0)

  writeFileSync(secretFile, 'not-the-secret\n')
  const refused = onTerminal(t, [...base, '--broker', cloud.mqttUrl])
  await refused.logs.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('mqtt refused this device'))
  await refused.said('Not connected')
  t.match(
    refused.err(),
    "\nNot connected: the broker refuses this device's id and secret: it was removed (`fakephone device list` on the " +
      'broker no longer shows phone-a), or the secret file is wrong. Re-register it on the broker, in the account it was ' +
      "in (the phone obeys that account's owner key): `fakephone device remove phone-a` if the list still shows it, then " +
      "remove this agent's secret file FILE (`device add` replaces no file) and run `fakephone device add phone-a " +
      '--account ACCOUNT --secret-out FILE`; it reads the file again at each retry, every ' +
      '30 s at the slowest, and connects with the new secret (under systemd, restart the unit: its credential is copied ' +
      'at the start)\n',
  )
  t.equal(await refused.stop(), 0)
})

t.test("F1, X1 phone status says why the push channel waits, and since when, as it says the data channel's", async (t) => {
  const cloud = await startCloud(t)
  const { base } = await phoneOf(t, cloud)
  const port = await closedPort()
  const clock = new ManualClock()
  const dir = tempDir(t)
  const failedAt = clock.now()
  const push = `ws://127.0.0.1:${port}/push`
  const agent = onTerminal(t, [...base, '--broker', `mqtt://127.0.0.1:${port}`, '--push', push, '--data', dir], clock)
  await agent.logs.waitFor((l) => l.msg === 'push disconnected, retrying')
  // The first failure's time stays through the retries after it.
  clock.advance(DEFAULT_BACKOFF.capMs)
  await agent.logs.waitFor((l) => l.msg === 'push disconnected, retrying' && l.attempt === 2)
  await agent.logs.waitFor((l) => l.msg === 'agent started')
  const why = `connection refused by 127.0.0.1:${port} (is the broker running?); it keeps retrying`
  t.match((await run(['phone', '--data', dir, 'status'])).out, `\npush channel  waiting since ${utcSeconds(failedAt)} UTC: ${why}\n`)
  const json = JSON.parse((await run(['phone', '--data', dir, '--json', 'status'])).out) as {
    framework: { pushChannelWaiting?: unknown }
  }
  t.same(json.framework.pushChannelWaiting, { since: failedAt, why: `connect ECONNREFUSED 127.0.0.1:${port}` })
  t.equal(await agent.stop(), 0)
})

t.test('F1 the broker URL given the HTTP port: said once that it looks like an HTTP port, not retried in silence', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const failedAt = clock.now()
  const { base, phoneDir } = await phoneOf(t, cloud)
  // The hobbyist's slip: the HTTP port the broker printed, in an mqtt:// URL. It answers `HTTP/1.1 400`, read as a PUBACK.
  const httpAsMqtt = cloud.apiUrl.replace('http://', 'mqtt://')
  const agent = onTerminal(t, [...base, '--broker', httpAsMqtt], clock)
  const warned = await agent.logs.waitFor((l) => /^mqtt(:| disconnected)/.test(l.msg))
  if (!t.equal(warned.msg, `mqtt: ${httpAsMqtt} does not answer in MQTT: ${NOT_MQTT_WHY}`)) return
  t.equal(warned.level, 40, 'a warning')
  t.match(warned, { err: /^Invalid header flag bits/ })
  await agent.said('Not connected')
  t.match(
    agent.err(),
    `\nNot connected: ${httpAsMqtt} does not answer in MQTT (Invalid header flag bits, must be 0x0 for puback packet): this ` +
      'looks like an HTTP port: give the MQTT port instead (the broker prints `Broker on mqtt://HOST:N and http://HOST:M` at its start)\n',
  )
  // The retries after it are info lines, and the terminal says nothing new: one warning, not one per retry.
  clock.advance(DEFAULT_BACKOFF.capMs)
  await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 2)
  t.equal(agent.logs.lines.filter((l) => l.level === 40 && /MQTT/.test(l.msg)).length, 1, 'warned once')
  t.equal(agent.err().split('Not connected').length, 2, 'the terminal said it once')
  // Its control socket opens once the phone has started, which may be after its first retry.
  await agent.logs.waitFor((l) => l.msg === 'agent started')
  t.match(
    (await run(['phone', '--data', phoneDir, 'status'])).out,
    `\ndata channel  waiting since ${utcSeconds(failedAt)} UTC: Invalid header flag bits, must be 0x0 for puback packet: ${NOT_MQTT_WHY}`,
    'phone status says it too',
  )
  t.equal(await agent.stop(), 0)
})

/** phone-a on a new cloud, its agent run on a terminal (with its push channel unless told not to), connected, its first fix stored. */
async function runningOnTerminal(t: Test, push = true) {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const phone = await phoneOf(t, cloud)
  const agent = onTerminal(t, [...phone.base, '--broker', cloud.mqttUrl, ...(push ? ['--push', cloud.pushUrl] : [])], clock)
  await firstFixStored(cloud)
  if (push) await agent.logs.waitFor((l) => l.msg === 'push connected')
  return { cloud, clock, agent, ...phone }
}

/** Resolves with the log line of `channel`'s retry number `attempt` after a refusal ('mqtt' or 'push'). */
const refusedRetry = (logs: LogCapture, channel: string, attempt: number): Promise<LogLine> =>
  logs.waitFor((l) => l.attempt === attempt && String(l.msg).startsWith(`${channel} refused this device`))

t.test(
  'F1, X1 on a terminal: a device removed while its phone runs is said refused once, with what to do; both channels ' +
    'retry with a capped backoff, warned of once each in the log; registered again, it is said accepted',
  async (t) => {
    const { cloud, clock, agent, secret } = await runningOnTerminal(t)
    cloud.broker.registry.remove('phone-a')
    // The broker closes the MQTT session (retry 1, as any lost connection) and refuses each reconnect; the gateway closes
    // the push connection with 4001 and refuses each retry. Each retry waits for the phone's clock: none without it.
    await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 1)
    await refusedRetry(agent.logs, 'push', 1)
    for (let n = 2; n <= 12; n++) {
      clock.advance(DEFAULT_BACKOFF.capMs)
      await refusedRetry(agent.logs, 'mqtt', n)
      await refusedRetry(agent.logs, 'push', n)
    }
    for (const channel of ['mqtt', 'push']) {
      const lines = agent.logs.lines.filter((l) => String(l.msg).startsWith(`${channel} refused this device`))
      t.match(lines[0], { level: 40, msg: `${channel} refused this device: ${REFUSED_WHY}` }, `${channel}: what to do, warned`)
      t.equal(lines.filter((l) => l.level >= 40).length, 1, `${channel}: warned once in ${lines.length} refusals`)
      const delays = lines.map((l) => l.delayMs as number)
      t.ok(Math.max(...delays) <= DEFAULT_BACKOFF.capMs, `${channel}: no wait longer than the cap`)
      t.ok(delays.at(-1)! >= DEFAULT_BACKOFF.capMs / 2 && delays[0]! < DEFAULT_BACKOFF.capMs / 2, `${channel}: backs off`)
    }
    const warnings = agent.logs.lines.filter((l) => l.level >= 40).map((l) => l.msg)
    t.equal(warnings.filter((msg) => msg === 'the push gateway reported an error').length, 0, 'its words are the close reason')

    // The broker takes the device again (registered with the same secret, as a restored backup has it).
    await cloud.broker.registry.add('phone-a', 'alice', secret)
    const before = agent.logs.lines.length
    clock.advance(DEFAULT_BACKOFF.capMs)
    await agent.said(`${dataChannelRefused('phone-a')}\nConnected to the broker ${cloud.mqttUrl}`)
    await agent.logs.waitFor((l) => l.msg === 'push connected' && agent.logs.lines.indexOf(l) >= before)
    t.ok(agent.logs.has('mqtt accepted this device again'), 'the log says it too')
    // Said first only when the data channel's close reaches the phone before the push channel's refusal (see below).
    const closed = `Not connected: the broker closed the connection; is it running at ${cloud.mqttUrl}? It keeps retrying\n`
    t.equal(
      agent.err().slice(agent.err().indexOf('\nConnected')).replace(closed, ''),
      [
        '',
        `Connected to the broker ${cloud.mqttUrl}`,
        `Not connected: ${dataChannelRefused('phone-a')}`,
        `Connected to the broker ${cloud.mqttUrl}: it accepts this device again`,
        '',
      ].join('\n'),
      'the refusal said once in eleven, and the way back',
    )
    t.equal(await agent.stop(), 0)
  },
)

t.test(
  'F1 on a terminal: a device removed while its phone runs is said refused, with what to do, as soon as both channels ' +
    "are closed, before any retry: the push channel's refusal says why the broker closed the data channel",
  async (t) => {
    const { cloud, agent } = await runningOnTerminal(t)
    cloud.broker.registry.remove('phone-a')
    // No retry goes (the phone's clock does not move); both closes have been taken in once both are logged.
    await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 1)
    await refusedRetry(agent.logs, 'push', 1)
    t.equal(agent.logs.lines.filter((l) => String(l.msg).startsWith('mqtt refused')).length, 0, 'the data channel was not refused yet')
    t.equal(agent.err().split('\n').at(-2), `Not connected: ${dataChannelRefused('phone-a')}`, 'its terminal says so, and what to do')
    t.equal(await agent.stop(), 0)
  },
)

/** What became of the data channel's retry number `attempt`: accepted, or refused again. */
const nextTry = (logs: LogCapture, attempt: number): Promise<LogLine> =>
  logs.waitFor(
    (l) => l.msg === 'mqtt accepted this device again' || (l.attempt === attempt && l.msg === 'mqtt refused this device again, retrying'),
  )

/** `fakephone device add phone-a` as on the broker, its secret written to `secretFile` (which must not exist). */
async function addAgain(t: Test, cloud: Cloud, secretFile: string): Promise<string> {
  const keys = join(tempDir(t), 'keys')
  const added = await run([
    'device',
    'add',
    'phone-a',
    '--account',
    'alice',
    '--data',
    cloud.dataDir,
    '--secret-out',
    secretFile,
    '--keys',
    keys,
  ])
  t.equal(added.code, 0, added.err)
  return readFileSync(secretFile, 'utf8').trim()
}

t.test(
  'F1, X1 on a terminal: a device removed and added again, its new secret written to the file the agent reads, ' +
    'connects again by itself on both channels at its next retry, said once in its log; no secret is ever shown',
  async (t) => {
    const { cloud, clock, agent, secret, secretFile } = await runningOnTerminal(t)
    t.equal((await run(['device', 'remove', 'phone-a', '--data', cloud.dataDir])).code, 0)
    // The running broker finds the removal in the database (within a second) and closes both channels.
    await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 1)
    await refusedRetry(agent.logs, 'push', 1)
    clock.advance(DEFAULT_BACKOFF.capMs)
    await refusedRetry(agent.logs, 'mqtt', 2)
    await refusedRetry(agent.logs, 'push', 2)
    await agent.said(`Not connected: ${dataChannelRefused('phone-a')}`)

    // The hobbyist re-registers it: the old secret file goes, `device add --secret-out` writes the new one in its place.
    rmSync(secretFile)
    const fresh = await addAgain(t, cloud, secretFile)
    const before = agent.logs.lines.length
    clock.advance(DEFAULT_BACKOFF.capMs)
    t.equal((await nextTry(agent.logs, 3)).msg, 'mqtt accepted this device again', 'its next retry is taken, not refused')
    await agent.said(`Connected to the broker ${cloud.mqttUrl}: it accepts this device again`)
    await agent.logs.waitFor((l) => l.msg === 'push connected' && agent.logs.lines.indexOf(l) >= before)
    t.ok(cloud.broker.isConnected('phone-a'), 'the broker has its data channel again')
    t.ok(cloud.broker.framework.gateway.connected('phone-a'), 'and its push channel')
    const told = agent.logs.lines.filter((l) => String(l.msg).startsWith('new device secret'))
    t.match(told, [{ level: 30, msg: `new device secret read from ${secretFile}; connecting again`, file: secretFile }], 'said once')
    for (const channel of ['mqtt', 'push']) {
      const warned = agent.logs.lines.filter((l) => l.level >= 40 && String(l.msg).startsWith(`${channel} refused this device`))
      t.equal(warned.length, 1, `${channel}: the refusal warned of once`)
    }
    const shown = agent.err() + JSON.stringify(agent.logs.lines)
    t.notOk(shown.includes(secret) || shown.includes(fresh), 'neither secret is in its log or on its terminal')
    t.equal(await agent.stop(), 0)
  },
)

t.test(
  'F1: a secret file deleted before the new one is written changes nothing (the old secret stays, retried); once ' +
    'written, the phone connects with it -- a phone with no push channel and no cloud too',
  async (t) => {
    const { cloud, clock, agent, secretFile } = await runningOnTerminal(t, false)
    cloud.broker.registry.remove('phone-a')
    await agent.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying' && l.attempt === 1)
    clock.advance(DEFAULT_BACKOFF.capMs)
    await refusedRetry(agent.logs, 'mqtt', 2)
    rmSync(secretFile)
    clock.advance(DEFAULT_BACKOFF.capMs)
    await refusedRetry(agent.logs, 'mqtt', 3)
    t.notOk(
      agent.logs.lines.some((l) => String(l.msg).startsWith('new device secret')),
      'no file, no new secret: it keeps retrying',
    )

    await addAgain(t, cloud, secretFile)
    clock.advance(DEFAULT_BACKOFF.capMs)
    t.equal((await nextTry(agent.logs, 4)).msg, 'mqtt accepted this device again', 'its next retry is taken, not refused')
    await agent.said(`Connected to the broker ${cloud.mqttUrl}: it accepts this device again`)
    t.ok(agent.logs.has(`new device secret read from ${secretFile}; connecting again`), 'said in its log')
    t.equal(await agent.stop(), 0)
  },
)

t.test('off a terminal: nothing but the log', async (t) => {
  const cloud = await startCloud(t)
  const { base } = await phoneOf(t, cloud)
  const io = testIo(cloud.clock)
  const running = main([...base, '--broker', cloud.mqttUrl], io.io)
  await io.logs.waitFor((l) => l.msg === 'agent started')
  await firstFixStored(cloud)
  io.abort()
  t.equal(await running, 0)
  t.equal(io.err(), '', 'no start-up lines')
})

/** The built CLI's agent on a config file, as the README's hobbyist runs it. */
async function configFile(t: Test): Promise<{ cloud: Cloud; config: string; phoneDir: string }> {
  assertBuilt()
  // The phone in its own process runs on real time: so does its cloud.
  const cloud = await startCloud(t, {}, new SystemClock())
  const { secretFile, phoneDir } = await deviceOnDisk(t, cloud)
  const config = join(tempDir(t), 'agent.json')
  writeFileSync(
    config,
    JSON.stringify({ id: 'phone-a', broker: cloud.wsUrl, dataDir: phoneDir, secretFile, location: 'fixed:55.95,-3.19' }),
  )
  return { cloud, config, phoneDir }
}

t.test(
  'the built CLI on a terminal: readable start-up lines, no JSON',
  { skip: hasScript ? false : 'no `script` (util-linux) to give the CLI a terminal' },
  async (t) => {
    const { cloud, config, phoneDir } = await configFile(t)
    const [env, args] = cliCommand(['agent', '--config', config])
    const command = [env, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
    // `script` runs it on a pseudo-terminal (stdout and stderr both), as a person at a terminal would.
    const proc = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = once(proc, 'exit')
    onEnd(t, () => {
      if (proc.exitCode === null) proc.kill('SIGKILL')
      return exited
    })
    let screen = ''
    proc.stdout.on('data', (d: Buffer) => (screen += d.toString()))
    // Connected (and said so) before its first fix went out; `script` passes on all it was given before it exits.
    await firstFixStored(cloud)
    proc.kill('SIGTERM')
    await exited
    const text = screen.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replaceAll('\r', '')
    t.match(text, `Phone phone-a, data directory ${phoneDir}\n  broker        ${cloud.wsUrl}\n  push channel  on, ${cloud.pushUrl}`)
    t.match(text, /owner key {5}none: every remote command is refused/)
    t.match(text, `\nConnected to the broker ${cloud.wsUrl}\n`)
    t.notMatch(text, /\{"level"/, 'no JSON log line')
  },
)

t.test('the built CLI through a pipe (as under systemd): JSON log lines on stdout, no start-up lines', async (t) => {
  const { cloud, config } = await configFile(t)
  const child = spawnCli(t, ['agent', '--config', config])
  let out = ''
  let err = ''
  child.proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  await child.waitForLog((l) => l.msg === 'agent started')
  await firstFixStored(cloud)
  t.equal(await child.stop(), 0)
  const lines = out.trimEnd().split('\n')
  t.ok(lines.length >= 2)
  for (const line of lines) t.match(JSON.parse(line), { level: Number, msg: String }, 'a JSON log line')
  t.equal(err, '\nSIGTERM: stopping (again to force)\n', 'stderr says only the stop')
})
