import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { ManualClock } from '../common/clock.js'
import { LogCapture } from './fixtures/logs.js'
import { Agent } from '../agent/agent.js'
import { FixedSource } from '../agent/location.js'
import { tempDir } from './fixtures/scope.js'
t.test('probe', async (t) => {
  const s = createServer(); await new Promise<void>((r) => s.listen(0, '127.0.0.1', r)); const port = (s.address() as AddressInfo).port; s.close()
  const logs = new LogCapture()
  const clock = new ManualClock()
  const agent = new Agent({ id: 'x', secret: 's', brokerUrl: `mqtt://127.0.0.1:${port}`, pushUrl: `ws://127.0.0.1:${port}/push`, dataDir: tempDir(t), clock, log: logs.logger(), location: new FixedSource({ lat: 0, lon: 0 }), heartbeatMs: 1000, jitter: 0 })
  await agent.start()
  await new Promise((r) => setTimeout(r, 500))
  clock.advance(2000)
  await new Promise((r) => setTimeout(r, 500))
  await agent.stop()
  for (const l of logs.lines) t.comment(JSON.stringify(l))
})
