/**
 * M1 on the phone: the retirement's notices arrive at a real agent over the
 * push channel; the phone keeps what the cloud said of its end (on disk),
 * says in its log and its status that the service is gone after the
 * shutdown, and a later notice does not bring the service back.
 */
import t from 'tap'
import { PushInbox } from '../../agent/push-inbox.js'
import { renderFrameworkStatus } from '../../cli/framework-render.js'
import { renderSyncStatus, syncStopped } from '../../cli/sync-commands.js'
import { ManualClock } from '../../common/clock.js'
import { addDevice, agentConnected, startAgent, startCloud } from '../fixtures/cloud.js'
import { notify, pushConnected, shownBy } from '../fixtures/framework.js'
import { tempDir } from '../fixtures/scope.js'

const DAY = 86_400_000

t.test('M1: the phone is told of the retirement over the push channel, and after the shutdown says the service is gone', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const dataDir = tempDir(t)
  // The phone has a clock of its own: sixty days of the cloud's clock must not run sixty days of heartbeats.
  const agent = await startAgent(t, cloud, 'phone-a', secret, { clock: new ManualClock(clock.now()), dataDir })
  await agentConnected(agent)
  await pushConnected(agent)
  const shown = shownBy(agent)
  t.equal(agent.status().framework.notifications.service, null, 'nothing said of an end yet')

  cloud.broker.cloud.retirement.setPlan({ announce: 'now', syncOff: '10d', migrationDeadline: '40d', shutdown: '60d' })
  clock.advance(0)
  const [announced] = await shown.count(1)
  t.match(announced, { kind: 'retirement', title: 'The fakephone cloud is closing', body: /Sync stops on 2026-01-11 00:00 UTC/ })
  t.match(agent.status().framework.notifications.service, { state: 'retiring', title: 'The fakephone cloud is closing' })
  t.match(renderFrameworkStatus(agent.status().framework), /^cloud {9}retiring: The fakephone cloud is closing \(2026-01-01 00:00:00 UTC\)/)

  clock.advance(60 * DAY)
  const all = await shown.count(6)
  t.same(
    all.map((n) => n.kind),
    ['retirement', 'retirement', 'retirement', 'retirement', 'retirement', 'retirement'],
    'the announcement, sync-off (reminder, at), deadline (reminder, at), the shutdown reminder: in order',
  )
  const gone = await shown.count(8)
  t.same(
    gone.slice(6).map((n) => `${n.kind}: ${n.title}`),
    ['retirement: Your cloud data will be deleted', 'service-gone: The fakephone cloud service is gone'],
  )
  const status = agent.status().framework
  t.match(status.notifications.service, { state: 'gone', title: 'The fakephone cloud service is gone', at: clock.now() })
  t.match(renderFrameworkStatus(status), /^cloud {9}GONE: The fakephone cloud service is gone \(2026-03-02 00:00:00 UTC\): It shut down on/)
  t.ok(cloud.logs.has('the cloud service is gone: The fakephone cloud service is gone'), 'the agent logs it')
  // `phone sync status` says so above the table, once, with what the user can still do: not four times the same error.
  const phone = agent.status()
  t.match(
    renderSyncStatus(phone.sync, clock.now(), syncStopped(phone)),
    new RegExp(
      String.raw`^gallery auto-backup on, album sync on\nnot syncing: the cloud service is gone \(its notice of ` +
        String.raw`2026-03-02 00:00:00 UTC, phone notifications\), so nothing goes up or comes down any more; the photos, ` +
        String.raw`contacts, notes and recordings stay on this phone \(phone export --out DIR makes a bag of them, M3\); ` +
        String.raw`"in cloud" is as of the last sync\n`,
    ),
    'M1: the sync status of a phone whose cloud is gone says so, and how to take its data out',
  )

  // A later notice of the end says more, but the service stays gone; and the phone remembers across a restart.
  notify(cloud, 'phone-a', { kind: 'retirement', title: 'Deleted', body: '' })
  await shown.count(9)
  const inbox = new PushInbox(dataDir)
  await inbox.load()
  t.match(inbox.status().service, { state: 'gone', title: 'The fakephone cloud service is gone' })
})

t.test('M1, X1: a phone whose cloud service is off is still told of the retirement, over its push channel', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const agent = await startAgent(t, cloud, 'phone-a', secret, { clock: new ManualClock(clock.now()) })
  await agentConnected(agent)
  await pushConnected(agent)
  await agent.setSwitch('cloudService', false)
  t.equal(agent.status().dataChannel, 'off', 'the data channel is cut (X1)')
  const shown = shownBy(agent)
  cloud.broker.cloud.retirement.setPlan({ announce: 'now', syncOff: '10d', migrationDeadline: '40d', shutdown: '60d' })
  clock.advance(0)
  const [announced] = await shown.count(1)
  t.match(announced, { kind: 'retirement', title: 'The fakephone cloud is closing' })
  t.match(agent.status().framework.notifications.service, { state: 'retiring', title: 'The fakephone cloud is closing' })
  t.equal(agent.status().dataChannel, 'off', 'and the data channel stays cut')
})
