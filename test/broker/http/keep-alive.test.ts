/**
 * The broker's HTTP API keeps an idle connection open longer than a Node client keeps it in its pool
 * (common/http-keep-alive.ts), so the client always drops it first. With both at Node's 5 s, a phone's next request (or
 * a console call made beside a phone in one process) went out on a connection the broker was closing that moment and
 * failed with "read ECONNRESET": A3's freeze test saw the console's `backups alice` fail so after the year's jump.
 */
import t from 'tap'
import { startCloud } from '../../fixtures/cloud.js'
import { announcedKeepAlive, nodeClientKeepsMs } from '../../fixtures/keep-alive.js'

t.test(
  'A3, B1: the broker keeps an idle API connection open longer than the client pool keeps it, so the client drops it first',
  async (t) => {
    const cloud = await startCloud(t)
    const { status, hint, ms } = await announcedKeepAlive(`${cloud.apiUrl}/api/devices`, { authorization: `Bearer ${cloud.consoleToken}` })
    t.equal(status, 200)
    // What a Node client reads to know how long the broker holds the connection (it keeps it no longer than the smaller).
    t.ok(ms > nodeClientKeepsMs, `the broker holds it longer (${hint}) than the client's ${nodeClientKeepsMs} ms`)
  },
)
