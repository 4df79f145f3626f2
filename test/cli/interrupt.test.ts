/**
 * Ctrl-C, the way a user presses it: the built CLI as a child process and a
 * real SIGINT. A one-shot command (seed-data mid-way, a remote command waiting
 * on an offline phone, F2) stops within a second, exit 130, saying what it cut
 * short; the demo stops cleanly with exit 0 even when the one Ctrl-C arrives
 * twice (the terminal signals the group and `npm start` forwards its copy).
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { main } from '../../cli/main.js'
import { LOCK_FILE } from '../../common/data-lock.js'
import { SystemClock } from '../../common/clock.js'
import { run, testIo } from '../fixtures/io.js'
import { assertBuilt, cliCommand, spawnCli } from '../fixtures/child.js'
import { onEnd, tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

interface Watched {
  proc: ChildProcessWithoutNullStreams
  out(): string
  err(): string
  /** Resolves once the stream's text so far matches `want`. */
  waitFor(stream: 'out' | 'err', want: RegExp): Promise<string>
  exited: Promise<number | null>
}

function start(t: Test, args: string[]): Watched {
  const proc = spawn(...cliCommand(args), { stdio: 'pipe' })
  const text = { out: '', err: '' }
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  onEnd(t, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    return exited
  })
  proc.stdout.on('data', (d: Buffer) => (text.out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (text.err += d.toString()))
  const waitFor = (stream: 'out' | 'err', want: RegExp): Promise<string> =>
    within(
      30_000,
      `${stream} matching ${want}`,
      new Promise((resolve) => {
        const source = stream === 'out' ? proc.stdout : proc.stderr
        const check = (): void => {
          if (!want.test(text[stream])) return
          source.off('data', check)
          resolve(text[stream])
        }
        source.on('data', check)
        check()
      }),
      () => `(stdout: ${text.out.slice(-500)} stderr: ${text.err.slice(-500)})`,
    )
  return { proc, out: () => text.out, err: () => text.err, waitFor, exited }
}

/**
 * Sends SIGINT; fails unless the process says it was interrupted within `ms`
 * (what the person at the terminal sees), then resolves with its exit code.
 */
async function interrupt(w: Watched, ms: number): Promise<number | null> {
  w.proc.kill('SIGINT')
  await within(ms, 'the interrupted message after SIGINT', w.waitFor('err', /interrupted: /), () => `(stderr: ${w.err().slice(-500)})`)
  return within(10_000, 'exit after SIGINT', w.exited, () => `(stderr: ${w.err().slice(-500)})`)
}

t.setTimeout(180_000)

t.test('Ctrl-C stops seed-data mid-way within a second, exit 130, saying so', async (t) => {
  assertBuilt()
  const dir = tempDir(t)
  const camera = join(dir, 'sdcard', 'DCIM', 'Camera')
  mkdirSync(camera, { recursive: true })
  const watcher = watch(camera)
  onEnd(t, () => watcher.close())
  const firstPhoto = within(
    30_000,
    'a first photo written',
    new Promise<void>((resolve) => watcher.on('change', (_event, name) => String(name).endsWith('.jpg') && resolve())),
  )
  const seeding = start(t, [
    'agent',
    'seed-data',
    '--data',
    dir,
    '--photos',
    '100000',
    '--contacts',
    '0',
    '--notes',
    '0',
    '--recordings',
    '0',
  ])
  await firstPhoto
  t.equal(await interrupt(seeding, 1000), 130)
  t.match(seeding.err(), /\nSIGINT: stopping[^\n]*\ninterrupted: fakephone agent seed-data stopped before it finished\n$/)
  t.equal(seeding.out(), '', 'no claim that it seeded')
})

t.test('F2 a command to an offline phone says at once that it is queued; Ctrl-C while it waits stops within a second', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const keys = join(data, 'keys')
  // device add and the listing run in this process (on the real clock, as a process of their own would); the broker and the
  // interrupted console are processes: the Ctrl-C is a signal to one.
  const secretOut = join(data, 'p.secret')
  t.equal(
    (await run(['device', 'add', 'away-phone', '--data', data, '--keys', keys, '--secret-out', secretOut], new SystemClock())).code,
    0,
  )
  const broker = spawnCli(t, ['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const up = await broker.waitForLog((l) => l.msg === 'broker listening')
  const tokenFile = join(data, 'console.token')
  const ringing = start(t, [
    'console',
    '--api',
    `http://127.0.0.1:${String(up.httpPort)}`,
    '--token-file',
    tokenFile,
    'ring',
    'away-phone',
    '--keys',
    keys,
    '--wait',
    '1m',
  ])
  const said = await ringing.waitFor('out', /follow it with: .*\n/)
  t.match(
    said,
    new RegExp(
      String.raw`^away-phone is offline: ring is queued and runs when it comes back \(expires in [^)]+\)\n` +
        String.raw`command [0-9a-f-]{36} is queued; follow it with: ` +
        `fakephone console --api http://127.0.0.1:${String(up.httpPort)} --token-file ${tokenFile} commands away-phone\n$`,
    ),
    'said before waiting',
  )
  t.equal(await interrupt(ringing, 1000), 130, 'the minute-long wait is cut short')
  t.match(ringing.err(), /interrupted: fakephone console ring stopped before it finished\n$/)
  const id = /command ([0-9a-f-]{36}) is queued/.exec(said)?.[1] as string
  const listed = await run(
    ['console', '--api', `http://127.0.0.1:${String(up.httpPort)}`, '--data', data, '--json', 'commands', 'away-phone'],
    new SystemClock(),
  )
  t.match(JSON.parse(listed.out), { commands: [{ id, state: 'queued' }] }, 'the command stays queued for the phone')
  t.equal(await broker.stop('SIGINT'), 0)
})

t.test('the demo exits 0 on Ctrl-C, even when the one press arrives twice at once', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const demo = start(t, [
    'demo',
    '--data',
    data,
    '--keys',
    join(data, 'keys'),
    '--mqtt-port',
    '0',
    '--http-port',
    '0',
    '--interval',
    '100ms',
  ])
  await demo.waitFor('out', /demo-phone\s+demo\s+online/)
  demo.proc.kill('SIGINT')
  await demo.waitFor('err', /SIGINT: stopping/)
  // npm's forwarded copy lands while the demo is stopping (two signals sent at once would merge into one).
  demo.proc.kill('SIGINT')
  t.equal(await within(10_000, 'the demo stopping', demo.exited), 0, 'a clean stop, not the forced one')
  t.equal(demo.err().match(/SIGINT: stopping/g)?.length, 1, 'one press, one message')
  t.match(readFileSync(join(data, 'fakephone.log'), 'utf8'), /"msg":"broker stopped"/)
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  // Without exec, sh waits on node, receives the terminal's SIGINT too and re-raises it after node's clean exit: npm start ends 130.
  t.match(pkg.scripts.start, /^exec node /, 'npm start runs the demo without a shell in between')
})

t.test('F1 SIGHUP stops the broker cleanly, as SIGTERM does, and exits 129 for systemd to start it again', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const broker = start(t, ['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  await broker.waitFor('err', /Broker on mqtt:/)
  t.ok(existsSync(join(data, LOCK_FILE)), 'the broker holds its data directory')
  broker.proc.kill('SIGHUP')
  await broker.waitFor('err', /SIGHUP: stopping/)
  t.equal(await within(10_000, 'the broker stopping', broker.exited), 129, 'not killed by the signal: a clean stop, then 129')
  t.match(broker.out(), /"msg":"broker stopped"/, 'the heartbeats it acknowledged are written before it goes')
  t.notOk(existsSync(join(data, LOCK_FILE)), 'its lock released')
})

t.test('in-process: an abort cuts a one-shot command short with 130 and names it; a daemon is left to stop itself', async (t) => {
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  onEnd(t, () => new Promise((resolve) => silent.close(resolve)))
  onEnd(t, () => silent.closeAllConnections())
  const dir = tempDir(t)
  writeFileSync(join(dir, 'console.token'), 'x\n')
  for (const json of [[], ['--json']]) {
    const ui = testIo()
    const asked = once(silent, 'request')
    const api = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    const running = main(['console', '--api', api, '--data', dir, ...json, 'devices'], ui.io)
    await asked
    ui.abort()
    t.equal(await running, 130)
    const said = 'interrupted: fakephone console devices stopped before it finished'
    if (json.length) t.same(JSON.parse(ui.err()), { error: said, code: 'INTERRUPTED' }, 'under --json, JSON as every error')
    else t.equal(ui.err(), `${said}\n`)
  }
})
