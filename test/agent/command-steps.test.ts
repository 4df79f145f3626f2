/**
 * F2 exactly once, issue 14: the journal steps a command waits for before its receipt, and what a crash at each of
 * them leaves. A command that changes the phone writes `executing`, runs, writes `done`; a locate writes `done` alone,
 * its fix taken at once (agent/remote.ts gives the crash reasoning). Real broker, real agent, real journal files; a crash
 * is re-enacted by the log it leaves behind, as in remote.test.ts, and each such log is the one a live phone writes
 * (checked here with the step held between its sync and the phone being told of it).
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Agent } from '../../agent/agent.js'
import { JOURNAL_FILE, type CommandJournal, type JournalEntry } from '../../agent/journal.js'
import type { ManualClock } from '../../common/clock.js'
import type { Command } from '../../common/contract.js'
import { startAgent, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { commandState, listening, makeOwner, provision, run, signed } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'

async function setup(t: Test) {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  const dataDir = tempDir(t)
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  await listening(cloud, 'phone-a')
  const seed = (): void => {
    mkdirSync(join(dataDir, 'user'), { recursive: true })
    writeFileSync(join(dataDir, 'user', 'precious.jpg'), Buffer.alloc(1024))
  }
  return { cloud, clock, owner, secret, dataDir, agent, seed }
}

const logLines = (dataDir: string): string[] => readFileSync(join(dataDir, JOURNAL_FILE), 'utf8').split('\n').slice(0, -1)
const line = (entry: JournalEntry): string => JSON.stringify(entry)
const stepName = (e: JournalEntry): string => (e.reported ? `${e.step}, reported` : e.step)
/** A log line as [command id, step, result state], or [`lastSeq N`]. */
const summary = (l: string): (string | undefined)[] => {
  const o = JSON.parse(l) as JournalEntry | { lastSeq: number }
  return 'lastSeq' in o ? [`lastSeq ${o.lastSeq}`] : [o.command.id, stepName(o), o.result?.state]
}

/**
 * The steps of command `id` in the log, in order, a repeated "done, reported" once (a receipt sent again, for a
 * redelivery that crossed it, is recorded again).
 */
const stepsOf = (dataDir: string, id: string): string[] => {
  const steps = logLines(dataDir)
    .map(summary)
    .filter((s) => s[0] === id)
    .map((s) => s[1] as string)
  return steps.filter((step, i) => step !== 'done, reported' || steps.indexOf(step) === i)
}

/** Records the steps put for each command (wrapping `put` on this journal), and resolves when one is durable. */
function recordPuts(t: Test, journal: CommandJournal) {
  const original = journal.put
  const steps = new Map<string, string[]>()
  const durable = new Set<string>()
  const waiting: { key: string; resolve: () => void }[] = []
  journal.put = async (entry: JournalEntry): Promise<void> => {
    const name = stepName(entry)
    steps.set(entry.command.id, [...(steps.get(entry.command.id) ?? []), name])
    await original.call(journal, entry)
    const key = `${entry.command.id} ${name}`
    durable.add(key)
    for (const w of waiting.filter((w) => w.key === key)) w.resolve()
  }
  t.teardown(() => {
    journal.put = original
  })
  return {
    of: (id: string): string[] => steps.get(id) ?? [],
    /** Resolves once the step `name` of command `id` is durable, and the journal has no write in progress. */
    durable: async (id: string, name: string): Promise<void> => {
      const key = `${id} ${name}`
      if (!durable.has(key)) await new Promise<void>((resolve) => waiting.push({ key, resolve }))
      await journal.flushed()
    },
  }
}

/** Starts the phone again on `dataDir`, its journal's steps recorded from the start. */
async function restart(t: Test, s: Awaited<ReturnType<typeof setup>>) {
  let puts: ReturnType<typeof recordPuts> | undefined
  const agent = await startAgent(t, s.cloud, 'phone-a', s.secret, { dataDir: s.dataDir, ownerKey: s.owner.publicKey }, (a) => {
    puts = recordPuts(t, a.remote.journal)
  })
  return { agent, puts: puts as ReturnType<typeof recordPuts> }
}

/**
 * Holds the first step of command `id` after its write and sync returned, before the phone is told it is durable: the
 * latest point a crash can come before that step counts. `reached` resolves with what the log holds then.
 */
function holdFirstStep(t: Test, journal: CommandJournal, dataDir: string, id: string) {
  const original = journal.put
  let release = (): void => {}
  const held = new Promise<void>((resolve) => (release = resolve))
  let reached = (_log: string[]): void => {}
  const atHold = new Promise<string[]>((resolve) => (reached = resolve))
  const holding = async (entry: JournalEntry): Promise<void> => {
    if (entry.command.id !== id) return original.call(journal, entry)
    journal.put = original
    await original.call(journal, entry)
    reached(logLines(dataDir))
    await held
  }
  journal.put = holding
  t.teardown(() => {
    if (journal.put === holding) journal.put = original
    release()
  })
  return { atHold, release }
}

/**
 * Everything the phone published before this call has reached the broker: a heartbeat sent now on the same MQTT
 * connection, which keeps order, is stored after it.
 */
async function phonePublishesArrived(cloud: Awaited<ReturnType<typeof startCloud>>, clock: ManualClock): Promise<void> {
  const stored = storedHeartbeats(cloud, 1)
  clock.advance(30_000)
  await stored
}

/**
 * A crash left a wipe in the journal: the wipe was queued while the phone was down, the phone's files are seeded, and
 * its journal holds `journal(wipe)` and nothing else. The phone is not restarted yet.
 */
async function wipeLeftInJournal(t: Test, journal: (wipe: Command) => string) {
  const s = await setup(t)
  const wipe = signed(s.owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, s.clock.now())
  await offlineWith(s.cloud, s.agent, wipe)
  s.seed()
  writeFileSync(join(s.dataDir, JOURNAL_FILE), journal(wipe))
  return { s, wipe, finished: commandState(s.cloud, wipe.id) }
}

/** The phone is down with `command` queued for it in the cloud. */
async function offlineWith(cloud: Awaited<ReturnType<typeof startCloud>>, agent: Agent, command: Command): Promise<void> {
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  cloud.broker.commands.submit('phone-a', command)
}

t.test('F2 a locate costs one sync before its receipt, a ring two; recording the receipt as sent one more', async (t) => {
  const { cloud, clock, owner, agent, dataDir } = await setup(t)
  const journal = agent.remote.journal
  const puts = recordPuts(t, journal)
  // The first step of a new phone creates the log (a compaction, two syncs): out of the way first.
  const warm = signed(owner, 'phone-a', 'locate', {}, clock.now())
  await run(cloud, warm)
  await puts.durable(warm.id, 'done, reported')

  for (const [type, args, expected] of [
    ['locate', {}, ['done', 'done, reported']],
    ['ring', { seconds: 5 }, ['executing', 'done', 'done, reported']],
  ] as const) {
    const syncs = journal.syncs
    const compactions = journal.compactions
    const lines = logLines(dataDir).length
    const command = signed(owner, 'phone-a', type, args as never, clock.now())
    const view = await run(cloud, command)
    t.equal(view.state, 'succeeded', type)
    await puts.durable(command.id, 'done, reported')
    t.same(puts.of(command.id), expected, `${type}: the steps put, in order`)
    t.same(
      logLines(dataDir)
        .slice(lines)
        .map((l) => stepName(JSON.parse(l) as JournalEntry)),
      expected,
      `${type}: one line each on disk`,
    )
    t.equal(journal.compactions, compactions, 'no compaction in between')
    t.equal(
      journal.syncs - syncs,
      expected.length,
      `${type}: ${expected.length} fdatasyncs in all, ${expected.length - 1} before the receipt`,
    )
  }
  t.same(
    cloud.broker.commands.list('phone-a').map((c) => c.state),
    ['succeeded', 'succeeded', 'succeeded'],
    'the final receipts settled every command',
  )
  t.match(
    await agent.run(signed(owner, 'phone-a', 'locate', {}, clock.now())),
    { state: 'succeeded', data: { lat: 55.9486 } },
    'run answers a locate too',
  )
})

t.test(
  'F2 a wipe does nothing and says nothing until its executing line is synced; a locate gives no fix until its done line is, ' +
    'not even to a redelivery',
  async (t) => {
    const { cloud, clock, owner, agent, dataDir, seed } = await setup(t)
    // The first step of a new phone creates the log whole: a command first, so the wipe's step is an append.
    const puts = recordPuts(t, agent.remote.journal)
    const ring = signed(owner, 'phone-a', 'ring', { seconds: 1 }, clock.now())
    t.equal((await run(cloud, ring)).state, 'succeeded')
    await puts.durable(ring.id, 'done, reported')
    seed()
    const wipe = signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now())
    const before = logLines(dataDir)
    const heldWipe = holdFirstStep(t, agent.remote.journal, dataDir, wipe.id)
    const wiped = commandState(cloud, wipe.id)
    cloud.broker.commands.submit('phone-a', wipe)
    const atWipe = await heldWipe.atHold
    t.same(atWipe.slice(0, -1), before, 'the log grew by one line')
    t.same(
      JSON.parse(atWipe.at(-1) as string),
      { step: 'executing', command: wipe, reported: false },
      'for the wipe: executing (no received line before it)',
    )
    await phonePublishesArrived(cloud, clock)
    t.ok(existsSync(join(dataDir, 'user', 'precious.jpg')), 'nothing was wiped yet')
    t.equal(cloud.broker.commands.get(wipe.id)?.state, 'queued', 'and no receipt went out')
    heldWipe.release()
    t.match(await wiped, { state: 'succeeded', data: { files: 1 } })
    t.notOk(existsSync(join(dataDir, 'user')))
    await agent.remote.idle()

    const locate = signed(owner, 'phone-a', 'locate', {}, clock.now())
    const heldLocate = holdFirstStep(t, agent.remote.journal, dataDir, locate.id)
    const located = commandState(cloud, locate.id)
    cloud.broker.commands.submit('phone-a', locate)
    const atLocate = await heldLocate.atHold
    const last = JSON.parse(atLocate.at(-1) as string) as JournalEntry
    t.match(
      last,
      { step: 'done', command: { id: locate.id }, result: { state: 'succeeded', data: { lat: 55.9486 } }, reported: false },
      'its only line holds the fix',
    )
    // A redelivery meanwhile (a QoS 1 retry, or a broker that replays) must not get the fix either.
    const settled = once(agent.remote, 'settled')
    cloud.broker.sendToDevice('phone-a', JSON.stringify(locate))
    t.same((await settled).slice(1), ['repeat'], 'the redelivery is a repeat')
    await phonePublishesArrived(cloud, clock)
    t.equal(cloud.broker.commands.get(locate.id)?.state, 'queued', 'the fix has not left the phone, not even for the redelivery')
    heldLocate.release()
    t.same((await located).data, last.result?.data, 'the receipt carries the fix the line holds')
  },
)

t.test("F2 a crash after a wipe's executing line: the wipe finishes once at the next start, without writing that line again", async (t) => {
  const { s, wipe, finished } = await wipeLeftInJournal(t, (w) => `${line({ step: 'executing', command: w, reported: false })}\n`)
  const { cloud, dataDir, seed } = s
  const { agent: restarted, puts } = await restart(t, s)
  t.match(await finished, { state: 'succeeded', data: { files: 1, bytes: 1024 } }, 'the wipe completed after the restart')
  t.notOk(existsSync(join(dataDir, 'user')))
  await puts.durable(wipe.id, 'done, reported')
  t.same(stepsOf(dataDir, wipe.id), ['executing', 'done', 'done, reported'], 'the restart wrote done, not executing again')
  // A redelivery now (a resend, a replay) is answered from the journal, not run.
  seed()
  const settled = once(restarted.remote, 'settled')
  cloud.broker.sendToDevice('phone-a', JSON.stringify(wipe))
  t.same((await settled).slice(1), ['repeat'])
  t.ok(existsSync(join(dataDir, 'user', 'precious.jpg')), 'it wiped once')
})

t.test("F2 a crash while a wipe's executing line was being written (torn): nothing ran, the cloud resends it, it runs once", async (t) => {
  const { s, wipe, finished } = await wipeLeftInJournal(t, (w) => line({ step: 'executing', command: w, reported: false }).slice(0, 50))
  const { cloud, dataDir } = s
  const { puts } = await restart(t, s)
  t.ok(cloud.logs.has('torn last journal line ignored'))
  t.match(await finished, { state: 'succeeded', data: { files: 1 } }, 'the resent wipe ran')
  await puts.durable(wipe.id, 'done, reported')
  t.same(
    logLines(dataDir).map(summary),
    [['lastSeq 0'], [wipe.id, 'executing', undefined], [wipe.id, 'done', 'succeeded'], [wipe.id, 'done, reported', 'succeeded']],
    "the log was rewritten without the torn line, then the wipe's steps, once",
  )
})

t.test("F2 a crash after a locate's done line: its stored answer is sent at the next start and no new fix is taken", async (t) => {
  const s = await setup(t)
  const { cloud, clock, owner, agent, dataDir } = s
  const locate = signed(owner, 'phone-a', 'locate', {}, clock.now())
  await offlineWith(cloud, agent, locate)
  const answer = { lat: 1.5, lon: 2.5, accuracy: 7, at: clock.now() }
  const result = { command: locate.id, device: 'phone-a', at: clock.now(), state: 'succeeded', data: answer } as const
  writeFileSync(join(dataDir, JOURNAL_FILE), `${line({ step: 'done', command: locate, result, reported: false })}\n`)
  const finished = commandState(cloud, locate.id)
  const { agent: restarted, puts } = await restart(t, s)
  t.match(await finished, { state: 'succeeded', data: answer, receipt: { at: result.at } }, 'the receipt is the one on disk')
  await puts.durable(locate.id, 'done, reported')
  t.same(restarted.remote.journal.entry(locate.id)?.result, result, 'no new fix replaced it')
})

t.test("F2 a crash while a locate's done line was being written (torn): no fix left, the resent locate is answered once", async (t) => {
  const s = await setup(t)
  const { cloud, clock, owner, agent, dataDir } = s
  const earlier = signed(owner, 'phone-a', 'ring', { seconds: 5 }, clock.now())
  const locate = signed(owner, 'phone-a', 'locate', {}, clock.now())
  await offlineWith(cloud, agent, locate)
  const result = { command: locate.id, device: 'phone-a', at: clock.now(), state: 'succeeded', data: { lat: 1.5, lon: 2.5 } } as const
  // An earlier command's steps are whole: the lines before the torn one are on disk, the torn one is not.
  const before = [
    line({ step: 'executing', command: earlier, reported: false }),
    line({ step: 'done', command: earlier, result: { ...result, command: earlier.id, data: { seconds: 5 } }, reported: true }),
  ]
  writeFileSync(
    join(dataDir, JOURNAL_FILE),
    `${before.join('\n')}\n${line({ step: 'done', command: locate, result, reported: false }).slice(0, 120)}`,
  )
  const finished = commandState(cloud, locate.id)
  const { puts } = await restart(t, s)
  t.match(await finished, { state: 'succeeded', data: { lat: 55.9486, lon: -3.1999 } }, 'answered with a fix taken after the restart')
  await puts.durable(locate.id, 'done, reported')
  t.same(stepsOf(dataDir, locate.id), ['done', 'done, reported'], 'one done line, then its receipt recorded as sent')
})

t.test('F2 a log an older version left with a wipe at received (its first step then) still finishes it once', async (t) => {
  const { s, wipe, finished } = await wipeLeftInJournal(t, (w) => `${line({ step: 'received', command: w, reported: false })}\n`)
  const { dataDir } = s
  const { puts } = await restart(t, s)
  t.match(await finished, { state: 'succeeded', data: { files: 1 } })
  await puts.durable(wipe.id, 'done, reported')
  t.same(stepsOf(dataDir, wipe.id), ['received', 'executing', 'done', 'done, reported'], 'executing was written before it ran')
})

t.test('F2 a locate whose answer cannot be recorded (a full disk) is not answered: the owner is told why, no fix leaves', async (t) => {
  const { cloud, clock, owner, dataDir } = await setup(t)
  rmSync(join(dataDir, JOURNAL_FILE), { force: true })
  mkdirSync(join(dataDir, JOURNAL_FILE))
  const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))
  t.match(view, { state: 'failed', reason: /the phone could not record the command: EISDIR/ })
  t.equal(view.data, null, 'no position in the receipt')
})
