/**
 * The daemons as systemd runs them, without systemd as PID 1: the built CLI
 * started the way the units start it (--config only, the secret as a
 * credential, $NOTIFY_SOCKET and $WATCHDOG_USEC set), with a stand-in for the
 * service manager's notify socket. Each says READY=1 once it serves, pets the
 * watchdog, and on SIGTERM says STOPPING=1 and exits 0.
 */
import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { assertBuilt, spawnCli } from '../fixtures/child.js'
import { run } from '../fixtures/io.js'
import { fakeServiceManager, noServiceManager } from '../fixtures/service-manager.js'
import { tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

t.test('broker and agent under a Type=notify unit: ready when serving, watchdog, clean stop', { skip: noServiceManager }, async (t) => {
  assertBuilt()
  const dir = tempDir(t)
  const data = join(dir, 'broker')
  const credentials = join(dir, 'credentials')
  mkdirSync(credentials)
  // Provisioning runs in this process (on the real clock, as a process of its own would); the units' daemons are processes.
  const added = await run(
    ['device', 'add', 'kitchen-pi', '--data', data, '--keys', join(data, 'keys'), '--secret-out', join(credentials, 'device-secret')],
    new SystemClock(),
  )
  t.equal(added.code, 0, added.err)

  const brokerManager = await fakeServiceManager(t)
  const brokerConfig = join(dir, 'broker.json')
  writeFileSync(brokerConfig, JSON.stringify({ dataDir: data, mqttPort: 0, httpPort: 0 }))
  const broker = spawnCli(t, ['broker', '--config', brokerConfig], { NOTIFY_SOCKET: brokerManager.socket, WATCHDOG_USEC: '400000' })
  const listening = await within(
    15_000,
    'the broker listening',
    broker.waitForLog((l) => l.msg === 'broker listening'),
  )
  t.match(
    await within(5000, 'READY=1 from the broker', brokerManager.waitFor('READY=1')),
    `READY=1 STATUS=listening on 127.0.0.1, MQTT ${String(listening.mqttPort)}, HTTP ${String(listening.httpPort)}`,
  )
  t.ok(
    await within(5000, 'a watchdog ping from the broker', brokerManager.waitFor('WATCHDOG=1')),
    'the broker pets its watchdog (every 200 ms here)',
  )

  const agentManager = await fakeServiceManager(t)
  const agentConfig = join(dir, 'agent-kitchen-pi.json')
  writeFileSync(
    agentConfig,
    JSON.stringify({
      id: 'kitchen-pi',
      broker: `mqtt://127.0.0.1:${String(listening.mqttPort)}`,
      dataDir: join(dir, 'phone'),
      location: 'fixed:55.95,-3.19',
    }),
  )
  const agent = spawnCli(t, ['agent', '--config', agentConfig], { NOTIFY_SOCKET: agentManager.socket, CREDENTIALS_DIRECTORY: credentials })
  t.equal(await within(15_000, 'READY=1 from the agent', agentManager.waitFor('READY=1')), 'READY=1 STATUS=phone kitchen-pi running')
  t.notOk(
    agent.proc.spawnargs.join(' ').includes(readFileSync(join(credentials, 'device-secret'), 'utf8').trim()),
    'the secret is not on the command line',
  )

  t.equal(await agent.stop(), 0, 'the agent exits 0 on SIGTERM')
  t.ok(await agentManager.waitFor('STOPPING=1'), 'after saying STOPPING=1')
  t.equal(await broker.stop(), 0, 'the broker exits 0 on SIGTERM')
  t.ok(await brokerManager.waitFor('STOPPING=1'))
})
