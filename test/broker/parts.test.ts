/** The broker as parts with a lifecycle (issue 10, items 3 and 6): start and stop in order, each part inside its own error boundary. */
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { CloudData } from '../../broker/cloud/cloud-data.js'
import { CommandCenter } from '../../broker/devices/commands.js'
import { StateStore } from '../../broker/devices/state-store.js'
import { FrameworkServices } from '../../broker/framework/framework-services.js'
import { LOCK_FILE } from '../../common/data-lock.js'
import { DB_FILE, openDb } from '../../broker/db.js'
import { DeviceRegistry } from '../../broker/devices/registry.js'
import { addDevice, connect, newBroker, startCloud } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'
import { closedPort } from '../fixtures/ports.js'
import { tempDir } from '../fixtures/scope.js'

/** Resolves when `port` on 127.0.0.1 can be bound again (and closes it): nothing is left listening there. */
async function bindable(port: number): Promise<boolean> {
  const server = createServer()
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (ok) await new Promise((resolve) => server.close(resolve))
  return ok
}

/** The device's `online` column, read straight from the database file. */
function onlineInDb(dataDir: string, id: string): number | undefined {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true })
  try {
    return db.prepare<[string], { online: number }>('SELECT online FROM device_state WHERE device_id = ?').get(id)?.online
  } finally {
    db.close()
  }
}

/** A data directory with one device marked online, as a broker that was killed leaves it. */
async function dirWithOnlineDevice(t: Test, id: string): Promise<string> {
  const dataDir = tempDir(t)
  const db = openDb(dataDir)
  await new DeviceRegistry(db, () => 0).add(id, 'alice')
  const store = new StateStore(db)
  store.setPresence(id, true, 0)
  store.flush() // presence is batched: written with the next flush, which a killed broker's last batch did
  db.close()
  return dataDir
}

t.test(
  'a part whose start throws: start rejects naming it, the parts already up stop in reverse, no port, database or lock is left',
  async (t) => {
    const logs = new LogCapture()
    const [mqttPort, httpPort] = [await closedPort(), await closedPort()]
    const dataDir = tempDir(t)
    const stops: string[] = []
    t.capture(CloudData.prototype, 'start', () => {
      throw new Error('the blob directory is gone')
    })
    const commandsStop = CommandCenter.prototype.stop
    t.capture(CommandCenter.prototype, 'stop', function (this: CommandCenter) {
      stops.push('commands')
      commandsStop.call(this)
    })
    const frameworkStop = FrameworkServices.prototype.stop
    t.capture(FrameworkServices.prototype, 'stop', function (this: FrameworkServices) {
      stops.push('framework')
      frameworkStop.call(this)
    })
    const b = newBroker(t, { dataDir, mqttPort, httpPort }, logs)
    await t.rejects(b.start(), {
      code: 'PART_START_FAILED',
      message: "the broker's cloud part failed to start: the blob directory is gone",
    })
    t.match(
      logs.lines.find((l) => l.msg === 'broker part failed to start'),
      { part: 'cloud', err: { message: 'the blob directory is gone' } },
    )
    t.same(stops, ['commands'], 'the commands, started before the cloud, were stopped; the framework, never started, was not')
    t.ok(await bindable(mqttPort), 'the MQTT port is free')
    t.ok(await bindable(httpPort), 'the HTTP port is free')
    t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'the lock is released')
    t.notOk(logs.has('broker listening'))
    await b.stop()
    t.same(stops, ['commands'], 'stop after a failed start stops nothing twice')
    t.throws(() => b.store, { message: 'the broker is not started' })
  },
)

t.test('a port in use: the broker writes nothing -- presence is reset only once both ports are bound', async (t) => {
  const dataDir = await dirWithOnlineDevice(t, 'phone-a')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => taken.close(resolve)))
  const { port } = taken.address() as { port: number }
  const logs = new LogCapture()
  await t.rejects(newBroker(t, { dataDir, httpPort: port }, logs).start(), { code: 'EADDRINUSE', message: /HTTP port/ })
  t.equal(onlineInDb(dataDir, 'phone-a'), 1, 'the device is still online as far as the data directory knows')
  t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'the lock is released')
  t.notOk(await bindable(port), 'the port stays with its owner')
  const next = newBroker(t, { dataDir }, logs)
  await next.start()
  t.equal(onlineInDb(dataDir, 'phone-a'), 0, 'a broker that starts resets presence')
})

t.test('a database the broker cannot open: start rejects and the lock is released', async (t) => {
  const dataDir = tempDir(t)
  const db = openDb(dataDir)
  db.pragma('user_version = 9999')
  db.close()
  const logs = new LogCapture()
  await t.rejects(newBroker(t, { dataDir }, logs).start(), { message: /newer than this build/ })
  t.notOk(existsSync(join(dataDir, LOCK_FILE)))
})

t.test('a device that connects while the parts start waits, and is served (and stays online) once they are up', async (t) => {
  const dataDir = await dirWithOnlineDevice(t, 'phone-a')
  const secret = await (async () => {
    const cloud = await startCloud(t, { dataDir })
    const s = await addDevice(cloud, 'phone-b')
    await cloud.broker.stop()
    return s
  })()
  const [mqttPort, httpPort] = [await closedPort(), await closedPort()]
  let release = (): void => {}
  const frameworkStart = FrameworkServices.prototype.start
  const starting = new Promise<void>((resolve) => {
    t.capture(FrameworkServices.prototype, 'start', function (this: FrameworkServices) {
      frameworkStart.call(this)
      resolve()
      return new Promise<void>((r) => (release = r))
    })
  })
  const logs = new LogCapture()
  const b = newBroker(t, { dataDir, mqttPort, httpPort }, logs)
  const started = b.start()
  await starting
  let connected = false
  const device = connect(t, `mqtt://127.0.0.1:${mqttPort}`, { clientId: 'phone-b', username: 'phone-b', password: secret }).then(() => {
    connected = true
  })
  await logs.waitFor((l) => l.msg === 'connection waits for the broker to start')
  t.notOk(connected, 'no CONNACK while the parts start')
  release()
  await started
  await device
  t.ok(connected)
  t.equal(b.store.device('phone-b')?.online, true, 'presence was reset before the device was served, not after')
})

t.test('a device waiting for the parts is disconnected when one of them fails to start; a thrown non-error is named too', async (t) => {
  const dataDir = tempDir(t)
  const [mqttPort, httpPort] = [await closedPort(), await closedPort()]
  let fail = (): void => {}
  const starting = new Promise<void>((resolve) => {
    t.capture(FrameworkServices.prototype, 'start', () => {
      resolve()
      // A part that rejects with a string, not an Error: the broker's message must still name what it threw.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return new Promise<void>((_, reject) => (fail = () => reject('no push gateway')))
    })
  })
  const logs = new LogCapture()
  const started = newBroker(t, { dataDir, mqttPort, httpPort }, logs).start()
  await starting
  const device = connect(t, `mqtt://127.0.0.1:${mqttPort}`, { clientId: 'phone-b', username: 'phone-b', password: 'x' })
  await logs.waitFor((l) => l.msg === 'connection waits for the broker to start')
  fail()
  await t.rejects(started, { message: "the broker's framework part failed to start: no push gateway" })
  await t.rejects(device, { message: 'closed before CONNACK' }, 'the waiting connection is closed, never served')
  t.ok(await bindable(mqttPort))
})

t.test('a part whose stop throws is logged; the others still stop, the database is closed and the lock released', async (t) => {
  const cloud = await startCloud(t)
  t.capture(CommandCenter.prototype, 'stop', () => {
    throw new Error('the expiry timer is stuck')
  })
  const close = Database.prototype.close
  let closed = 0
  t.capture(Database.prototype, 'close', function (this: Database.Database) {
    closed++
    return close.call(this)
  })
  await cloud.broker.stop()
  t.match(
    cloud.logs.lines.find((l) => l.msg === 'broker part failed to stop'),
    { part: 'commands', err: { message: 'the expiry timer is stuck' } },
  )
  t.equal(closed, 1, 'the database part, after the commands, still closed the database')
  t.ok(cloud.logs.has('broker stopped'))
  t.notOk(existsSync(join(cloud.dataDir, LOCK_FILE)))
  t.ok(await bindable(cloud.mqttPort))
  t.ok(await bindable(cloud.httpPort))
})
