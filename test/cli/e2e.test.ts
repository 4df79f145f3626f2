/**
 * End to end, the way a user runs it: the built CLI as separate processes
 * (device add, broker, agent, phone, console), talking over real sockets.
 * F1 heartbeats reach the console; F3 Find Device off takes the map position
 * offline; X1 the push channel delivers a console notification to the
 * phone; SIGTERM stops each daemon cleanly with exit code 0.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { assertBuilt, runCli, spawnCli } from '../fixtures/child.js'
import { run } from '../fixtures/io.js'
import { connect, recordMessages } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

t.test('F1/F3/X1 end to end with the built CLI: broker, agent, phone and console as separate processes', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const secretFile = join(data, 'e2e.secret')
  const added = await runCli([
    'device',
    'add',
    'e2e-phone',
    '--account',
    'qa',
    '--data',
    data,
    '--keys',
    join(data, 'keys'),
    '--secret-out',
    secretFile,
  ])
  t.equal(added.code, 0, added.err)

  const broker = spawnCli(t, ['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const listening = await broker.waitForLog((l) => l.msg === 'broker listening')
  const mqttUrl = `mqtt://127.0.0.1:${String(listening.mqttPort)}`
  const api = ['console', '--api', `http://127.0.0.1:${String(listening.httpPort)}`, '--data', data]

  const token = readFileSync(join(data, 'console.token'), 'utf8').trim()
  const watcher = await connect(t, mqttUrl, { clientId: 'console.e2e', username: 'console', password: token })
  await watcher.subscribeAsync(['fp/v1/e2e-phone/heartbeat', 'fp/v1/e2e-phone/status'], { qos: 1 })
  const messages = recordMessages(watcher)

  const phoneDir = join(data, 'phone')
  const agent = spawnCli(t, [
    'agent',
    '--id',
    'e2e-phone',
    '--secret-file',
    secretFile,
    '--broker',
    mqttUrl,
    '--data',
    phoneDir,
    '--interval',
    '200ms',
    '--push',
    `ws://127.0.0.1:${String(listening.httpPort)}/push`,
  ])
  await messages.waitFor((topic) => topic === 'fp/v1/e2e-phone/heartbeat')

  const devices = await runCli([...api, '--json', 'devices'])
  t.equal(devices.code, 0, devices.err)
  const view = JSON.parse(devices.out).devices[0]
  t.match(view, { id: 'e2e-phone', account: 'qa', online: true, findDevice: true, locationOffAt: null })
  t.ok(Math.abs(view.last.lat - 55.95) < 0.01, 'the phone is on the built-in Edinburgh route')

  const off = await runCli(['phone', '--data', phoneDir, 'find-device', 'off'])
  t.match(off.out, /Find Device\s+off/)
  await messages.waitFor((topic, status) => topic.endsWith('/status') && (status as { findDevice: boolean }).findDevice === false)
  const after = JSON.parse((await runCli([...api, '--json', 'devices'])).out).devices[0]
  t.ok(after.locationOffAt, 'the console shows the map position offline')
  t.match((await runCli([...api, 'devices'])).out, /e2e-phone\s+qa\s+online\s+offline \(Find Device off\)/)

  const notified = await runCli([...api, 'notify', 'e2e-phone', '--kind', 'weather', '--title', 'Gale warning'])
  t.equal(notified.code, 0, notified.err)
  const shown = await agent.waitForLog((l) => l.msg === 'notification shown')
  t.match(shown, { kind: 'weather' }, 'the phone showed it')
  t.notOk('title' in shown, 'its log at info names the kind, not the title (it can be personal)')
  t.match((await runCli(['phone', '--data', phoneDir, 'notifications'])).out, /weather +Gale warning /, 'the phone lists it')

  t.equal(await agent.stop(), 0, 'the agent exits 0 on SIGTERM')
  t.equal(await broker.stop('SIGINT'), 0, 'the broker exits 0 on Ctrl-C')
  t.ok(await broker.waitForLog((l) => l.msg === 'broker stopped'))
})

// The brokers and the agent are processes (one is killed); device add and the console commands, run as processes in the
// test above, run in this process on the real clock here.
t.test('F2 a broker killed (SIGKILL) with commands in flight loses none of them', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const keys = join(data, 'keys')
  const secretFile = join(data, 'p.secret')
  t.equal(
    (await run(['device', 'add', 'kill-phone', '--data', data, '--keys', keys, '--secret-out', secretFile], new SystemClock())).code,
    0,
  )

  const first = spawnCli(t, ['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const up = await first.waitForLog((l) => l.msg === 'broker listening')
  const api = (port: unknown) => ['console', '--api', `http://127.0.0.1:${String(port)}`, '--data', data]
  const issued: string[] = []
  for (const cmd of [
    ['ring', 'kill-phone', '--seconds', '2'],
    ['lock', 'kill-phone', '--message', 'found?', '--phone', '1'],
    ['locate', 'kill-phone'],
  ]) {
    const r = await run([...api(up.httpPort), ...cmd, '--keys', keys, '--wait', '0ms'], new SystemClock())
    t.equal(r.code, 0, r.err)
    issued.push(/command ([0-9a-f-]{36}) is queued/.exec(r.out)?.[1] as string)
  }
  t.equal(await first.stop('SIGKILL'), null, 'the broker was killed, not stopped')

  const second = spawnCli(t, ['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const again = await second.waitForLog((l) => l.msg === 'broker listening')
  const agent = spawnCli(t, [
    'agent',
    '--id',
    'kill-phone',
    '--secret-file',
    secretFile,
    '--owner-key',
    join(keys, 'default.pub'),
    '--broker',
    `mqtt://127.0.0.1:${String(again.mqttPort)}`,
    '--data',
    join(data, 'phone'),
  ])
  const token = readFileSync(join(data, 'console.token'), 'utf8').trim()
  const { ConsoleClient } = await import('../../cli/console-client.js')
  const client = new ConsoleClient(`http://127.0.0.1:${String(again.httpPort)}`, token)
  for (const id of issued) {
    const { command } = await client.command(id, 30_000)
    t.equal(command.state, 'succeeded', `${command.type} survived the kill and ran`)
  }
  t.equal(await agent.stop(), 0)
  t.equal(await second.stop(), 0)
})
