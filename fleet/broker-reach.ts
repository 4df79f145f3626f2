/**
 * `fleet run --broker URL` is tried before any phone starts (F1: the phones' heartbeats need a broker to reach): a
 * broker that is not running, or a URL with the wrong port, would otherwise leave every phone retrying in silence for
 * the whole run, and a report of nothing sent.
 */
import { createConnection } from 'node:net'
import { FakephoneError } from '../common/errors.js'

/** How long the check waits for the broker to take the connection. */
const REACH_MS = 5_000

/** The port an MQTT URL means without one: 1883 for mqtt://, 8883 for mqtts://, 80/443 for ws:// and wss://. */
const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'ssl:': 8883, 'ws:': 80, 'wss:': 443 }

const HINT =
  '; is the broker running there? --broker takes its MQTT address, mqtt://HOST:PORT with its --mqtt-port ' +
  '(fakephone broker says it at start: `Broker on mqtt://HOST:N and http://HOST:M`)'

/** Resolves once something at `brokerUrl` takes a TCP connection; a clear error naming the URL and --broker otherwise. */
export async function reachBroker(brokerUrl: string): Promise<void> {
  let url: URL
  try {
    url = new URL(brokerUrl)
  } catch {
    throw new FakephoneError('BAD_BROKER_URL', `--broker ${brokerUrl}: not a URL; give mqtt://HOST:PORT`)
  }
  const fallback = DEFAULT_PORTS[url.protocol]
  if (fallback === undefined)
    throw new FakephoneError('BAD_BROKER_URL', `--broker ${brokerUrl}: ${url.protocol}// is not MQTT; give mqtt://HOST:PORT`)
  const port = url.port === '' ? fallback : Number(url.port)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host, port, timeout: REACH_MS })
    const fail = (why: string): void => {
      socket.destroy()
      reject(new FakephoneError('UNREACHABLE', `cannot reach the broker at ${brokerUrl} (--broker): ${why}${HINT}`))
    }
    socket.once('connect', () => socket.end(resolve))
    socket.once('timeout', () => fail(`no answer in ${REACH_MS / 1000} s`))
    socket.once('error', (err) => fail(err.message))
  })
}
