/**
 * At most so many phones coming up or going down at once (issue 12, fleet/gate.ts): the gate itself, and a FleetRun
 * that lets phones in no faster than it says, and lets the next ones in when a phone cannot be built or started.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import { Gate } from '../../fleet/gate.js'
import { FleetPhone } from '../../fleet/phone.js'
import { planFleet } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { FleetRun } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { startCloud } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

t.test('a gate lets in at most its size, the waiters first come, first served', async (t) => {
  const gate = new Gate(2)
  await gate.enter()
  await gate.enter()
  const order: number[] = []
  const waiters = [1, 2, 3].map((n) => gate.enter().then(() => void order.push(n)))
  t.equal(gate.holding, 2)
  t.equal(gate.queued, 3)
  gate.leave()
  gate.leave()
  await Promise.all(waiters.slice(0, 2))
  t.same(order, [1, 2], 'the two longest waiters went in')
  t.equal(gate.holding, 2, 'a waiter goes in in the place of the one that left')
  t.equal(gate.queued, 1)
  gate.leave()
  await waiters[2]
  t.same(order, [1, 2, 3])
  t.equal(gate.queued, 0)
  gate.leave()
  gate.leave()
  t.equal(gate.holding, 0, 'no one waiting: room is made')
  await gate.enter()
  t.equal(gate.holding, 1, 'and taken again')
  t.throws(() => new Gate(0), RangeError)
  t.throws(() => new Gate(Number.NaN), RangeError)
})

/** `count` phones, all due at the run's start, on a FleetRun that lets `phonesAtOnce` of them come up at once. */
async function gatedRun(t: Test, count: number, phonesAtOnce: number, dataDir?: (dir: string) => string) {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count, prefix: 'gate', clock })
  const run = new FleetRun({
    plan: planFleet(
      checkScenario({ groups: [{ name: 'g', heartbeat: { every: '1h' } }] }, 'gate', dir),
      'gate',
      credentials.devices.map((d) => d.id),
    ),
    devices: credentials.devices,
    ownerKey: () => undefined,
    brokerUrl: cloud.mqttUrl,
    pushUrl: cloud.pushUrl,
    dataDir: dataDir ? dataDir(dir) : join(dir, 'phones'),
    clock,
    log: cloud.logs.logger(),
    random: (i) => Rng.stream('gate', i, 'agent').next,
    phonesAtOnce,
  })
  t.teardown(() => run.stop())
  return { run, devices: credentials.devices }
}

t.test('a fleet brings its phones up, and stops them, at most phonesAtOnce at a time', async (t) => {
  // Phones stopping now, counted around the agent's own stop.
  const agentStop = FleetPhone.prototype.stop
  let stopping = 0
  let mostStopping = 0
  FleetPhone.prototype.stop = async function (this: FleetPhone): Promise<void> {
    mostStopping = Math.max(mostStopping, ++stopping)
    try {
      await agentStop.call(this)
    } finally {
      stopping--
    }
  }
  t.teardown(() => void (FleetPhone.prototype.stop = agentStop))
  const { run } = await gatedRun(t, 6, 2)
  let mostComing = 0
  let up = run.phonesUp()
  run.start()
  // Every turn of the event loop until all are connected: phones running but not connected are the ones coming up.
  while (up.connected < 6) {
    await new Promise((resolve) => setImmediate(resolve))
    up = run.phonesUp()
    mostComing = Math.max(mostComing, up.running - up.connected)
  }
  t.equal(mostComing, 2, 'never more than 2 phones coming up at once')
  t.equal(run.tally.phones.started, 6)
  await run.stop()
  t.equal(run.phonesUp().running, 0)
  t.equal(run.tally.phones.stopped, 6, 'every phone stopped')
  t.equal(mostStopping, 2, 'never more than 2 at once')
})

t.test('phones that cannot be built or started make room for the next ones', async (t) => {
  // Every phone's data directory under a file: no phone can make it, so every start fails.
  const failing = await gatedRun(t, 3, 1, (dir) => {
    writeFileSync(join(dir, 'file'), '')
    return join(dir, 'file', 'phones')
  })
  failing.run.start()
  await failing.run.ended
  await failing.run.settled()
  t.equal(failing.run.tally.phones.startFailures, 3, 'each phone tried, one after the other')

  // The first phone's kept cloud home is not JSON: that phone cannot be built; the other two come up.
  const phonesDir = (dir: string): string => join(dir, 'phones')
  const broken = await gatedRun(t, 3, 1, (dir) => {
    mkdirSync(join(phonesDir(dir), 'gate-00001'), { recursive: true })
    writeFileSync(join(phonesDir(dir), 'gate-00001', 'cloud-home.json'), 'not json')
    return phonesDir(dir)
  })
  broken.run.start()
  await broken.run.ended
  await broken.run.settled()
  t.equal(broken.devices[0]?.id, 'gate-00001')
  t.equal(broken.run.tally.phones.started, 2, 'the two others started')
  t.equal(broken.run.phonesUp().connected, 2)
})

t.test('a fleet stopped while phones wait for their turn starts none of them', async (t) => {
  const { run } = await gatedRun(t, 5, 1)
  run.start()
  while (run.tally.phones.started === 0) await new Promise((resolve) => setImmediate(resolve))
  await run.stop()
  t.equal(run.tally.phones.started, 1, 'only the phone let in at once started')
  t.equal(run.tally.phones.stopped, 1, 'and was stopped')
  t.equal(run.phonesUp().running, 0)
})
