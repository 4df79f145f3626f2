/**
 * The web console's header in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against a real
 * broker (F1, M1): a clock move from the page that is answered only after the broker went away does not write its words
 * over `broker unreachable` -- the page says the broker is away for as long as it is, and the move's words show once
 * it is back. The move's last reread is held in the browser (Playwright's route) while the test stops the broker, so
 * the late answer comes at a known point rather than by chance. Every age on the page follows the cloud's clock as soon as
 * the page hears it moved (F1), not once its rereads answer: the account's last activity, read once, is held unreread;
 * so are the data panel's countdown to the retirement's next step and the cloud service's time off (M1, A1).
 */
import type { Page, Route } from 'playwright-core'
import { chromiumTest } from '../../fixtures/browser.js'
import { run } from '../../fixtures/io.js'
import { ConsoleClient } from '../../../cli/console-client.js'

interface Header {
  fakephone?: { ready: boolean }
  /** Each text the header took, and whether the banner said something (the broker or the console away) meanwhile. */
  headerSeen?: { text: string; away: boolean }[]
}

/**
 * Holds the page's requests to `url` until release(): `asked` resolves once the page has made one, so a test can check
 * what the page shows while that read is still unanswered.
 */
async function holdReads(page: Page, url: string | RegExp) {
  const held: Route[] = []
  let holding = true
  let heard!: () => void
  const asked = new Promise<void>((resolve) => (heard = resolve))
  await page.route(url, (route) => {
    if (!holding) return route.continue()
    held.push(route)
    heard()
  })
  const release = async (): Promise<void> => {
    holding = false
    for (const route of held) await route.continue()
    await page.unroute(url)
  }
  return { held, asked, release }
}

chromiumTest('the header keeps saying the broker is away while a late clock move ends, in Chromium', async (t, { s, page, problems }) => {
  await t.test('F1: `console clock advance` moves every age on the page at once, before the rereads answer', async (t) => {
    await page.goto(`${s.web.url}#/device/phone-a`)
    await page.waitForSelector('#last-activity')
    t.match(await page.textContent('#last-activity'), /, 0s ago$/)
    // The account's data is not read again until the test says: its age must move without it.
    const { held, asked, release } = await holdReads(page, '**/app/api/accounts**')
    const moved = await run(['console', '--api', s.cloud.apiUrl, '--data', s.cloud.dataDir, 'clock', 'advance', '2h'], s.real)
    t.equal(moved.code, 0, moved.err)
    // The page asks for the account again after the move (and is kept waiting): the ages below move without its answer.
    await asked
    await page.waitForSelector('#last-activity:has-text("2h 0m ago")')
    await page.waitForSelector('#device-table tr[data-device="phone-a"] td:nth-child(3):text-is("2h 0m ago")')
    t.ok(held.length > 0, `the account's reread is still held (${held.length} reads)`)
    await release()
  })

  await t.test("M1, A1: the data panel's countdown and the service's time off count with the cloud clock, unreread", async (t) => {
    const owner = new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken)
    await owner.send('PUT', '/api/service/retirement', { announce: 'now', syncOff: '30d', migrationDeadline: '60d', shutdown: '90d' })
    await s.agent.setSwitch('cloudService', false)
    await page.goto(`${s.web.url}#/device/phone-a`)
    await page.waitForSelector('#retirement dd:has-text("(in 30d 0h)")')
    await page.waitForSelector('#service:has-text("off for")')
    // Seconds ago, by the page's cloud time, which runs on between its reads (0s, or 1s on a slow page).
    t.match(await page.textContent('#service'), /^off for \ds$/)
    // Neither the account nor the service is read again until the test says: the words must move without it.
    const { held, asked, release } = await holdReads(page, /\/app\/api\/(accounts|service)/)
    const moved = await run(['console', '--api', s.cloud.apiUrl, '--data', s.cloud.dataDir, 'clock', 'advance', '2h'], s.real)
    t.equal(moved.code, 0, moved.err)
    await asked
    await page.waitForFunction(() => document.getElementById('service')?.textContent === 'off for 2h 0m')
    // 29d 22h, or 29d 21h once the page's cloud time has run on past the move by a moment (ages round down).
    await page.waitForSelector('#retirement dd:has-text("(in 29d 2")')
    t.ok(held.length > 0, `the account's and the service's rereads are still held (${held.length} reads)`)
    await release()
  })

  await page.goto(s.web.url)
  await page.waitForFunction(() => (window as unknown as Header).fakephone?.ready === true)
  await page.waitForSelector('#live:text-is("live")')
  await page.evaluate(() => {
    const w = window as unknown as Header
    const live = document.getElementById('live') as HTMLElement
    const banner = document.getElementById('banner') as HTMLElement
    w.headerSeen = []
    new MutationObserver(() => w.headerSeen?.push({ text: live.textContent ?? '', away: !banner.hidden })).observe(live, {
      childList: true,
      characterData: true,
      subtree: true,
    })
  })

  // The move's rereads of the devices (the move's own and the one the feed's `clock` event starts, in either order):
  // answered by the broker while it is up, handed to the page once the test says.
  let fetched!: () => void
  const reread = new Promise<void>((resolve) => (fetched = resolve))
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  let holding = true
  await page.route('**/app/api/devices', async (route) => {
    if (!holding) return route.continue()
    const answer = await route.fetch()
    fetched()
    await released
    await route.fulfill({ response: answer })
  })

  await page.getByRole('button', { name: '7 d' }).click()
  await reread
  await s.cloud.broker.stop()
  await page.waitForSelector('#live:text-is("broker unreachable")')
  holding = false
  release()
  // The buttons come back once the move has reread what it changed: its answer is in, its words said or kept.
  await page.waitForSelector('#advance button[data-by="7d"]:enabled')
  t.equal(await page.textContent('#live'), 'broker unreachable', 'the late move does not hide that the broker is away')
  const seen = await page.evaluate(() => (window as unknown as Header).headerSeen ?? [])
  t.same(
    seen.filter((h) => h.away && h.text.startsWith('Moved the cloud clock')),
    [],
    "no move's words in the header while the banner says the broker is away",
  )
  // Whichever the feed or the page found first: the broker gone from its connection, or not answering a request.
  t.match(
    await page.textContent('#banner'),
    /^The broker (is not answering at 127\.0\.0\.1:\d+|at 127\.0\.0\.1:\d+ closed the connection)/,
    'the banner says the broker is away',
  )

  await s.cloud.restart()
  await page.waitForFunction(() => document.getElementById('banner')?.hidden === true)
  t.match(
    await page.textContent('#live'),
    /^Moved the cloud clock from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\. /,
    "back: the header says what the move did (the banner's gone)",
  )
  await page.unroute('**/app/api/devices')

  t.same(problems, [], 'no page error')
})
