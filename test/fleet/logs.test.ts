/**
 * `fakephone fleet run`'s log (issue 12), run as a user runs it (the built CLI): on stderr in the fleet's format, its
 * workers' lines included -- human-readable on a terminal, JSON lines elsewhere and with --json -- and never on stdout,
 * which is the report.
 */
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assertBuilt, cliCommand, runCli } from '../fixtures/child.js'
import { tempDir } from '../fixtures/scope.js'

const hasScript = spawnSync('script', ['--version']).status === 0

function fleetArgs(dir: string): string[] {
  const scenario = join(dir, 's.yaml')
  writeFileSync(scenario, 'name: logs\ngroups:\n  - name: g\n    heartbeat: { every: 500ms }\n')
  // debug: each worker's phones log as they start and stop.
  return ['fleet', 'run', '--count', '2', '--workers', '2', '--scenario', scenario, '--duration', '1s', '--no-push', '--log-level', 'debug']
}

t.test('off a terminal: stdout is the report alone, the log (workers too) JSON lines on stderr', async (t) => {
  assertBuilt()
  const ran = await runCli([...fleetArgs(tempDir(t)), '--json'])
  t.equal(ran.code, 0, ran.err)
  t.match(JSON.parse(ran.out), { scenario: 'logs', ok: true }, 'stdout parses as the one report')
  const lines = ran.err.split('\n').filter((l) => l.startsWith('{'))
  const workers = new Set(lines.map((l) => (JSON.parse(l) as { worker?: number }).worker).filter((w) => w !== undefined))
  t.same([...workers].sort(), [1, 2], "both workers' log lines, as JSON")
})

t.test(
  "on a terminal: the log, the workers' lines too, is human-readable, not JSON",
  { skip: hasScript ? false : 'no `script` (util-linux) to give the CLI a terminal' },
  async (t) => {
    assertBuilt()
    const [env, args] = cliCommand(fleetArgs(tempDir(t)))
    const command = [env, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
    // `script` runs it on a pseudo-terminal (stdout and stderr both), as a person at a terminal would.
    const screen = execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' })

    const text = screen.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    t.match(text, /result: OK, nothing lost/)
    t.notMatch(text, /\{"level"/, 'no JSON log line')
    t.match(text, /\[[\d:.]+\] \w+: worker 1 fleet fleet-00001: /, "worker 1's lines, pretty-printed, one line each")
    t.match(text, /\[[\d:.]+\] \w+: worker 2 fleet fleet-00002: /)
    // The live progress line is wiped before a log line, not continued by it.
    t.notMatch(text, /start failures\[/)
  },
)
