/** `fakephone console web`, in-process: it prints the page and the one-time link, opens a browser when asked, stops on Ctrl-C. */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../../cli/main.js'
import { startCloud } from '../../fixtures/cloud.js'
import { run, testIo } from '../../fixtures/io.js'
import { tempDir } from '../../fixtures/scope.js'
import type { Io } from '../../../cli/io.js'

/** The first thing the command says on stderr. */
function firstError(io: Io): Promise<string> {
  return new Promise((resolve) => (io.err = resolve))
}

t.test('console web: the link signs a browser in once; --open hands it to $BROWSER; Ctrl-C stops it', async (t) => {
  const cloud = await startCloud(t)
  const args = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'web', '--keys', tempDir(t)]
  for (const [browser, said] of [
    ['/bin/true', ''],
    [
      '/nonexistent/browser',
      'could not open a browser with /nonexistent/browser (spawn /nonexistent/browser ENOENT): open the link yourself\n',
    ],
  ] as const) {
    const ui = testIo(cloud.clock, { BROWSER: browser })
    const error = firstError(ui.io)
    const running = main([...args, '--open'], ui.io)
    const out = await ui.waitForOut(/login\?token=\S+\n/)
    const [, page, link] =
      /^Web console on (http:\/\/127\.0\.0\.1:\d+\/)\nOpen this link once to sign in \(it works one time\):\n {2}(\S+)\n$/.exec(out) ?? []
    t.ok(page && link, out)
    const first = await fetch(link as string, { redirect: 'manual' })
    t.equal(first.status, 303)
    t.equal((await fetch(link as string, { redirect: 'manual' })).status, 401, 'a second time it does not work')
    if (said !== '') t.equal(await error, said)
    ui.abort()
    t.equal(await running, 0)
  }
  const noPath = testIo(cloud.clock, { PATH: '/nonexistent' })
  const error = firstError(noPath.io)
  const running = main([...args, '--open'], noPath.io)
  t.match(await error, /^could not open a browser with xdg-open \(spawn xdg-open ENOENT\)/, 'no $BROWSER: xdg-open, looked for on PATH')
  noPath.abort()
  t.equal(await running, 0)
  const bad = await main([...args.slice(0, -2), '--port', '70000'], testIo(cloud.clock).io)
  t.equal(bad, 1, 'a port out of range')
})

t.test('console web: a wrong console token or a port in use is one error line, not a stack', async (t) => {
  const cloud = await startCloud(t)
  const token = join(tempDir(t), 'wrong.token')
  writeFileSync(token, 'wrong\n')
  const wrong = await run(['console', '--api', cloud.apiUrl, '--token-file', token, 'web', '--keys', tempDir(t)], cloud.clock)
  t.equal(wrong.code, 1)
  t.match(wrong.err, /^error: the live feed cannot watch ws:\/\/127\.0\.0\.1:\d+\/mqtt: Connection refused: Bad username or password\n$/)
  const args = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'web', '--keys', tempDir(t)]
  const taken = await run([...args, '--port', String(cloud.httpPort)], cloud.clock)
  t.equal(taken.code, 1)
  t.match(taken.err, /^error: the web console cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE: /)
})
