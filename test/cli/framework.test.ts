/**
 * The framework's commands (X1-X3), in-process against a real broker and agent: console device/notify/notifications/logs, phone
 * network-permission/logs-over-mobile/notifications.
 */
import { dataChannelRefused } from '../../cli/render.js'
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { main } from '../../cli/main.js'
import type { ManualClock } from '../../common/clock.js'
import { deviceOnDisk, addDevice, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { delivered } from '../fixtures/framework.js'
import { run, testIo } from '../fixtures/io.js'
import { startCliAgent } from '../fixtures/cli-agent.js'
import { aStatus, fakeAgent } from '../fixtures/fake-agent.js'
import { tempDir } from '../fixtures/scope.js'
import { renderChannels, renderInbox } from '../../cli/framework-render.js'

t.test(
  'X1-X3 from the command line: the phone revokes the permission, the console queues, the phone gets it late, the console sees ' +
    'both channels',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const { secretFile, phoneDir } = await deviceOnDisk(t, cloud)
    const phone = ['phone', '--data', phoneDir]
    const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

    const never = await run([...api, 'device', 'phone-a'])
    t.match(never.out, /data channel\s+offline \(cloud service not reported yet\)\npush channel\s+not connected since the broker started/)

    // F1: the phone's first fix goes out at connect; stored before the status is asked, so the count is known.
    const firstFix = storedHeartbeats(cloud, 1)
    const { io: agentIo, running } = await startCliAgent(t, cloud, { secretFile, phoneDir })
    await firstFix

    const status = await run([...phone, 'status'])
    t.match(
      status.out,
      new RegExp(
        String.raw`heartbeats\s+1 sent this run\n[\s\S]*push channel\s+connected\nframework\s+network permission on, behaviour ` +
          String.raw`logs over mobile data off\nnotifications 0 shown, 0 duplicates suppressed\nbehaviour log 0 waiting, 0 ` +
          String.raw`uploaded, 0 not collected`,
      ),
    )
    t.match((await run([...phone, 'network-permission', 'off'])).out, /push channel\s+blocked\nframework\s+network permission off/)
    t.match((await run([...phone, 'logs-over-mobile', 'on'])).out, /behaviour logs over mobile data on/)
    t.match(JSON.parse((await run([...phone, '--json', 'logs-over-mobile', 'off'])).out), { framework: { logsOverMobile: false } })
    t.match((await run([...phone, 'network-permission', 'maybe'])).err, /must be "on" or "off"/)

    const queued = await run([
      ...api,
      'notify',
      'phone-a',
      '--kind',
      'weather',
      '--title',
      'Yellow wind warning',
      '--body',
      'Gusts of 70 mph.',
      '--ttl',
      '6h',
    ])
    t.match(queued.out, /^Queued weather notification [0-9a-f-]{36} for phone-a; it expires in 6h 0m\.\n$/)
    const id = /notification (\S+) for/.exec(queued.out)?.[1] as string
    const plain = JSON.parse((await run([...api, '--json', 'notify', 'phone-a', '--title', 'From the console'])).out)
    t.match(plain, { kind: 'message', body: '', state: 'queued' })
    await run([...api, 'notify', 'phone-a', '--title', 'Short-lived', '--ttl', '5m'])
    t.match(
      (await run([...api, 'notify', 'phone-a', '--kind', 'advert', '--title', 'x'])).err,
      /Allowed choices are weather, system-update, message/,
    )
    t.match((await run([...api, 'notify', 'phone-a', '--title', 'x'.repeat(121)])).err, /^error: bad notification: .*title/)
    t.match((await run([...api, 'notify', 'nobody', '--title', 'x'])).err, /device "nobody" not found/)

    clock.advance(10 * 60_000)
    const waiting = await run([...api, 'notifications', 'phone-a'])
    t.match(waiting.out, /ID\s+KIND\s+TITLE\s+QUEUED\s+STATE/)
    t.match(waiting.out, new RegExp(`\\n${plain.id}\\s+message\\s+From the console`), 'the full id, as --json and the phone show it')
    t.match(waiting.out, /weather\s+Yellow wind warning\s+10m 0s ago\s+queued, expires in 5h 50m/)
    t.match(waiting.out, /message\s+Short-lived\s+10m 0s ago\s+expired 5m 0s ago, never delivered/)

    await run([...phone, 'network-permission', 'on'])
    await delivered(cloud, 'phone-a', plain.id)
    const after = await run([...api, 'notifications', 'phone-a', '--limit', '3'])
    t.match(after.out, /weather\s+Yellow wind warning\s+10m 0s ago\s+delivered 10m 0s late/)
    t.match(JSON.parse((await run([...api, '--json', 'notifications', 'phone-a', '--limit', '1'])).out), {
      now: Number,
      device: 'phone-a',
      notifications: { length: 1 },
    })

    const inbox = await run([...phone, 'notifications'])
    t.match(
      inbox.out,
      new RegExp(
        String.raw`SHOWN \(UTC\)\s+KIND\s+TITLE\s+LATE\s+BODY\n2026-01-01 00:10:00\s+message\s+From the console\s+10m 0s\n` +
          String.raw`2026-01-01 00:10:00\s+weather\s+Yellow wind warning\s+10m 0s\s+Gusts of 70 mph\.`,
      ),
    )
    t.match(JSON.parse((await run([...phone, '--json', 'notifications'])).out), { recent: [{ id: plain.id }, { id }] })
    t.match(
      (await run([...phone, 'status'])).out,
      /notifications 2 shown, 0 duplicates suppressed; last: message "From the console", 10m 0s late/,
    )

    const channels = await run([...api, 'device', 'phone-a'])
    t.match(
      channels.out,
      new RegExp(
        String.raw`device\s+phone-a\ndata channel\s+online since 10m 0s ago \(cloud service on\)\npush channel\s+connected since ` +
          String.raw`0s ago\nnotifications 0 queued, 2 delivered, 1 expired\nbehaviour log none received`,
      ),
    )
    t.match(JSON.parse((await run([...api, '--json', 'device', 'phone-a'])).out), { push: { connected: true }, data: { online: true } })

    await run([...phone, 'cloud-service', 'off'])
    t.match((await run([...phone, 'status'])).out, /data channel\s+off[\s\S]*push channel\s+connected/)
    clock.advance(60 * 60_000)
    t.match(
      (await run([...phone, 'status'])).out,
      /behaviour log \d+ waiting \(waiting: the cloud service is off\), 0 uploaded, \d+ not collected/,
    )
    t.match(
      (await run([...api, 'device', 'phone-a'])).out,
      /data channel\s+offline since 1h 0m ago \(cloud service off\)\npush channel\s+connected/,
    )

    agentIo.abort()
    t.equal(await running, 0)
  },
)

t.test('console logs shows what the cloud received, in words and in JSON', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
  t.equal((await run([...api, 'logs', 'phone-a'])).out, 'The cloud received no behaviour logs from phone-a.\n')
  const { connectDevice } = await import('../fixtures/cloud.js')
  const device = await connectDevice(t, cloud, 'phone-a', secret)
  const at = cloud.clock.now() - 120_000
  const events = [
    { seq: 0, at, type: 'screen-on', detail: '' },
    { seq: 1, at: at + 1000, type: 'app-opened', detail: 'Weather' },
  ]
  await device.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events }), { qos: 1 })
  const words = await run([...api, 'logs', 'phone-a', '--limit', '5'])
  t.match(
    words.out,
    new RegExp(
      String.raw`^2 events received from phone-a; the newest 2:\nSEQ\s+TIME \(UTC\)\s+TYPE\s+DETAIL\s+RECEIVED\n1\s+2025-12-31 ` +
        String.raw`23:58:01\s+app-opened\s+Weather\s+0s ago\n0\s+2025-12-31 23:58:00\s+screen-on\s+-\s+0s ago\n$`,
    ),
  )
  // With the cloud's time its ages are counted from, as every other `--json` read says it.
  const logs = JSON.parse((await run([...api, '--json', 'logs', 'phone-a', '--limit', '1'])).out)
  t.same(Object.keys(logs), ['now', 'device', 'total', 'events'])
  t.match(logs, { now: cloud.clock.now(), device: 'phone-a', total: 2, events: [{ seq: 1 }] })
  t.match((await run([...api, 'device', 'phone-a'])).out, /behaviour log 2 events received, the last 0s ago/)
  t.equal((await run([...api, 'notifications', 'phone-a'])).out, 'No notifications for phone-a.\n')
  await device.endAsync()
})

t.test('agent and broker flags for the framework are checked', async (t) => {
  t.match(
    (await run(['agent', '--id', 'a', '--secret-file', 'x', '--push', 'http://example/push'])).err,
    /--push: expected a push URL: ws:\/\/HOST:PORT\/push/,
  )
  t.match((await run(['agent', '--id', 'a', '--secret-file', 'x', '--push', 'nonsense'])).err, /--push: expected a push URL/)
  const ui = testIo()
  const running = main(['broker', '--data', tempDir(t), '--mqtt-port', '0', '--http-port', '0', '--service-notices', '1h'], ui.io)
  await ui.logs.waitFor((l) => l.msg === 'broker listening')
  ui.abort()
  t.equal(await running, 0)
  t.match((await run(['broker', '--service-notices', 'often'])).err, /not a duration/)
})

t.test('the device view says when a device was last on its push channel, and counts in words', (t) => {
  const view = {
    now: 600_000,
    device: 'phone-a',
    data: { online: false, cloudService: false, since: null },
    push: { connected: false, since: 540_000 },
    notifications: { queued: 1, delivered: 0, expired: 0 },
    logs: { events: 1, lastReceivedAt: 0 },
  }
  t.equal(
    renderChannels(view),
    [
      'device        phone-a',
      'data channel  offline (cloud service off)',
      'push channel  disconnected since 1m 0s ago',
      'notifications 1 queued, 0 delivered, 0 expired',
      'behaviour log 1 event received, the last 10m 0s ago',
      '',
    ].join('\n'),
  )
  t.equal(renderInbox([]), 'No notifications shown yet.\n')
  // M2: a cloud-moved body that is no move (an inbox an older agent kept) is shown as it came.
  const moved = { id: randomUUID(), kind: 'cloud-moved' as const, title: 'Moved', body: 'not json', createdAt: 0, expiresAt: 1 }
  t.match(renderInbox([{ ...moved, shownAt: 0, delayMs: 0 }]), /Moved {2}0s {4}not json\n$/)
  t.end()
})

t.test('X1 phone status of an agent whose status breaks the contract is one error line, not a stack', async (t) => {
  const dataDir = tempDir(t)
  const fake = await fakeAgent(t, dataDir)
  const status = aStatus()
  fake.answer({ ok: true, status })
  const shown = await run(['phone', '--data', dataDir, 'status'])
  t.equal(shown.code, 0)
  t.match(shown.out, /^push channel +connected$/m, 'a status that keeps the contract is shown')
  t.match(shown.out, /^data channel +connected$/m)
  fake.answer({ ok: true, status: { ...status, dataChannel: 'waiting', dataChannelRefused: true } })
  t.match(
    (await run(['phone', '--data', dataDir, 'status'])).out,
    `\ndata channel  waiting: ${dataChannelRefused('phone-a')}\n`,
    'a phone the broker refuses says so, and what to do',
  )
  fake.answer({ ok: true, status: { ...status, framework: { ...status.framework, logs: null } } })
  const refused = await run(['phone', '--data', dataDir, 'status'])
  t.equal(refused.code, 1)
  t.equal(refused.out, '')
  t.match(
    refused.err,
    new RegExp(
      `^error: the agent with data directory ${dataDir} gave an answer this client cannot read: [^\\n]*framework\\.logs[^\\n]*\\n$`,
    ),
  )
})
