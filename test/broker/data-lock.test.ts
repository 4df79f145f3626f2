/** One broker per data directory, and a port error that names the port (issue 10, item 6). */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { BOOT_ID_FILE, LOCK_FILE, lockDataDir, readBootId } from '../../common/data-lock.js'
import { addDevice, connectDevice, newBroker, startCloud } from '../fixtures/cloud.js'
import { assertBuilt, spawnCli } from '../fixtures/child.js'
import { LogCapture } from '../fixtures/logs.js'
import { tempDir } from '../fixtures/scope.js'

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  return child.pid as number
}

t.test("a second broker on the same data directory and ports refuses at once, and the first one's devices stay online", async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  await connectDevice(t, cloud, 'phone-a', secret)
  t.equal(cloud.broker.store.device('phone-a')?.online, true)
  const second = newBroker(t, { dataDir: cloud.dataDir, mqttPort: cloud.mqttPort, httpPort: cloud.httpPort })
  await t.rejects(second.start(), {
    code: 'DATA_DIR_LOCKED',
    message: new RegExp(`data directory .* is in use by another broker: process ${process.pid}, running since \\d{4}-\\d\\d-\\d\\dT`),
  })
  await second.stop()
  t.equal(cloud.broker.store.device('phone-a')?.online, true, 'the refused broker did not reset presence')
  const lock = JSON.parse(readFileSync(join(cloud.dataDir, LOCK_FILE), 'utf8')) as { pid: number }
  t.equal(lock.pid, process.pid, "the lock is still the first broker's")
})

t.test('the lock is released on stop: the next broker on the directory starts', async (t) => {
  const dataDir = tempDir(t)
  const first = newBroker(t, { dataDir })
  await first.start()
  await first.stop()
  t.notOk(existsSync(join(dataDir, LOCK_FILE)))
  const next = newBroker(t, { dataDir })
  t.ok((await next.start()).mqttPort > 0)
})

t.test('the lock holds across processes; a lock left by a killed broker is taken over and the take-over logged', async (t) => {
  assertBuilt()
  const dataDir = tempDir(t)
  const child = spawnCli(t, ['broker', '--data', dataDir, '--mqtt-port', '0', '--http-port', '0', '--log-level', 'info'])
  await child.waitForLog((l) => l.msg === 'broker listening')
  const refused = newBroker(t, { dataDir })
  await t.rejects(refused.start(), { code: 'DATA_DIR_LOCKED', message: new RegExp(`process ${String(child.proc.pid)}, running since`) })
  await child.stop('SIGKILL')
  const logs = new LogCapture()
  const next = newBroker(t, { dataDir }, logs)
  await next.start()
  const takeover = logs.lines.find((l) => l.msg.startsWith('taking over a stale data directory lock'))
  t.match(takeover, { stale: { pid: child.proc.pid } }, 'the dead holder is named in the log')
})

t.test('stale locks: a dead pid or an unreadable file is taken over; release leaves a lock that is not ours', async (t) => {
  const dataDir = tempDir(t)
  const path = join(dataDir, LOCK_FILE)
  const logs = new LogCapture()
  const pid = await deadPid()
  writeFileSync(path, JSON.stringify({ pid, startedAt: '2026-01-01T00:00:00.000Z', token: 'old' }))
  const lock = lockDataDir(dataDir, logs.logger())
  t.match(logs.lines, [{ msg: /stale data directory lock/, stale: { pid } }])
  t.equal((JSON.parse(readFileSync(path, 'utf8')) as { pid: number }).pid, process.pid)
  t.throws(() => lockDataDir(dataDir, logs.logger()), { code: 'DATA_DIR_LOCKED' }, 'held by this process: refused too')
  lock.release()
  lock.release()
  t.notOk(existsSync(path), 'released')

  writeFileSync(path, 'not json')
  const again = lockDataDir(dataDir, logs.logger())
  t.match(logs.lines.at(-1), { msg: /stale/, stale: 'unreadable' })
  // Someone else's lock now stands where ours was (it took ours over): releasing ours must leave it.
  writeFileSync(path, JSON.stringify({ pid: 1, startedAt: 'x', token: 'theirs' }))
  again.release()
  t.ok(existsSync(path), "another holder's lock is not removed")
  writeFileSync(path, JSON.stringify({ pid: 'one' }))
  t.doesNotThrow(() => lockDataDir(dataDir, logs.logger()).release(), 'a record without a pid is unreadable: taken over')
  writeFileSync(path, '')
  const missing = lockDataDir(dataDir, logs.logger())
  writeFileSync(path, '')
  missing.release()
  t.ok(existsSync(path), 'an emptied lock file is not ours to remove')
  rmSync(path)
  const removed = lockDataDir(dataDir, logs.logger())
  rmSync(path)
  t.doesNotThrow(() => removed.release(), 'a lock file someone removed is released quietly')
})

t.test(
  'after a power cut: a lock from an earlier boot, or with our pid from an earlier process, is stale though that pid runs',
  async (t) => {
    const dataDir = tempDir(t)
    const path = join(dataDir, LOCK_FILE)
    const logs = new LogCapture()
    const bootId = readBootId()
    t.ok(bootId, `this boot's id is read from ${BOOT_ID_FILE}`)
    // The pid of a process that runs (this test's parent): after a reboot, the old broker's pid is often some process's again.
    const alive = process.ppid
    writeFileSync(path, JSON.stringify({ pid: alive, startedAt: '2026-01-01T00:00:00.000Z', token: 'old', bootId: 'an-earlier-boot' }))
    const lock = lockDataDir(dataDir, logs.logger())
    t.match(logs.lines.at(-1), { msg: /stale data directory lock/, stale: { pid: alive }, why: 'written before this machine restarted' })
    t.equal((JSON.parse(readFileSync(path, 'utf8')) as { bootId?: string }).bootId, bootId, 'the new lock says which boot took it')
    t.throws(() => lockDataDir(dataDir, logs.logger()), { code: 'DATA_DIR_LOCKED' }, 'a lock of this boot whose process runs still holds')
    lock.release()

    // The broker got the same pid as before the reboot (a lock file of an older version, without a boot id): not ours.
    writeFileSync(path, JSON.stringify({ pid: process.pid, startedAt: '2026-01-01T00:00:00.000Z', token: 'earlier' }))
    const again = lockDataDir(dataDir, logs.logger())
    t.match(logs.lines.at(-1), { stale: { pid: process.pid }, why: 'written by an earlier process that had this pid' })
    again.release()

    writeFileSync(path, JSON.stringify({ pid: alive, startedAt: '2026-01-01T00:00:00.000Z', token: 'theirs' }))
    t.throws(() => lockDataDir(dataDir, logs.logger()), { code: 'DATA_DIR_LOCKED' }, 'without a boot id, a live pid still holds')

    const dir = tempDir(t)
    writeFileSync(join(dir, 'empty'), '\n')
    t.equal(readBootId(join(dir, 'empty')), undefined, 'an empty boot id is none')
    t.equal(readBootId(join(dir, 'missing')), undefined, 'no boot id where the system has none (not Linux)')
  },
)

t.test("a backup of a running broker's folder (cp -a) starts a broker: the lock it carries names the folder it came from", async (t) => {
  const logs = new LogCapture()
  const running = join(tempDir(t), 'fakephone')
  const lock = lockDataDir(running, logs.logger())
  t.teardown(() => lock.release())
  const backup = join(tempDir(t), 'restored')
  cpSync(running, backup, { recursive: true, preserveTimestamps: true })
  const restored = lockDataDir(backup, logs.logger())
  t.match(logs.lines.at(-1), {
    msg: /stale data directory lock/,
    stale: { pid: process.pid },
    why: `copied with its folder from ${running}`,
  })
  restored.release()
  const link = join(tempDir(t), 'link')
  symlinkSync(running, link)
  t.throws(() => lockDataDir(link, logs.logger()), { code: 'DATA_DIR_LOCKED' }, 'the same folder through a link is still held')
})

t.test("a broker's or an agent's new data directory is private (0700); one others can read is warned about with its fix", async (t) => {
  const logs = new LogCapture()
  const fresh = join(tempDir(t), 'home', 'data')
  const b = newBroker(t, { dataDir: fresh }, logs)
  await b.start()
  t.equal(statSync(fresh).mode & 0o777, 0o700, "the cloud's database and blobs are in a folder only its user can open")
  t.notOk(
    logs.lines.some((l) => /readable by other users/.test(String(l.msg))),
    'nothing to warn about',
  )

  const shared = join(tempDir(t), 'shared')
  mkdirSync(shared)
  chmodSync(shared, 0o755)
  const lock = lockDataDir(shared, logs.logger(), 'agent')
  t.teardown(() => lock.release())
  t.match(logs.lines.at(-1), {
    level: 40,
    dataDir: shared,
    mode: '755',
    msg: `the data directory is readable by other users (mode 755): \`chmod 700 ${shared}\` keeps its data to you`,
  })
  t.equal(statSync(shared).mode & 0o777, 0o755, "a folder that was there keeps the user's mode")
})

t.test('a port in use is named with its address, before the broker reports itself listening', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as AddressInfo).port
  await t.rejects(newBroker(t, { mqttPort: port }).start(), {
    code: 'EADDRINUSE',
    message: `MQTT port 127.0.0.1:${port} is in use (EADDRINUSE)`,
  })
  await t.rejects(newBroker(t, { httpPort: port }).start(), {
    code: 'EADDRINUSE',
    message: `HTTP port 127.0.0.1:${port} is in use (EADDRINUSE)`,
  })
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding fails at once, nothing is sent.
  await t.rejects(newBroker(t, { host: '192.0.2.1' }).start(), {
    code: 'EADDRNOTAVAIL',
    message: /^MQTT port 192\.0\.2\.1:0 cannot be bound: /,
  })
})

t.test('a lock file that is a link to /dev/zero (or another non-file) refuses with one line naming it, never read for ever', async (t) => {
  const dataDir = tempDir(t)
  symlinkSync('/dev/zero', join(dataDir, LOCK_FILE))
  const refused = newBroker(t, { dataDir })
  await t.rejects(refused.start(), {
    code: 'LOCK_FILE',
    message:
      `cannot use the lock file: ${join(dataDir, LOCK_FILE)} is a character device, not a regular file; ` +
      'it is not one fakephone made: move it away and start again',
  })
  rmSync(join(dataDir, 'broker.lock'))
  // A lock this process holds, replaced meanwhile by a FIFO: release leaves it, and does not wait on it.
  const lock = lockDataDir(dataDir, new LogCapture().logger(), 'agent')
  rmSync(lock.path)
  execFileSync('mkfifo', [lock.path])
  lock.release()
  t.ok(existsSync(lock.path), 'what is there now is not ours to remove')
})
