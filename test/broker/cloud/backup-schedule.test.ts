import t from 'tap'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { PLAN_OPEN_MS } from '../../../broker/cloud/backup-plans.js'
import { PART_NAMES, BackupPackageSchema } from '../../../common/cloud/backup-api.js'
import { ManualClock, SimulatedClock } from '../../../common/clock.js'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import { backupPhone, backupReady, consoleCall, nextBackup, HOUR, MINUTE } from '../../fixtures/backup.js'
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

t.test(
  'A3, B1: a backup refused FROZEN teaches the phone its account is frozen and when the cloud cleared it; a plan planned ' +
    'before that clearing is refused without a try; once the account is back, the next plan is answered',
  async (t) => {
    const { cloud, clock, agent } = await backupPhone(
      t,
      { cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_CLOUD_DATA_OPTIONS.accounts, inactivityMs: 2 * DAY } } },
      // No push channel, no sync pass of its own: only the backup's refusal can tell the phone of the freeze.
      { heartbeatMs: DAY, pushUrl: undefined, syncIntervalMs: 365 * DAY },
    )
    const sync = agent.sync as NonNullable<typeof agent.sync>
    // Nor a sync pass started by a change on the phone: every category off.
    for (const category of ['photos', 'contacts', 'notes', 'recordings'] as const) await sync.setCategory(category, false)
    clock.advance(2 * DAY)
    const { frozenAt, clearedAt } = cloud.broker.cloud.accounts.need('alice')
    t.equal(frozenAt, clock.now(), 'frozen')
    t.same(sync.clearing, { clearedAt: null, frozen: false }, 'the phone has heard nothing yet')
    await t.rejects(agent.backup.backupNow(), { code: 'FROZEN' }, '"back up now" is refused')
    t.same(sync.clearing, { clearedAt, frozen: true }, 'the refusal taught the phone')
    t.same(agent.status().backup.cloud, { clearedAt, frozen: true }, 'and its backup status says it')

    // A plan a broker queued for the phone before the freeze, handed over after it.
    const stale = { id: randomUUID(), device: 'phone-a', plannedAt: (clearedAt as number) - HOUR }
    const refused: [string, string][] = []
    agent.backup.on('refused', (id, why) => refused.push([id, why]))
    // Resolves once the plan is handled: refused, or (before this) tried and failed.
    await agent.backup.receivePlan(Buffer.from(JSON.stringify(stale)))
    t.same(refused, [[stale.id, 'planned before the cloud cleared the account (A3: a year without activity): the freeze dropped it']])
    t.equal(cloud.logs.lines.filter((l) => l.msg === 'backup failed').length, 1, 'no backup was tried for it')

    t.equal((await consoleCall(cloud, 'GET', '/api/accounts/alice')).status, 200, 'the owner signs in')
    const made = nextBackup(agent)
    clock.advance(cloud.broker.cloud.backups.plans.nextRun() - clock.now())
    const [plan] = cloud.broker.cloud.backups.plans.list('alice')
    t.equal((await made).planId, plan?.id, 'a plan made after the clearing is answered')
  },
)

t.test('B1: plans that reach the phone while a backup is being made wait for it; only the newest is answered after', async (t) => {
  const { cloud, clock, agent } = await backupPhone(t)
  const plans = cloud.broker.cloud.backups.plans
  // Hold the cloud's plans as the phone receives them, to hand them over while "back up now" runs.
  const receive = agent.backup.receivePlan.bind(agent.backup)
  const held: Buffer[] = []
  let heldOne = (): void => undefined
  agent.backup.receivePlan = (payload) => {
    held.push(payload)
    heldOne()
    return Promise.resolve()
  }
  const nextHeld = (): Promise<void> => new Promise((resolve) => (heldOne = resolve))
  let arrived = nextHeld()
  clock.advance(3 * HOUR)
  await arrived
  arrived = nextHeld()
  clock.advance(DAY)
  await arrived
  agent.backup.receivePlan = receive
  const waiting: string[] = []
  agent.backup.on('waiting', (id) => waiting.push(id))
  const now = agent.backup.backupNow()
  const again = agent.backup.backupNow()
  // backupNow's backup runs from here on (set before its first await); each plan's handling saves the phone's state
  // first, and those writes resolve no later than the running backup's own, so both plans find it running.
  const answered = Promise.all(held.map((payload) => agent.backup.receivePlan(payload)))
  await t.rejects(again, { message: 'a backup is already being made' }, 'a second "back up now" meanwhile is refused: busy')
  const first = await now
  await answered
  const [newer, older] = plans.list('alice')
  t.same(waiting, [older?.id, newer?.id], 'the phone said each plan waits, the newer in place of the older')
  t.match(newer, { state: 'done' }, 'the newest plan is answered once the running backup ended, not left open')
  t.match(older, { state: 'dropped', reason: 'superseded by a newer plan' }, 'the older one the cloud superseded is not made')
  t.not(newer?.backupId, first.id, 'by a backup of its own')
  t.equal(cloud.broker.cloud.backups.store.list('alice').length, 2, 'two backups: the one asked for and the planned one')
})

t.test(
  'M1, B1: from the retirement’s sync-off on the schedule plans no backup (each would be refused, every day); ' +
    '`console backups` says why there is no next plan',
  async (t) => {
    // A phone with no cloud side: the plan made before the sync-off stays open until then.
    const { cloud, clock } = await backupPhone(t, {}, { cloudUrl: undefined })
    const plans = cloud.broker.cloud.backups.plans
    clock.advance(3 * HOUR)
    const [open] = plans.list('alice')
    t.equal(open?.state, 'pending')
    cloud.broker.cloud.retirement.setPlan({ announce: 'now', syncOff: '1h', migrationDeadline: '10d', shutdown: '20d' })
    clock.advance(HOUR)
    t.match(plans.get(open?.id as string), {
      state: 'dropped',
      reason: 'the cloud is retiring: uploads closed at sync-off (M1)',
      updatedAt: Date.UTC(2026, 0, 1, 4),
    })
    clock.advance(2 * DAY)
    t.same(
      plans.list('alice').map((p) => p.id),
      [open?.id],
      'no plan at the two 03:00s after sync-off',
    )
    t.match((await consoleCall(cloud, 'GET', '/api/accounts/alice/backups')).body, {
      nextPlanAt: null,
      noPlanBecause: 'the fakephone cloud is retiring: sync stopped and new uploads are refused since 2026-01-01 04:00 UTC (M1)',
    })
  },
)

t.test(
  'B1: a plan nobody answers -- a phone with no cloud side, with no newer plan to replace it -- is dropped 48 h after ' +
    'it was planned, with the reason, on the clock',
  async (t) => {
    // A monthly schedule: no plan of the next day supersedes the phone's.
    const backup = { ...DEFAULT_CLOUD_DATA_OPTIONS.backup, cron: '0 3 1 * *' }
    const { cloud, clock } = await backupPhone(t, { cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, backup } }, { cloudUrl: undefined })
    const plans = cloud.broker.cloud.backups.plans
    clock.advance(3 * HOUR)
    const [plan] = plans.list('alice')
    // Sent once the clock's due timers have run (deliverSoon): the next turn.
    await nextTurn()
    t.equal(plans.get(plan?.id as string)?.state, 'sent')
    clock.advance(PLAN_OPEN_MS - 1)
    t.equal(plans.get(plan?.id as string)?.state, 'sent', 'still open a millisecond before its 48 h')
    clock.advance(1)
    t.match(plans.get(plan?.id as string), {
      state: 'dropped',
      reason: 'not answered within 48 h: the phone made no backup for it',
      updatedAt: Date.UTC(2026, 0, 3, 3),
    })
    t.match(cloud.broker.cloud.cloudLog.list('alice', 1), [
      { rule: 'backup-plan-dropped', message: 'phone-a: backup plan not answered within 48 h: the phone made no backup for it' },
    ])
  },
)
