import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Agent } from '../../../agent/agent.js'
import type { ManualClock } from '../../../common/clock.js'
import type { BackupView, RetentionView } from '../../../common/cloud/backup-api.js'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import type { Cloud } from '../../fixtures/cloud.js'
import { backupPhone, consoleCall, HOUR } from '../../fixtures/backup.js'

const DAY = 24 * HOUR
const S = 1000

async function phoneWithBackups(t: Test, count: number, batchSize: number): Promise<{ cloud: Cloud; clock: ManualClock; agent: Agent }> {
  const { cloud, clock, agent } = await backupPhone(t, {
    cloud: {
      ...DEFAULT_CLOUD_DATA_OPTIONS,
      backup: { ...DEFAULT_CLOUD_DATA_OPTIONS.backup, retention: { ...DEFAULT_CLOUD_DATA_OPTIONS.backup.retention, batchSize } },
    },
  })
  for (let i = 0; i < count; i++) {
    await agent.backup.backupNow()
    clock.advance(HOUR)
  }
  return { cloud, clock, agent }
}

async function serviceOff(cloud: Cloud, agent: Agent): Promise<void> {
  const off = once(cloud.broker.cloud.accounts, 'service-off')
  await agent.setSwitch('cloudService', false)
  await off
}

const state = async (cloud: Cloud): Promise<RetentionView> =>
  (await consoleCall<{ retention: RetentionView }>(cloud, 'GET', '/api/accounts/alice/backups')).body.retention

t.test(
  'B3: viewable after the service is off; writable until 72 h minus 1 s, read-only at 72 h; cleaned in batches on schedule, the ' +
    'notice first',
  async (t) => {
    const { cloud, clock, agent } = await phoneWithBackups(t, 6, 2)
    const store = cloud.broker.cloud.backups.store
    const log = cloud.broker.cloud.cloudLog
    const [newest] = store.list('alice') as [BackupView]
    await serviceOff(cloud, agent)
    t.equal((await state(cloud)).state, 'active', 'just after the service went off: active')
    t.equal((await consoleCall(cloud, 'GET', '/api/accounts/alice/backups')).status, 200, 'still listed')

    clock.advance(72 * HOUR - S)
    t.equal((await state(cloud)).state, 'active', '72 h minus 1 s: still active')
    t.equal((await consoleCall(cloud, 'DELETE', `/api/backups/${newest.id}`)).status, 200, 'and writable: a delete works')
    t.equal(store.count('alice'), 5)

    clock.advance(S)
    const ro = await state(cloud)
    t.equal(ro.state, 'read-only', 'at 72 h: read-only')
    t.equal(ro.readOnlyAt, ro.serviceOffAt! + 72 * HOUR)
    t.equal(ro.cleaningFrom, ro.readOnlyAt! + 7 * DAY, 'clean-up 7 days later')
    const [oldest] = store.list('alice').slice(-1) as [BackupView]
    const refused = await consoleCall<{ code: string; error: string }>(cloud, 'DELETE', `/api/backups/${oldest.id}`)
    t.equal(refused.status, 409)
    t.equal(refused.body.code, 'READ_ONLY')
    t.match(refused.body.error, /read-only since .*can still be viewed, downloaded and restored from/)
    t.equal((await consoleCall(cloud, 'GET', `/api/backups/${oldest.id}`)).status, 200, 'viewable')
    const pkg = await consoleCall<{ format: string }>(cloud, 'GET', `/api/backups/${oldest.id}/package`)
    t.equal(pkg.body.format, 'fakephone-backup/1', 'downloadable')
    t.match(
      log.list('alice', 5).map((e) => e.rule),
      ['backup-cleanup-notice', 'backup-read-only'],
      'the owner is told before anything is removed',
    )

    clock.advance(7 * DAY - S)
    t.equal(store.count('alice'), 5, 'one second before the clean-up: all there')
    t.equal((await state(cloud)).state, 'read-only')
    clock.advance(S)
    t.equal(store.count('alice'), 3, 'first batch: 2 removed')
    t.equal((await state(cloud)).state, 'cleaning')
    t.same(
      store
        .list('alice')
        .map((b) => b.id)
        .includes(oldest.id),
      false,
      'oldest first',
    )
    clock.advance(DAY - S)
    t.equal(store.count('alice'), 3, 'no batch before its interval')
    clock.advance(S)
    t.equal(store.count('alice'), 1, 'second batch a day later')
    clock.advance(DAY)
    t.equal(store.count('alice'), 0, 'third batch: all gone')
    const rules = log.list('alice', 20).map((e) => e.rule)
    t.equal(rules.filter((r) => r === 'backup-cleanup').length, 3, 'each batch logged')
    t.ok(rules.indexOf('backup-cleanup-notice') > rules.lastIndexOf('backup-cleanup'), 'the notice came before the first batch')
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, 0, 'quota given back')
    clock.advance(10 * DAY)
    t.equal((await state(cloud)).nextBatchAt, null, 'nothing left to clean')
  },
)

t.test('B3: the service turned back on during the clean-up makes the rest active again', async (t) => {
  const { cloud, clock, agent } = await phoneWithBackups(t, 3, 1)
  const store = cloud.broker.cloud.backups.store
  await serviceOff(cloud, agent)
  clock.advance(72 * HOUR + 7 * DAY)
  t.equal(store.count('alice'), 2, 'first batch removed one')
  const on = once(cloud.broker.cloud.accounts, 'service-on')
  await agent.setSwitch('cloudService', true)
  await on
  t.equal((await state(cloud)).state, 'active', 'active again')
  clock.advance(5 * DAY)
  t.equal(store.count('alice'), 2, 'no more batches')
  t.equal(cloud.broker.cloud.cloudLog.list('alice', 1)[0]?.rule, 'backup-active')
  const [one] = store.list('alice') as [BackupView]
  t.equal((await consoleCall(cloud, 'DELETE', `/api/backups/${one.id}`)).status, 200, 'writable again')
})

t.test('B3: an account with no backups becomes read-only quietly; service on before 72 h leaves nothing behind', async (t) => {
  const { cloud, clock, agent } = await phoneWithBackups(t, 0, 1)
  await serviceOff(cloud, agent)
  const on = once(cloud.broker.cloud.accounts, 'service-on')
  await agent.setSwitch('cloudService', true)
  await on
  t.equal((await state(cloud)).state, 'active')
  await serviceOff(cloud, agent)
  clock.advance(80 * HOUR)
  t.equal((await state(cloud)).state, 'read-only')
  t.notOk(
    cloud.broker.cloud.cloudLog.list('alice', 10).some((e) => e.rule === 'backup-cleanup-notice'),
    'no notice: nothing to remove',
  )
  t.equal((await state(cloud)).nextBatchAt, null)
})

t.test('A3: a frozen account loses its backups with the rest of its data; a failed sweep is logged and left to the next', async (t) => {
  const { cloud, clock, agent } = await backupPhone(
    t,
    {
      cloud: {
        ...DEFAULT_CLOUD_DATA_OPTIONS,
        accounts: { ...DEFAULT_CLOUD_DATA_OPTIONS.accounts, inactivityMs: 2 * DAY, freezeWarningMs: DAY },
      },
    },
    { heartbeatMs: DAY },
  )
  await agent.backup.backupNow()
  agent.backup.setMaxListeners(0)
  await agent.backup.setSwitch(false, false)
  clock.advance(2 * DAY)
  t.equal(cloud.broker.cloud.backups.store.count('alice'), 0, 'cleared at the freeze')
  t.match(cloud.broker.cloud.cloudLog.list('alice', 1)[0], { rule: 'inactivity-freeze', message: /cloud data cleared: .*, backups 1, / })
  cloud.broker.cloud.blobs.sweep = () => Promise.reject(new Error('disk gone'))
  cloud.broker.cloud.backups.store.sweepSoon()
  await cloud.logs.waitFor((l) => l.msg === 'deleted data could not be erased from disk; the next deletion erases it')
  cloud.broker.cloud.backups.retention.serviceOn('alice')
  t.equal((await state(cloud)).state, 'active', 'service on for an account that never went off changes nothing')
})
