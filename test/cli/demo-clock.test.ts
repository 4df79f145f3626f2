/**
 * One time for the whole system in the demo (`npm start`): after
 * `console clock advance 73h` the demo phone runs a command signed then,
 * and `phone sync now`, which compares the phone's times with the time of
 * its own process, says "just now", not "in the future ago" (`phone backup
 * list`: clock.test.ts). Piped, the demo says its broker's addresses once.
 */
import t from 'tap'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { main } from '../../cli/main.js'
import { run, testIo } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the demo phone and the phone commands follow the cloud clock after an advance; piped, it says its ports once', async (t) => {
  const data = tempDir(t)
  const keys = join(data, 'keys')
  const ui = testIo(new SystemClock())
  const running = main(['demo', '--data', data, '--keys', keys, '--mqtt-port', '0', '--http-port', '0', '--interval', '1s'], ui.io)
  const screen = await ui.waitForOut(/demo-phone\s+demo\s+online/)
  // Piped (not a terminal): the broker's addresses once, in the guide under the first table, not once more before it.
  t.equal(screen.match(/Broker on mqtt:/g)?.length, 1, 'the "Broker on" line once')
  const api = ['console', '--api', `http://127.0.0.1:${/http:\/\/127\.0\.0\.1:(\d+);/.exec(screen)?.[1] as string}`, '--data', data]
  const phone = ['phone', '--data', join(data, 'phones', 'demo-phone')]
  const clock = new SystemClock()

  t.equal((await run([...api, 'clock', 'advance', '73h'], clock)).code, 0)
  // The command follows the time message on the phone's connection: once it ran, the phone has the cloud's time.
  const locate = await run([...api, 'locate', 'demo-phone', '--keys', keys], clock)
  t.match(locate.out, /demo-phone is at .* fix taken \d+s ago/, locate.err)
  const sync = await run([...phone, 'sync', 'now'], clock)
  t.match(sync.out, /photos .* \d+s ago/)
  t.notMatch(sync.out, /in the future/)
  ui.abort()
  t.equal(await running, 0)
})
