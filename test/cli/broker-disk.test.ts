/**
 * The broker started on a data directory whose disk cannot be written: full, or read-only (an SD card the kernel
 * remounted read-only after errors). One line that says so and what to do, exit 1; before, Node's words alone
 * (`cannot start the broker: EROFS: read-only file system, open '…/broker.lock.…'`). Real tmpfs mounts, skipped
 * where mounting is not allowed.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../fixtures/io.js'
import { NO_MOUNT, fill, smallDisk } from '../fixtures/full-disk.js'

const NEXT = 'its data directory needs a disk it can write: make room, mount it read-write, or give another --data'
const start = (data: string): ReturnType<typeof run> => run(['broker', '--data', data, '--mqtt-port', '0', '--http-port', '0'])

const full = smallDisk(t, '64k')
const readOnly = smallDisk(t, '64k')
const skip = (full === undefined || readOnly === undefined) && NO_MOUNT

t.test('a broker whose data directory is on a full disk says so in one line and exits 1', { skip }, async (t) => {
  if (full === undefined) return
  const disk = full
  const data = join(disk, 'cloud')
  mkdirSync(data)
  fill(disk, 128 * 1024)
  const started = await start(data)
  t.equal(started.code, 1)
  t.match(started.err, new RegExp(`(^|\\n)error: cannot start the broker: the disk is full \\(ENOSPC\\): .*; ${NEXT}\\n$`))
  t.match(started.err, `cannot write ${join(data, 'broker.lock')}: ENOSPC`, 'the file it could not write is named')
  t.notMatch(started.err, /\n\s+at /, 'no stack trace')
  t.same(readdirSync(data), [], 'no lock file half made is left behind (one was, at each try)')
})

t.test('a broker whose data directory is on a read-only filesystem says so in one line and exits 1', { skip }, async (t) => {
  if (readOnly === undefined) return
  const disk = readOnly
  const data = join(disk, 'cloud')
  mkdirSync(data)
  execFileSync('mount', ['-o', 'remount,ro', disk])
  const started = await start(data)
  t.equal(started.code, 1)
  t.match(started.err, new RegExp(`(^|\\n)error: cannot start the broker: the filesystem is read-only \\(EROFS\\): .*; ${NEXT}\\n$`))
})
