import t, { type Test } from 'tap'
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { ManualClock } from '../../../common/clock.js'
import { BACKUP_PATH, PART_NAMES } from '../../../common/cloud/backup-api.js'
import { encodePayload, topicFor } from '../../../common/contract.js'
import { addDevice, connectDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { backupPhone, backupReady, consoleCall, HOUR } from '../../fixtures/backup.js'

/** A raw device that reports its switches but never listens for plans, so its plans stay pending. */
async function silentDevice(t: Test, cloud: Cloud, id: string, account: string) {
  const secret = await addDevice(cloud, id, account)
  const client = await connectDevice(t, cloud, id, secret)
  const report = async (cloudService: boolean, backup?: boolean): Promise<void> => {
    const seen = once(cloud.broker.cloud.backups.plans, 'status')
    await client.publishAsync(
      topicFor(id, 'status'),
      encodePayload('status', { cloudService, findDevice: true, ...(backup === undefined ? {} : { backup }), at: cloud.clock.now() }),
      { qos: 1, retain: true },
    )
    await seen
  }
  return { report, client }
}

t.test('B2: backup off drops the pending plan (visible as dropped) and the schedule plans none after', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const plans = cloud.broker.cloud.backups.plans
  const phone = await silentDevice(t, cloud, 'phone-r', 'alice')
  await phone.report(true, true)
  clock.advance(3 * HOUR)
  t.match(plans.list('alice'), [{ device: 'phone-r', state: 'pending' }], 'planned at 03:00, waiting for the phone to listen')
  await phone.report(true, false)
  t.match(plans.list('alice'), [{ state: 'dropped', reason: 'cloud backup was turned off on the phone' }], 'dropped, with the reason')
  const view = await consoleCall(cloud, 'GET', '/api/accounts/alice/backups')
  t.match(view.body.plans, [{ state: 'dropped' }], 'the console sees it dropped')
  t.match(
    view.body,
    { nextPlanAt: null, noPlanBecause: 'no phone of the account has cloud backup and the cloud service on (B2)' },
    'B2: the only phone has backup off: the console is told no plan comes, and why',
  )
  clock.advance(48 * HOUR)
  t.equal(plans.list('alice').length, 1, 'two more 03:00s: no new plan')
  await phone.report(true, true)
  clock.advance(24 * HOUR)
  t.match(plans.list('alice'), [{ state: 'pending' }, { state: 'dropped' }], 'backup on again: planned again')
  clock.advance(24 * HOUR)
  t.match(
    plans.list('alice'),
    [{ state: 'pending' }, { state: 'dropped', reason: 'superseded by a newer plan' }, { state: 'dropped' }],
    'at most one open plan: the older is superseded',
  )
})

t.test('B2: the cloud service off drops pending plans; the account off drops every open plan', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const plans = cloud.broker.cloud.backups.plans
  const a = await silentDevice(t, cloud, 'phone-s', 'bob')
  const b = await silentDevice(t, cloud, 'phone-u', 'bob')
  await a.report(true, true)
  await b.report(true, true)
  clock.advance(3 * HOUR)
  t.equal(plans.list('bob').filter((p) => p.state === 'pending').length, 2)
  await a.report(false, true)
  t.match(
    plans.list('bob').find((p) => p.device === 'phone-s'),
    { state: 'dropped', reason: 'the cloud service was turned off on the phone' },
  )
  t.match(
    plans.list('bob').find((p) => p.device === 'phone-u'),
    { state: 'pending' },
    "the other phone's plan stays",
  )
  clock.advance(24 * HOUR)
  t.equal(plans.list('bob').filter((p) => p.device === 'phone-s').length, 1, 'no new plan for the phone with the service off')
  const off = once(cloud.broker.cloud.accounts, 'service-off')
  await b.report(false, true)
  await off
  t.ok(
    plans.list('bob').every((p) => p.state === 'dropped'),
    'every plan of the account dropped',
  )
  clock.advance(24 * HOUR)
  t.ok(
    plans.list('bob').every((p) => p.state === 'dropped'),
    'and none made after',
  )
  t.match(
    (await consoleCall(cloud, 'GET', '/api/accounts/bob/backups')).body,
    { nextPlanAt: null, noPlanBecause: 'the cloud service of the account is off (B2)' },
    'the console is told no plan comes, and why',
  )
  await a.report(true, true)
  t.equal(
    (await consoleCall(cloud, 'GET', '/api/accounts/bob/backups')).body.nextPlanAt,
    plans.nextRun(),
    'the service on again: the next 03:00',
  )
})

t.test('B2: a phone with backup or the cloud service off refuses a stale plan and makes nothing', async (t) => {
  const { cloud, clock, agent } = await backupPhone(t)
  await agent.backup.setSwitch(false, false)
  await backupReady(cloud, 'phone-a', false)
  t.equal(agent.status().backup.on, false)
  const manifest = {
    format: 'fakephone-backup/1',
    device: 'phone-a',
    createdAt: 0,
    size: 1,
    parts: PART_NAMES.map((name) => ({ name, files: 0, bytes: 0, count: 0 })),
  }
  await t.rejects(
    agent.cloud!.call('POST', BACKUP_PATH, z.unknown(), { sha256: 'a'.repeat(64), manifest }),
    { code: 'BACKUP_OFF', message: /cloud backup is off on phone-a/ },
    'the cloud refuses a package from a phone with backup off',
  )
  clock.advance(24 * HOUR)
  t.same(cloud.broker.cloud.backups.plans.list('alice'), [], 'no plan for a phone with backup off')
  await t.rejects(agent.backup.backupNow(), { code: 'BACKUP_OFF' }, '"back up now" is refused too')
  const stale = Buffer.from(JSON.stringify({ id: randomUUID(), device: 'phone-a', plannedAt: clock.now() }))
  const refused = once(agent.backup, 'refused')
  await agent.backup.receivePlan(stale)
  t.same((await refused)[1], 'cloud backup is off')
  await agent.backup.receivePlan(stale)
  t.equal(agent.status().backup.plansRefused, 1, 'a redelivered plan is not handled twice')
  await agent.backup.receivePlan(Buffer.from('{"id":"nope"}'))
  await agent.backup.receivePlan(Buffer.from(JSON.stringify({ id: randomUUID(), device: 'phone-z', plannedAt: 0 })))
  t.equal(agent.status().backup.plansRefused, 1, 'malformed plans and plans for other phones are ignored')

  await agent.backup.setSwitch(true, false)
  await agent.setSwitch('cloudService', false)
  const refused2 = once(agent.backup, 'refused')
  await agent.backup.receivePlan(Buffer.from(JSON.stringify({ id: randomUUID(), device: 'phone-a', plannedAt: clock.now() })))
  t.same((await refused2)[1], 'the cloud service is off or there is no network')
  await t.rejects(agent.backup.backupNow(), { code: 'NO_TRANSFER' })
  t.same(cloud.broker.cloud.backups.store.list('alice'), [], 'no package was made')
  await t.rejects(agent.backup.setSwitch(true, true), { code: 'BAD_REQUEST' })
})

t.test(
  'B1: a plan made while the phone is away is sent when it next subscribes; a phone that reports no backup switch gets none',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const plans = cloud.broker.cloud.backups.plans
    const phone = await silentDevice(t, cloud, 'phone-r', 'alice')
    const old = await silentDevice(t, cloud, 'phone-old', 'alice')
    await old.report(true)
    t.notOk(plans.backupOn('phone-old'), 'no switch reported: no backup')
    await phone.report(true, true)
    clock.advance(3 * HOUR)
    const [plan] = plans.list('alice')
    t.match(plan, { device: 'phone-r', state: 'pending' }, 'one plan, for the phone with backup on')
    const got = new Promise<Buffer>((resolve) => phone.client.once('message', (_topic, payload) => resolve(payload)))
    await phone.client.subscribeAsync(topicFor('phone-r', 'plan'), { qos: 1 })
    t.match(
      JSON.parse((await got).toString()),
      { id: plan?.id, device: 'phone-r', plannedAt: Date.UTC(2026, 0, 1, 3) },
      'delivered on subscribe',
    )
    t.equal(plans.get(plan?.id as string)?.state, 'sent')
    t.notOk(plans.isOpen(plan?.id as string, 'phone-old'), 'a plan is open only for its own phone')
    t.equal(plans.backupOn('phone-unknown'), true, 'a phone not heard from yet counts as on')
  },
)
