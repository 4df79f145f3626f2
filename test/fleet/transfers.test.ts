/**
 * A fleet whose scenario seeds data and syncs (issue 12; S1, S3, B1): phones seeded before their first start upload
 * what they hold to a real broker's cloud, the report's transfers match what the cloud holds, a sync switch off holds a
 * category back until it is on again, the same seed seeds the same bytes, and a run that lost a transfer says so.
 */
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ConsoleClient } from '../../cli/console-client.js'
import { ManualClock } from '../../common/clock.js'
import { OwnerKeys, readPublicKey } from '../../common/signing.js'
import { planFleet, type FleetPlan } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { buildReport, renderReport, type FleetReport } from '../../fleet/report.js'
import { FleetRun } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { itemsOf } from '../../fleet/session.js'
import { noResources, noTransfers } from '../../fleet/merge.js'
import { startCloud } from '../fixtures/cloud.js'
import { closedPort } from '../fixtures/ports.js'
import { FleetMetrics } from '../../fleet/metrics.js'
import type { FleetPhone } from '../../fleet/phone.js'
import { Tally } from '../../fleet/tally.js'
import { countTransfers } from '../../fleet/transfers.js'
import { offlineRunOptions } from '../fixtures/fleet-run.js'
import { tempDir } from '../fixtures/scope.js'

/** A run of `count` phones of `scenario` on a ManualClock against a cloud of its own, with the cloud's HTTP side for sync. */
async function syncRun(t: Test, scenario: object, count = 3, seed = 's', cloudUrl?: string, adjust = (plan: FleetPlan) => plan) {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count, prefix: 'sy', clock })
  const keys = new OwnerKeys(credentials.keysDir)
  const plan = adjust(
    planFleet(
      checkScenario(scenario, 'sync', dir),
      seed,
      credentials.devices.map((d) => d.id),
    ),
  )
  const client = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const run = new FleetRun({
    plan,
    devices: credentials.devices,
    ownerKey: (account) => readPublicKey(keys.ownerKeyFile(account)),
    brokerUrl: cloud.mqttUrl,
    cloudUrl: cloudUrl ?? cloud.apiUrl,
    dataDir: join(dir, 'phones'),
    clock,
    log: cloud.logs.logger(),
    random: (i) => Rng.stream(seed, i, 'agent').next,
  })
  t.teardown(() => run.stop())
  const report = async (): Promise<FleetReport> => {
    const meta = { scenario: 'sync', seed, durationMs: 1, fleet: { size: count, scenarioHash: 'x', shards: { count: 1, parts: [1] } } }
    return buildReport(run, meta, noResources(), () => null, null, undefined, itemsOf(client))
  }
  return { clock, cloud, dir, run, credentials, client, report }
}

/** The phone's items under its data directory `dir` (relative path → SHA-256): photos, contacts, notes and recordings. */
function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (/^[^.].*\.(jpg|vcf|txt|wav)$/.test(name))
        out[relative(dir, path)] = createHash('sha256').update(readFileSync(path)).digest('hex')
    }
  }
  walk(dir)
  return out
}

/** The cloud's live items of an account, as `category/id`, sorted. */
async function cloudItems(client: ConsoleClient, account: string): Promise<string[]> {
  return [...(await itemsOf(client)(account))].sort()
}

const SEEDED = { groups: [{ name: 'camera', data: { photos: 2, contacts: 3 } }] }

t.test(
  'S1 B1: phones seeded with photos and contacts upload exactly those items; the report counts them, stored by the cloud',
  async (t) => {
    const { run, credentials, client, report, dir } = await syncRun(t, SEEDED)
    run.start()
    const said: string[] = []
    await run.settled(15_000, (what) => said.push(what))
    t.match(said, [/3 phones still uploading/], 'the wait before the report names the uploads')
    for (const d of credentials.devices) {
      const files = Object.keys(hashes(join(dir, 'phones', d.id)))
      t.equal(files.filter((f) => f.endsWith('.jpg')).length, 2, `${d.id}: 2 photos seeded`)
      t.equal(files.filter((f) => f.endsWith('.vcf')).length, 3, `${d.id}: 3 contacts seeded`)
      const names = files.map((f) => f.split('/').pop() as string).sort()
      const held = (await cloudItems(client, d.account)).map((i) => i.split('/')[1] as string).sort()
      t.same(held, names, `${d.id}: the cloud holds exactly the phone's items`)
    }
    await run.stop()
    const r = await report()
    t.same(r.transfers, { ...noTransfers(), phones: 3, seeded: 15, uploaded: 15, stored: 15 })
    t.ok(r.ok, 'nothing lost')
    t.match(renderReport(r), /transfers {5}15 items seeded on 3 phones, 15 uploaded, 15 stored, 0 failed attempts, 0 pending/)
  },
)

t.test('S1 S3: photos seeded with sync.photos off stay on the phone until the switch is on, then go up', async (t) => {
  const scenario = {
    groups: [
      {
        name: 'camera',
        data: { photos: 2, contacts: 1 },
        sync: { photos: false },
        switches: [{ at: '10s', name: 'sync.photos', on: true }],
      },
    ],
  }
  const { run, clock, credentials, client } = await syncRun(t, scenario, 1)
  const account = credentials.devices[0]!.account
  run.start()
  await run.settled()
  t.same(
    (await cloudItems(client, account)).map((i) => i.split('/')[0]),
    ['contacts'],
    'before the switch: the contact went up, no photo did',
  )
  t.equal(run.tally.transfers.uploaded, 1)
  clock.advance(10_000)
  await run.settled()
  t.same(
    (await cloudItems(client, account)).map((i) => i.split('/')[0]),
    ['contacts', 'photos', 'photos'],
    'after sync.photos on: both photos are in the cloud',
  )
  t.equal(run.tally.transfers.uploaded, 3)
  t.equal(run.tally.phones.switches, 1)
  t.same(run.transferEnds(), { phones: 1, pending: 0, held: 0 }, 'nothing pending is known before the phone stops')
})

t.test('S1 B1: a switch that holds a category back is not a loss; the backup switch is flipped as planned', async (t) => {
  const scenario = {
    groups: [
      {
        name: 'camera',
        heartbeat: { every: '10m' },
        data: { notes: 2 },
        sync: { notes: false, backup: false },
        switches: [{ at: '5s', name: 'backup', on: true }],
      },
    ],
  }
  const { run, clock, report } = await syncRun(t, scenario, 2)
  run.start()
  await run.settled()
  clock.advance(5_000)
  await run.settled()
  await run.stop()
  const r = await report()
  t.match(r.transfers, { seeded: 4, uploaded: 0, pending: 4, held: 4, lost: 0 })
  t.ok(r.ok, 'held back by the switch: nothing lost')
  t.equal(r.phones.switches, 2, 'backup switched on, on both phones')
  t.same(
    run
      .eventLog()
      .filter((e) => e.kind === 'switch')
      .map((e) => `${e.t} ${e.detail}`),
    ['5000 backup=on', '5000 backup=on'],
  )
})

t.test('the same seed seeds byte-identical files; another seed other files', async (t) => {
  const scenario = { groups: [{ name: 'camera', data: { photos: 1, contacts: 1, notes: 1, recordings: 1 }, sync: { backup: false } }] }
  const seeded = async (seed: string): Promise<Record<string, string>[]> => {
    const { run, dir, credentials } = await syncRun(t, scenario, 2, seed)
    run.start()
    await run.settled()
    await run.stop()
    return credentials.devices.map((d) => hashes(join(dir, 'phones', d.id)))
  }
  const [a, b, c] = [await seeded('one'), await seeded('one'), await seeded('two')]
  t.equal(Object.keys(a[0]!).length, 4, 'one of each kind')
  t.same(b, a, 'the same seed: the same files, byte for byte')
  t.not(JSON.stringify(a[0]), JSON.stringify(a[1]), 'each phone its own files')
  t.not(JSON.stringify(c), JSON.stringify(a), 'another seed: other files')
})

t.test('S1: items seeded with their sync on that never reach the cloud are lost, with why, and the run fails', async (t) => {
  const unreachable = `http://127.0.0.1:${await closedPort()}`
  const scenario = { groups: [{ name: 'camera', heartbeat: { every: '10m' }, data: { contacts: 2 } }] }
  const { run, report } = await syncRun(t, scenario, 1, 's', unreachable)
  run.start()
  await run.settled()
  await run.stop()
  const r = await report()
  t.match(r.transfers, { seeded: 2, uploaded: 0, stored: 0, pending: 2, held: 0, lost: 2 })
  t.ok((r.transfers.failures.UNREACHABLE as number) > 0, `failed attempts counted by code: ${JSON.stringify(r.transfers.failures)}`)
  t.notOk(r.ok)
  const text = renderReport(r)
  t.match(text, /failed attempts? \(\d+ UNREACHABLE\), 2 pending at the end \(0 held by a switch or an outage\), 2 lost/)
  t.match(text, /result: FAILED/)
})

t.test('S1 X1: items the cloud service held back, or an outage the phone is not back from, are held, not lost', async (t) => {
  const scenario = {
    groups: [
      {
        name: 'off',
        share: 1,
        data: { notes: 1 },
        sync: { notes: false },
        switches: [
          { at: '1s', name: 'cloudService', on: false },
          { at: '2s', name: 'sync.notes', on: true },
        ],
      },
    ],
  }
  // The second phone goes away at 3 s for good (its items are uploaded by then), after an outage it came back from.
  const { run, clock, report } = await syncRun(t, scenario, 2, 's', undefined, (plan) => {
    plan.phones[1]!.outages = [
      { at: 1500, forMs: 500 },
      { at: 3000, forMs: 1e9 },
    ]
    plan.phones[1]!.switches = []
    return plan
  })
  run.start()
  await run.settled()
  for (const step of [1000, 500, 500, 500, 500, 500]) {
    clock.advance(step)
    await run.settled()
  }
  await run.stop()
  const r = await report()
  t.match(
    r.transfers,
    { seeded: 2, pending: 2, held: 2, lost: 0 },
    'both notes held: one behind the cloud service switched off, one on a phone away for good',
  )
  t.ok(r.ok)
  t.match(r.phones, { started: 3, restarts: 1 })
  t.match(renderReport(r), /: 2 of 2 phones started, 1 restart after an outage, /)
})

t.test("a run whose scenario syncs, built without the cloud's HTTP side, is refused at once", async (t) => {
  const plan = planFleet(checkScenario({ groups: [{ name: 'camera', data: { notes: 1 } }] }, 'sync', '.'), 's', ['d'])
  t.throws(() => new FleetRun(offlineRunOptions(t, plan, [{ id: 'd', account: 'a', secret: 's' }])), {
    message: "a group of the scenario syncs (data, sync): the run needs the cloud's HTTP side (cloudUrl)",
  })
})

t.test("B1: a syncing phone's backups made and failed, and its uploads, are counted once each", async (t) => {
  const tally = new Tally()
  const metrics = new FleetMetrics(() => 0)
  const phone = { sync: new EventEmitter(), backup: new EventEmitter() }
  countTransfers(phone as unknown as FleetPhone, 'd', 'acc', tally, metrics)
  phone.sync.emit('uploaded', 'notes', 'n.txt')
  phone.sync.emit('uploaded', 'notes', 'n.txt')
  phone.sync.emit('failed', 'notes', null, new Error('disk'))
  phone.backup.emit('made', {})
  phone.backup.emit('failed', 'the cloud is away')
  t.same(tally.transfers, { seeded: 0, uploaded: 1, failed: 1, backupsMade: 1, backupsFailed: 1 })
  t.same([...tally.transferFailures], [['ERROR', 1]], 'an error without a code counts as ERROR')
  const text = await metrics.registry.metrics()
  for (const outcome of ['uploaded', 'failed', 'backup-made', 'backup-failed'])
    t.match(text, `fakephone_fleet_transfers_total{outcome="${outcome}"} 1`)
})

t.test('B1: a backup under way when the run ends is waited for before the report, not cut and counted failed', async (t) => {
  const scenario = { groups: [{ name: 'camera', heartbeat: { every: '1h' }, data: { contacts: 1 } }] }
  const { run, clock, cloud, report } = await syncRun(t, scenario, 1)
  run.start()
  await run.settled()
  // The cloud plans backups at 03:00 (its clock starts at midnight); the phone answers the plan with its backup.
  clock.advance(3 * 3_600_000)
  // Stored in the cloud: the phone has yet to hear the answer to its registration, so its backup is under way.
  await cloud.logs.waitFor((l) => /^backup .+ stored/.test(l.msg))
  const said: string[] = []
  await run.settled(15_000, (what) => said.push(what))
  t.same(said, ['1 phone still uploading'], 'the wait names it')
  await run.stop()
  t.same((await report()).transfers.backups, { made: 1, failed: 0 })
})
