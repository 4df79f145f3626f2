/** The fleet's less travelled paths (issue 12): refused switches (F4), bad command payloads, failed starts, an interrupted run. */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConsoleApiError } from '../../cli/console-client.js'
import { commandAt } from '../../cli/sign-command.js'
import { ManualClock, SystemClock } from '../../common/clock.js'
import { OwnerKeys, readPublicKey, signPayload } from '../../common/signing.js'
import type { Command } from '../../common/contract.js'
import { HttpFleetConsole } from '../../fleet/console-driver.js'
import { mergeReports } from '../../fleet/merge.js'
import { FleetMetrics } from '../../fleet/metrics.js'
import { FleetPhone } from '../../fleet/phone.js'
import { planFleet } from '../../fleet/plan.js'
import { Rng } from '../../fleet/prng.js'
import { provision } from '../../fleet/provision.js'
import { buildReport, renderReport, type FleetReport } from '../../fleet/report.js'
import { FleetRun } from '../../fleet/runner.js'
import { checkScenario } from '../../fleet/scenario.js'
import { runSession, type SessionOptions } from '../../fleet/session.js'
import { Tally } from '../../fleet/tally.js'
import { run as runCli } from '../fixtures/io.js'
import { startCloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'
import { commandState, listening, makeOwner, signed, strangerKey, unsigned, type Owner } from '../fixtures/owner.js'
import { offlineRunOptions, onePhoneRun } from '../fixtures/fleet-run.js'
import { tempDir } from '../fixtures/scope.js'
import { announcedKeepAlive } from '../fixtures/keep-alive.js'

/** A fleet phone `p-1` that never connects (port 1), with `seen`: what its hooks were told, in order. */
function offlineFleetPhone(
  dir: string,
  plan: ConstructorParameters<typeof FleetPhone>[1],
  opts: { clock: ManualClock; ownerKey?: ConstructorParameters<typeof FleetPhone>[0]['ownerKey'] },
): { phone: FleetPhone; seen: string[] } {
  const seen: string[] = []
  const phone = new FleetPhone(
    {
      id: 'p-1',
      secret: 's'.repeat(43),
      brokerUrl: 'mqtt://127.0.0.1:1',
      dataDir: join(dir, 'p'),
      log: new LogCapture().logger(),
      location: plan.location(0),
      heartbeatMs: 1000,
      jitter: 0,
      ...opts,
    },
    plan,
    {
      received: (id) => seen.push(`received ${id}`),
      ignored: (id) => seen.push(`ignored ${id}`),
      failed: (id) => seen.push(`failed ${id}`),
    },
  )
  return { phone, seen }
}

t.test('F4: a planned Find Device switch-off in lost mode is refused and logged; the run goes on', async (t) => {
  const { clock, cloud, keys, device, run } = await onePhoneRun(
    t,
    'f4',
    (dir) =>
      checkScenario(
        {
          stages: [{ kind: 'steady', for: '20s' }],
          groups: [
            {
              name: 'g',
              switches: [
                { at: '10s', name: 'findDevice', on: false },
                { at: '12s', name: 'cloudService', on: false },
                { at: '14s', name: 'cloudService', on: true },
              ],
            },
          ],
          console: { notifications: { every: '3s' } },
        },
        'f4',
        dir,
      ),
    {
      // A console whose notifications never reach the cloud: the run waits for them in vain, within its limit.
      console: {
        command: () => Promise.resolve('submitted'),
        fates: () => Promise.reject(new Error('unused')),
        notify: () => Promise.resolve('never'),
      },
    },
  )
  run.start()
  await run.settled()
  await listening(cloud, device.id)
  const owner: Owner = { keys, privateKey: keys.signingKey(device.account), publicKey: readPublicKey(keys.ownerKeyFile(device.account)) }
  const lost = signed(owner, device.id, 'lost-mode', { on: true, message: 'lost', phone: '123' }, clock.now())
  const done = commandState(cloud, lost.id)
  cloud.broker.commands.submit(device.id, lost)
  t.equal((await done).state, 'succeeded')
  const forged = signPayload(unsigned(device.id, 'ring', { seconds: 1 }, clock.now()), strangerKey()) as Command
  const refusedByPhone = commandState(cloud, forged.id)
  cloud.broker.commands.submit(device.id, forged)
  t.equal((await refusedByPhone).state, 'rejected', 'a command the owner did not sign is rejected by the phone, not counted as answered')
  t.equal(run.tally.commands.answered, 0, 'the lost-mode command ran, but this run did not send it: not in its report')
  clock.advance(10_000)
  await run.settled()
  const refused = run.eventLog().find((e) => e.kind === 'switch-refused')
  t.match(refused?.detail, /^findDevice=off: Find Device cannot be turned off in lost mode/)
  t.equal(run.tally.phones.switchesRefused, 1)
  t.equal(run.phonesUp().running, 1, 'the phone keeps running')
  clock.advance(5000)
  await run.settled()
  t.match(await run.metrics.registry.metrics(), /^fakephone_fleet_reconnects_total 1$/m, 'cloud service off and on: one reconnect')
  await run.notificationsShown(120)
  t.ok(run.notificationCounts().issued > 0 && run.notificationCounts().shown === 0, 'queued notifications that never came are counted')
})

t.test('a command the console API does not take is counted unsent, and the report counts it lost', async (t) => {
  const { clock, cloud, run } = await onePhoneRun(
    t,
    'unsent',
    (dir) => checkScenario({ stages: [{ kind: 'steady', for: '10s' }], console: { commands: { every: '1s' } } }, 'unsent', dir),
    {
      console: {
        command: () => Promise.reject(new Error('the console API is down')),
        fates: () => Promise.reject(new Error('unused')),
        notify: () => Promise.reject(new Error('unused')),
      },
    },
  )
  run.start()
  await run.settled()
  clock.advance(10_000)
  await run.settled()
  t.ok(run.tally.commands.issued > 0, `${run.tally.commands.issued} issued`)
  t.equal(run.tally.commands.unsent, run.tally.commands.issued, 'none reached the cloud')
  t.ok(cloud.logs.has('fleet console call failed'))
})

t.test("F3: a run's command a phone refuses (Find Device off) is received, not answered, by the phones' count", async (t) => {
  let smuggled = 0
  const f3 = await onePhoneRun(
    t,
    'f3',
    (dir) =>
      checkScenario(
        {
          stages: [{ kind: 'steady', for: '10s' }],
          groups: [{ name: 'g', switches: [{ at: '1s', name: 'findDevice', on: false }], commands: { answer: { succeed: 1 } } }],
          console: { commands: { every: '1s' } },
        },
        'f3',
        dir,
      ),
    (cloud) => ({
      // A console past the cloud's own F3 check (which would refuse these at submission): each command of the run goes
      // straight to the phone once its Find Device is off, and is waited for until the phone's receipt reaches the cloud.
      console: {
        command: async (c) => {
          if (f3.run.elapsed < 2000) return 'submitted'
          const command = commandAt(f3.keys, f3.keys.signingKey(c.account), { ...c, args: {}, type: 'locate' })
          const receipt = cloud.logs.waitFor((l) => l.msg === 'result for an unknown command ignored' && l.command === c.id)
          cloud.broker.sendToDevice(c.device, JSON.stringify(command))
          await receipt
          smuggled++
          return 'submitted'
        },
        fates: () => Promise.reject(new Error('unused')),
        notify: () => Promise.reject(new Error('unused')),
      },
    }),
  )
  const { clock, run } = f3
  run.start()
  await run.settled()
  for (let i = 0; i < 20; i++) {
    clock.advance(500)
    await run.settled()
  }
  t.ok(smuggled > 0, `${smuggled} commands reached the phone with Find Device off`)
  t.equal(run.tally.commands.received, smuggled, 'each received')
  t.equal(run.tally.commands.answered, 0, 'none answered: the phone refused them all')
})

t.test('F1: a second run of the same devices, in a new work folder, has its heartbeats stored, not dropped as replays', async (t) => {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const dir = tempDir(t)
  const credentials = provision({ dataDir: cloud.dataDir, keysDir: join(dir, 'keys'), count: 1, prefix: 'again', clock })
  const device = credentials.devices[0]!
  const loaded = checkScenario(
    { stages: [{ kind: 'steady', for: '5s' }], groups: [{ name: 'g', heartbeat: { every: '1s' } }] },
    'again',
    dir,
  )
  /** One run of the device, in its own work folder (as `fleet run` without --work), until it sent `beats` heartbeats. */
  const runOnce = async (work: string, beats: number): Promise<FleetRun> => {
    const run = new FleetRun({
      plan: planFleet(loaded, 's', [device.id]),
      devices: credentials.devices,
      ownerKey: () => undefined,
      brokerUrl: cloud.mqttUrl,
      dataDir: join(dir, work),
      clock,
      log: cloud.logs.logger(),
      random: (i) => Rng.stream('s', i, 'agent').next,
    })
    run.start()
    await run.settled()
    // A heartbeat is sent once its seq is reserved (a file write): each step waits for the one it made due.
    for (let i = 1; i <= beats; i++) {
      clock.advance(1200)
      while (run.tally.heartbeats.sent < i) await new Promise((resolve) => setImmediate(resolve))
    }
    await run.settled()
    await run.stop()
    return run
  }
  const first = await runOnce('run-1', 2)
  clock.advance(60_000)
  const second = await runOnce('run-2', 2)
  const stored = cloud.broker.store.history(device.id, 100)
  t.equal(stored.length, first.tally.heartbeats.sent + second.tally.heartbeats.sent, "the cloud kept both runs' heartbeats")
  const secondSeqs = [...(second.tally.sentSeqs.get(device.id) ?? [])]
  t.ok(
    secondSeqs.every((seq) => stored.some((h) => h.seq === seq && h.at >= clock.now() - 10_000)),
    "each of the second run's seqs is stored as the second run's fix",
  )
  t.equal(cloud.broker.store.device(device.id)?.last?.seq, Math.max(...secondSeqs), "the console shows the second run's position")
})

t.test("X3: the report counts the run's own notifications only, also one shown before the console API answered with its id", async (t) => {
  const { clock, cloud, device, run } = await onePhoneRun(
    t,
    'notes',
    (dir) => checkScenario({ stages: [{ kind: 'steady', for: '10s' }], console: { notifications: { every: '2s' } } }, 'notes', dir),
    (cloud) => ({
      pushUrl: cloud.pushUrl,
      console: {
        command: () => Promise.reject(new Error('unused')),
        fates: () => Promise.reject(new Error('unused')),
        // Queued in the cloud, but the id comes back only once the phone has shown it (a slow console API answer).
        notify: async (id, title) => {
          const queue = cloud.broker.framework.queue
          const record = queue.enqueue(id, { kind: 'message', title, body: '' })
          await new Promise<void>((resolve) => {
            const delivered = (r: { id: string }): void => void (r.id === record.id && (queue.off('delivered', delivered), resolve()))
            queue.on('delivered', delivered)
          })
          return record.id
        },
      },
    }),
  )
  // Left in the cloud by someone else (an earlier run, a person at the console) and shown when the phone connects.
  const stranger = once(cloud.broker.framework.queue, 'delivered')
  cloud.broker.framework.queue.enqueue(device.id, { kind: 'message', title: 'from an earlier run', body: '' })
  run.start()
  await stranger
  await run.settled()
  clock.advance(10_000)
  await run.settled()
  const { issued, shown } = run.notificationCounts()
  t.ok(issued > 0, `${issued} queued by the run`)
  t.equal(shown, issued, "every one of the run's shown, each counted once its id was known")
  t.equal(run.tally.notifications.shown, issued, 'the stranger is not counted')
  t.equal(run.tally.notificationDelay.percentiles().count, issued, "nor in the run's latencies")
})

t.test('a run told to keep no heartbeat events counts every heartbeat and logs the rest', async (t) => {
  const { clock, run } = await onePhoneRun(
    t,
    'hb',
    (dir) => checkScenario({ stages: [{ kind: 'steady', for: '10s' }], groups: [{ name: 'g', heartbeat: { every: '1s' } }] }, 'hb', dir),
    { heartbeatEvents: false },
  )
  run.start()
  await run.settled()
  // A heartbeat is sent once its seq is reserved (a file write): each step waits for the one it made due.
  for (let i = 1; i <= 3; i++) {
    clock.advance(1200)
    while (run.tally.heartbeats.sent < i) await new Promise((resolve) => setImmediate(resolve))
  }
  await run.settled()
  t.ok(run.tally.heartbeats.sent >= 3, `${run.tally.heartbeats.sent} heartbeats sent`)
  t.equal(run.tally.heartbeats.acked, run.tally.heartbeats.sent, 'and acknowledged')
  t.same(
    run.eventLog().map((e) => e.kind),
    ['start'],
    'the log has the start, no heartbeat',
  )
})

t.test("F2: a fleet's phones obey an account's key only when the fleet's keys folder can sign for that account", async (t) => {
  const keys = new OwnerKeys(join(tempDir(t), 'keys'))
  keys.signingKey('alice')
  t.same(keys.existingOwnerKey('alice')?.export({ format: 'jwk' }), readPublicKey(keys.ownerKeyFile('alice')).export({ format: 'jwk' }))
  t.equal(keys.existingOwnerKey('bob'), undefined, 'no signing key here: no owner key, so its phones refuse every command')
})

t.test(
  "F2: a fleet phone counts each of its run's commands once; one the run did not send is answered as its group plans, not counted",
  async (t) => {
    const dir = tempDir(t)
    const clock = new ManualClock()
    const owner = makeOwner(t, 'acct')
    const scenario = checkScenario(
      {
        groups: [{ name: 'g', commands: { answer: { succeed: 0, fail: 0.5, ignore: 0.5 } } }],
        console: { commands: { every: '1s' } },
      },
      'x',
      dir,
    )
    const plan = planFleet(scenario, 's', ['p-1'], 60_000, 'run-1').phones[0]!
    const { phone, seen } = offlineFleetPhone(dir, plan, { clock, ownerKey: owner.publicKey })
    t.teardown(() => phone.stop())
    const settled: string[] = []
    phone.remote.on('settled', (id, handling) => settled.push(`${handling} ${id}`))
    const failing = plan.commands.find((c) => plan.answer(c.id).answer === 'fail')!
    const ignoring = plan.commands.find((c) => plan.answer(c.id).answer === 'ignore')!
    const command = (id: string): Buffer => Buffer.from(JSON.stringify(signed(owner, 'p-1', 'locate', {}, clock.now(), { id })))
    // Each delivered twice, as after a reconnect.
    for (const id of [failing.id, ignoring.id, failing.id, ignoring.id]) await phone.remote.receive(command(id))
    // Sent from the console under test by hand (or an earlier run's, left queued in the cloud): not this run's. The group
    // answers it as planned all the same (succeed 0): one the plan fails, one it ignores, whatever their ids.
    mkdirSync(join(dir, 'p'), { recursive: true }) // the phone is not started: its journal's folder, made here
    const others = Array.from({ length: 64 }, () => signed(owner, 'p-1', 'locate', {}, clock.now()))
    const otherFailing = others.find((c) => plan.answer(c.id).answer === 'fail')!
    const otherIgnored = others.find((c) => plan.answer(c.id).answer === 'ignore')!
    for (const other of [otherFailing, otherIgnored, otherIgnored]) await phone.remote.receive(Buffer.from(JSON.stringify(other)))
    t.same(
      seen,
      [`received ${failing.id}`, `failed ${failing.id}`, `ignored ${ignoring.id}`],
      "each of the run's commands counted once; the others not at all",
    )
    t.same(
      settled,
      [`ran ${failing.id}`, `repeat ${failing.id}`, `ran ${otherFailing.id}`],
      'the other commands answered as the scenario says: one failed, one ignored (no receipt), each time it comes',
    )
    t.match(phone.remote.journal.entry(otherFailing.id)?.result, {
      state: 'failed',
      reason: 'the fleet scenario has this phone fail the command',
    })
    t.equal(phone.isOurs(otherFailing.id), false)
  },
)

t.test('a fleet phone passes a payload without a command id to the agent, which rejects it', async (t) => {
  const dir = tempDir(t)
  const plan = planFleet(checkScenario({}, 'x', dir), 's', ['p-1']).phones[0]!
  const { phone, seen } = offlineFleetPhone(dir, plan, { clock: new ManualClock() })
  const settled: string[] = []
  phone.remote.on('settled', (_id, handling) => settled.push(handling))
  await phone.remote.receive(Buffer.from('not json'))
  await phone.remote.receive(Buffer.from('{"no":"id"}'))
  t.same(seen, [], 'no id: nothing to plan an answer for')
  t.same(settled, ['rejected', 'rejected'], 'the agent rejects both, as any phone does')
  await phone.stop()
})

t.test("the metrics endpoint answers /metrics, with the process's own figures, and nothing else", async (t) => {
  const metrics = new FleetMetrics(() => 3)
  const served = await metrics.serve(0)
  t.teardown(() => served.close())
  const base = `http://127.0.0.1:${served.port}`
  t.equal((await fetch(`${base}/other`)).status, 404)
  const res = await fetch(`${base}/metrics`)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const text = await res.text()
  t.match(text, /^fakephone_fleet_phones_connected 3$/m)
  for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'process_open_fds'])
    t.match(text, new RegExp(`^${name} \\d`, 'm'), name)
})

t.test('the latency buckets tell a loopback PUBACK (under a millisecond) and a notification held through an outage apart', async (t) => {
  const metrics = new FleetMetrics(() => 0)
  for (const s of [0.0003, 0.0008]) metrics.heartbeatAck.observe(s)
  metrics.notificationDelay.observe(45)
  const text = await metrics.registry.metrics()
  const bucket = (name: string, le: string): string | undefined =>
    new RegExp(`^fakephone_fleet_${name}_seconds_bucket\\{le="${le}"\\} (\\d+)$`, 'm').exec(text)?.[1]
  t.same(
    [bucket('heartbeat_puback', '0.0005'), bucket('heartbeat_puback', '0.001')],
    ['1', '2'],
    '0.3 ms and 0.8 ms in buckets of their own',
  )
  t.same([bucket('notification_delay', '30'), bucket('notification_delay', '60')], ['0', '1'], '45 s below a bucket, not only +Inf')
})

t.test("/metrics keeps a scraper's connection open between scrapes, longer than Prometheus waits between two", async (t) => {
  const served = await new FleetMetrics(() => 3).serve(0)
  t.teardown(() => served.close())
  const { status, hint, ms } = await announcedKeepAlive(`http://127.0.0.1:${served.port}/metrics`)
  t.equal(status, 200)
  // Prometheus scrapes every minute unless told (every 15 s in its example configuration) on one kept-alive connection.
  t.ok(ms > 60_000, `it holds the connection longer (${hint}) than the minute between two scrapes`)
})

t.test('tallies, the console driver and the report say what went wrong', async (t) => {
  const tally = new Tally()
  tally.heartbeatSent('d', 1)
  tally.heartbeatAcked('d', 1, 5)
  tally.heartbeatAcked('d', 1, 6)
  t.same(tally.heartbeats, { sent: 1, acked: 1, duplicateAcks: 1 }, 'a second PUBACK for one seq is a duplicate')

  const failing = new HttpFleetConsole(
    {
      submit: () => Promise.reject(new ConsoleApiError(500, 'the cloud broke')),
    } as unknown as ConstructorParameters<typeof HttpFleetConsole>[0],
    { nextSeq: () => 1, existingSigningKey: () => undefined, dir: 'keys' } as unknown as OwnerKeys,
  )
  const c = {
    device: 'd',
    account: 'a',
    type: 'locate' as const,
    id: '0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a10',
    expected: 'succeed' as const,
    now: 1,
  }
  await t.rejects(failing.command(c), { message: 'no owner key for account "a" in keys' })

  const report = { ok: false, phones: { started: 0 }, heartbeats: {}, commands: {}, notifications: {}, resources: {} }
  t.match(
    renderReport(
      JSON.parse(
        JSON.stringify({
          ...report,
          scenario: 's',
          seed: '1',
          durationMs: 0,
          fleet: { size: 1, scenarioHash: '0', shards: { count: 1, parts: [1] } },
          phones: { target: 1, lost: 0, started: 1, stopped: 0, outages: 0, startFailures: 1, switches: 0, switchesRefused: 0 },
          heartbeats: { sent: 0, acked: 0, stored: null, lost: 0, duplicated: 0, ackMs: { count: 0 } },
          commands: { answerMs: { count: 0 } },
          notifications: { delayMs: { count: 0 } },
          transfers: { phones: 0 },
          resources: { rssStartMb: 1, rssPeakMb: 1, rssPerPhoneKb: 0, cpuUserMs: 0, cpuSystemMs: 0, cpuPerMessageUs: 0, loopDelayP99Ms: 0 },
        }),
      ) as FleetReport,
    ),
    /result: FAILED/,
  )
})

t.test("the report's commands and notifications add up: issued = answered + refused + ignored as planned + lost", async (t) => {
  const meta = { scenario: 's', seed: '1', durationMs: 1, fleet: { size: 1, scenarioHash: '0', shards: { count: 1, parts: [1] } } }
  const resources = {
    rssStartMb: 1,
    rssPeakMb: 1,
    rssPerPhoneKb: 0,
    cpuUserMs: 0,
    cpuSystemMs: 0,
    cpuPerMessageUs: 0,
    loopDelayP99Ms: 0,
  } as FleetReport['resources']
  const runOf = (tally: Tally, notes: { issued: number; shown: number }) =>
    ({
      tally,
      notificationCounts: () => notes,
      phonesUp: () => ({ target: 1 }),
      transferEnds: () => ({ phones: 0, pending: 0, held: 0 }),
    }) as unknown as FleetRun
  const tally = new Tally()
  // 12 issued: 2 refused by the cloud at submission, 1 the console API did not take, 9 submitted. Of those the phones
  // ignored 1 as planned; another planned ignore never reached its phone; one phone refused one (F3: Find Device off).
  Object.assign(tally.commands, { issued: 12, refused: 2, unsent: 1, received: 6, answered: 6, failedByScenario: 1, ignoredByScenario: 1 })
  Object.assign(tally.notifications, { issued: 3 })
  const fates = { answered: 5, refused: 1, ignored: 2, lost: 1, unreconciled: 0 }
  const r = await buildReport(runOf(tally, { issued: 2, shown: 2 }), meta, resources, () => null, fates)
  const c = r.commands
  t.same(
    [c.answered, c.refused, c.ignoredByScenario, c.lost],
    [5, 3, 2, 2],
    "the console's fates, with the cloud's refusals and the unsent",
  )
  t.equal(c.answered + c.refused + c.ignoredByScenario + c.lost, c.issued, 'every issued command accounted for once')
  t.equal(c.answeredByPhones, 6, "the phones' own count, beside the console's")
  t.match(renderReport(r), '\n  commands      12 issued, 6 received, 6 answered by the phones (5 reconciled with the console), 3 refused, ')
  t.same(
    [r.notifications.issued, r.notifications.shown, r.notifications.lost],
    [3, 2, 1],
    'a notification the console could not queue is lost',
  )
  t.notOk(r.ok)

  // OwnTracks phones: no console of the fleet's own; a cmd sent by hand is received and answered by the phone.
  const own = new Tally()
  Object.assign(own.commands, { received: 1, answered: 1 })
  const o = await buildReport(runOf(own, { issued: 0, shown: 0 }), meta, resources, () => null, null)
  t.same([o.commands.received, o.commands.answered, o.commands.lost], [1, 1, 0], "without a console, the phones' own count")
  t.match(renderReport(o), '\n  commands      0 issued, 1 received, 1 answered by the phones, 0 refused, ', 'nothing to reconcile')
  t.ok(o.ok)
})

t.test('a console API that fails when asked what the cloud stored: the report comes, by PUBACKs, saying why', async (t) => {
  const meta = { scenario: 's', seed: '1', durationMs: 1, fleet: { size: 1, scenarioHash: '0', shards: { count: 1, parts: [1] } } }
  const resources = { rssStartMb: 1, rssPeakMb: 1, rssPerPhoneKb: 0, cpuUserMs: 0, cpuSystemMs: 0, cpuPerMessageUs: 0, loopDelayP99Ms: 0 }
  const runOf = (tally: Tally) =>
    ({
      tally,
      notificationCounts: () => ({ issued: 0, shown: 0 }),
      phonesUp: () => ({ target: 2 }),
      transferEnds: () => ({ phones: 1, pending: 0, held: 0 }),
    }) as unknown as FleetRun
  const tally = new Tally()
  for (const device of ['a', 'b']) for (const seq of [1, 2]) tally.heartbeatSent(device, seq)
  tally.heartbeatAcked('a', 1, 1)
  tally.heartbeatAcked('b', 1, 1)
  tally.heartbeatAcked('b', 2, 1)
  const asked: string[] = []
  const stored = (device: string) => {
    asked.push(device)
    return Promise.reject(new ConsoleApiError(0, 'cannot reach the broker at http://127.0.0.1:9'))
  }
  const fates = { answered: 0, refused: 0, ignored: 0, lost: 0, unreconciled: 0 }
  const r = await buildReport(runOf(tally), meta, resources as FleetReport['resources'], stored, fates)
  t.same(asked, ['a'], 'asked once: the next device is not tried again')
  t.same([r.heartbeats.stored, r.heartbeats.lost], [null, 1], 'stored unknown; the one not acknowledged lost')
  t.equal(r.apiError, 'cannot reach the broker at http://127.0.0.1:9')
  t.notOk(r.ok)
  const text = renderReport(r)
  t.match(text, '\n  console API   stopped answering before the report: cannot reach the broker at http://127.0.0.1:9\n')
  t.match(text, /\nresult: FAILED, the console API stopped answering \(heartbeats stored unknown\)\n$/)
  t.notMatch(text, /not reconciled/, 'no command was left unreconciled')

  // S1: asked what the cloud holds of the items uploaded, the console API fails: transfers stored unknown, saying why.
  const uploads = new Tally()
  t.ok(uploads.itemUploaded('a', 'acc', 'photos/IMG_1.jpg'))
  t.notOk(uploads.itemUploaded('a', 'acc', 'photos/IMG_1.jpg'), 'an item uploaded again is counted once')
  const items = (account: string) => Promise.reject(new ConsoleApiError(0, `cannot reach the broker for ${account}`))
  const u = await buildReport(runOf(uploads), meta, resources as FleetReport['resources'], () => null, null, undefined, items)
  t.same([u.transfers.uploaded, u.transfers.stored, u.transfers.lost, u.apiError], [1, null, 0, 'cannot reach the broker for acc'])
  t.notOk(u.ok)

  // A shard whose API failed fails the merge, saying why; one with nothing sent says only that the API went.
  const quiet = await buildReport(runOf(new Tally()), meta, resources as FleetReport['resources'], () => null, fates, 'gone')
  t.same([quiet.heartbeats.stored, quiet.apiError, quiet.ok], [0, 'gone', false])
  t.match(renderReport(quiet), /\nresult: FAILED, the console API stopped answering\n$/)
  const merged = mergeReports(
    [
      { ...quiet, fleet: { ...quiet.fleet, shards: { count: 2, parts: [2] } } },
      { ...r, fleet: { ...r.fleet, shards: { count: 2, parts: [1] } } },
    ],
    ['two', 'one'],
  )
  t.same([merged.apiError, merged.commands.unreconciled, merged.ok], ['gone', 0, false])
  // A report written before commands were counted unreconciled, or answered by the phones' count, has none.
  const older = JSON.parse(JSON.stringify(r)) as { commands: { unreconciled?: number; answeredByPhones?: number } }
  delete older.commands.unreconciled
  delete older.commands.answeredByPhones
  const olderMerged = mergeReports([older as FleetReport], ['older']).commands
  t.same([olderMerged.unreconciled, olderMerged.answeredByPhones], [0, 0])
})

t.test(
  'F1 before the report, a run says what it still waits for, once: PUBACKs, reconnects, first connects, console calls, notifications',
  async (t) => {
    const run = new FleetRun(offlineRunOptions(t, planFleet(checkScenario({}, 's', '.'), 's', []), []))
    const said: string[] = []
    const away = { plan: {}, phone: { cloudServiceOn: true, dataChannelState: 'waiting' }, chain: Promise.resolve(), connected: true }
    // Never up in the run (its broker refuses it, say): not "reconnecting".
    const neverUp = { ...away, connected: false }
    // F1: connected, its heartbeats held until the cloud answers its subscription with the seqs it holds.
    const unanswered = { ...away, phone: { cloudServiceOn: true, dataChannelState: 'connected', heartbeatsReady: false } }
    Object.assign(run.tally.heartbeats, { sent: 3, acked: 1 })
    Object.assign(run, { slots: [away, away, neverUp, unanswered] })
    await t.rejects(
      run.settled(0, (what) => said.push(what)),
      { message: 'the fleet did not settle in time' },
    )
    // A console call answered between the check of the calls and of what is left: the one thing still waited for.
    Object.assign(run.tally.heartbeats, { acked: 3 })
    Object.assign(run, { slots: [], inflight: { size: 1, *[Symbol.iterator]() {} } })
    await t.rejects(run.settled(0, (what) => said.push(what)))
    Object.assign(run, { issuedNotifications: new Set(['n1', 'n2']) })
    await run.notificationsShown(0, (what) => said.push(what))
    t.same(said, [
      '2 heartbeats not acknowledged yet, 2 phones reconnecting, 1 phone not connected once yet, ' +
        "1 phone waiting for the cloud's answer to its subscription",
      'console calls in flight',
      '2 notifications not shown yet',
    ])
  },
)

t.test('the console driver waits for a command still in flight, then counts its fate', async (t) => {
  // A stand-in console API (the real one is driven in run.test.ts): the first poll finds the command queued, the next answered.
  const polls: string[] = []
  const states = ['queued', 'succeeded']
  const driver = new HttpFleetConsole(
    {
      submit: async () => {},
      commands: async () => {
        const state = states[Math.min(polls.length, states.length - 1)] as string
        polls.push(state)
        return { commands: [{ id: '0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a11', state }] }
      },
    } as unknown as ConstructorParameters<typeof HttpFleetConsole>[0],
    { nextSeq: () => 1, existingSigningKey: () => generateKeyPairSync('ed25519').privateKey, dir: 'keys' } as unknown as OwnerKeys,
  )
  const c = {
    device: 'd',
    account: 'a',
    type: 'locate' as const,
    id: '0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a11',
    expected: 'succeed' as const,
    now: 1,
  }
  t.equal(await driver.command(c), 'submitted')
  const waited: number[] = []
  t.same(
    await driver.fates(60_000, (n) => waited.push(n)),
    { answered: 1, refused: 0, ignored: 0, lost: 0, unreconciled: 0 },
    'answered once it was',
  )
  t.same(waited, [1], 'said once that it waits for one command')
  t.same(polls, ['queued', 'succeeded'], 'polled again while it was queued')
})

t.test('the console driver logs each command it counts lost: which, to which phone, and why', async (t) => {
  const ids = ['0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a21', '0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a22', '0d8f3c6e-1c1e-4b6f-9a57-2f1f7f6b9a23']
  const logs = new LogCapture()
  const driver = new HttpFleetConsole(
    {
      submit: async () => {},
      // The phone went away mid-command; an ignored one got answered; the third the cloud does not list.
      commands: async () => ({
        commands: [
          { id: ids[0], state: 'executing' },
          { id: ids[1], state: 'succeeded' },
        ],
      }),
    } as unknown as ConstructorParameters<typeof HttpFleetConsole>[0],
    { nextSeq: () => 1, existingSigningKey: () => generateKeyPairSync('ed25519').privateKey, dir: 'keys' } as unknown as OwnerKeys,
    logs.logger(),
  )
  const expected = ['succeed', 'ignore', 'fail'] as const
  for (const [i, id] of ids.entries())
    await driver.command({ device: 'qa-00039', account: 'a', type: 'locate', id, expected: expected[i]!, now: 1 })
  t.same(await driver.fates(0), { answered: 0, refused: 0, ignored: 0, lost: 3, unreconciled: 0 })
  const lost = logs.lines.filter((l) => String(l.msg).startsWith('fleet command lost'))
  t.same(
    lost.map((l) => [l.command, l.msg]),
    [
      [ids[0], 'fleet command lost: executing, not succeeded as planned (see `fakephone console commands qa-00039`)'],
      [ids[1], 'fleet command lost: succeeded, though the plan has the phone ignore it (see `fakephone console commands qa-00039`)'],
      [ids[2], 'fleet command lost: unknown to the cloud, not failed as planned (see `fakephone console commands qa-00039`)'],
    ],
  )
})

t.test('a phone that cannot start fails the run (exit 1); an interrupted open run still reports', async (t) => {
  const dir = tempDir(t)
  // The phones' folder is a file: no phone can make its data directory.
  mkdirSync(join(dir, 'w'))
  writeFileSync(join(dir, 'w', 'phones'), '')
  const failed = await runCli(
    ['fleet', 'run', '--count', '1', '--duration', '1s', '--no-push', '--work', join(dir, 'w')],
    new SystemClock(),
  )
  t.equal(failed.code, 1)
  t.match(failed.out, /1 failed to start/)
  t.match(failed.err, /the fleet lost messages/)
  t.ok(failed.logs.has('fleet phone action failed'))

  const log = new LogCapture()
  /** An open run (no end: it waits for Ctrl-C) of `count` phones, ended by `signal`; `tick` hears it each second. */
  const openRun = (count: number, work: string, signal: AbortSignal, extra: Pick<SessionOptions, 'settleMs' | 'tick'>) =>
    runSession({
      count,
      loaded: checkScenario({}, 'open', dir),
      seed: 's',
      push: false,
      clock: new SystemClock(),
      log: log.logger(),
      signal,
      workDir: join(dir, work),
      ...extra,
    })
  const stop = new AbortController()
  stop.abort()
  const report = await openRun(1, 'open', stop.signal, { settleMs: 0 })
  t.equal(report.phones.target, 1)
  t.equal(report.resources.loopDelayAllUpP99Ms, null, 'ended before its first check: never every phone up, no figure')
  t.notMatch(renderReport(report), /with every phone up/)
  const later = new AbortController()
  // The first tick comes a second into the run, when it waits for Ctrl-C.
  const interrupted = openRun(1, 'later', later.signal, { settleMs: 0, tick: () => later.abort() })
  t.equal((await interrupted).phones.target, 1, 'Ctrl-C during an open run ends it with a report')
  t.ok(log.has('the fleet did not settle before the report'))

  // Ctrl-C at the first check that finds both phones connected: the stretch with every phone up opened there and ends with the run.
  const allUp = new AbortController()
  const upReport = await openRun(2, 'all-up', allUp.signal, {
    tick: (run) => {
      const up = run.phonesUp()
      if (up.connected === up.target) allUp.abort()
    },
  })
  t.type(upReport.resources.loopDelayAllUpP99Ms, 'number', 'every phone was up: the figure of that stretch')
  t.match(renderReport(upReport), /loop delay p99 \d+\.\d ms \(\d+\.\d ms with every phone up\)/)
})

t.test("/metrics counts the report's lost and duplicated heartbeats, commands and notifications, under its names", async (t) => {
  const dir = tempDir(t)
  let url = ''
  let scraped = ''
  // Without the push channel no notification is shown: the report counts them lost, and so does /metrics.
  const loaded = checkScenario({ name: 'm', groups: [{ name: 'g' }], console: { notifications: { every: '300ms' } } }, 'm', dir)
  const report = await runSession({
    count: 1,
    loaded,
    seed: 's',
    durationMs: 1000,
    push: false,
    answersMs: 200,
    clock: new SystemClock(),
    log: new LogCapture().logger(),
    signal: new AbortController().signal,
    workDir: dir,
    metricsPort: 0,
    serving: (u) => (url = u),
    ended: async () => void (scraped = await (await fetch(url)).text()),
  })
  t.ok(report.notifications.lost > 0, `${report.notifications.lost} notifications lost`)
  t.match(scraped, new RegExp(`^fakephone_fleet_notifications_lost_total ${report.notifications.lost}$`, 'm'))
  t.match(scraped, /^fakephone_fleet_heartbeats_lost_total 0$/m)
  t.match(scraped, /^fakephone_fleet_heartbeats_duplicated_total 0$/m)
  t.match(scraped, /^fakephone_fleet_commands_lost_total 0$/m)
  t.match(scraped, /^fakephone_fleet_notifications_duplicated_total 0$/m)
  await t.rejects(fetch(url), 'closed with the run, after')
})

t.test('F1: a phone back from an outage carries on along its battery curve, not from its first level again', async (t) => {
  const group = { name: 'g', heartbeat: { every: '10s', jitter: 0 }, battery: { level: [50, 50], drainPerHour: 360 } }
  const { clock, run } = await onePhoneRun(
    t,
    'batt',
    (dir) => checkScenario({ stages: [{ kind: 'steady', for: '60s' }], groups: [group] }, 'batt', dir),
    {},
    (plan) => {
      plan.phones[0]!.outages = [{ at: 10_000, forMs: 20_000 }]
      return plan
    },
  )
  run.start()
  await run.settled()
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000)
    await run.settled()
  }
  // A heartbeat is read (its time, fix and battery) at its beat, and counted once its seq is reserved on disk: the stop
  // waits for those.
  await run.stop()
  const curve = run
    .eventLog()
    .filter((e) => e.kind === 'heartbeat')
    .map((e) => `${e.t} ${/ (\d+)%/.exec(e.detail)?.[1] as string}`)
  // 0.1 % a second: the first fix back at 30 s shows the 3 % the phone lost while away.
  t.same(curve, ['0 50', '10000 49', '30000 47', '40000 46', '50000 45'])
})
