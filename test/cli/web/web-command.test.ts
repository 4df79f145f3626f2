/**
 * `fakephone console web`, in-process: it prints the page and the one-time link, says once it is used that it is dead
 * and how to get another, opens a browser when asked, stops on Ctrl-C; `console web-link` makes another from the console
 * token, which works once and for ten minutes.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../../cli/main.js'
import { LINK_TTL_MS } from '../../../cli/web/session.js'
import type { ManualClock } from '../../../common/clock.js'
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

t.test(
  'console web: a used link is said to be dead, with the command that makes another; web-link makes one that works once, for ten minutes',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    for (const flags of [
      ['--data', cloud.dataDir],
      ['--token-file', join(cloud.dataDir, 'console.token')],
    ]) {
      const ui = testIo(clock)
      const running = main(['console', '--api', cloud.apiUrl, ...flags, 'web', '--keys', tempDir(t)], ui.io)
      const out = await ui.waitForOut(/login\?token=\S+\n/)
      const [, page, link] = /^Web console on (\S+)\n.*\n {2}(\S+)\n$/.exec(out) ?? []
      t.equal((await fetch(link as string, { redirect: 'manual' })).status, 303)
      const again = await fetch(link as string, { redirect: 'manual' })
      t.equal(again.status, 401)
      t.match(await again.text(), '<p>This login link was already used: a link works once.</p>', 'the printed link, opened again')
      const said = await ui.waitForOut('The sign-in link was used')
      t.equal(
        said.slice(out.length),
        `The sign-in link was used (a link works once). For another browser: fakephone console ${flags.join(' ')} web-link ${page}\n`,
      )

      const made = await run(['console', ...flags, 'web-link', page as string], clock)
      t.equal(made.code, 0, made.err)
      const [, fresh] = /^Open this link once to sign in \(it works one time, for 10 minutes\):\n {2}(\S+)\n$/.exec(made.out) ?? []
      t.match(fresh, new RegExp(`^${page}login\\?token=[\\w-]+\\.\\d+\\.[\\w-]+$`))
      const signedIn = await fetch(fresh as string, { redirect: 'manual' })
      t.equal(signedIn.status, 303, 'the made link signs a browser in')
      const session = (signedIn.headers.get('set-cookie') as string).split(';')[0] as string
      t.equal((await fetch(new URL('/config.json', page), { headers: { cookie: session } })).status, 200)
      const twice = await fetch(fresh as string, { redirect: 'manual' })
      t.equal(twice.status, 401, 'once')
      t.match(await twice.text(), '<p>This login link was already used: a link works once.</p>')
      t.equal(ui.out().split('The sign-in link was used').length, 2, 'a made link is not the printed one: nothing more is said')

      const asJson = await run(['console', ...flags, '--json', 'web-link', page as string], clock)
      const { link: jsonLink, expiresAt } = JSON.parse(asJson.out) as { link: string; expiresAt: number }
      t.match(jsonLink, new RegExp(`^${page}login\\?token=[\\w-]+\\.\\d+\\.[\\w-]+$`), 'F1: --json gives the link alone')
      t.equal(expiresAt, clock.now() + LINK_TTL_MS, 'and when it stops working')
      t.equal((await fetch(jsonLink, { redirect: 'manual' })).status, 303, 'that link signs a browser in too')

      const late = /\S+login\S+/.exec((await run(['console', ...flags, 'web-link', page as string], clock)).out)?.[0] as string
      const forged = late.replace(/(token=[\w-]+)\.(\d+)\./, (_m, nonce: string, at: string) => `${nonce}.${Number(at) + LINK_TTL_MS}.`)
      const generic = '<p>This login link is wrong, was already used, or has expired.</p>'
      const changed = await fetch(forged, { redirect: 'manual' })
      t.equal(changed.status, 401, 'a link whose time was changed is refused')
      t.match(await changed.text(), generic, 'its MAC does not match: it says no more than that it does not work')
      clock.advance(LINK_TTL_MS)
      const expired = await fetch(late, { redirect: 'manual' })
      t.equal(expired.status, 401, 'ten minutes on, it no longer works')
      const at = new Date(Number(/token=[\w-]+\.(\d+)\./.exec(late)?.[1])).toISOString()
      t.match(
        await expired.text(),
        `<p>This login link expired at ${at.slice(11, 16)} UTC (${at.slice(0, 10)}); ` +
          '<code>fakephone console web-link URL</code> makes a new one.</p>',
      )
      const notALink = await fetch(new URL('/login?token=a.b', page), { redirect: 'manual' })
      t.equal(notALink.status, 401, 'not a link at all')
      t.match(await notALink.text(), generic)
      ui.abort()
      t.equal(await running, 0)
    }
    for (const wrong of ['not a url', 'ftp://127.0.0.1/']) {
      const refused = await run(['console', '--data', cloud.dataDir, 'web-link', wrong], clock)
      t.equal(refused.code, 1)
      t.equal(refused.err, `error: "${wrong}" is not the web console's address: give it as printed, e.g. http://127.0.0.1:41234/\n`)
    }
  },
)

t.test('console web: a wrong console token or a port in use is one error line, not a stack', async (t) => {
  const cloud = await startCloud(t)
  const token = join(tempDir(t), 'wrong.token')
  writeFileSync(token, 'wrong\n')
  const wrong = await run(['console', '--api', cloud.apiUrl, '--token-file', token, 'web', '--keys', tempDir(t)], cloud.clock)
  t.equal(wrong.code, 1)
  t.equal(
    wrong.err,
    `error: the live feed cannot watch ${cloud.apiUrl.replace('http:', 'ws:')}/mqtt: Connection refused: Bad username or password: ` +
      `${cloud.apiUrl} did not take the token in ${token}; give that broker's data directory with --data DIR (it holds ` +
      "console.token), or the token's file with --token-file FILE\n",
    'it says which token file the broker refused and what to give instead, as the other console commands do',
  )
  const args = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'web', '--keys', tempDir(t)]
  const taken = await run([...args, '--port', String(cloud.httpPort)], cloud.clock)
  t.equal(taken.code, 1)
  t.match(taken.err, /^error: the web console cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE: /)
})
