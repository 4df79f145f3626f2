/**
 * The web console keeps an idle connection open longer than its client keeps it (common/http-keep-alive.ts): with Node's
 * 5 s on both ends, a page's fetch made ~5 s after the last (F1's locate, F2's command list) could go out on a
 * connection the console was closing that moment and fail.
 */
import t from 'tap'
import { WebConsole } from '../../../cli/web/server.js'
import { startCloud } from '../../fixtures/cloud.js'
import { announcedKeepAlive, nodeClientKeepsMs } from '../../fixtures/keep-alive.js'
import { makeOwner } from '../../fixtures/owner.js'
import { onEnd } from '../../fixtures/scope.js'

t.test('F1, F2: the web console keeps an idle page connection open longer than its client keeps it', async (t) => {
  const cloud = await startCloud(t)
  const owner = makeOwner(t)
  const web = new WebConsole({ apiUrl: cloud.apiUrl, consoleToken: cloud.consoleToken, keysDir: owner.keys.dir, log: cloud.logs.logger() })
  await web.start()
  onEnd(t, () => web.stop())
  const { status, hint, ms } = await announcedKeepAlive(new URL('/signed-out', web.url).href)
  t.equal(status, 200)
  t.ok(ms > nodeClientKeepsMs, `the console holds it longer (${hint}) than a Node client's ${nodeClientKeepsMs} ms`)
})
