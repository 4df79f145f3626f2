/** The broker says at start how many connections its open-file limit leaves room for, and warns when that is short of a modest fleet. */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  FLEET_TARGET,
  MODEST_FLEET,
  RESERVED_FILES,
  connectionRoom,
  logConnectionRoom,
  parseOpenFileLimit,
} from '../../common/open-files.js'
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
  'the log says how many connections fit, always at info, and warns with the fix only under room for a modest fleet of 1,000 phones',
  async (t) => {
    const logs = new LogCapture()
    const log = logs.logger()
    logConnectionRoom(log, { limit: { soft: 1024, hard: 1024 }, open: 20, connections: 940 })
    t.match(logs.lines.slice(-2), [
      { level: 30, connections: 940, msg: 'open-file limit 1024: room for about 940 connections (470 phones with both channels)' },
      {
        level: 40,
        phones: 470,
        msg: /room for only 470 phones, under a modest fleet of 1000; the OS refuses .* raise the hard limit \(LimitNOFILE=/,
      },
    ])
    // This project's machine: a hard limit of 20,000 holds ~9,960 complete phones, short of the 10,000 fleet target
    // (`fleet run` warns about that itself) but ample for a hobbyist's phone: told, not warned, at every start.
    const before = logs.lines.length
    logConnectionRoom(log, { limit: { soft: 20_000, hard: 20_000 }, open: 19, connections: 19_917 })
    t.same(
      logs.lines.slice(before).map((l) => [l.level, l.msg]),
      [[30, 'open-file limit 20000: room for about 19917 connections (9958 phones with both channels)']],
    )
    logConnectionRoom(log, { limit: { soft: 2100, hard: 2100 }, open: 36, connections: 2000 })
    t.match(logs.lines.at(-1), { level: 30, phones: MODEST_FLEET }, 'room for exactly a modest fleet: no warning')
    logConnectionRoom(log, { limit: { soft: 524288, hard: 524288 }, open: 20, connections: 524204 })
    t.match(logs.lines.at(-1), {
      level: 30,
      msg: 'open-file limit 524288: room for about 524204 connections (262102 phones with both channels)',
    })
    logConnectionRoom(log, undefined)
    t.match(logs.lines.at(-1), { msg: /open-file limit unknown/ })
    t.ok(MODEST_FLEET < FLEET_TARGET)

    const cloud = await startCloud(t)
    t.match(await cloud.logs.waitFor((l) => /^open-file limit/.test(l.msg)), { connections: Number }, 'a started broker says it')
  },
)
