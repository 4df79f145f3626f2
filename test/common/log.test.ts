import t from 'tap'
import { LogCapture } from '../fixtures/logs.js'
import { PassThrough } from 'node:stream'
import { once } from 'node:events'
import { pino } from 'pino'
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, journalLine, lazyChild, onJournal, prettyLines, type Logger } from '../../common/log.js'
import { assertBuilt, cliCommand } from '../fixtures/child.js'
import { tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

/** $JOURNAL_STREAM as systemd sets it for the stream open on `fd`. */
function journalStream(fd: number): string {
  const stat = fstatSync(fd, { bigint: true })
  return `${String(stat.dev)}:${String(stat.ino)}`
}

t.test('secrets never reach a log line', (t) => {
  const logs = new LogCapture()
  const log = logs.logger()
  log.info({ secret: 's1', password: 'p1', token: 't1', device: { secret: 's2' }, headers: { authorization: 'Bearer x' } }, 'hello')
  const line = JSON.stringify(logs.lines[0])
  for (const s of ['s1', 'p1', 't1', 's2', 'Bearer x']) t.notMatch(line, s)
  t.match(line, /\[Redacted\]/)
  t.end()
})

t.test('loggers default to level info, JSON on stdout or pretty lines for a terminal', (t) => {
  t.equal(createLogger().level, 'info')
  t.equal(createLogger({ level: 'silent', pretty: true }).level, 'silent')
  t.equal(createLogger({ level: 'warn', pretty: false }).level, 'warn')
  // A command whose stdout is its output (fleet run's report) logs its JSON lines on stderr.
  t.equal(createLogger({ level: 'error', pretty: false, jsonFd: 2 }).level, 'error')
  t.end()
})

t.test('on the journal each JSON line is led by its syslog priority, so `journalctl -p warning` finds warnings', (t) => {
  t.equal(journalLine('{"level":40,"msg":"w"}\n'), '<4>{"level":40,"msg":"w"}\n')
  t.same(
    [60, 50, 30, 20, 10].map((level) => journalLine(`{"level":${String(level)}}\n`).slice(0, 3)),
    ['<2>', '<3>', '<6>', '<7>', '<7>'],
    'fatal crit, error err, info info, debug and trace debug',
  )
  t.equal(journalLine('{"level":35}\n'), '{"level":35}\n', 'a level pino does not have: the line as it is')
  t.equal(journalLine('{"msg":"no level"}\n'), '{"msg":"no level"}\n')

  const file = join(tempDir(t), 'journal')
  const fd = openSync(file, 'w')
  const other = openSync(join(tempDir(t), 'other'), 'w')
  t.teardown(() => [fd, other].forEach((f) => closeSync(f)))
  t.ok(onJournal(fd, { JOURNAL_STREAM: journalStream(fd) }), 'the stream systemd connected')
  t.notOk(onJournal(other, { JOURNAL_STREAM: journalStream(fd) }), "a redirected child's output inherits the variable, not the stream")
  t.notOk(onJournal(fd, {}), 'no journal')
  t.notOk(onJournal(fd, { JOURNAL_STREAM: 'garbage' }))
  t.notOk(onJournal(9999, { JOURNAL_STREAM: journalStream(fd) }), 'a closed stream')
  // This process's stderr as the journal: the logger is made for it (what it writes is proven below, by a daemon).
  t.equal(createLogger({ level: 'silent', pretty: false, jsonFd: 2, env: { JOURNAL_STREAM: journalStream(2) } }).level, 'silent')
  t.end()
})

t.test("a daemon under systemd: the broker's JSON lines reach the journal with their priorities, elsewhere bare", async (t) => {
  assertBuilt()
  const lines = async (journal: boolean): Promise<string[]> => {
    const dir = tempDir(t)
    const out = openSync(join(dir, 'stdout'), 'w')
    const env = { ...process.env, JOURNAL_STREAM: journal ? journalStream(out) : '1:1' }
    const args = ['broker', '--data', join(dir, 'data'), '--mqtt-port', '0', '--http-port', '0', '--simulated-time']
    const proc = spawn(...cliCommand(args), { stdio: ['ignore', out, 'pipe'], env })
    closeSync(out)
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    let err = ''
    await within(
      15_000,
      'the broker listening',
      new Promise<void>((resolve) => proc.stderr?.on('data', (d: Buffer) => (err += d.toString()).includes('Broker on') && resolve())),
    )
    proc.kill('SIGTERM')
    t.equal(await within(10_000, 'the broker stopping', exited), 0)
    return readFileSync(join(dir, 'stdout'), 'utf8').trimEnd().split('\n')
  }
  const journal = await lines(true)
  t.match(journal, [/^<4>\{"level":40,.*"msg":"simulated time: /], 'a warning at priority 4')
  t.ok(
    journal.some((l) => /^<6>\{"level":30,.*"msg":"broker listening"/.test(l)),
    'info at 6',
  )
  t.ok(
    journal.every((l) => /^<\d>\{/.test(l)),
    'every line',
  )
  const elsewhere = await lines(false)
  t.ok(elsewhere.length > 0 && elsewhere.every((l) => l.startsWith('{"level":')), 'output that is not the journal stays JSON lines')
})

t.test('a terminal gets one line per entry: who said it, what it said, then its fields', async (t) => {
  const out = new PassThrough()
  let text = ''
  out.on('data', (chunk: Buffer) => (text += chunk.toString()))
  const log = pino({}, prettyLines(out, false))
  log.child({ module: 'agent', device: 'pi2' }).info({ broker: 'mqtt://127.0.0.1:1', dataDir: './pi2' }, 'agent started')
  log.child({ module: 'mqtt' }).warn('publish refused')
  log.info('plain')
  log.child({ worker: 2 }).child({ module: 'fleet' }).error('phone lost')
  log.flush()
  while (text.split('\n').length < 5) await once(out, 'data')
  const lines = text.trimEnd().split('\n')
  t.equal(lines.length, 4, 'four entries, four lines')
  t.match(lines[0], /^\[[\d:.]+\] INFO: agent pi2: agent started \{"broker":"mqtt:\/\/127\.0\.0\.1:1","dataDir":"\.\/pi2"\}$/)
  t.match(lines[1], /^\[[\d:.]+\] WARN: mqtt: publish refused$/)
  t.match(lines[2], /^\[[\d:.]+\] INFO: plain$/)
  t.match(lines[3], /^\[[\d:.]+\] ERROR: worker 2 fleet: phone lost$/)
})

t.test("on a terminal a log line first wipes the line it starts on (a fleet's live progress line)", async (t) => {
  const out = new PassThrough()
  const log = pino({}, prettyLines(out, true))
  log.info('hello')
  const [chunk] = (await once(out, 'data')) as [Buffer]
  t.match(chunk.toString(), /^\r\x1b\[K\S*\[[\d:.]+\]/, 'carriage return and erase-line, then the time')
})

/** Every line written, parsed, without its time (two loggers never log in the same millisecond for sure). */
function capture(): { lines: unknown[]; logger: (level?: string) => Logger } {
  const lines: unknown[] = []
  const destination = {
    write: (line: string): void => {
      const { time: _time, ...rest } = JSON.parse(line) as Record<string, unknown>
      lines.push(rest)
    },
  }
  return { lines, logger: (level = 'debug') => createLogger({ level, destination }) }
}

t.test('a lazy child logs what the eager child logs, bindings redacted the same, in the same order', (t) => {
  const eager = capture()
  const lazy = capture()
  const bindings = { device: 'd1', creds: { secret: 's1' } }
  const e = eager.logger().child(bindings).child({ component: 'remote' })
  const l = lazyChild(lazyChild(lazy.logger(), bindings), { component: 'remote' })
  for (const log of [e, l]) {
    log.info({ token: 't1', n: 1 }, 'hello')
    log.child({ part: 'x' }).warn('from a grandchild')
  }
  t.same(lazy.lines, eager.lines)
  t.notMatch(JSON.stringify(lazy.lines), /s1|t1/)
  t.match(lazy.lines[0], { device: 'd1', component: 'remote', n: 1, msg: 'hello' })
  t.end()
})

/** Records the bindings of every pino child `root` makes (pino's children inherit the spy). */
function childrenMade(root: Logger): unknown[] {
  const made: unknown[] = []
  const child = root.child.bind(root)
  root.child = ((bindings: Record<string, unknown>) => {
    made.push(bindings)
    return child(bindings)
  }) as typeof root.child
  return made
}

t.test('a lazy child makes its pino child on first use only, and no earlier for its own children', (t) => {
  const root = capture().logger()
  const made = childrenMade(root)
  const phone = lazyChild(root, { device: 'd1' })
  const part = phone.child({ component: 'drive' })
  t.same(made, [], 'nothing made while nothing logs')
  part.error('once')
  // pino's children inherit the root's own properties, the spy among them: the phone's child makes the part's.
  t.same(made, [{ device: 'd1' }, { component: 'drive' }], "the part's first line made the phone's child, then the part's")
  phone.error('twice')
  t.same(made.length, 2, 'each made once')
  t.end()
})

t.test('a line below the level makes no child; one at the level does, and the made child answers for its own', (t) => {
  const out = capture()
  const root = out.logger('warn')
  const made = childrenMade(root)
  const phone = lazyChild(root, { device: 'd1' })
  const part = lazyChild(phone, { component: 'framework' })
  part.info('push connected')
  phone.debug('quiet')
  t.same(made, [], 'nothing made for lines not written')
  phone.warn('up')
  t.same(made, [{ device: 'd1' }])
  part.info('still below the level, asked of the phone made')
  t.same(made, [{ device: 'd1' }])
  part.error('written')
  t.same(made, [{ device: 'd1' }, { component: 'framework' }])
  t.same(
    out.lines.map((l) => (l as { msg: string }).msg),
    ['up', 'written'],
  )
  t.end()
})

t.test("a lazy child's level, `in` and child options are the pino child's", (t) => {
  const out = capture()
  const log = lazyChild(out.logger('info'), { device: 'd1' })
  t.equal(log.level, 'info')
  t.ok('warn' in log)
  log.level = 'error'
  log.warn('dropped')
  t.equal(log.level, 'error')
  const loud = lazyChild(out.logger('info'), { device: 'd2' }).child({ component: 'c' }, { level: 'debug' })
  loud.debug('kept')
  t.same(out.lines.length, 1)
  t.match(out.lines[0], { device: 'd2', component: 'c', msg: 'kept' })
  t.end()
})
