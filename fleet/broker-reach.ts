/**
 * `fleet run --broker URL` is tried before any phone starts (F1: the phones' heartbeats need a broker to reach): a
 * broker that is not running, or a URL with the wrong port, would otherwise leave every phone retrying in silence for
 * the whole run, and a report of nothing sent.
 */
import { createConnection } from 'node:net'
import { MQTT_SCHEMES, MQTT_SCHEMES_TEXT } from '../common/config.js'
import { FakephoneError } from '../common/errors.js'

const HINT =
  '; is the broker running there? --broker takes its MQTT address, mqtt://HOST:PORT with its --mqtt-port ' +
  '(fakephone broker says it at start: `Broker on mqtt://HOST:N and http://HOST:M`)'

/**
 * Resolves once something at `brokerUrl` takes a TCP connection; a clear error naming the URL and --broker otherwise
 * (a host that drops the connection attempt is said when the OS gives up on it: ETIMEDOUT).
 */
export async function reachBroker(brokerUrl: string): Promise<void> {
  const url = URL.canParse(brokerUrl) ? new URL(brokerUrl) : null
  if (!url || !MQTT_SCHEMES.includes(url.protocol) || url.port === '')
    throw new FakephoneError(
      'BAD_BROKER_URL',
      `--broker ${brokerUrl}: give the broker's MQTT address, mqtt://HOST:PORT (${MQTT_SCHEMES_TEXT}, with its port)`,
    )
  const host = url.hostname.replace(/^\[|\]$/g, '')
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host, port: Number(url.port) })
    socket.once('connect', () => socket.end(resolve))
    socket.once('error', (err) => {
      socket.destroy()
      reject(new FakephoneError('UNREACHABLE', `cannot reach the broker at ${brokerUrl} (--broker): ${err.message}${HINT}`))
    })
  })
}
