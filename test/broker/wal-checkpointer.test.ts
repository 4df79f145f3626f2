/**
 * Issue 14: SQLite's WAL checkpoints run in a worker thread (broker/wal-checkpointer.ts) on a real database file: none
 * while the WAL is small, every committed frame copied once it is large, a failure logged and survived, the worker's
 * connection closed at stop; and the broker uses it.
 */
import Database from 'better-sqlite3'
import { once } from 'node:events'
import { join } from 'node:path'
import t from 'tap'
import { WalCheckpointer } from '../../broker/wal-checkpointer.js'
import { addDevice, connectDevice, heartbeat, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { LogCapture } from '../fixtures/logs.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

/** A WAL database with autocheckpoints off, so only the checkpointer copies frames. */
function walDb(t: Parameters<typeof tempDir>[0]): { file: string; db: Database.Database; write: (n: number) => void } {
  const file = join(tempDir(t, 'fakephone-wal-'), 'test.sqlite')
  const db = new Database(file)
  onEnd(t, () => db.close())
  db.pragma('journal_mode = WAL')
  db.pragma('wal_autocheckpoint = 0')
  db.exec('CREATE TABLE rows (n INTEGER, filler TEXT)')
  const insert = db.prepare('INSERT INTO rows VALUES (?, ?)')
  const write = (n: number): void => {
    for (let i = 0; i < n; i++) insert.run(i, 'x'.repeat(500))
  }
  return { file, db, write }
}

t.test('no worker while the WAL is small; once it is large, a checkpoint in the worker copies every frame', async (t) => {
  const { file, write } = walDb(t)
  const logs = new LogCapture()
  const small = new WalCheckpointer(file, { everyMs: 0, walBytes: 1 << 30 }, logs.logger())
  small.start()
  write(20)
  small.tick()
  t.equal(small.working, false, 'a small WAL starts no worker')
  await small.stop()

  // Looked at by hand: the checkpointer's own timer does not keep a process alive (the broker's servers do; see below).
  const checkpointer = new WalCheckpointer(file, { everyMs: 0, walBytes: 1 }, logs.logger())
  onEnd(t, () => checkpointer.stop())
  checkpointer.tick()
  const [first] = (await once(checkpointer, 'checkpointed')) as [{ busy: number; log: number; checkpointed: number }]
  t.ok(checkpointer.working)
  t.equal(first.busy, 0)
  t.ok(first.log > 0 && first.checkpointed === first.log, `every frame copied (${first.checkpointed} of ${first.log})`)
  t.ok(logs.has('WAL checkpointed'))
  await checkpointer.stop()
  t.equal(checkpointer.working, false, 'stopped')
})

t.test('a worker that cannot start or fails gives the checkpoints back to SQLite, with the reason logged', async (t) => {
  const logs = new LogCapture()
  const missing = new WalCheckpointer(join(tempDir(t, 'fakephone-wal-'), 'gone.sqlite'), { everyMs: 1000, walBytes: 0 }, logs.logger())
  missing.start()
  missing.tick()
  missing.tick() // a look while one is running is skipped
  t.equal((await once(missing, 'checkpointed'))[0], null)
  t.ok(await logs.waitFor((l) => l.msg === 'the WAL checkpoint worker stopped; checkpoints go back to the broker connection'))
  t.equal(missing.working, false)
  await missing.stop()
})

t.test('the broker checkpoints its WAL in the worker once heartbeats grew it', async (t) => {
  const cloud = await startCloud(t, { walCheckpoint: { everyMs: 5, walBytes: 0 } })
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 1)
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  await stored
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'WAL checkpointed'))
})
