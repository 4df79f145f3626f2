/**
 * The broker's HTTP API keeps an idle connection open longer than a Node client keeps it in its pool (listeners.ts,
 * HTTP_KEEP_ALIVE_MS), so the client always drops it first. With both at Node's 5 s, a phone's next request (or a console
 * call made beside a phone in one process) went out on a connection the broker was closing that moment and failed with
 * "read ECONNRESET": A3's freeze test saw the console's `backups alice` fail so after the year's jump.
 */
import t from 'tap'
import { globalAgent, request, type AgentOptions, type IncomingMessage } from 'node:http'
import { startCloud } from '../../fixtures/cloud.js'

/** One GET on the broker's API through the global agent (what CloudClient and ConsoleClient use), the answer read whole. */
function get(url: string, token: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test(
  'A3, B1: the broker keeps an idle API connection open longer than the client pool keeps it, so the client drops it first',
  async (t) => {
    const cloud = await startCloud(t)
    const res = await get(`${cloud.apiUrl}/api/devices`, cloud.consoleToken)
    t.equal(res.statusCode, 200)
    // What a Node client reads to know how long the broker holds the connection (it keeps it no longer than the smaller).
    const hint = String(res.headers['keep-alive'])
    const held = /^timeout=(\d+)$/.exec(hint)?.[1]
    t.ok(held, `the broker says how long it keeps the connection: ${hint}`)
    // Node sets the global agent's options (keepAlive, a 5 s timeout) but its types leave the field out.
    const clientKeepsMs = (globalAgent as typeof globalAgent & { options: AgentOptions }).options.timeout as number
    t.ok(Number(held) * 1000 > clientKeepsMs, `the broker holds it ${held} s, longer than the client's ${clientKeepsMs} ms`)
  },
)
