/**
 * One time for the whole system across restarts, with the built CLI's broker
 * as a process that is stopped and started again: the simulated clock's lead
 * is kept in the data directory, so `device add` (which opens it directly)
 * stamps in cloud time and a restarted broker carries on from the advanced
 * clock -- commands stay newest first. The console and device commands run
 * `main` in this test's process on the real clock, as a CLI process of their
 * own would (clock.test.ts runs `console clock advance` as one).
 */
import t from 'tap'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { assertBuilt, spawnCli } from '../fixtures/child.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

/** A CLI command line run in this process, on the real clock as in a process of its own. */
const cli = (argv: string[]): ReturnType<typeof run> => run(argv, new SystemClock())

t.test('a restarted broker keeps the advanced clock; device add stamps with it; commands stay newest first', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const keys = join(data, 'keys')
  t.equal((await cli(['device', 'add', 'clock-phone', '--data', data, '--keys', keys, '--json'])).code, 0)
  const broker = spawnCli(t, ['broker', '--simulated-time', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const up = await broker.waitForLog((l) => l.msg === 'broker listening')
  const api = (port: unknown): string[] => ['console', '--api', `http://127.0.0.1:${String(port)}`, '--data', data]

  const advanced = await cli([...api(up.httpPort), '--json', 'clock', 'advance', '73h'])
  const cloudNow = (JSON.parse(advanced.out) as { now: number }).now
  const locate = await cli([...api(up.httpPort), 'locate', 'clock-phone', '--keys', keys, '--wait', '0ms'])
  t.match(locate.out, /command \S+ is queued/, `signed on the cloud's time, not refused as expired: ${locate.err}`)

  const later = await cli(['device', 'add', 'later-phone', '--data', data, '--keys', keys, '--json'])
  t.ok(
    (JSON.parse(later.out) as { createdAt: number }).createdAt >= cloudNow,
    'device add, opening the data directory itself, stamps in cloud time',
  )

  t.equal(await broker.stop(), 0)
  const again = spawnCli(t, ['broker', '--simulated-time', '--data', data, '--mqtt-port', '0', '--http-port', '0'])
  const second = await again.waitForLog((l) => l.msg === 'broker listening')
  const ring = await cli([...api(second.httpPort), 'ring', 'clock-phone', '--keys', keys, '--wait', '0ms'])
  t.match(ring.out, /command \S+ is queued/, `the restarted broker carries on from the advanced clock: ${ring.err}`)
  const listed = await cli([...api(second.httpPort), '--json', 'commands', 'clock-phone'])
  const { commands } = JSON.parse(listed.out) as { commands: { type: string; createdAt: number }[] }
  t.same(
    commands.map((c) => c.type),
    ['ring', 'locate'],
    'commands stay newest first across the restart',
  )
  t.ok(
    (commands.find((c) => c.type === 'ring')?.createdAt as number) >= cloudNow,
    'the ring is stamped after the advanced time, not in real time',
  )
  t.equal(await again.stop(), 0)
})
