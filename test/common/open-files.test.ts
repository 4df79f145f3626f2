/** The broker says at start how many connections its open-file limit leaves room for (a fleet of 10,000 complete phones needs 20,000). */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FLEET_TARGET, RESERVED_FILES, connectionRoom, logConnectionRoom, parseOpenFileLimit } from '../../common/open-files.js'
import { startCloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'

const LIMITS = (soft: string, hard: string): string =>
  'Limit                     Soft Limit           Hard Limit           Units     \n' +
  'Max cpu time              unlimited            unlimited            seconds   \n' +
  `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \n`

/** A stand-in for /proc/<pid>: its limits text and `open` descriptors. */
function fakeProc(dir: string, limits: string, open: number): string {
  mkdirSync(join(dir, 'fd'))
  for (let i = 0; i < open; i++) writeFileSync(join(dir, 'fd', String(i)), '')
  writeFileSync(join(dir, 'limits'), limits)
  return dir
}

t.test('the open-file limit is read from /proc, and the connections it leaves room for are counted', (t) => {
  t.same(parseOpenFileLimit(LIMITS('1024', '524288')), { soft: 1024, hard: 524288 })
  t.same(parseOpenFileLimit(LIMITS('unlimited', 'unlimited')), { soft: Infinity, hard: Infinity })
  t.equal(parseOpenFileLimit('Max processes 10 10 processes\n'), undefined)
  t.same(connectionRoom(fakeProc(t.testdir(), LIMITS('20000', '20000'), 3)), {
    limit: { soft: 20000, hard: 20000 },
    open: 3,
    connections: 20000 - 3 - RESERVED_FILES,
  })
  t.equal(connectionRoom(fakeProc(t.testdir(), LIMITS('10', '10'), 3))?.connections, 0, 'never below zero')
  t.equal(connectionRoom(fakeProc(t.testdir(), 'no limits here', 0)), undefined)
  t.equal(connectionRoom(join(t.testdir(), 'missing')), undefined, 'no /proc: unknown')
  const own = connectionRoom()
  t.ok(own && own.limit.soft === own.limit.hard, 'Node raised this process its soft limit to the hard limit at start')
  t.end()
})

t.test(
  'the log says how many connections fit, and warns with the fix when a fleet of 10,000 complete phones (two connections each) would not',
  async (t) => {
    const logs = new LogCapture()
    const log = logs.logger()
    logConnectionRoom(log, { limit: { soft: 1024, hard: 1024 }, open: 20, connections: 940 })
    t.match(logs.lines.at(-1), {
      level: 40,
      connections: 940,
      msg: /room for only about 940 connections \(470 phones with both channels\); the OS refuses .* raise the hard limit \(LimitNOFILE=/,
    })
    // This project's machine: a hard limit of 20,000 holds 10,000 one-connection devices but not 10,000 complete phones,
    // whose last few dozen then waited (unlogged EMFILE refusals, retried with backoff) until others let go.
    logConnectionRoom(log, { limit: { soft: 20_000, hard: 20_000 }, open: 19, connections: 19_917 })
    t.match(logs.lines.at(-1), { level: 40, phones: 9_958, msg: /room for only about 19917 connections \(9958 phones/ })
    logConnectionRoom(log, { limit: { soft: 524288, hard: 524288 }, open: 20, connections: 524204 })
    t.match(logs.lines.at(-1), {
      level: 30,
      msg: 'open-file limit 524288: room for about 524204 connections (262102 phones with both channels)',
    })
    logConnectionRoom(log, undefined)
    t.match(logs.lines.at(-1), { msg: /open-file limit unknown/ })
    t.ok(FLEET_TARGET >= 10_000)

    const cloud = await startCloud(t)
    t.match(await cloud.logs.waitFor((l) => /^open-file limit/.test(l.msg)), { connections: Number }, 'a started broker says it')
  },
)
