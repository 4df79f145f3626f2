/**
 * `fleet run --shard I/N` (issue 12): three shards of a 12-phone fleet, run side by side against one broker on a
 * ManualClock, have between them exactly the devices and the event log of the same fleet run whole.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { ConsoleClient } from '../../cli/console-client.js'
import { ManualClock } from '../../common/clock.js'
import { OwnerKeys, readPublicKey } from '../../common/signing.js'
import { HttpFleetConsole } from '../../fleet/console-driver.js'
import { planFleet } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { FleetRun, type FleetEvent } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { slicePlan, type Shard } from '../../fleet/shard.js'
import { startCloud } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

const PHONES = 12
const SEED = 'shards'

const loaded = checkScenario(
  {
    name: 'sharded',
    stages: [
      { kind: 'ramp-up', rate: 4 },
      { kind: 'steady', for: '8s' },
      { kind: 'ramp-down', rate: 4 },
    ],
    groups: [
      {
        name: 'walk',
        movement: { type: 'random-walk', centre: [55.95, -3.19], radiusM: 200 },
        heartbeat: { every: '2s', jitter: 0.3 },
        outages: { every: '6s', for: '2s' },
        switches: [{ at: '5s', name: 'findDevice', on: false, share: 0.5 }],
      },
      {
        name: 'desk',
        movement: { type: 'stationary', at: [51.5, -0.12] },
        heartbeat: { every: '3s' },
        commands: { answer: { succeed: 0.5, fail: 0.3, ignore: 0.2 } },
      },
    ],
    console: { commands: { every: '4s', types: ['locate', 'ring'] }, notifications: { every: '5s' } },
  },
  'sharded',
  '.',
)

const order = (a: FleetEvent, b: FleetEvent): number =>
  a.t - b.t || a.device.localeCompare(b.device) || a.kind.localeCompare(b.kind) || a.detail.localeCompare(b.detail)

/** The fleet's shards (all of it when `shards` is 1), run side by side on one broker and one ManualClock to the end. */
async function runShards(t: Test, shards: number): Promise<{ ids: string[][]; events: FleetEvent[] }> {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count: PHONES, prefix: 'sh', accounts: 2, clock })
  const keys = new OwnerKeys(credentials.keysDir)
  const whole = planFleet(
    loaded,
    SEED,
    credentials.devices.map((d) => d.id),
  )
  const runs = Array.from({ length: shards }, (_, i) => {
    const shard: Shard = { index: i + 1, count: shards }
    const plan = slicePlan(whole, shard)
    const run = new FleetRun({
      plan,
      devices: plan.phones.map((p) => credentials.devices[p.index]!),
      ownerKey: (account) => readPublicKey(keys.ownerKeyFile(account)),
      brokerUrl: cloud.mqttUrl,
      pushUrl: cloud.pushUrl,
      dataDir: join(dir, `shard-${i + 1}`),
      clock,
      log: cloud.logs.logger(),
      console: new HttpFleetConsole(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), keys),
      backoff: { baseMs: 50, capMs: 200 },
      random: (index) => Rng.stream(SEED, index, 'agent').next,
    })
    t.teardown(() => run.stop())
    return { plan, run }
  })
  const settled = (): Promise<unknown> => Promise.all(runs.map((r) => r.run.settled()))
  for (const r of runs) r.run.start()
  await settled()
  for (let i = 0; i < 100 && clock.now() - Date.UTC(2026, 0, 1) <= whole.endAt; i++) {
    clock.advance(500)
    await settled()
  }
  await Promise.all(runs.map((r) => r.run.stop()))
  return { ids: runs.map((r) => r.plan.phones.map((p) => p.id)), events: runs.flatMap((r) => r.run.events).sort(order) }
}

t.test('the union of 3 shards is the unsharded fleet: the same devices, the same events at the same times', async (t) => {
  const [whole, sharded] = await Promise.all([runShards(t, 1), runShards(t, 3)])
  const all = whole.ids[0]!
  t.equal(all.length, PHONES)
  t.same(
    sharded.ids.map((ids) => ids.length),
    [4, 4, 4],
    'every shard has a third of the phones',
  )
  t.same(sharded.ids.flat().sort(), all, 'each device in exactly one shard')
  t.same(sharded.ids[1]!.slice(0, 2), ['sh-00002', 'sh-00005'], 'shard 2/3 has every third phone from the second')
  const kinds = new Set(whole.events.map((e) => e.kind))
  for (const k of ['start', 'stop', 'heartbeat', 'outage', 'back', 'switch', 'command', 'notify'])
    t.ok(kinds.has(k), `the log has ${k} events`)
  t.ok(whole.events.length > 100, `${whole.events.length} events`)
  t.same(sharded.events, whole.events, "the shards' events are the unsharded run's, one for one")
})
