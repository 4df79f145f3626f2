import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PART_NAMES, BackupPackageSchema } from '../../../common/cloud/backup-api.js'
import { ManualClock, SimulatedClock } from '../../../common/clock.js'
import { backupPhone, backupReady, nextBackup, HOUR, MINUTE } from '../../fixtures/backup.js'
import { addDevice, agentConnected, startAgent, startCloud } from '../../fixtures/cloud.js'
import { tempDir } from '../../fixtures/scope.js'

const DAY = 24 * HOUR

t.test('B1: the cron plan fires at the scheduled minute, not one before, and the phone stores a package with all five parts', async (t) => {
  const { cloud, clock, agent } = await backupPhone(t)
  const backups = cloud.broker.cloud.backups
  clock.advance(3 * HOUR - MINUTE)
  t.same(backups.plans.list('alice'), [], 'at 02:59 no plan yet')
  const made = nextBackup(agent)
  clock.advance(MINUTE)
  const plans = backups.plans.list('alice')
  t.equal(plans.length, 1, 'at 03:00 one plan')
  t.equal(plans[0]?.plannedAt, Date.UTC(2026, 0, 1, 3), 'planned for 03:00')
  const backup = await made
  t.equal(backup.planId, plans[0]?.id, 'the backup answers the plan')
  t.equal(backups.plans.get(plans[0]?.id as string)?.state, 'done', 'the plan is done')
  t.same(
    backup.manifest.parts.map((p) => p.name),
    [...PART_NAMES],
    'all five parts',
  )
  for (const p of backup.manifest.parts) t.ok(p.count > 0 && p.files > 0, `${p.name} holds something`)
  const stored = backups.store.list('alice')
  t.equal(stored.length, 1, 'stored')
  t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, backup.size, 'charged against the quota (A1)')
  t.equal(cloud.broker.cloud.accounts.need('alice').lastActivity, 'backup', 'a backup is cloud activity (A3)')
  const bytes = await agent.cloud?.download(backup.sha256)
  const pkg = BackupPackageSchema.parse(JSON.parse((bytes as Buffer).toString()))
  t.equal(pkg.parts.settings.values?.pin, '1234', 'settings carry the PIN')
  t.equal(agent.status().backup.lastBackupId, backup.id, 'the phone shows its last backup')
})

/** The plans the phone handled, as its backup.json on disk records them (each plan it was sent, answered or refused). */
const handledPlans = (dataDir: string): string[] => {
  const file = join(dataDir, 'backup.json')
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { handledPlans: string[] }).handledPlans : []
}

t.test(
  'B1: across a three-day jump of the clock the cloud records each day’s plan, the phone is sent the newest alone and ' +
    'makes one catch-up backup answering it; the schedule goes on from the new time',
  async (t) => {
    const dataDir = tempDir(t, 'fakephone-phone-')
    const { cloud, clock, agent } = await backupPhone(t, {}, { dataDir })
    const plans = cloud.broker.cloud.backups.plans
    const made = nextBackup(agent)
    clock.advance(3 * DAY)
    const [newest, ...older] = plans.list('alice')
    t.equal(older.length, 2, 'the two earlier 03:00s were planned too')
    t.match(older, [{ state: 'dropped', reason: 'superseded by a newer plan' }, { state: 'dropped' }], 'each dropped for the next')
    const backup = await made
    t.equal(backup.planId, newest?.id, 'the one backup answers the newest plan')
    t.equal(plans.get(newest?.id as string)?.state, 'done')
    await agent.backup.flushed()
    t.same(handledPlans(dataDir), [newest?.id], 'the phone was sent that plan alone')
    t.same(agent.status().backup.lastError, null, 'no backup failed')
    t.equal(cloud.broker.cloud.backups.store.count('alice'), 1, 'one backup in the cloud')
    t.equal(plans.nextRun(), Date.UTC(2026, 0, 4, 3), 'the next plan: the next 03:00 after the jump')
  },
)

t.test(
  'B1, A3: after a year’s jump of the simulated clock, which froze the account (no plan was answered during it), the ' +
    'phone is sent none of the 365 plans and tries no backup against the frozen account',
  async (t) => {
    // The broker's `--simulated-time` clock, on a real time that stands still: `console clock advance 400d`.
    const clock = new SimulatedClock(new ManualClock())
    const cloud = await startCloud(t, {}, clock)
    const dataDir = tempDir(t, 'fakephone-phone-')
    // The phone hears the cloud's time after a jump (on its data channel, behind anything the jump sent it).
    let heard = (_now: number): void => {}
    const followCloud = (now: number): void => heard(now)
    // A fix a day: a year of 30-second fixes is a million timers.
    const agent = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'), { dataDir, heartbeatMs: DAY, followCloud })
    await agentConnected(agent)
    await backupReady(cloud, 'phone-a')
    const toldTime = new Promise<void>((resolve) => (heard = (now) => now >= clock.now() && resolve()))
    clock.advance(400 * DAY)
    const planned = cloud.logs.lines.filter((l) => l.msg === 'backup plans made').reduce((n, l) => n + (l['planned'] as number), 0)
    t.equal(planned, 365, 'the cloud planned every 03:00 until the freeze')
    t.ok(cloud.broker.cloud.accounts.need('alice').frozenAt, 'the account froze during the jump')
    await toldTime
    await agent.backup.flushed()
    t.same(handledPlans(dataDir), [], 'the phone was sent no plan')
    t.notOk(
      cloud.logs.lines.some((l) => l.msg === 'backup failed'),
      'no backup was tried against the frozen account',
    )
    t.same(agent.status().backup.lastError, null)
  },
)
