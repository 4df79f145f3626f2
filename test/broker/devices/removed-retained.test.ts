/**
 * F1, X1, M1: what the broker keeps handing out of a phone that is no longer
 * one. A device removed (through the broker, or by `fakephone device remove`
 * in another process while the phone is connected and says nothing) loses
 * every way in at once -- its MQTT session, its push connection, its HTTP
 * credentials however recently verified -- and its retained presence and
 * status are cleared: a console already watching sees them emptied, a new
 * subscriber is handed nothing of it. A purge (M1) clears its phones'
 * retained messages too, while they stay registered and connected. Real
 * broker, real agent, real MQTT clients, ports the OS chose.
 */
import t from 'tap'
import type { ManualClock } from '../../../common/clock.js'
import {
  addDevice,
  agentConnected,
  basicAuth,
  cloudCall,
  cloudWithAgent,
  connectConsole,
  connectDevice,
  firstFix,
  startAgent,
  startCloud,
  type Cloud,
} from '../../fixtures/cloud.js'
import { pushAtCloud } from '../../fixtures/framework.js'
import { run } from '../../fixtures/io.js'
import type { Test } from 'tap'

const DAY = 86_400_000
const REMOVED_LINE = 'device removed: disconnected, its queued messages dropped, its retained presence and status cleared'
const RETAINED = ['presence', 'status'] as const
const MARKER = 'phone-marker'
const MARKER_TOPIC = `fp/v1/${MARKER}/presence`
const presence = (state: string, at: number): string => JSON.stringify({ state, at })
const status = (at: number): string => JSON.stringify({ cloudService: true, findDevice: true, at })

/** A console watching every phone's presence and status: each message as `topic payload` (an empty payload: `topic `). */
async function watch(
  t: Test,
  cloud: Cloud,
): Promise<{
  seen: string[]
  heard(start: string): Promise<void>
  cleared(id: string): Promise<void>
  saidAgain(id: string): Promise<void>
}> {
  const client = await connectConsole(t, cloud)
  const seen: string[] = []
  const waiters: (() => void)[] = []
  client.on('message', (topic, payload) => {
    seen.push(`${topic} ${payload.toString()}`)
    for (const wake of waiters.splice(0)) wake()
  })
  await client.subscribeAsync(['fp/v1/+/presence', 'fp/v1/+/status'], { qos: 1 })
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) await new Promise<void>((resolve) => waiters.push(resolve))
  }
  return {
    seen,
    heard: (start) => until(() => seen.some((m) => m.startsWith(start))),
    cleared: (id) => until(() => RETAINED.every((kind) => seen.includes(`fp/v1/${id}/${kind} `))),
    // Its presence and status, each said (a JSON payload) after the broker emptied it.
    saidAgain: (id) =>
      until(() =>
        RETAINED.every((kind) => {
          const emptied = seen.indexOf(`fp/v1/${id}/${kind} `)
          return emptied >= 0 && seen.slice(emptied + 1).some((m) => m.startsWith(`fp/v1/${id}/${kind} {`))
        }),
      ),
  }
}

/** A device of `account` whose retained presence marks the end of what a new subscriber is handed (see retainedNow). */
async function marker(t: Test, cloud: Cloud, account: string): Promise<void> {
  const client = await connectDevice(t, cloud, MARKER, await addDevice(cloud, MARKER, account))
  await client.publishAsync(`fp/v1/${MARKER}/presence`, presence('online', 1), { qos: 1, retain: true })
}

/**
 * What a console that subscribes now is handed of `ids` (`topic payload` for each retained message), by exact topics
 * (the broker's retained index) and by a wildcard per device (Aedes' store). The marker's topic comes last in the same
 * SUBSCRIBE: both hand the retained messages of its topics in their order, so once the marker's arrives, the rest has.
 */
async function retainedNow(t: Test, cloud: Cloud, ids: readonly string[]): Promise<{ exact: string[]; wildcard: string[] }> {
  const hand = async (topics: string[]): Promise<string[]> => {
    const client = await connectConsole(t, cloud)
    const got: string[] = []
    const end = new Promise<void>((resolve) =>
      client.on('message', (topic, payload, packet) => {
        if (topic === MARKER_TOPIC) resolve()
        else if (packet.retain) got.push(`${topic} ${payload.toString()}`)
      }),
    )
    await client.subscribeAsync([...topics, MARKER_TOPIC], { qos: 1 })
    await end
    return got.sort()
  }
  return {
    exact: await hand(ids.flatMap((id) => RETAINED.map((kind) => `fp/v1/${id}/${kind}`))),
    wildcard: await hand(ids.map((id) => `fp/v1/${id}/+`)),
  }
}

t.test(
  'F1, X1: a device removed while its phone is connected loses its MQTT session, its push connection and its HTTP ' +
    'credentials at once; a console watching sees its retained presence and status cleared, a new one is handed none',
  async (t) => {
    const { cloud, secret } = await cloudWithAgent(t, 'phone-a')
    await marker(t, cloud, 'alice')
    await pushAtCloud(cloud, 'phone-a', true)
    const watcher = await watch(t, cloud)
    await watcher.heard('fp/v1/phone-a/status {')
    const before = await retainedNow(t, cloud, ['phone-a'])
    t.match(before.exact, [/^fp\/v1\/phone-a\/presence \{"state":"online"/, /^fp\/v1\/phone-a\/status \{"cloudService":true/])
    const phone = basicAuth('phone-a', secret)
    // The phone's data channel over HTTP, its credentials verified (and remembered) just before.
    t.equal((await cloudCall(cloud, phone, 'GET', '/cloud/v1/sync/notes/changes?since=0')).status, 200)

    cloud.broker.registry.remove('phone-a')

    await watcher.cleared('phone-a')
    t.pass('the console watching sees its presence and status emptied (an empty retained publish each)')
    t.same(await retainedNow(t, cloud, ['phone-a']), { exact: [], wildcard: [] }, 'a console that subscribes now is handed nothing of it')
    t.notOk(cloud.broker.isConnected('phone-a'), 'its MQTT session is closed')
    t.match(await cloud.logs.waitFor((l) => l.msg === REMOVED_LINE), { deviceId: 'phone-a' }, 'with the reason logged')
    await pushAtCloud(cloud, 'phone-a', false)
    t.match(
      cloud.logs.lines.find((l) => l.msg === 'push connection refused' && l.deviceId === 'phone-a'),
      { reason: 'the device was removed' },
      'its push connection is closed, the reason logged',
    )
    t.match(
      await cloudCall(cloud, phone, 'GET', '/cloud/v1/sync/notes/changes?since=0'),
      { status: 401, body: { code: 'UNAUTHORIZED' } },
      'its HTTP credentials are refused at once, not a minute later',
    )
    const refused = cloud.logs.waitFor((l) => l.msg === 'connection refused' && l.clientId === 'phone-a')
    ;(cloud.clock as ManualClock).advance(1000)
    t.match(await refused, { reason: 'unknown device or wrong secret' }, 'its agent, trying again, is refused')
    const listed = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/devices')
    t.same(
      (listed.body.devices as { id: string }[]).map((d) => d.id),
      [MARKER],
      '`console devices` lists it no more',
    )
  },
)

t.test(
  'F1: `fakephone device remove` in another process while the broker runs and the phone says nothing: the broker ' +
    'disconnects it and clears its retained presence and status without waiting for a message; the CLI says so',
  async (t) => {
    // Every message judged on a fresh read of the registry, none arming a later look: only the broker's own finds it.
    const cloud = await startCloud(t, { registryRecheckMs: 0 })
    const agent = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'))
    const fix = firstFix(cloud, agent)
    await agentConnected(agent)
    await fix
    await marker(t, cloud, 'alice')
    const watcher = await watch(t, cloud)
    await watcher.heard('fp/v1/phone-a/status {')
    const gone = new Promise<void>((resolve) => agent.on('channel', () => agent.status().dataChannel !== 'connected' && resolve()))

    const removed = await run(['device', 'remove', 'phone-a', '--data', cloud.dataDir])
    t.equal(
      removed.out,
      `Removed device phone-a. Its credentials no longer work; a broker running on ${cloud.dataDir} disconnects it within ` +
        'a second and clears its retained presence and status.\n',
    )

    // No heartbeat is due (the clock does not move) and no other phone speaks: only the broker's own look finds it.
    await gone
    t.pass("the phone's data channel is closed")
    await watcher.cleared('phone-a')
    t.same(await retainedNow(t, cloud, ['phone-a']), { exact: [], wildcard: [] }, 'a new subscriber is handed nothing of it')
    t.ok(cloud.logs.has(REMOVED_LINE), 'the reason logged')
  },
)

t.test(
  "M1: a purge clears the retained presence and status of the account's phones, connected or away; they stay " +
    'registered and connected, a connected phone says both again at once (a watcher subscribing later finds it ' +
    "online), one away says them when it is back, and another account's phones keep theirs",
  async (t) => {
    const { cloud, agent } = await cloudWithAgent(t, 'phone-a')
    const clock = cloud.clock as ManualClock
    // phone-b of the same account, away at the purge: its last word is its will, "offline".
    const secretB = await addDevice(cloud, 'phone-b', 'alice')
    const away = await connectDevice(t, cloud, 'phone-b', secretB, {
      will: { topic: 'fp/v1/phone-b/presence', payload: Buffer.from(presence('offline', 1)), qos: 1, retain: true },
    })
    await away.publishAsync('fp/v1/phone-b/presence', presence('online', clock.now()), { qos: 1, retain: true })
    await away.publishAsync('fp/v1/phone-b/status', status(clock.now()), { qos: 1, retain: true })
    away.stream.destroy()
    // bob exported his data: it is kept 30 days past that, beyond the end of this test.
    const bob = await connectDevice(t, cloud, 'phone-c', await addDevice(cloud, 'phone-c', 'bob'))
    await bob.publishAsync('fp/v1/phone-c/presence', presence('online', clock.now()), { qos: 1, retain: true })
    await bob.publishAsync('fp/v1/phone-c/status', status(clock.now()), { qos: 1, retain: true })
    await marker(t, cloud, 'bob')
    cloud.broker.cloud.retirement.markMigrated('bob', 'export', clock.now() + 40 * DAY)
    const before = await retainedNow(t, cloud, ['phone-a', 'phone-b'])
    t.match(before.exact, [
      /phone-a\/presence \{"state":"online"/,
      /phone-a\/status/,
      /phone-b\/presence \{"state":"offline"/,
      /phone-b\/status/,
    ])
    const watcher = await watch(t, cloud)

    const plan = { announce: 'now', syncOff: '7d', migrationDeadline: '30d', shutdown: '60d' }
    t.equal((await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'PUT', '/api/service/retirement', plan)).status, 200)
    clock.advance(61 * DAY)
    t.equal(cloud.broker.cloud.retirement.accountNow('alice')?.access, 'purged')

    await watcher.cleared('phone-a')
    await watcher.cleared('phone-b')
    t.pass('a console watching sees both phones of the account emptied')
    const purgedAt = clock.now()
    // phone-a, connected, hears its own presence and status emptied and says them again: its word, not the broker's.
    await watcher.saidAgain('phone-a')
    t.ok(
      cloud.logs.has('the broker cleared what it retains of this phone: presence and status said again'),
      'the phone says why in its log',
    )
    agent.receiveRetainedCleared(Buffer.from('{"at":-1}'))
    t.match(
      await cloud.logs.waitFor((l) => l.msg === 'cleared message refused'),
      { reason: /at/ },
      'one that breaks the contract is logged',
    )
    t.same(await retainedNow(t, cloud, ['phone-b']), { exact: [], wildcard: [] }, 'a new subscriber is handed nothing of phone-b, away')
    const later = await retainedNow(t, cloud, ['phone-a'])
    t.match(
      later.exact,
      [
        `fp/v1/phone-a/presence {"state":"online","at":${purgedAt}}`,
        /^fp\/v1\/phone-a\/status \{"cloudService":true,"findDevice":true,.*"at":/,
      ],
      'and online with its switches of phone-a, said after the purge',
    )
    t.same(later.wildcard, later.exact)
    t.match(await cloud.logs.waitFor((l) => l.msg === "M1: the purged account's phones: their retained presence and status cleared"), {
      account: 'alice',
      phones: 2,
    })
    t.match(
      (await retainedNow(t, cloud, ['phone-c'])).exact,
      [/phone-c\/presence \{"state":"online"/, /phone-c\/status/],
      "bob's phone, not purged, keeps its own",
    )
    t.notOk(
      watcher.seen.some((m) => m.startsWith('fp/v1/phone-c/') && m.endsWith(' ')),
      'and nothing of it was emptied',
    )
    t.ok(cloud.broker.registry.get('phone-a') && cloud.broker.isConnected('phone-a'), 'phone-a stays registered and connected')
    await agentConnected(agent)

    // phone-b comes back: it stays registered, and what it says now is its word, retained again.
    const back = await connectDevice(t, cloud, 'phone-b', secretB)
    await back.publishAsync('fp/v1/phone-b/presence', presence('online', clock.now()), { qos: 1, retain: true })
    t.match((await retainedNow(t, cloud, ['phone-b'])).exact, [/phone-b\/presence \{"state":"online"/])
  },
)
