/** Scenario files, the seeded plan and movement of `fakephone fleet run` (issue 12): pure functions, no broker. */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { distanceM } from '../../agent/location.js'
import { near, RandomWalk } from '../../fleet/movement.js'
import { OPEN_HORIZON_MS, planFleet, seededUuid, type FleetPlan } from '../../fleet/plan.js'
import { hash32, Rng } from '../../fleet/prng.js'
import { seededRandom } from '../../common/random.js'
import { checkScenario, loadScenario, ScenarioError, syncingGroups, syncSetup } from '../../fleet/scenario.js'
import { fate } from '../../fleet/console-driver.js'
import { fleetIds } from '../../fleet/provision.js'
import { tempDir } from '../fixtures/scope.js'

const GPX =
  '<gpx><trk><trkseg><trkpt lat="55.95" lon="-3.19"/><trkpt lat="55.951" lon="-3.185"/>' +
  '<trkpt lat="55.949" lon="-3.18"/></trkseg></trk></gpx>'

function issuesOf(value: unknown, dir = '.'): string[] {
  try {
    checkScenario(value, 'test.yaml', dir)
  } catch (err) {
    if (err instanceof ScenarioError) return err.issues
    throw err
  }
  return []
}

t.test('scenario validation reports every error with its path', async (t) => {
  const issues = issuesOf({
    stages: [{ kind: 'steady', for: 'soon' }, { kind: 'warp' }],
    groups: [
      {
        name: 'Walkers!',
        movement: { type: 'random-walk', centre: [95, 0] },
        heartbeat: { every: 0 },
        battery: { level: [90, 10] },
        switches: [{ at: '1m', name: 'wifi', on: true }],
        commands: { answer: { succeed: 0.5, fail: 0.1 }, delay: { min: '2s', max: '1s' } },
        colour: 'red',
      },
    ],
  })
  const expected = [
    /^stages\.0\.for: not a duration: "soon"/,
    /^stages\.1\.kind: /,
    /^groups\.0\.name: 1-32 of a-z/,
    /^groups\.0\.movement\.centre\.0: /,
    /^groups\.0\.heartbeat\.every: must be above 0/,
    /^groups\.0\.battery\.level: the first level must not be above the second/,
    /^groups\.0\.switches\.0\.name: /,
    /^groups\.0\.commands\.answer: succeed \+ fail \+ ignore must add up to 1/,
    /^groups\.0\.commands\.delay: min must not be above max/,
    /^groups\.0\.colour: unknown key; it takes name, share, movement, heartbeat, battery, outages, data, sync, switches, commands$/,
  ]
  for (const want of expected)
    t.ok(
      issues.some((i) => want.test(i)),
      String(want),
    )
  t.equal(issues.length, expected.length, 'one issue each, all at once')
  t.same(issuesOf([]), ['(top): Invalid input: expected object, received array'])

  const dir = tempDir(t)
  const ordered = issuesOf(
    {
      stages: [
        { kind: 'steady', for: 1 },
        { kind: 'ramp-down', rate: 1 },
        { kind: 'ramp-up', rate: 1 },
        { kind: 'ramp-up', rate: 2 },
      ],
      groups: [{ name: 'a', movement: { type: 'gpx', file: 'missing.gpx' } }, { name: 'a' }],
    },
    dir,
  )
  t.same(ordered, [
    `groups.0.movement.file: ENOENT: no such file or directory, open '${join(dir, 'missing.gpx')}'`,
    'groups.1.name: "a" is already the name of another group',
    'stages: at most one ramp-up and one ramp-down',
    'stages: the ramp-down comes last',
    'stages: the ramp-up comes first',
  ])
  const err = t.throws(() => checkScenario({ stages: 1 }, 'x.json', '.')) as ScenarioError
  t.match(err.message, /^x\.json: 1 error\n  stages: /)
  t.match(new ScenarioError(['a', 'b'], 'y').message, /^y: 2 errors\n  a\n  b$/)
})

t.test("the schema's problems and the order, names and GPX files come in one list, not one after the other", async (t) => {
  const dir = tempDir(t)
  t.same(
    issuesOf(
      {
        stages: [
          { kind: 'steady', for: 'soon' },
          { kind: 'ramp-up', rate: 5 },
        ],
        groups: [
          { name: 'walkers', heartbeat: { jitter: 2 } },
          { name: 'walkers', movement: { type: 'gpx', file: 'gone.gpx' } },
          'not a group',
          { name: 7 },
        ],
      },
      dir,
    ),
    [
      'stages.0.for: not a duration: "soon" (use e.g. 500ms, 30s, 5m, 73h, 7d)',
      'groups.0.heartbeat.jitter: Too big: expected number to be <=0.9',
      'groups.2: Invalid input: expected object, received string',
      'groups.3.name: Invalid input: expected string, received number',
      `groups.1.movement.file: ENOENT: no such file or directory, open '${join(dir, 'gone.gpx')}'`,
      'groups.1.name: "walkers" is already the name of another group',
      'stages: the ramp-up comes first',
    ],
  )
  t.same(issuesOf({ groups: 'none', stages: { kind: 'steady' } }), [
    'stages: Invalid input: expected array, received object',
    'groups: Invalid input: expected array, received string',
  ])
})

t.test('a mistyped key is answered with the one it most likely meant; a missing duration says it is required', async (t) => {
  t.same(
    issuesOf({
      stages: [
        { kind: 'steady', fro: '5m' },
        { kind: 'steady', for: true },
      ],
      groups: [
        {
          name: 'walkers',
          movment: { type: 'random-walk', centre: [55.95, -3.19] },
          movement: { type: 'stationary', at: [55.95, -3.19], spread: 50 },
          commands: { answer: { succed: 0.9, fail: 0.1 } },
          photos: { count: 20, sync: false },
        },
      ],
      consol: {},
    }),
    [
      'stages.0.for: required: a duration, e.g. 30s',
      'stages.0.fro: unknown key; did you mean "for"?',
      'stages.1.for: not a duration (use e.g. 500ms, 30s, 5m)',
      'groups.0.movement.spread: unknown key; did you mean "spreadM"?',
      'groups.0.commands.answer.succed: unknown key; did you mean "succeed"?',
      'groups.0.movment: unknown key; did you mean "movement"?',
      // Photos go under `data` (S1): the keys a group takes, not a guess.
      'groups.0.photos: unknown key; it takes name, share, movement, heartbeat, battery, outages, data, sync, switches, commands',
      'consol: unknown key; did you mean "console"?',
    ],
  )
})

t.test('scenario files load from YAML or JSON, with defaults and GPX tracks relative to the file', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'walk.gpx'), GPX)
  writeFileSync(join(dir, 's.yaml'), 'name: tour\ngroups:\n  - name: tourists\n    movement: { type: gpx, file: walk.gpx }\n')
  const yaml = await loadScenario(join(dir, 's.yaml'))
  t.equal(yaml.scenario.name, 'tour')
  t.equal(yaml.tracks.get(0)?.length, 3)
  t.same(yaml.scenario.groups[0]?.heartbeat, { every: 30_000, jitter: 0.1 })
  writeFileSync(join(dir, 's.json'), JSON.stringify({ groups: [{ name: 'g', heartbeat: { every: '5s' } }] }))
  t.equal((await loadScenario(join(dir, 's.json'))).scenario.groups[0]?.heartbeat.every, 5000)
  const empty = checkScenario(null, 'none', dir).scenario
  t.same(
    empty.groups.map((g) => g.name),
    ['phones'],
    'an empty file is the default scenario',
  )
  // A comma before the `}`: where it stopped, as an editor counts, as a config file says it (common/config.ts).
  writeFileSync(join(dir, 'bad.json'), '{\n  "groups": [\n    { "name": "a", }\n  ]\n}\n')
  await t.rejects(loadScenario(join(dir, 'bad.json')), {
    message: /bad\.json: 1 error\n {2}not valid JSON at line 3, column 20 \(Expected double-quoted property name in JSON at position 35\)$/,
  })
  writeFileSync(join(dir, 'cut.json'), 'null x')
  await t.rejects(loadScenario(join(dir, 'cut.json')), { message: /cut\.json: 1 error\n {2}not valid JSON at line 1, column 6 \(/ })
  writeFileSync(join(dir, 'bad.yaml'), 'a: [')
  await t.rejects(loadScenario(join(dir, 'bad.yaml')), { message: /not valid YAML: / })
  await t.rejects(loadScenario(join(dir, 'none.yaml')), { message: /none\.yaml: 1 error\n  cannot read it: ENOENT/ })
})

t.test('the PRNG: fixed numbers per seed, independent streams, sound draws', async (t) => {
  const a = seededRandom(42)
  t.same(
    [a(), a()].map((x) => x.toFixed(6)),
    ['0.601104', '0.448291'],
    'mulberry32 gives the published sequence for seed 42',
  )
  t.equal(hash32('fleet'), hash32('fleet'))
  t.not(hash32('fleet/1/route'), hash32('fleet/2/route'))
  const r = Rng.stream('s', 3, 'x')
  const counts = [0, 0, 0]
  for (let i = 0; i < 3000; i++) counts[r.weighted([1, 0, 2])]!++
  t.equal(counts[1], 0, 'a zero weight is never drawn')
  t.ok(Math.abs(counts[2]! / 3000 - 2 / 3) < 0.04, 'weights are honoured')
  const edge = new Rng(1)
  Object.defineProperty(edge, 'next', { value: () => 0.9999999999999999 })
  t.equal(edge.weighted([0.1, 0.2, 0.3, 0]), 2, 'rounding past the end lands on the last non-zero weight')
  t.ok(r.exponential(1000) >= 0)
  t.match(seededUuid(r), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
})

t.test('a plan is a function of scenario, seed and ids: ramps, groups, outages, switches, console', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'walk.gpx'), GPX)
  const loaded = checkScenario(
    {
      stages: [
        { kind: 'ramp-up', rate: 10 },
        { kind: 'steady', for: '1m' },
        { kind: 'ramp-down', rate: 20 },
      ],
      groups: [
        {
          name: 'walk',
          share: 2,
          movement: { type: 'random-walk', centre: [55.95, -3.19], radiusM: 50, stepEvery: '5s' },
          outages: { every: '20s', for: '5s' },
        },
        {
          name: 'track',
          movement: { type: 'gpx', file: 'walk.gpx', offsetM: 30 },
          switches: [
            { at: '10s', name: 'findDevice', on: false, share: 0.5 },
            { at: '20s', name: 'findDevice', on: true, share: 0.5 },
          ],
        },
        {
          name: 'desk',
          movement: { type: 'stationary', at: [51.5, -0.12] },
          commands: { answer: { succeed: 0.5, fail: 0.25, ignore: 0.25 }, delay: { min: 100, max: 900 } },
        },
      ],
      console: { commands: { every: '10s' }, notifications: { every: '15s' } },
    },
    'plan',
    dir,
  )
  const ids = fleetIds('p', 40)
  const a = planFleet(loaded, 'seed-1', ids)
  const b = planFleet(loaded, 'seed-1', ids)
  const c = planFleet(loaded, 'seed-2', ids)
  const shape = (p: typeof a): string => JSON.stringify(p)
  t.equal(shape(a), shape(b), 'same seed, same plan')
  t.not(shape(a), shape(c), 'another seed, another plan')
  t.same(
    a.phones.slice(0, 3).map((p) => p.startAt),
    [0, 100, 200],
    'ramp-up at 10 phones a second',
  )
  t.equal(a.phones[0]?.stopAt, 3900 + 60_000, 'the ramp-down starts after the steady minute')
  t.equal(a.phones[39]?.stopAt, 3900 + 60_000 + 1950)
  t.equal(a.endAt, 3900 + 60_000 + 1950)
  const groups = new Set(a.phones.map((p) => p.group))
  t.same([...groups].sort(), ['desk', 'track', 'walk'])
  const walker = a.phones.find((p) => p.group === 'walk')!
  t.ok(walker.outages.length > 0 && walker.outages.every((o) => o.forMs === 5000 && o.at >= walker.startAt && o.at < walker.stopAt))
  const tracks = a.phones.filter((p) => p.group === 'track')
  t.ok(tracks.some((p) => p.switches.length === 2) && tracks.every((p) => p.switches.length % 2 === 0), 'the same phones switch off and on')
  t.ok(
    a.phones.slice(0, -1).every((p) => p.commands.every((x) => x.at < p.stopAt - 5000)),
    'no command in the last five seconds before a ramp-down stop',
  )
  t.ok(a.phones.some((p) => p.notifications.length > 0))
  const desk = a.phones.find((p) => p.group === 'desk')!
  t.same(desk.answer('x'), desk.answer('x'), 'the same command gets the same answer')
  const answers = Array.from({ length: 400 }, (_, i) => desk.answer(`c${i}`))
  t.ok(answers.every((x) => x.delayMs >= 100 && x.delayMs <= 900))
  t.ok(answers.some((x) => x.answer === 'ignore') && answers.some((x) => x.answer === 'fail'))
  // Movement: each source answers on the run's clock.
  const start = Date.UTC(2026, 0, 1)
  const w = walker.location(start)
  const p0 = w.fix(start)!
  const p1 = w.fix(start + 600_000)!
  t.ok(distanceM({ lat: 55.95, lon: -3.19 }, p1) < 50 + 8, 'the walk stays near its centre')
  t.same(w.fix(start), w.fix(start + 600_000), 'an earlier time than the current step is the step start')
  t.ok(p0.lat !== p1.lat)
  const trk = tracks[0]!.location(start)
  t.not(JSON.stringify(trk.fix(start)), JSON.stringify(trk.fix(start + 60_000)), 'a track phone moves')
  t.ok(distanceM(desk.location(start).fix(start)!, { lat: 51.5, lon: -0.12 }) <= 101, 'stationary within its spread')

  const open = planFleet(checkScenario({}, 'open', dir), 's', ids.slice(0, 2))
  t.equal(open.endAt, Infinity, 'no stages: the run goes on until stopped')
  t.equal(open.phones[0]?.stopAt, Infinity)
  const cut = planFleet(checkScenario({}, 'open', dir), 's', ids.slice(0, 2), 5000)
  t.same([cut.endAt, cut.phones[1]?.stopAt], [5000, 5000], '--duration ends it')
  const steadyOnly = planFleet(checkScenario({ stages: [{ kind: 'steady', for: 1000 }] }, 'x', dir), 's', ids.slice(0, 1))
  t.equal(steadyOnly.endAt, 1000)
  t.equal(planFleet(checkScenario({ stages: [{ kind: 'ramp-up', rate: 1 }] }, 'x', dir), 's', []).endAt, Infinity)
  t.ok(OPEN_HORIZON_MS > 0)
})

t.test('an absent succeed takes the share fail and ignore leave; more than 1 between them is refused with its path', async (t) => {
  const answerOf = (answer: unknown): unknown =>
    checkScenario({ groups: [{ name: 'g', commands: { answer } }] }, 'test.yaml', '.').scenario.groups[0]?.commands.answer
  t.same(answerOf({ fail: 0.2 }), { succeed: 0.8, fail: 0.2, ignore: 0 }, 'fail 0.2 alone: the rest succeed')
  t.same(answerOf({ ignore: 1 }), { succeed: 0, fail: 0, ignore: 1 })
  t.same(answerOf({}), { succeed: 1, fail: 0, ignore: 0 })
  t.same(answerOf({ succeed: 0.5, fail: 0.25, ignore: 0.25 }), { succeed: 0.5, fail: 0.25, ignore: 0.25 }, 'all three: as given')
  t.same(issuesOf({ groups: [{ name: 'g', commands: { answer: { fail: 0.7, ignore: 0.6 } } }] }), [
    'groups.0.commands.answer: fail (0.7) + ignore (0.6) is above 1: no share is left to succeed',
  ])
  t.same(issuesOf({ groups: [{ name: 'g', commands: { answer: { succeed: 0.8 } } }] }), [
    'groups.0.commands.answer: succeed + fail + ignore must add up to 1 (leave succeed out and it takes the rest)',
  ])
  // The same answers for a seed whether succeed is named or left to take the rest.
  const plan = (answer: unknown): unknown => {
    const scenario = checkScenario(
      { groups: [{ name: 'g', commands: { answer } }], console: { commands: { every: '1s' } } },
      'test.yaml',
      '.',
    )
    const p = planFleet(scenario, 's', fleetIds('p', 2), 60_000)
    return p.phones.map((x) => x.commands.map((c) => x.answer(c.id).answer))
  }
  const named = plan({ succeed: 0.8, fail: 0.2 })
  t.same(plan({ fail: 0.2 }), named)
  t.ok((named as string[][]).flat().includes('fail'), 'some commands fail')
})

t.test("each run sends the plan's commands under ids of its own, answered as the seed planned", async (t) => {
  const loaded = checkScenario(
    {
      groups: [{ name: 'g', commands: { answer: { succeed: 0.4, fail: 0.3, ignore: 0.3 }, delay: { min: 0, max: 1000 } } }],
      console: { commands: { every: '1s', types: ['locate', 'ring'] } },
    },
    'runs',
    tempDir(t),
  )
  const ids = fleetIds('p', 3)
  const planned = planFleet(loaded, 's', ids, 60_000)
  const [a, b] = ['run-a', 'run-b'].map((runId) => planFleet(loaded, 's', ids, 60_000, runId)) as [FleetPlan, FleetPlan]
  const sent = (p: FleetPlan): string[] => p.phones.flatMap((x) => x.commands.map((c) => c.id))
  t.ok(sent(planned).length > 20)
  t.equal(new Set([...sent(planned), ...sent(a), ...sent(b)]).size, 3 * sent(planned).length, 'no id is in two runs')
  t.ok(sent(a).every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)))
  t.same(sent(planFleet(loaded, 's', ids, 60_000, 'run-a')), sent(a), 'the same run id, the same ids')
  const shape = (p: FleetPlan): unknown => p.phones.map((x) => x.commands.map((c) => [c.at, c.type, x.answer(c.id)]))
  t.same(shape(a), shape(planned), "times, types and answers are the seed's in every run")
  t.same(shape(b), shape(planned))
  t.same(a.phones[0]?.answer('not-planned'), planned.phones[0]?.answer('not-planned'), 'a command the plan did not send: by its own id')
})

t.test(
  'the console sends a phone nothing it would get too late to answer: not as it goes away for good, nor as the ramp-down stops it',
  async (t) => {
    type Phone = FleetPlan['phones'][number]
    /** When `at` reaches the phone (at once, or when back from the outage it falls in), and when the phone goes for good. */
    const reached = (p: Phone, at: number): number => {
      const o = p.outages.find((x) => at >= x.at && at < x.at + x.forMs)
      return o ? o.at + o.forMs : at
    }
    const gone = (p: Phone): number => p.outages.find((o) => o.at + o.forMs >= p.stopAt)?.at ?? p.stopAt
    /** What reaches the phone within `margin` ms of its going (commands also leave their group's delay.max: 2 s here). */
    const tooLate = (plan: FleetPlan, p: Phone): unknown[] =>
      gone(p) >= plan.endAt
        ? []
        : [
            ...p.commands.filter((c) => reached(p, c.at) >= gone(p) - 5000 - 2000),
            ...p.notifications.filter((n) => reached(p, n.at) >= gone(p) - 5000),
          ]
    // README's morning.yaml: outages every 10m for 30s, commands every 2m (answered up to 2 s late), notifications every 3m.
    const morning = checkScenario(
      {
        stages: [
          { kind: 'ramp-up', rate: 200 },
          { kind: 'steady', for: '5m' },
        ],
        groups: [{ name: 'walkers', outages: { every: '10m', for: '30s' }, commands: { delay: { min: 0, max: '2s' } } }],
        console: { commands: { every: '2m' }, notifications: { every: '3m' } },
      },
      'morning',
      tempDir(t),
    )
    const plan = planFleet(morning, '42', fleetIds('qa', 1000))
    t.ok(plan.phones.filter((p) => gone(p) < plan.endAt).length > 10, 'phones that end the run away')
    t.same(
      plan.phones.flatMap((p) => tooLate(plan, p)),
      [],
      'nothing goes to a phone that never comes back, or just before it goes',
    )
    const waited = plan.phones.flatMap((p) => [...p.commands, ...p.notifications].filter((x) => reached(p, x.at) > x.at))
    t.ok(waited.length > 10, 'a phone away for a while still gets what waits for it')
    // With a ramp-down, the phone must be back in time for the margin before its stop, notifications too.
    const ramped = checkScenario(
      {
        stages: [
          { kind: 'steady', for: '2m' },
          { kind: 'ramp-down', rate: 1 },
        ],
        groups: [{ name: 'g', outages: { every: '20s', for: '10s' }, commands: { delay: { min: 0, max: '2s' } } }],
        console: { commands: { every: '3s' }, notifications: { every: '3s' } },
      },
      'ramped',
      tempDir(t),
    )
    const down = planFleet(ramped, 's', fleetIds('r', 30))
    t.ok(
      down.phones.some((p) => p.outages.length > 0 && p.notifications.length > 0),
      'phones with outages and notifications',
    )
    t.same(
      down.phones.flatMap((p) => tooLate(down, p)),
      [],
      'nothing it would get in its last five seconds',
    )
  },
)

t.test("a command's fate: answered as planned, refused, ignored, or lost", async (t) => {
  t.equal(fate('succeed', 'succeeded'), 'answered')
  t.equal(fate('fail', 'failed'), 'answered')
  t.equal(fate('succeed', 'failed'), 'lost')
  t.equal(fate('succeed', undefined), 'lost')
  t.equal(fate('fail', 'rejected'), 'refused')
  t.equal(fate('ignore', 'queued'), 'ignored')
  t.equal(fate('ignore', undefined), 'ignored')
  t.equal(fate('ignore', 'succeeded'), 'lost', 'an ignored command that got answered means the plan was not followed')
})

t.test('a random walk turns back at its edge', async (t) => {
  const centre = { lat: 0, lon: 0 }
  const walk = new RandomWalk({ centre, radiusM: 20, speedMps: 5, stepMs: 10_000, startAt: 0 }, new Rng(3))
  let far = 0
  for (let s = 0; s < 200; s++) far = Math.max(far, distanceM(centre, walk.fix(s * 10_000)))
  t.ok(far < 20 + 50 + 1, `never more than one step past the edge (${far.toFixed(0)} m)`)
  t.ok(distanceM(centre, near(centre, 10, new Rng(1))) <= 10.01)
})

t.test('a duration written as a bare number under a second is said, with its path: `every: 30` is 30 ms, not 30 s', async (t) => {
  const loaded = checkScenario(
    {
      stages: [{ kind: 'steady', for: 10 }],
      groups: [
        {
          name: 'g',
          heartbeat: { every: 30 },
          movement: { type: 'stationary', at: [55.95, -3.19] },
          switches: [{ at: 5, name: 'findDevice', on: false }],
          commands: { delay: { min: 0, max: '2s' } },
        },
      ],
      console: { commands: { every: 1500 }, notifications: { every: '30ms' } },
    },
    'x',
    '.',
  )
  t.same(loaded.warnings, [
    'stages.0.for: 10 is 10 ms (a bare number is milliseconds): write 10s for seconds, or "10ms" if you mean it',
    'groups.0.heartbeat.every: 30 is 30 ms (a bare number is milliseconds): write 30s for seconds, or "30ms" if you mean it',
    'groups.0.switches.0.at: 5 is 5 ms (a bare number is milliseconds): write 5s for seconds, or "5ms" if you mean it',
  ])
  t.equal(loaded.scenario.groups[0]?.heartbeat.every, 30, 'said, not refused: a JSON scenario may mean it')
})

t.test('every scenario the README and docs/SCENARIOS.md show passes the check and plans a fleet', async (t) => {
  const { parse } = await import('yaml')
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const dir = tempDir(t)
  // The GPX tracks the examples name: any track will do.
  for (const name of ['walk.gpx', 'royal-mile.gpx']) writeFileSync(join(dir, name), GPX)
  const blocks = ['README.md', 'docs/SCENARIOS.md'].flatMap((doc) =>
    [...readFileSync(join(root, doc), 'utf8').matchAll(/^( *)```yaml\n([\s\S]*?)^\1```$/gm)].map((m) => ({
      doc,
      yaml: (m[2] as string).replace(new RegExp(`^${m[1]}`, 'gm'), ''),
    })),
  )
  t.ok(blocks.length >= 6, `${blocks.length} examples`)
  for (const { doc, yaml } of blocks) {
    const lines = yaml.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    // The movement block lists alternatives, one per line: each is a group's movement.
    const values = lines.every((l) => l.startsWith('movement:'))
      ? lines.map((l) => ({ groups: [{ name: 'g', ...(parse(l) as object) }] }))
      : [parse(yaml) as unknown]
    for (const value of values) {
      const where = `${doc}: ${yaml.split('\n')[0]}`
      t.same(issuesOf(value, dir), [], where)
      const loaded = checkScenario(value, doc, dir)
      t.same(loaded.warnings, [], `${where}: no warning either`)
      t.ok(planFleet(loaded, 's', fleetIds('d', 3), 60_000).phones.length === 3, where)
    }
  }
})

t.test('S1 B1: a typo under data or sync, or a sync switch misnamed, is said by its path', (t) => {
  const issues = (value: unknown): string[] => {
    try {
      checkScenario(value, 's.yaml', '.')
    } catch (err) {
      return (err as ScenarioError).issues
    }
    return []
  }
  t.same(
    issues({
      groups: [
        {
          name: 'camera',
          data: { photo: 3, contacts: -1, notes: 1.5 },
          sync: { contact: false, backup: 'yes' },
          switches: [{ at: '1s', name: 'sync.photo', on: false }],
        },
      ],
    }),
    [
      'groups.0.data.contacts: Too small: expected number to be >=0',
      'groups.0.data.notes: Invalid input: expected int, received number',
      'groups.0.data.photo: unknown key; did you mean "photos"?',
      'groups.0.sync.backup: Invalid input: expected boolean, received string',
      'groups.0.sync.contact: unknown key; did you mean "contacts"?',
      'groups.0.switches.0.name: Invalid option: expected one of "findDevice"|"cloudService"|"networkPermission"|' +
        '"sync.photos"|"sync.contacts"|"sync.notes"|"sync.recordings"|"backup"',
    ],
  )
  const loaded = checkScenario(
    {
      groups: [
        { name: 'plain' },
        { name: 'camera', data: { photos: 2 } },
        { name: 'flip', switches: [{ at: 0, name: 'backup', on: false }] },
      ],
    },
    's.yaml',
    '.',
  )
  t.same(syncingGroups(loaded.scenario), ['groups.1 (camera)', 'groups.2 (flip)'], 'a group syncs with data, sync or a sync switch')
  t.same(syncSetup(loaded.scenario.groups[1]!), {
    data: { photos: 2, contacts: 0, notes: 0, recordings: 0 },
    sync: { photos: true, contacts: true, notes: true, recordings: true, backup: true },
  })
  t.equal(syncSetup(loaded.scenario.groups[0]!), null, 'a group with neither runs as before')
  t.end()
})
