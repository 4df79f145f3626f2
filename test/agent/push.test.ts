/**
 * X3: with the framework's network permission revoked, notifications wait in
 * the cloud's durable queue and arrive later -- in order, once each, with
 * their delay -- or are marked expired; never lost. Also the push channel's
 * own life (reconnect with backoff, refusals) and the framework on its own.
 */
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { ConsoleClient } from '../../cli/console-client.js'
import { FrameworkConsole } from '../../cli/framework-client.js'
import { addDevice, startAgent, startCloud, type Cloud } from '../fixtures/cloud.js'
import { delivered, notify, onePhone, pushAtCloud, pushConnected, pushState, shownBy } from '../fixtures/framework.js'
import { onEnd, tempDir } from '../fixtures/scope.js'
import { ResidentFramework, type FrameworkOptions } from '../../agent/framework.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { ManualClock } from '../../common/clock.js'
import { REFUSED_WHY } from '../../common/mqtt.js'
import { LogCapture } from '../fixtures/logs.js'

const MINUTE = 60_000
const consoleOf = (cloud: Cloud): FrameworkConsole => new FrameworkConsole(new ConsoleClient(cloud.apiUrl, cloud.consoleToken))

t.test(
  'X3 while network permission is revoked, notifications wait in the queue; when it returns they arrive in order, once each, ' +
    'each showing how late it is',
  async (t) => {
    const { cloud, clock, agent } = await onePhone(t)
    const shown = shownBy(agent)
    const status = await agent.framework.setNetworkPermission(false)
    t.equal(status.pushChannel, 'blocked', 'no push connection is allowed')
    await pushAtCloud(cloud, 'phone-a', false)

    const api = consoleOf(cloud)
    const sent = []
    for (const [kind, title] of [
      ['weather', 'Yellow wind warning'],
      ['system-update', 'Update 1.2 is ready'],
      ['message', 'From the console'],
    ] as const) {
      sent.push((await api.notify('phone-a', { kind, title, body: `${title}.` })).notification)
      clock.advance(MINUTE)
    }
    clock.advance(9 * MINUTE)
    const queued = await api.notifications('phone-a', 10)
    t.same(
      queued.notifications.map((n) => n.state),
      ['queued', 'queued', 'queued'],
      'all three wait in the cloud',
    )
    t.equal(shown.all.length, 0, 'nothing reached the phone')

    await agent.framework.setNetworkPermission(true)
    const arrived = await shown.count(3)
    t.same(
      arrived.map((n) => n.id),
      sent.map((n) => n.id),
      'in the order they were queued',
    )
    t.same(
      arrived.map((n) => n.delayMs),
      [12 * MINUTE, 11 * MINUTE, 10 * MINUTE],
      'each shows how late it is',
    )
    for (const n of sent) await delivered(cloud, 'phone-a', n.id)
    const after = (await api.notifications('phone-a', 10)).notifications
    t.same(
      after.map((n) => [n.state, n.delayMs, n.sends]),
      [
        ['delivered', 12 * MINUTE, 1],
        ['delivered', 11 * MINUTE, 1],
        ['delivered', 10 * MINUTE, 1],
      ],
      'the console sees each delivered once, with its delay',
    )
    t.match(agent.status().framework.notifications, { shown: 3, duplicatesSuppressed: 0, recent: [{ title: 'From the console' }, {}, {}] })
  },
)

t.test(
  'X3 a notification whose time to live runs out while the permission is revoked is marked expired, shown so, and never delivered',
  async (t) => {
    const { cloud, clock, agent } = await onePhone(t)
    const shown = shownBy(agent)
    await agent.framework.setNetworkPermission(false)
    await pushAtCloud(cloud, 'phone-a', false)
    const api = consoleOf(cloud)
    const storm = (await api.notify('phone-a', { kind: 'weather', title: 'Storm until 18:00', ttlMs: 60 * MINUTE })).notification
    const later = notify(cloud, 'phone-a', { kind: 'weather', title: 'Storm warning lifted', ttlMs: 6 * 60 * MINUTE })
    const update = notify(cloud, 'phone-a', { kind: 'system-update', title: 'Update 1.3', ttlMs: 30 * MINUTE })
    t.equal(update.expiresAt - update.createdAt, 30 * MINUTE)
    const expired: string[] = []
    cloud.broker.framework.queue.on('expired', (rows) => expired.push(...rows.map((r) => r.id)))
    clock.advance(30 * MINUTE - 1)
    t.same(expired, [], 'nothing expires early')
    clock.advance(1)
    t.same(expired, [update.id], 'the shortest time to live runs out first')
    clock.advance(90 * MINUTE)
    t.same(expired, [update.id, storm.id])
    const rows = (await api.notifications('phone-a', 10)).notifications
    t.match(rows, [
      { id: storm.id, state: 'expired', expiredAt: storm.expiresAt },
      { id: later.id, state: 'queued' },
      { id: update.id, state: 'expired' },
    ])

    await agent.framework.setNetworkPermission(true)
    const [only] = await shown.count(1)
    t.equal(only?.id, later.id, 'only the one still alive arrives')
    await delivered(cloud, 'phone-a', later.id)
    t.equal(shown.all.length, 1)
    t.same(cloud.broker.framework.queue.counts('phone-a'), { queued: 0, delivered: 1, expired: 2 })
  },
)

t.test('X3 queued notifications survive a broker restart and are delivered once when the permission returns', async (t) => {
  const { cloud, clock, agent } = await onePhone(t)
  const shown = shownBy(agent)
  await agent.framework.setNetworkPermission(false)
  const first = notify(cloud, 'phone-a', { title: 'before the restart', ttlMs: 2 * 60 * MINUTE })
  const second = notify(cloud, 'phone-a', { title: 'also before', ttlMs: 10 * MINUTE })
  await cloud.restart()
  clock.advance(20 * MINUTE)
  t.match(
    cloud.broker.framework.queue.list('phone-a', 10),
    [
      { id: first.id, state: 'queued' },
      { id: second.id, state: 'expired' },
    ],
    'the queue and its deadlines came back from disk',
  )
  await agent.framework.setNetworkPermission(true)
  const [got] = await shown.count(1)
  t.equal(got?.id, first.id)
  t.equal(got?.delayMs, 20 * MINUTE)
  await delivered(cloud, 'phone-a', first.id)
})

t.test(
  'X3 a notification whose acknowledgement was lost is sent again, and the phone -- even restarted -- does not show it twice',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const dataDir = tempDir(t)
    const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
    await pushConnected(first)
    const n = notify(cloud, 'phone-a', { title: 'once only' })
    // The network goes at the worst moment: the phone has shown it, its acknowledgement is lost.
    const cut = new Promise<void>((resolve) =>
      first.framework.once('notification', () => {
        cloud.broker.framework.gateway.drop('phone-a')
        resolve()
      }),
    )
    await cut
    await first.stop()
    t.equal(cloud.broker.framework.queue.list('phone-a', 1)[0]?.state, 'queued', 'the cloud never heard the acknowledgement')
    t.match(
      JSON.parse(readFileSync(join(dataDir, 'push-inbox.json'), 'utf8')),
      { delivered: [n.id] },
      'the phone wrote the id down before acknowledging',
    )

    // Listening before start(): the push channel may connect, and be sent the notification again, before start() resolves.
    let shownAgain: ReturnType<typeof shownBy> | undefined
    let duplicate: Promise<string> | undefined
    const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir }, (agent) => {
      shownAgain = shownBy(agent)
      duplicate = new Promise<string>((resolve) => agent.framework.once('duplicate', resolve))
    })
    t.equal(await duplicate, n.id, 'sent again after the reconnect, recognised by its id')
    const record = await delivered(cloud, 'phone-a', n.id)
    t.equal(record.sends, 2)
    t.equal(shownAgain?.all.length, 0, 'not shown a second time')
    t.match(second.status().framework.notifications, { shown: 1, duplicatesSuppressed: 1 })
  },
)

t.test(
  'the push channel reconnects with capped, jittered backoff on the injected clock when the cloud goes away, and gets what was ' +
    'queued meanwhile',
  async (t) => {
    const { cloud, clock, agent } = await onePhone(t)
    const shown = shownBy(agent)
    await cloud.restart()
    await pushState(agent, 'waiting')
    // The test agent's backoff: 100 ms doubling to 1 s; random() = 0.5 puts the first retry at 75 ms.
    t.match(await cloud.logs.waitFor((l) => l.msg === 'push disconnected, retrying'), { delayMs: 75, attempt: 1 })
    const n = notify(cloud, 'phone-a', { title: 'while you were away' })
    clock.advance(74)
    t.equal(agent.status().framework.pushChannel, 'waiting', 'not before its time')
    clock.advance(1)
    t.equal(agent.status().framework.pushChannel, 'connecting')
    await pushConnected(agent)
    t.equal((await shown.count(1))[0]?.id, n.id)
  },
)

t.test(
  'a phone whose permission was revoked stays off the push channel across a restart; a wrong secret is refused and retried',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const dataDir = tempDir(t)
    const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
    await first.framework.setNetworkPermission(false)
    t.equal((await first.framework.setNetworkPermission(false)).pushChannel, 'blocked', 'revoking twice changes nothing')
    await first.stop()
    const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
    t.equal(second.status().framework.pushChannel, 'blocked')
    t.equal(second.status().framework.networkPermission, false)

    await addDevice(cloud, 'phone-b')
    const impostor = await startAgent(t, cloud, 'phone-b', 'not-the-secret')
    await pushState(impostor, 'waiting')
    t.ok(
      await cloud.logs.waitFor((l) => l.msg === `push refused this device: ${REFUSED_WHY}` && l.code === 4001 && l.level === 40),
      'the phone hears why, as a warning',
    )
    t.ok(cloud.logs.has('push connection refused'), 'the cloud says why')
    t.equal(cloud.broker.framework.gateway.connected('phone-b'), false)
    await cloud.logs.waitFor((l) => l.device === 'phone-b' && /^mqtt refused this device/.test(String(l.msg)))
    t.match(impostor.status(), { dataChannel: 'waiting', dataChannelRefused: true }, '`phone status` can say the broker refuses it')
    t.equal(second.status().dataChannelRefused, undefined, 'a phone the broker takes has no such mark')
  },
)

function options(dataDir: string, extra: Partial<FrameworkOptions> = {}): FrameworkOptions {
  return {
    credentials: new DeviceCredentials('phone-a', 's'),
    dataDir,
    clock: new ManualClock(),
    log: new LogCapture().logger(),
    random: () => 0.5,
    phone: () => ({ cloudService: true, network: 'wifi' }),
    data: { connected: () => false, publish: () => Promise.reject(new Error('unused')) },
    ...extra,
  }
}

t.test('X3 without a push endpoint there is no push channel, and the permission switch still saves and is recorded', async (t) => {
  const dataDir = tempDir(t)
  const framework = new ResidentFramework(options(dataDir))
  await framework.start()
  t.equal(framework.status().pushChannel, 'off')
  t.match(await framework.setNetworkPermission(false), { pushChannel: 'off', networkPermission: false, logs: { waiting: 1 } })
  t.match(await framework.setNetworkPermission(true), { networkPermission: true, logs: { waiting: 2 } })
  await framework.stop()
  const again = new ResidentFramework(options(dataDir))
  await again.start()
  t.match(again.status(), { networkPermission: true, logs: { waiting: 2 } }, 'settings and waiting events survive a restart')
  await again.stop()
})

/** A cloud and phone-a's framework, its push channel up at the cloud, logging to a capture. */
async function pushedPhone(t: Test): Promise<{ cloud: Cloud; dataDir: string; logs: LogCapture; framework: ResidentFramework }> {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const logs = new LogCapture()
  const framework = new ResidentFramework(
    options(dataDir, {
      credentials: new DeviceCredentials('phone-a', secret),
      pushUrl: cloud.pushUrl,
      clock: cloud.clock,
      log: logs.logger(),
    }),
  )
  onEnd(t, () => framework.stop())
  await framework.start()
  await pushAtCloud(cloud, 'phone-a', true)
  return { cloud, dataDir, logs, framework }
}

t.test('X3 a notification the phone cannot write down is not acknowledged, so the cloud keeps it', async (t) => {
  const { cloud, dataDir, logs, framework } = await pushedPhone(t)
  rmSync(dataDir, { recursive: true })
  const n = notify(cloud, 'phone-a', { title: 'disk full' })
  t.match(await logs.waitFor((l) => l.msg === 'could not take in a notification; the cloud will send it again'), { id: n.id })
  mkdirSync(dataDir)
  t.equal(cloud.broker.framework.queue.list('phone-a', 1)[0]?.state, 'queued')
  t.equal(framework.status().notifications.shown, 0)
})

t.test('X3 a notification met by a full disk is not acknowledged and leaves no temporary file; the next one is shown', async (t) => {
  const { cloud, dataDir, logs, framework } = await pushedPhone(t)
  // A real ENOSPC: the inbox's temporary file is /dev/full, which takes no byte.
  const tmp = join(dataDir, 'push-inbox.json.tmp')
  symlinkSync('/dev/full', tmp)
  const n = notify(cloud, 'phone-a', { title: 'disk full' })
  t.match(await logs.waitFor((l) => l.msg === 'could not take in a notification; the cloud will send it again'), {
    id: n.id,
    err: /ENOSPC/,
  })
  t.equal(cloud.broker.framework.queue.list('phone-a', 1)[0]?.state, 'queued', 'not acknowledged: the cloud keeps it')
  t.equal(framework.status().notifications.shown, 0)
  t.notOk(existsSync(tmp), 'the temporary file is removed (here the link: room again)')
  const shown = new Promise((resolve) => framework.once('notification', resolve))
  const next = notify(cloud, 'phone-a', { title: 'room again' })
  t.match(await shown, { id: next.id, title: 'room again' })
})
