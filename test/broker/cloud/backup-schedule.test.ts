import t from 'tap'
import { PART_NAMES, BackupPackageSchema } from '../../../common/cloud/backup-api.js'
import { backupPhone, nextBackup, HOUR, MINUTE } from '../../fixtures/backup.js'

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
