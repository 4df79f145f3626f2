/** The shared MQTT connection: capped, jittered backoff on the injected clock instead of mqtt.js's fixed one-second retry. */
import t from 'tap'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { ManualClock } from '../../common/clock.js'
import { MqttLink } from '../../common/mqtt.js'
import { LogCapture } from '../fixtures/logs.js'

t.test('a link that cannot connect waits a jittered delay, retries, and stops for good when told', async (t) => {
  // A port that refuses at once: bound by us, then closed.
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  server.close()
  const clock = new ManualClock()
  const logs = new LogCapture()
  const link = new MqttLink({ url: `mqtt://127.0.0.1:${port}`, clock, log: logs.logger(), mqtt: { clientId: 'x', connectTimeout: 2000 } })
  t.equal(link.state, 'connecting')
  await once(link, 'state')
  t.equal(link.state, 'waiting')
  t.ok(link.lastDelayMs >= 250 && link.lastDelayMs <= 500, `first retry after ${link.lastDelayMs} ms (default base 500 ms, halved jitter floor)`)
  t.ok(logs.has('mqtt disconnected, retrying'))
  t.notOk(link.connected)
  clock.advance(link.lastDelayMs)
  t.equal(link.state, 'connecting', 'the retry fires on the injected clock')
  await once(link, 'state')
  t.ok(link.lastDelayMs >= 500 && link.lastDelayMs <= 1000, `second retry after ${link.lastDelayMs} ms`)
  await link.stop()
  t.equal(link.state, 'stopped')
  t.equal(clock.waiting, 0, 'stopping cancels the pending retry')
})
