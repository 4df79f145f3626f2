/**
 * `fleet run --broker URL` checks the URL against the same list of schemes as an agent's config (common/config.ts
 * MQTT_SCHEMES, mqtt.js's transports) before it tries the broker: each of them is tried, any other is refused naming
 * the schemes it takes (F1).
 */
import t from 'tap'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { MQTT_SCHEMES } from '../../common/config.js'
import { reachBroker } from '../../fleet/broker-reach.js'

t.test('F1 --broker takes every scheme of the one list, and refuses any other naming them', async (t) => {
  const server = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1')
  t.teardown(() => server.close())
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  for (const scheme of MQTT_SCHEMES) await t.resolves(reachBroker(`${scheme}//127.0.0.1:${port}/mqtt`), scheme)
  for (const scheme of ['http:', 'https:', 'mqtt+unix:', 'wx:'])
    await t.rejects(
      reachBroker(`${scheme}//127.0.0.1:${port}`),
      {
        code: 'BAD_BROKER_URL',
        message:
          `--broker ${scheme}//127.0.0.1:${port}: give the broker's MQTT address, mqtt://HOST:PORT ` +
          '(mqtt, mqtts, tcp, tls, ssl, ws or wss, with its port)',
      },
      `${scheme} refused`,
    )
})
