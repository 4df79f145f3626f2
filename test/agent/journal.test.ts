/** F2 the command journal (an append-only log with group commit) and the device-side checks, as units. */
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CommandJournal, JOURNAL_FILE, LEGACY_JOURNAL_FILE, type JournalEntry, type JournalOptions } from '../../agent/journal.js'
import { verifyCommand } from '../../agent/verify.js'
import type { Command } from '../../common/contract.js'
import { canonical } from '../../common/signing.js'
import { LogCapture } from '../fixtures/logs.js'
import { makeOwner, signed, type Owner } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'

function journalIn(dir: string, extra: Partial<JournalOptions> = {}): { journal: CommandJournal; logs: LogCapture } {
  const logs = new LogCapture()
  return { journal: new CommandJournal(dir, { log: logs.logger(), ...extra }), logs }
}

async function reopened(dir: string): Promise<CommandJournal> {
  const { journal } = journalIn(dir)
  await journal.load()
  return journal
}

const locate = (owner: Owner, seq: number): Command => signed(owner, 'p', 'locate', {}, 1000, { seq })
/** The journal's idle-close timer does not hold the process open; a test waiting for it must. */
function holdOpen(t: Test): void {
  const timer = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(timer))
}
const logLines = (dir: string): string[] => readFileSync(join(dir, JOURNAL_FILE), 'utf8').split('\n').slice(0, -1)

/** A datasync the test lets through one call at a time, so it sees what is (not) resolved while a sync is in flight. */
class HeldSyncs {
  calls = 0
  private held: (() => void)[] = []
  private onEnter: (() => void) | null = null

  readonly datasync = async (file: FileHandle): Promise<void> => {
    this.calls++
    await new Promise<void>((release) => {
      this.held.push(release)
      this.onEnter?.()
    })
    await file.datasync()
  }

  /** Resolves once a sync is waiting to be let through. */
  entered(): Promise<void> {
    if (this.held.length > 0) return Promise.resolve()
    return new Promise((resolve) => (this.onEnter = resolve))
  }

  release(): void {
    ;(this.held.shift() as () => void)()
  }
}

function tracked(p: Promise<void>): { done: boolean; promise: Promise<void> } {
  const s = { done: false, promise: p }
  s.promise = p.then(() => {
    s.done = true
  })
  return s
}

t.test('F2 the journal keeps the last 200 finished commands and never lowers lastSeq, in the log and after a restart', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const { journal } = journalIn(dir)
  await journal.load()
  const commands = Array.from({ length: 205 }, (_, i) => locate(owner, i + 1))
  for (const command of commands.slice(0, 5)) await journal.put({ step: 'done', command, reported: true })
  await Promise.all(commands.slice(5).map((command) => journal.put({ step: 'done', command, reported: true })))
  await journal.put({ step: 'received', command: locate(owner, 3), reported: false })
  t.equal(journal.lastSeq, 205, 'an older sequence number does not lower lastSeq')
  t.equal(journal.entry(commands[0]!.id), undefined, 'the oldest finished entries are dropped')
  t.ok(journal.entry(commands[204]!.id))
  const again = await reopened(dir)
  t.equal(again.lastSeq, 205, 'it is on disk')
  t.equal(again.entry(commands[4]!.id), undefined, 'replaying the log drops the same entries')
  t.ok(again.entry(commands[5]!.id))
  t.equal(again.unfinished().length, 1)
})

t.test('F2 a step is never durable before its sync, and steps put during a sync share the next one (group commit)', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const syncs = new HeldSyncs()
  const { journal } = journalIn(dir, { datasync: syncs.datasync })
  await journal.load()
  t.equal(journal.syncs, 0, 'a new journal writes nothing at load (issue 12: a fleet phone starts without a file write)')
  t.notOk(existsSync(join(dir, JOURNAL_FILE)))
  await journal.put({ step: 'done', command: locate(owner, 1), reported: true })
  t.equal(journal.syncs, 2, 'its first step creates the log (write, fsync, rename, directory fsync)')
  t.equal(syncs.calls, 0)

  const first = locate(owner, 2)
  const a = tracked(journal.put({ step: 'received', command: first, reported: false }))
  await syncs.entered()
  t.match(readFileSync(join(dir, JOURNAL_FILE), 'utf8'), first.id, 'the line is written before its sync')
  t.notOk(a.done, 'but not reported durable while its sync is in flight')
  t.equal(journal.entry(first.id)?.step, 'received', 'memory has it at once')

  const rest = Array.from({ length: 9 }, (_, i) => locate(owner, 3 + i))
  const others = rest.map((command) => tracked(journal.put({ step: 'received', command, reported: false })))
  syncs.release()
  await a.promise
  await syncs.entered()
  t.equal(syncs.calls, 2, 'the nine steps put during the first sync wait for one more')
  t.ok(
    others.every((o) => !o.done),
    'none of them is reported durable before that sync',
  )
  syncs.release()
  await Promise.all(others.map((o) => o.promise))
  t.equal(journal.syncs - 2, 2, '10 steps, 2 fdatasyncs')
  t.equal(logLines(dir).length, 12, 'one line per step after the lastSeq line and the first step')
  await journal.flushed()

  const again = await reopened(dir)
  t.equal(again.unfinished().length, 10, 'every step is in the log')
  t.equal(again.lastSeq, 11)
})

t.test('F2 a torn last line is ignored and logged, and the log is rewritten without it at start', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const one = locate(owner, 1)
  const two = locate(owner, 2)
  const entry = (command: Command): string => JSON.stringify({ step: 'received', command, reported: false })
  writeFileSync(join(dir, JOURNAL_FILE), `${entry(one)}\n${entry(two).slice(0, 40)}`)
  const { journal, logs } = journalIn(dir)
  await journal.load()
  t.ok(journal.entry(one.id))
  t.equal(journal.entry(two.id), undefined, 'the cut-short step is as if never written')
  t.match(logs.lines, [{ msg: 'torn last journal line ignored', line: 2, bytes: 40 }])
  t.equal(journal.compactions, 1, 'the log was rewritten at once, without the torn line')
  await journal.put({ step: 'executing', command: one, reported: false })
  t.same(
    logLines(dir).map((l) => JSON.parse(l) as object),
    [{ lastSeq: 1 }, { step: 'received', command: one, reported: false }, { step: 'executing', command: one, reported: false }],
    'the torn step is gone: it was never reported durable, so its command never went on',
  )

  // A whole last line that lost only its newline is kept; a bad line before the last is an error naming it.
  writeFileSync(join(dir, JOURNAL_FILE), `${entry(one)}\n${entry(two)}`)
  const kept = await reopened(dir)
  t.ok(kept.entry(two.id))
  writeFileSync(join(dir, JOURNAL_FILE), `${entry(one)}\nnot json\n${entry(two)}\n`)
  await t.rejects(reopened(dir), { code: 'INVALID', message: /commands\.jsonl line 2: payload is not valid JSON/ })
})

t.test('F2 an upgraded phone keeps its exactly-once memory: commands.json is migrated to the log and removed', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const done = locate(owner, 5)
  const running = locate(owner, 6)
  const legacy = {
    lastSeq: 9,
    entries: {
      [done.id]: { step: 'done', command: done, result: { command: done.id, device: 'p', state: 'succeeded', at: 1 }, reported: true },
      [running.id]: { step: 'executing', command: running, reported: false },
    },
  }
  writeFileSync(join(dir, LEGACY_JOURNAL_FILE), JSON.stringify(legacy))
  const { journal, logs } = journalIn(dir)
  await journal.load()
  t.equal(journal.lastSeq, 9)
  t.match(journal.entry(done.id), { step: 'done', reported: true })
  t.same(
    journal.unfinished().map((e) => e.command.id),
    [running.id],
    'the interrupted command is still to finish',
  )
  t.notOk(existsSync(join(dir, LEGACY_JOURNAL_FILE)), 'the old file is gone')
  t.ok(logs.has('command journal migrated from commands.json'))
  const verdict = verifyCommand(JSON.stringify(signed(owner, 'p', 'locate', {}, 1000, { seq: 8 })), {
    deviceId: 'p',
    ownerKey: owner.publicKey,
    now: 1000,
    lastSeq: (await reopened(dir)).lastSeq,
  })
  t.match(verdict, { ok: false, reason: /already seen/ }, 'after the next start too, an old sequence number is a replay')

  // A crash between writing the log and removing the old file: the log wins and the old file goes.
  writeFileSync(join(dir, LEGACY_JOURNAL_FILE), JSON.stringify({ lastSeq: 1, entries: {} }))
  const after = await reopened(dir)
  t.equal(after.lastSeq, 9)
  t.notOk(existsSync(join(dir, LEGACY_JOURNAL_FILE)))
})

t.test('F2 a log that cannot be written at start is logged, not fatal; the old journal stays until the log holds it', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const old = locate(owner, 4)
  writeFileSync(
    join(dir, LEGACY_JOURNAL_FILE),
    JSON.stringify({ lastSeq: 4, entries: { [old.id]: { step: 'received', command: old, reported: false } } }),
  )
  // The log's temporary file cannot be created while a directory has its name: as on a full disk.
  mkdirSync(join(dir, `${JOURNAL_FILE}.tmp`))
  const { journal, logs } = journalIn(dir)
  await journal.load()
  t.ok(logs.has('command journal could not be rewritten at start'))
  t.ok(existsSync(join(dir, LEGACY_JOURNAL_FILE)), 'the old journal is kept')
  t.equal(journal.unfinished().length, 1, 'its entries are in memory')
  rmSync(join(dir, `${JOURNAL_FILE}.tmp`), { recursive: true })
  const next = locate(owner, 5)
  await journal.put({ step: 'received', command: next, reported: false })
  const again = await reopened(dir)
  t.same(
    again.unfinished().map((e) => e.command.id),
    [old.id, next.id],
    'the first write put the whole journal in the log',
  )
  t.notOk(existsSync(join(dir, LEGACY_JOURNAL_FILE)), 'and the start after it removed the old file')
})

t.test('F2 the log is compacted past its bound and replays to the same journal', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const { journal } = journalIn(dir, { compactAfter: 5 })
  await journal.load()
  const put = (step: JournalEntry['step'], command: Command, reported = false): Promise<void> => journal.put({ step, command, reported })
  const commands = Array.from({ length: 6 }, (_, i) => locate(owner, i + 1))
  for (const command of commands) {
    await put('received', command)
    await put('done', command, true)
  }
  t.ok(journal.compactions >= 2, `compacted ${journal.compactions} times`)
  t.ok(logLines(dir).length <= 5 + 6 + 1, 'the log stays within its bound')
  const again = await reopened(dir)
  t.same(
    commands.map((c) => again.entry(c.id)?.reported),
    commands.map(() => true),
  )
  t.equal(again.lastSeq, 6)
  t.equal(again.compactions, 0, 'a log within its bound is left as it is at start')
  const small = journalIn(dir, { compactAfter: 1 }).journal
  await small.load()
  t.equal(small.compactions, 1, 'one past it is compacted at start')
  t.equal(logLines(dir).length, 7)
})

t.test('F2 a failed write rejects its steps; the next write replaces the log whole from memory', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  let fail = false
  const { journal } = journalIn(dir, {
    datasync: async (file) => {
      if (fail) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
      await file.datasync()
    },
  })
  await journal.load()
  const [one, two, three] = [locate(owner, 1), locate(owner, 2), locate(owner, 3)]
  await journal.put({ step: 'received', command: one, reported: false })
  fail = true
  await t.rejects(journal.put({ step: 'received', command: two, reported: false }), { code: 'ENOSPC' })
  fail = false
  await journal.put({ step: 'received', command: three, reported: false })
  t.equal(journal.compactions, 2, 'the first step (which created the log) and the write after the failure rewrote the log')
  t.same(
    (await reopened(dir)).unfinished().map((e) => e.command.id),
    [one.id, two.id, three.id],
  )
})

t.test('a journal that cannot be read is an error at load', async (t: Test) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, JOURNAL_FILE))
  await t.rejects(reopened(dir), { code: 'EISDIR' })
})

t.test('an unpaired device refuses every command', (t) => {
  const owner = makeOwner(t)
  const verdict = verifyCommand(JSON.stringify(signed(owner, 'p', 'locate', {}, 1000)), {
    deviceId: 'p',
    ownerKey: undefined,
    now: 1000,
    lastSeq: 0,
  })
  t.match(verdict, { ok: false, reason: 'this device is not paired with an owner' })
  t.end()
})

t.test('canonical JSON sorts keys at every level, arrays included, and drops undefined', (t) => {
  t.equal(canonical({ b: [{ d: 1, c: 2 }], a: 'x', u: undefined }), '{"a":"x","b":[{"c":2,"d":1}]}')
  t.end()
})

t.test("F2 a command's steps append through one open log; it closes when idle and before a compaction replaces it", async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const handles: FileHandle[] = []
  const { journal, logs } = journalIn(dir, {
    compactAfter: 3,
    keepOpenMs: 60_000,
    datasync: async (file) => {
      handles.push(file)
      await file.datasync()
    },
  })
  await journal.load()
  const [one, two, three] = [locate(owner, 1), locate(owner, 2), locate(owner, 3)]
  await journal.put({ step: 'received', command: one, reported: false }) // creates the log: a compaction
  t.notOk(journal.isOpen, 'a compaction leaves no descriptor open')
  await journal.put({ step: 'done', command: one, reported: false })
  await journal.put({ step: 'done', command: one, reported: true })
  await journal.put({ step: 'received', command: two, reported: false })
  t.equal(handles.length, 3)
  t.ok(handles[0] === handles[1] && handles[1] === handles[2], 'the steps shared one descriptor')
  t.ok(journal.isOpen, 'still open after the last step')
  await journal.put({ step: 'done', command: two, reported: true }) // past the bound: compacted, the file renamed over
  t.equal(journal.compactions, 2)
  t.notOk(journal.isOpen, 'the compaction closed it before the rename')
  await journal.put({ step: 'received', command: three, reported: false })
  t.not(handles[3], handles[0], 'the step after the compaction opened the new file')
  t.same(
    logLines(dir).map((l) => (JSON.parse(l) as { step?: string }).step),
    [undefined, 'done', 'done', 'received'],
    'the step after it is in the file a restart reads',
  )
  const again = await reopened(dir)
  t.equal(again.entry(two.id)?.reported, true)
  t.equal(again.entry(three.id)?.step, 'received')
  t.equal(logs.lines.length, 0, 'nothing said meanwhile')

  holdOpen(t)
  const idle = journalIn(dir, { keepOpenMs: 1 })
  await idle.journal.load()
  await idle.journal.put({ step: 'done', command: three, reported: false })
  t.ok(idle.journal.isOpen)
  await idle.logs.waitFor((l) => l.msg === 'command journal closed while idle')
  t.notOk(idle.journal.isOpen, 'closed once idle')
  await idle.journal.put({ step: 'done', command: three, reported: true })
  t.equal((await reopened(dir)).entry(three.id)?.reported, true, 'a step after the idle close opens it again')

  const released = journalIn(dir)
  await released.journal.load()
  const step = released.journal.put({ step: 'done', command: two, reported: true })
  const release = released.journal.release()
  await step
  t.ok(released.journal.isOpen, 'the step in flight when release was asked kept its descriptor to the end')
  await release
  t.notOk(released.journal.isOpen, 'release closed it without waiting out the second')
  await released.journal.release()
  t.notOk(released.journal.isOpen, 'a second release has nothing to close')
})

t.test('F2 a log that cannot be closed when idle is said once and lost nothing', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  let last: FileHandle | undefined
  const { journal, logs } = journalIn(dir, {
    keepOpenMs: 1,
    datasync: async (file) => {
      last = file
      await file.datasync()
    },
  })
  await journal.load()
  const command = locate(owner, 1)
  await journal.put({ step: 'received', command, reported: false }) // creates the log (a compaction)
  await journal.put({ step: 'done', command, reported: false })
  const file = last as FileHandle
  holdOpen(t)
  const close = file.close.bind(file)
  file.close = () => Promise.reject(Object.assign(new Error('input/output error'), { code: 'EIO' }))
  const said = await logs.waitFor((l) => l.msg === 'command journal could not be closed')
  t.match(said, { level: 40, err: { code: 'EIO' } })
  await close()
  t.equal((await reopened(dir)).entry(command.id)?.step, 'done')
})
