import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { ManualClock } from '../../../common/clock.js'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import { addDevice, agentConnected, startAgent, startCloud } from '../../fixtures/cloud.js'
import { backupPhone, backupReady, consoleCall, HOUR } from '../../fixtures/backup.js'

t.test(
  'B4: backup off with "also delete backup data" removes the phone\'s backups at once, for good; from the phone and from the console',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const store = cloud.broker.cloud.backups.store
    const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'))
    const b = await startAgent(t, cloud, 'phone-b', await addDevice(cloud, 'phone-b'))
    await Promise.all([agentConnected(a), agentConnected(b)])
    await Promise.all([backupReady(cloud, 'phone-a'), backupReady(cloud, 'phone-b')])
    const first = await a.backup.backupNow()
    clock.advance(HOUR)
    await a.backup.backupNow()
    const theirs = await b.backup.backupNow()
    // 02:00 on the cloud's clock: still before the 03:00 schedule, which would plan phone-b a
    // backup of its own that lands at an unknown moment and makes the counts below a race.
    clock.advance(HOUR)
    t.same(cloud.broker.cloud.backups.plans.list('alice'), [], 'the schedule has planned nothing yet')
    const blobFile = join(cloud.dataDir, 'blobs', first.sha256.slice(0, 2), first.sha256)
    t.ok(existsSync(blobFile), 'the package is on disk')

    const deleted = await a.backup.setSwitch(false, true)
    t.match(deleted, { deleted: 2, releasedBytes: first.size * 2 }, 'both of its backups deleted')
    t.equal(store.remove([first]), 0, 'removing it again removes nothing')
    t.same(store.list('alice', 'phone-a'), [], 'gone from the cloud at once')
    t.equal(store.list('alice').length, 1, "the other phone's backup stays")
    t.notOk(existsSync(blobFile), 'the package blob is deleted from disk')
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, theirs.size, 'quota released')
    await t.rejects(b.cloud!.download(first.sha256), { code: 'NOT_FOUND' }, 'nobody can fetch it any more')
    t.equal(a.status().backup.on, false)
    t.match(cloud.broker.cloud.cloudLog.list('alice', 1)[0], { rule: 'backup-delete', count: 2 })

    const fromConsole = await consoleCall<{ deleted: number }>(cloud, 'DELETE', '/api/devices/phone-b/backups')
    t.equal(fromConsole.body.deleted, 1, 'from the console too')
    t.equal(store.list('alice').length, 0)
    t.notOk(cloud.broker.cloud.backups.plans.backupOn('phone-b'), 'the cloud plans nothing more for it')
    t.equal((await consoleCall(cloud, 'DELETE', '/api/devices/nobody/backups')).status, 404)
    t.equal((await consoleCall(cloud, 'DELETE', '/api/backups/nope')).status, 404)
  },
)

t.test(
  'A1: a backup over quota is refused with the reason and nothing stored is touched; a plan it answered is marked failed',
  async (t) => {
    const { cloud, clock, agent } = await backupPhone(t, {
      cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_CLOUD_DATA_OPTIONS.accounts, freeQuotaBytes: 10_000 } },
    })
    const store = cloud.broker.cloud.backups.store
    const kept = await agent.backup.backupNow()
    t.ok(kept.size > 5_000 && kept.size < 10_000, `one package fits (${kept.size} bytes), a second does not`)
    const used = cloud.broker.cloud.accounts.need('alice').usedBytes
    clock.advance(HOUR)
    await t.rejects(agent.backup.backupNow(), { code: 'QUOTA_EXCEEDED', message: /over quota: .*nothing stored was touched/ })
    t.same(store.list('alice'), [kept], 'the stored backup is untouched')
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, used, 'quota use unchanged')
    t.match(agent.status().backup.lastError, /over quota/)

    const failed = new Promise((resolve) => agent.backup.once('failed', resolve))
    clock.advance(2 * HOUR)
    await failed
    t.match(cloud.broker.cloud.backups.plans.list('alice')[0], { state: 'failed', reason: /over quota/ }, 'the plan shows why')
  },
)
