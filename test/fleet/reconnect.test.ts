/**
 * F2 in a fleet run whose phone loses its connection while a command is in flight (issue 12's reconciled report): the
 * phone finishes the command after it is back, runs it once, and the report counts it once on every line, the phones'
 * count (`answeredByPhones`) beside the console's, in the JSON, the summary and a merge alike. Two ways to lose it: the
 * broker goes and comes back under the same phone (a QoS 1 session: mqtt.js reconnects), and a planned outage, after
 * which the run builds the phone anew and the cloud resends the command it has no final receipt for.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { ConsoleClient } from '../../cli/console-client.js'
import { HttpFleetConsole } from '../../fleet/console-driver.js'
import { mergeReports, noResources } from '../../fleet/merge.js'
import type { PhonePlan } from '../../fleet/plan.js'
import { buildReport, renderReport, type FleetReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import type { Cloud } from '../fixtures/cloud.js'
import { onePhoneRun } from '../fixtures/fleet-run.js'
import type { LogCapture } from '../fixtures/logs.js'

/** Rings that take 3 s on the phone, half planned to fail: each is in flight long enough to be cut off. */
const SCENARIO = {
  stages: [{ kind: 'steady', for: '16s' }],
  groups: [{ name: 'g', commands: { answer: { succeed: 0.5, fail: 0.5 }, delay: { min: '3s', max: '3s' } } }],
  console: { commands: { every: '4s', types: ['ring'] } },
}
const DELAY_MS = 3000

/** The next line `msg` the log gets from now on. */
function nextLine(logs: LogCapture, msg: string, match: (l: Record<string, unknown>) => boolean = () => true): Promise<unknown> {
  const from = logs.lines.length
  return logs.waitFor((l) => l.msg === msg && match(l) && logs.lines.indexOf(l) >= from)
}

/** One phone of a run with the fleet's own console on the real console API; `adjust` changes its plan (outages). */
async function oneRingingPhone(t: Test, prefix: string, adjust: (p: PhonePlan) => PhonePlan = (p) => p) {
  let fleetConsole!: HttpFleetConsole
  const { clock, cloud, device, plan, run } = await onePhoneRun(
    t,
    prefix,
    (dir) => checkScenario(SCENARIO, prefix, dir),
    (cloud, keys) => ({
      console: (fleetConsole = new HttpFleetConsole(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), keys)),
      backoff: { baseMs: 50, capMs: 200 },
    }),
    (planned) => ({ ...planned, phones: planned.phones.map(adjust) }),
  )
  const phone = plan.phones[0]!
  /** Steps the run's clock to `at` (ms into the run), settling each step. */
  const until = async (at: number): Promise<void> => {
    for (let i = 0; i < 1000 && run.elapsed < at; i++) {
      clock.advance(Math.min(100, at - run.elapsed))
      await run.settled()
    }
  }
  /**
   * Runs to the end; once every command is running on the phone, the clock moves past their rings; then the report as
   * `fleet run` builds it, with the cloud's own counts (the console waits, within its bound, for the final receipts).
   */
  const report = async (): Promise<FleetReport> => {
    await until(plan.endAt)
    await Promise.all(phone.commands.map((c) => cloud.logs.waitFor((l) => l.msg === 'executing command' && l.command === c.id)))
    clock.advance(DELAY_MS)
    await run.settled()
    const fates = await fleetConsole.fates(5000)
    // Built before the phones stop (the test's end stops them): a phone that ran a command again would keep its stop waiting.
    const stored = (id: string) => Promise.resolve(new Set(cloud.broker.store.history(id, 1000).map((h) => h.seq)))
    const meta = {
      scenario: 'cut',
      seed: 's',
      durationMs: run.elapsed,
      fleet: { size: 1, scenarioHash: '0', shards: { count: 1, parts: [1] } },
    }
    // What the run cost is not this test's: none measured.
    return buildReport(run, meta, noResources(), stored, fates)
  }
  return { clock, cloud, device, phone, run, until, report }
}

/** How many times the phone started running command `id` (its `executing command` lines). */
const runs = (cloud: Cloud, id: string): number => cloud.logs.lines.filter((l) => l.msg === 'executing command' && l.command === id).length

/** What a user checks in a report of `issued` commands, all answered as planned: every line, the JSON, the summary, a merge. */
function everyCommandOnce(t: Test, r: FleetReport, issued: number, fails: number): void {
  const c = r.commands
  t.same(
    [c.issued, c.received, c.answered, c.answeredByPhones, c.failedByScenario, c.lost],
    [issued, issued, issued, issued, fails, 0],
    'each command received and answered once, by the phones and by the console',
  )
  t.match(
    renderReport(r),
    `\n  commands      ${issued} issued, ${issued} received, ${issued} answered by the phones (${issued} reconciled with the console), ` +
      `0 refused, ${fails} failed and 0 ignored as planned, 0 lost;`,
    'the summary says what the JSON holds',
  )
  const merged = mergeReports([r], ['cut.json']).commands
  t.same(
    [merged.received, merged.answered, merged.answeredByPhones, merged.failedByScenario],
    [issued, issued, issued, fails],
    '`fleet report merge` keeps the counts',
  )
  t.ok(r.ok, 'the run passes')
}

t.test('F2: a command in flight when the broker drops the phone runs once, finishes after the reconnect, counts once', async (t) => {
  const { clock, cloud, phone, run, until, report } = await oneRingingPhone(t, 'drop')
  const planned = phone.commands.map((c) => phone.answer(c.id).answer)
  t.ok(planned.includes('succeed') && planned.includes('fail'), `commands planned to succeed and to fail: ${planned.join(', ')}`)
  run.start()
  await run.settled()
  for (const c of phone.commands) {
    const executing = nextLine(cloud.logs, 'executing command', (l) => l.command === c.id)
    await until(c.at)
    await executing
    // The connection goes with the broker, mid-command; the phone retries on its (run's) clock.
    const retrying = nextLine(cloud.logs, 'mqtt disconnected, retrying')
    await cloud.restart()
    await retrying
    clock.advance(200)
    await run.settled()
  }
  const r = await report()
  for (const c of phone.commands) t.equal(runs(cloud, c.id), 1, `${c.type} ${c.id} ran once, not again at the reconnect`)
  everyCommandOnce(t, r, phone.commands.length, planned.filter((a) => a === 'fail').length)
})

t.test(
  "F2: a command in flight at a phone's outage is finished, and counted, once, though the cloud resends it to the phone built anew",
  async (t) => {
    let cut: PhonePlan['commands'][number] | undefined
    const { clock, cloud, device, phone, run, until, report } = await oneRingingPhone(t, 'outage', (p) => {
      cut = p.commands[0]
      // Down a second into the first command's three, back half a second later.
      return { ...p, outages: [{ at: (cut as { at: number }).at + 1000, forMs: 500 }] }
    })
    const command = cut as NonNullable<typeof cut>
    run.start()
    await run.settled()
    const executing = nextLine(cloud.logs, 'executing command', (l) => l.command === command.id)
    await until(command.at)
    await executing
    // The outage: the phone says goodbye and waits for the ring it is running, which ends after its connection has.
    clock.advance(1000)
    while (cloud.broker.isConnected(device.id)) await once(cloud.broker.store, 'presence')
    // The ring ends; the phone stops, and comes back as a new one, which the cloud sends the command again.
    clock.advance(DELAY_MS)
    await run.settled()
    const r = await report()
    t.equal(runs(cloud, command.id), 1, 'the command ran once, on the phone it reached first')
    t.same(
      run
        .eventLog()
        .filter((e) => e.kind === 'outage' || e.kind === 'back')
        .map((e) => [e.kind, e.t - command.at]),
      [
        ['outage', 1000],
        ['back', 1500],
      ],
      'the phone went down mid-command and came back',
    )
    everyCommandOnce(t, r, phone.commands.length, phone.commands.filter((c) => phone.answer(c.id).answer === 'fail').length)
  },
)
