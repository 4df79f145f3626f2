/**
 * The README's "Run your own broker and phones (without systemd)" is run as written: its shell block, command by
 * command, in one folder, through bash, with `npx fakephone` the built CLI and the README's ports (11883, 18080) swapped
 * for the ones the OS chose (the broker is started on port 0 and says which). A command the README gets wrong fails
 * here. F1: the phones' heartbeats reach the console; F2: a signed locate comes back with a verified receipt.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { assertBuilt, cliCommand } from '../fixtures/child.js'
import { connect, recordMessages } from '../fixtures/cloud.js'
import { onEnd, tempDir } from '../fixtures/scope.js'
import { within } from '../fixtures/wait.js'

const README = fileURLToPath(new URL('../../README.md', import.meta.url))
const HEADING = '## Run your own broker and phones (without systemd)'
const README_PORTS = { mqtt: '11883', http: '18080' }

/** The section's first ```sh block, as one shell command per entry: comments dropped, `\` lines and heredocs kept whole. */
function sectionCommands(readme: string, heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`)
  if (start < 0) throw new Error(`README.md has no section "${heading}"`)
  const section = readme.slice(start + 1).split(/\n## /)[0] as string
  const block = /^```sh\n([\s\S]*?)^```$/m.exec(section)
  if (!block) throw new Error(`"${heading}" has no sh block`)
  const commands: string[] = []
  const lines = (block[1] as string).split('\n')
  for (let i = 0; i < lines.length; i++) {
    let command = lines[i] as string
    if (command.trim() === '' || command.trimStart().startsWith('#')) continue
    while (command.endsWith('\\') && i + 1 < lines.length) command += '\n' + (lines[++i] as string)
    const heredoc = /<<'?(\w+)'?/.exec(command)
    if (heredoc) while (i + 1 < lines.length && lines[i] !== heredoc[1]) command += '\n' + (lines[++i] as string)
    commands.push(command)
  }
  return commands
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** A command the way the test runs it: the built CLI for `npx fakephone`, NODE_OPTIONS holding the port guard. */
function shellLine(command: string, ports: { mqtt: string; http: string } | null): string {
  const [env, args] = cliCommand([])
  let line = command.replaceAll('npx fakephone', [env, ...args].map(quote).join(' '))
  if (ports) line = line.replaceAll(README_PORTS.mqtt, ports.mqtt).replaceAll(README_PORTS.http, ports.http)
  return line
}

interface Daemon {
  proc: ChildProcessWithoutNullStreams
  /** Resolves with the first line (stdout or stderr) matching. */
  line(pattern: RegExp): Promise<RegExpExecArray>
}

function startDaemon(t: Test, cwd: string, command: string, line: string): Daemon {
  const proc = spawn('bash', ['-c', `exec ${line}`], { cwd, stdio: 'pipe' })
  const seen: string[] = []
  const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = []
  const hear = (text: string): void => {
    seen.push(text)
    for (const w of waiters.splice(0)) {
      const m = w.pattern.exec(text)
      if (m) w.resolve(m)
      else waiters.push(w)
    }
  }
  createInterface({ input: proc.stdout }).on('line', hear)
  createInterface({ input: proc.stderr }).on('line', hear)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  onEnd(t, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    return exited
  })
  return {
    proc,
    line: (pattern) => {
      for (const text of seen) {
        const m = pattern.exec(text)
        if (m) return Promise.resolve(m)
      }
      return within(
        30_000,
        `a line matching ${String(pattern)} from ${command}`,
        new Promise((resolve) => waiters.push({ pattern, resolve })),
        () => seen.join('\n'),
      )
    },
  }
}

function runToEnd(cwd: string, line: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const proc = spawn('bash', ['-c', line], { cwd, stdio: 'pipe' })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    proc.once('close', (code) => resolve({ code, out, err }))
  })
}

t.test('F1 F2 the README\'s "Run your own broker and phones" works as written: two phones located from the console', async (t) => {
  assertBuilt()
  const commands = sectionCommands(readFileSync(README, 'utf8'), HEADING)
  const cwd = tempDir(t)
  let ports: { mqtt: string; http: string } | null = null
  let heartbeats: ReturnType<typeof recordMessages> | null = null
  const outputs: { command: string; out: string }[] = []
  for (const command of commands) {
    if (/fakephone broker /.test(command)) {
      t.match(command, `--mqtt-port ${README_PORTS.mqtt} --http-port ${README_PORTS.http}`, 'the broker starts on the README ports')
      const onZero = command.replace(README_PORTS.mqtt, '0').replace(README_PORTS.http, '0')
      const broker = startDaemon(t, cwd, command, shellLine(onZero, null))
      const said = await broker.line(
        new RegExp(
          String.raw`^Broker on mqtt:\/\/127\.0\.0\.1:(\d+) and http:\/\/127\.0\.0\.1:(\d+); its console: fakephone console ` +
            String.raw`--api http:\/\/127\.0\.0\.1:\2 --data cloud`,
        ),
      )
      ports = { mqtt: said[1] as string, http: said[2] as string }
      // The test watches the phones' heartbeats as the console role, with the token the broker made in its data dir.
      const token = readFileSync(join(cwd, /--data (\S+)/.exec(command)?.[1] as string, 'console.token'), 'utf8').trim()
      const watcher = await connect(t, `mqtt://127.0.0.1:${ports.mqtt}`, { clientId: 'console.docs', username: 'console', password: token })
      await watcher.subscribeAsync('fp/v1/+/heartbeat', { qos: 1 })
      heartbeats = recordMessages(watcher)
    } else if (/fakephone agent /.test(command)) {
      const agent = startDaemon(t, cwd, command, shellLine(command, ports))
      const id = (await agent.line(/"id":"([^"]+)".*"msg":"agent started"/))[1] as string
      // F1: its first heartbeat goes out once its data channel is up, before the console asks.
      await within(
        30_000,
        `a heartbeat of ${id}`,
        heartbeats?.waitFor((topic) => topic === `fp/v1/${id}/heartbeat`) ?? Promise.reject(new Error('no broker')),
      )
    } else if (/ web( |$)/.test(command)) {
      const web = startDaemon(t, cwd, command, shellLine(command, ports))
      t.ok(await web.line(/^ +http:\/\/127\.0\.0\.1:\d+\/login\?token=\S+$/), 'the web console prints its one-time sign-in link')
    } else {
      const r = await runToEnd(cwd, shellLine(command, ports))
      t.equal(r.code, 0, `${command.split('\n')[0] as string}: exits 0 ${r.err}`)
      outputs.push({ command, out: r.out + r.err })
    }
  }
  t.ok(ports, 'the section starts a broker')
  const of = (pattern: RegExp): string => outputs.find((o) => pattern.test(o.command))?.out ?? ''
  t.match(of(/config check pi\.json/), 'pi.json: a valid agent config', 'pi.json is checked as an agent config, no --kind')
  t.match(of(/console .* devices/), /^pi +me +online +51\.5007\d*,-0\.1246\d* /m, 'F1 the console shows the pi online where it is')
  t.match(of(/console .* devices/), /^laptop +me +online /m, 'F1 and the laptop')
  t.match(
    of(/locate pi/),
    /pi is at 51\.5007\d*,-0\.1246\d* .*\n.*verified receipt signed by pi/,
    'F2 the pi is located, its receipt verified with the keys the section made',
  )
  t.match(of(/phone --data phones\/pi status/), /location +fixed at 51\.5007\d*,-0\.1246\d*/, "the phone's own status says where it is")
})
