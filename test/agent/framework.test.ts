/** The resident framework on its own: without a push URL, and when a notification cannot be written down. */
import t from 'tap'
import { mkdirSync, rmSync } from 'node:fs'
import { ResidentFramework, type FrameworkOptions } from '../../agent/framework.js'
import { ManualClock } from '../../common/clock.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { notify, pushAtCloud } from '../fixtures/framework.js'
import { LogCapture } from '../fixtures/logs.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

function options(dataDir: string, extra: Partial<FrameworkOptions> = {}): FrameworkOptions {
  return {
    deviceId: 'phone-a',
    secret: 's',
    dataDir,
    clock: new ManualClock(),
    log: new LogCapture().logger(),
    random: () => 0.5,
    phone: () => ({ cloudService: true, network: 'wifi' }),
    data: { connected: () => false, publish: () => Promise.reject(new Error('unused')) },
    ...extra,
  }
}

t.test('X3 without a push endpoint there is no push channel, and the permission switch still saves and is recorded', async (t) => {
  const dataDir = tempDir(t)
  const framework = new ResidentFramework(options(dataDir))
  await framework.start()
  t.equal(framework.status().pushChannel, 'off')
  t.match(await framework.setNetworkPermission(false), { pushChannel: 'off', networkPermission: false, logs: { waiting: 1 } })
  t.match(await framework.setNetworkPermission(true), { networkPermission: true, logs: { waiting: 2 } })
  await framework.stop()
  const again = new ResidentFramework(options(dataDir))
  await again.start()
  t.match(again.status(), { networkPermission: true, logs: { waiting: 2 } }, 'settings and waiting events survive a restart')
  await again.stop()
})

t.test('X3 a notification the phone cannot write down is not acknowledged, so the cloud keeps it', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const logs = new LogCapture()
  const framework = new ResidentFramework(options(dataDir, { secret, pushUrl: cloud.pushUrl, clock: cloud.clock, log: logs.logger() }))
  onEnd(t, () => framework.stop())
  await framework.start()
  await pushAtCloud(cloud, 'phone-a', true)
  rmSync(dataDir, { recursive: true })
  const n = notify(cloud, 'phone-a', { title: 'disk full' })
  t.match(await logs.waitFor((l) => l.msg === 'could not take in a notification; the cloud will send it again'), { id: n.id })
  mkdirSync(dataDir)
  t.equal(cloud.broker.framework.queue.list('phone-a', 1)[0]?.state, 'queued')
  t.equal(framework.status().notifications.shown, 0)
})
