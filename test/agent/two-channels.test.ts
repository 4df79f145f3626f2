/** X1: two channels. The cloud-service switch cuts the MQTT data channel; the push channel stays and keeps delivering. */
import t from 'tap'
import { addDevice, agentConnected, startAgent, startCloud, storedHeartbeats } from '../fixtures/cloud.js'
import { dataTraffic, notify, onePhone, pushAtCloud, pushConnected, shownBy } from '../fixtures/framework.js'
import { tempDir } from '../fixtures/scope.js'

const schedules = { eventEveryMs: 60_000, uploadEveryMs: 5 * 60_000 }

t.test(
  'X1 cloud service off: the cloud is told, then no data-channel message at all -- heartbeat, log or keep-alive -- while the ' +
    'push channel keeps delivering; on reconnects',
  async (t) => {
    const { cloud, clock, agent } = await onePhone(t, { framework: schedules })
    const traffic = await dataTraffic(t, cloud, 'phone-a')
    const shown = shownBy(agent)

    const status = await agent.setSwitch('cloudService', false)
    t.equal(status.dataChannel, 'off', 'the phone closed its data channel')
    t.equal(status.framework.pushChannel, 'connected', 'and kept its push channel')
    const told = await traffic.waitFor((m) => m.kind === 'status' && m.value.cloudService === false)
    const goodbye = await traffic.waitFor((m) => m.kind === 'presence' && m.value.state === 'offline')
    t.ok(told < goodbye, 'the cloud heard "cloud service off" before the phone left')
    // The connection closes without DISCONNECT (a forced end, see MqttLink.stop), so the broker publishes the last will: the broker's own
    // word, the end of the connection.
    const closed = await traffic.waitFor((m) => m.kind === 'presence' && m.value.state === 'offline' && m.value.at === undefined)
    t.equal(closed, goodbye + 1, 'the connection closed right after the goodbye')
    t.notOk(cloud.broker.isConnected('phone-a'), 'the cloud holds no MQTT connection from the phone')
    t.equal(cloud.broker.store.device('phone-a')?.online, false)
    t.equal(cloud.broker.store.device('phone-a')?.cloudService, false)
    const heartbeats = cloud.broker.counters.heartbeats

    // Half an hour: 60 heartbeat intervals, 6 log-upload rounds, 30 simulated usage events, many MQTT keep-alive periods.
    clock.advance(30 * 60_000)
    const n = notify(cloud, 'phone-a', { kind: 'weather', title: 'Storm tonight' })
    t.equal((await shown.count(1))[0]?.id, n.id, 'a notification still arrives over the push channel')
    t.equal(cloud.broker.framework.gateway.connected('phone-a'), true)

    await agent.setSwitch('cloudService', true)
    const back = await traffic.waitFor((m) => m.kind === 'presence' && m.value.state === 'online')
    t.equal(back, closed + 1, 'zero data-channel messages between the connection closing and coming back')
    t.equal(cloud.broker.counters.heartbeats, heartbeats, 'no heartbeat reached the cloud')
    await traffic.waitFor((m) => m.kind === 'status' && m.value.cloudService === true)
    await agentConnected(agent)
    t.ok(cloud.broker.isConnected('phone-a'), 'the data channel is open again')
    const resumed = storedHeartbeats(cloud, 1)
    clock.advance(30_000)
    await resumed
    t.equal(agent.status().heartbeatsSent, 2, 'heartbeats resume: the first fix sent at the start, then one after the switch')
  },
)

t.test('X1 a phone started with its cloud service off opens no data channel, only its push channel', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const first = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  await agentConnected(first)
  await first.setSwitch('cloudService', false)
  await first.stop()

  const second = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  await pushConnected(second)
  await pushAtCloud(cloud, 'phone-a', true)
  t.equal(second.status().dataChannel, 'off')
  t.notOk(cloud.broker.isConnected('phone-a'), 'no MQTT connection')
  await second.setSwitch('cloudService', false)
  t.equal(second.status().dataChannel, 'off', 'switching off again changes nothing')
  await second.setSwitch('cloudService', true)
  await agentConnected(second)
  t.ok(cloud.broker.isConnected('phone-a'), 'on opens the data channel for the first time')
  await second.setSwitch('cloudService', true)
  t.equal(second.status().dataChannel, 'connected', 'switching on again changes nothing')
})
