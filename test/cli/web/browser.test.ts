/**
 * The web console in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the map shows the phone
 * and moves on a heartbeat (F1), the track replays, a lock from the page reaches the agent and its verified receipt
 * shows (F2), a wipe needs the typed confirmation, Find Device off shows the refusal in the CLI's words (F3), and 73 h
 * after the phone turned the cloud service off the backups turn read-only (B3) -- with no console error and no failed
 * request on the way. One browser and one page for the whole file. The screenshots go to the test's own temp folder
 * (checked to be real pictures); `npm run screenshots` sets FAKEPHONE_SCREENSHOTS=docs/img to refresh the README's.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Page, Request } from 'playwright-core'
import { chromiumTest, lowContrast, sticksOut } from '../../fixtures/browser.js'
import { packageRoot } from '../../../cli/web/assets.js'
import { WebConsole } from '../../../cli/web/server.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { formatBytes } from '../../../common/format-bytes.js'
import { utcSeconds } from '../../../common/format-time.js'
import { tempDir } from '../../fixtures/web.js'
import { storedHeartbeats } from '../../fixtures/cloud.js'

/** Where the README's pictures go when asked for (`npm run screenshots`); the test's temp folder otherwise. */
const SCREENSHOTS = process.env['FAKEPHONE_SCREENSHOTS']
const PICTURES = ['web-map.png', 'web-map-dark.png', 'web-track.png', 'web-service-off.png', 'web-phone.png', 'web-fleet.png']

// Chromium logs every 4xx as "Failed to load resource" (pageProblems leaves those out); statuses are checked one by one below.
chromiumTest('the web console in Chromium', async (t, { s, page, problems }) => {
  /** The whole file's test: what a subtest starts for the ones after it is stopped at its end. */
  const whole = t
  const context = page.context()
  /** Refusals the tests provoke on purpose: method and path, with the status expected. */
  const expected = new Set<string>()
  page.on('requestfailed', (r) => {
    // A page that is left (the tests load it again) closes its event stream: that is not a failure.
    if (new URL(r.url()).pathname === '/events' && r.failure()?.errorText === 'net::ERR_ABORTED') return
    problems.push(`failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`)
  })
  page.on('response', (r) => {
    const key = `${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`
    if (r.status() >= 400 && !expected.has(key)) problems.push(`refused: ${key}`)
  })
  // The page's requests still open, but its event stream (open as long as the page is).
  const open = new Set<Request>()
  page.on('request', (r) => void (new URL(r.url()).pathname !== '/events' && open.add(r)))
  page.on('requestfinished', (r) => void open.delete(r))
  page.on('requestfailed', (r) => void open.delete(r))
  /**
   * Loads the console afresh once the page has its answer to every request it made: the device page's cloud data, read
   * after its title and focus are drawn, may still be on its way (slowly, on a loaded machine), and a request the
   * navigation aborted would count as failed.
   */
  const reload = async (): Promise<void> => {
    await settled()
    await page.goto(s.web.url)
  }
  /** Resolves once the page has its answer to every request it made (its event stream aside). */
  const settled = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const answered = (): void => {
        if (open.size > 0) return
        page.off('requestfinished', answered)
        page.off('requestfailed', answered)
        resolve()
      }
      page.on('requestfinished', answered)
      page.on('requestfailed', answered)
      answered()
    })
  /**
   * Clicks one of the clock's buttons and resolves with what the page then says in its live line: the page says it
   * only once it has read everything the move changed, so none of its requests is still open (a navigation would abort
   * it, and the abort counts as a failed request).
   */
  const advance = async (by: string): Promise<string | null> => {
    const before = await page.textContent('#live')
    await page.getByRole('button', { name: by }).click()
    await page.waitForFunction((was) => {
      const now = document.getElementById('live')?.textContent ?? ''
      return now !== was && now.startsWith('Moved the cloud clock')
    }, before)
    return page.textContent('#live')
  }
  const IMG = SCREENSHOTS === undefined ? tempDir(t) : resolve(packageRoot(), SCREENSHOTS)
  mkdirSync(IMG, { recursive: true })

  // A few heartbeats along a street, so there is a track.
  const route = [
    [55.9486, -3.1999],
    [55.9493, -3.1952],
    [55.9502, -3.1903],
    [55.9511, -3.1862],
    [55.9525, -3.1831],
  ] as const
  for (const [lat, lon] of route) {
    s.place.point = { lat, lon }
    const stored = storedHeartbeats(s.cloud, 1)
    s.real.advance(30_000)
    await stored
  }

  await t.test('F1: the map shows the phone, and moves it when a heartbeat arrives', async (t) => {
    const started = performance.now()
    await page.goto(s.web.url)
    await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    // Measured in the page, from navigation start to the map and list drawn: the test run's own load (shared cores,
    // a cold Chromium) is outside what the page costs.
    const readyAt = await page.evaluate(() => (window as unknown as { fakephone: { readyAt: number } }).fakephone.readyAt)
    t.comment(`page ready ${Math.round(readyAt)} ms after navigation started (${Math.round(performance.now() - started)} ms for the test)`)
    // How fast is measured by `npm run bench -- --only web`, not here.
    t.same(await position(page), [55.9525, -3.1831])
    t.match(await page.locator('#device-table tbody tr').first().textContent(), /phone-a.*alice.*online/)
    await page.screenshot({ path: join(IMG, 'web-map.png') })
    // The same in the system's dark mode: the page and the map both dark.
    await page.emulateMedia({ colorScheme: 'dark' })
    // The canvas repaints the land on the next frame.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))))
    await page.screenshot({ path: join(IMG, 'web-map-dark.png') })
    await page.emulateMedia({ colorScheme: 'light' })
    s.place.point = { lat: 55.953, lon: -3.18 }
    s.real.advance(30_000)
    await page.waitForFunction(() => (window as unknown as Positions).fakephone.position('phone-a')?.[1] === -3.18)
    t.same(await position(page), [55.953, -3.18], 'the dot moved without a reload')
  })

  await t.test('F1: the device page replays the track with the slider and offers GPX and GeoJSON', async (t) => {
    await page.getByRole('link', { name: 'phone-a' }).click()
    await page.waitForSelector('#replay:not([disabled])')
    // The first fix, sent as the phone connected, then the route's five and the move.
    t.match(await page.textContent('#replay-at'), /^fix 7 of 7: /)
    await page.locator('#replay').fill('3')
    t.match(await page.textContent('#replay-at'), /^fix 4 of 7: 2026-01-01 00:01:30 UTC at 55\.95020, -3\.19030/)
    // A heartbeat while the page is open joins the track; the slider stays where the owner put it, or follows at the end.
    s.place.point = { lat: 55.9535, lon: -3.179 }
    s.real.advance(30_000)
    await page.waitForSelector('#replay-at:has-text("of 8")')
    t.match(await page.textContent('#replay-at'), /^fix 4 of 8: /, 'the replay stays where it was')
    await page.locator('#replay').fill('7')
    s.place.point = { lat: 55.954, lon: -3.178 }
    s.real.advance(30_000)
    await page.waitForSelector('#replay-at:has-text("of 9")')
    t.match(await page.textContent('#replay-at'), /^fix 9 of 9: .* at 55\.95400, -3\.17800/, 'at the end it follows the phone')
    const download = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'GPX' }).click()])
    t.equal(download[0].suggestedFilename(), 'phone-a.gpx')
    t.match(await page.getAttribute('a[download="phone-a.geojson"]', 'href'), '/app/api/devices/phone-a/track.geojson')
    await page.locator('#map').screenshot({ path: join(IMG, 'web-track.png') })
  })

  await t.test('F2: a lock from the page reaches the agent, and its verified receipt shows', async (t) => {
    const lock = page.locator('form[name=lock]')
    await lock.getByLabel('Message').fill('Please call me')
    await lock.getByLabel('Phone to call').fill('+44 131 555 0100')
    await lock.getByRole('button', { name: 'Lock' }).click()
    await page.waitForSelector('#command-result:has-text("verified receipt signed by phone-a")')
    t.match(await page.textContent('#command-result'), /^phone-a is locked — verified receipt signed by phone-a at /)
    t.same(s.agent.status().lock, { message: 'Please call me', phone: '+44 131 555 0100' })
    t.match(await page.locator('#command-table tbody tr').first().textContent(), /locksucceeded.*verified receipt/)
    t.same(await sticksOut(page), [], 'the command table, receipts and all, fits beside the map')
  })

  await t.test('F2: a wipe is sent only after the device id is typed', async (t) => {
    const wipe = page.getByRole('button', { name: 'Wipe', exact: true })
    t.ok(await wipe.isDisabled(), 'disabled before anything is typed')
    await page.getByLabel(/Type the device id/).fill('phone-b')
    t.ok(await wipe.isDisabled(), 'disabled for another id')
    await page.getByLabel(/Type the device id/).fill('phone-a')
    t.ok(await wipe.isEnabled())
    await wipe.click()
    await page.waitForSelector('#command-result:has-text("was wiped")')
    t.match(await page.textContent('#command-result'), /^phone-a was wiped: \d+ files, \d+ bytes removed; external storage kept;/)
    t.equal(await page.inputValue('#wipe-confirm'), '', 'the confirmation is cleared for the next time')
  })

  await t.test('F2: a double click sends one command, and moves the clock once', async (t) => {
    const locates = async (): Promise<number> =>
      ((await s.call('GET', '/app/api/devices/phone-a/commands')).body as { commands: { type: string }[] }).commands.filter(
        (c) => c.type === 'locate',
      ).length
    const before = await locates()
    await page.getByRole('button', { name: 'Locate' }).dblclick()
    await page.waitForSelector('#command-result:has-text("phone-a is at")')
    await settled()
    t.equal((await locates()) - before, 1, 'one locate signed and sent')
    const ahead = async (): Promise<number> => ((await s.call('GET', '/app/api/clock')).body as { aheadMs: number }).aheadMs
    const was = await ahead()
    const said = await page.textContent('#live')
    await page.getByRole('button', { name: '1 h' }).dblclick()
    await page.waitForFunction((w) => document.getElementById('live')?.textContent !== w, said)
    await settled()
    t.equal((await ahead()) - was, 3_600_000, 'the cloud clock moved one hour')
  })

  await t.test(
    'F2: lost mode from the page shows in the list, on the map and on the device page; leaving it starts the 72 h guard',
    async (t) => {
      const lost = page.locator('form[name=lost]')
      await lost.getByLabel('Message').fill('Lost, reward')
      await lost.getByLabel('Phone to call').fill('+44 131 555 0199')
      await lost.getByRole('button', { name: 'Lost mode on' }).click()
      const fact = '#facts dt:has-text("Lost mode") + dd'
      await page.waitForSelector(`${fact}:has-text("on since")`)
      t.match(await page.textContent(fact), /^on since 2026-\d\d-\d\d \d\d:\d\d:\d\d UTC: “Lost, reward”, call \+44 131 555 0199$/)
      const cell = page.locator('#device-table tr[data-device="phone-a"] td .lost')
      t.equal(await cell.textContent(), 'lost mode on', 'the list')
      t.equal(await label(page), 'phone-a · lost mode: “Lost, reward”, call +44 131 555 0199', 'the label on the map')
      await lost.getByRole('button', { name: 'Lost mode off' }).click()
      await page.waitForSelector(`${fact}:has-text("off since")`)
      t.equal(await cell.textContent(), 'lost mode off')
      t.equal(await label(page), 'phone-a')
      await t.rejects(s.agent.setSwitch('findDevice', false), /until 72 hours after lost mode ended/)
      await page.getByRole('button', { name: '73 h' }).click()
      await page.waitForSelector('#live:has-text("Moved the cloud clock")')
    },
  )

  await t.test('F3: with Find Device off on the phone the page shows the refusal, in the words the CLI prints', async (t) => {
    await s.agent.setSwitch('findDevice', false)
    await page.waitForSelector('#facts dt:has-text("Find Device") + dd:has-text("off")')
    expected.add('409 POST /app/api/devices/phone-a/commands')
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#command-result:has-text("error")')
    t.equal(await page.textContent('#command-result'), 'error: this device has not enabled Find Device')
  })

  await t.test('B3: 73 h after the phone turned the cloud service off, the backups turn read-only', async (t) => {
    t.equal(await page.textContent('#backup-state'), 'active')
    // B1: after the lost-mode test's 73 h jump the phone made one catch-up backup (the newest plan, not one per day).
    await page.waitForSelector('#backup-table')
    await s.agent.setSwitch('cloudService', false)
    // The status the phone sent, seen by the cloud: from now on the account's service is off (and its drive refused).
    await page.waitForSelector('#facts dt:has-text("Cloud service") + dd:has-text("off")')
    t.match(
      await advance('73 h'),
      new RegExp(
        String.raw`^Moved the cloud clock from 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC to 20\S+ \S+ UTC\. On the way: 2 cloud-log entries ` +
          String.raw`\(backup-read-only 1, backup-cleanup-notice 1\) for alice; 1 notification queued\.$`,
      ),
      'what the rules did, not how many timers woke',
    )
    t.equal(await page.textContent('#backup-state'), 'read-only')
    t.match(await page.textContent('#service'), /^off for 3d 1h/)
    // The header says the move on a second line: the panes shrink, the map's foot stays on the screen.
    t.ok(
      await page.evaluate(() => document.querySelector('main')!.getBoundingClientRect().bottom <= window.innerHeight),
      'nothing pushed below the window',
    )
    await advance('7 d')
    await page.waitForSelector('#timeline li')
    // The cloud data at the top of the device pane, as its scrollbar brings it: the picture is what the pane shows. (A
    // picture of #data itself, taller than the window inside a pane that scrolls, came out as the page's top instead.)
    await page.locator('#data').evaluate((el) => el.scrollIntoView({ block: 'start' }))
    await page.locator('#detail').screenshot({ path: join(IMG, 'web-service-off.png') })
    t.same(problems, [], 'no console error, no failed request')
  })

  await t.test('A1: the page says the account\'s quota in the CLI\'s words (one formatter: 5 GiB is "5.0 GB")', async (t) => {
    const quota = await page.textContent('#quota-text')
    t.match(quota, / of 5\.0 GB$/, "the free tier's 5 GiB")
    t.equal(quota?.replace(/^\d+% .* of /, ''), formatBytes(5 * 1024 ** 3), "as the CLI and the cloud's refusals say it")
    // The page's module, loaded by the page: its `bytes` is the CLI's formatter.
    const inPage = await page.evaluate(async () => {
      const served: string = '/js/util.js'
      const util = (await import(served)) as { bytes: (n: number) => string }
      return util.bytes(1536)
    })
    t.equal(inPage, formatBytes(1536))
    // The panel says when it was read, and its button reads it again (it also follows the account live:
    // browser-live.test.ts).
    const owner = new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken)
    await owner.send('PUT', '/api/accounts/alice/membership', { tier: 'premium', days: 30 })
    t.match(await page.textContent('#data-read-at'), /^as the cloud had it at 2026-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)
    await page.getByRole('button', { name: 'Reload cloud data' }).click()
    await page.waitForSelector('#account-body dd:has-text("premium until")')
    t.match(await page.textContent('#quota-text'), / of 200 GB$/)
    await owner.send('PUT', '/api/accounts/alice/membership', { tier: 'free' })
  })

  await t.test("M1: the service's retirement, its dates and the account's deadline, access and purge date", async (t) => {
    t.equal(await page.textContent('#retirement-phase'), 'In service: no retirement is planned.')
    const owner = new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken)
    const plan = { announce: 'now', syncOff: '30d', migrationDeadline: '60d', shutdown: '90d' }
    const status = await owner.send<{ now: number }>('PUT', '/api/service/retirement', plan)
    await page.getByRole('button', { name: 'Reload cloud data' }).click()
    await page.waitForSelector('#retirement-phase:has-text("announced")')
    // Each time as people read it (the CLI's UTC form), the exact ISO instant in its <time>'s datetime and tooltip.
    const day = (d: number): string => `${utcSeconds(status.now + d * 86_400_000)} UTC`
    const shown = await page.locator('#retirement').innerText()
    t.notMatch(shown, /\d\dT\d\d:/, 'no raw ISO time')
    const deadline = page.locator('#retirement dd:has-text("access closed") time')
    const exact = new Date(status.now + 60 * 86_400_000).toISOString()
    t.same([await deadline.getAttribute('datetime'), await deadline.getAttribute('title')], [exact, exact])
    // A countdown counts down: the page's one-second tick redraws it from the cloud's time as the page knows it, which
    // may be a few milliseconds past the plan's `now` when this reads it, and 29d 23h 59m 59s shows as 29d 23h (CI once).
    t.match(shown, new RegExp(`Next\\s+migration-window on ${day(30)} \\(in (30d 0h|29d 23h)\\)`))
    t.match(shown, new RegExp(`Migration deadline\\s+${day(60)} \\(not migrated or exported: access closed\\)`))
    t.match(shown, new RegExp(`This account\\s+access full; not migrated; data purged from ${day(90)}`))
  })

  await t.test('the broker stopped and back, and a session the console forgot: the page says so in words', async (t) => {
    // The data panel follows the account live: a reread the last changes asked for may meet the broker away, and is
    // refused (the panel says so in its place).
    for (const path of ['accounts', 'service', 'log', 'items', 'bin', 'backups', 'drive/files'])
      expected.add(`502 GET /app/api/${path === 'accounts' || path === 'service' ? path : `accounts/alice/${path}`}`)
    await settled()
    await s.cloud.broker.stop()
    await page.waitForSelector('#banner:has-text("The broker is not answering at")')
    t.equal(await page.textContent('#live'), 'broker unreachable', 'not "live" while the broker is away')
    expected.add('502 POST /app/api/devices/phone-a/commands')
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#command-result:has-text("error")')
    t.match(await page.textContent('#command-result'), /^error: The broker is not answering at 127\.0\.0\.1:\d+/)
    await s.cloud.restart()
    await page.waitForFunction(() => document.getElementById('banner')?.hidden === true)
    t.equal(await page.textContent('#live'), 'live')
    // The web console itself stopped, then started again on the same port: it no longer knows this browser.
    await settled()
    const known = problems.length
    await s.web.stop()
    await page.waitForSelector('#banner:has-text("This web console is not answering")')
    t.equal(await page.textContent('#live'), 'reconnecting…')
    const again = new WebConsole({
      apiUrl: s.cloud.apiUrl,
      consoleToken: s.cloud.consoleToken,
      keysDir: s.owner.keys.dir,
      log: s.cloud.logs.logger().child({ module: 'web' }),
      port: Number(new URL(s.web.url).port),
      loginToken: 'again',
    })
    await again.start()
    whole.teardown(() => again.stop())
    // The page's event stream is refused now (401); the page asks why and says so, with no click.
    expected.add('401 GET /events').add('401 GET /app/api/clock')
    await page.waitForSelector('#live:text-is("signed out")')
    t.match(
      await page.textContent('#banner'),
      /^You are signed out of this console: you signed out \(here or in another tab\), it was restarted/,
    )
    // A request the stop cut short, and the browser's attempts to reconnect while the console was away, are the
    // console's absence, which the page said; not failures of the page.
    const away = /^failed: GET \S+ net::ERR_CONNECTION_(REFUSED|RESET)$/
    problems.splice(known, problems.length, ...problems.slice(known).filter((p) => !away.test(p)))
    await page.goto(again.loginUrl as string)
    await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    t.equal(await page.textContent('#live'), 'live', 'signed in again with the new link')
    await page.getByRole('link', { name: 'phone-a' }).click()
    await page.waitForSelector('#commands')

    // A session the console does not know (the cookie gone here): said at the first thing the owner does.
    const cookies = await context.cookies()
    await context.clearCookies()
    expected.add('401 POST /app/api/devices/phone-a/commands')
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#banner:has-text("You are signed out of this console")')
    t.match(await page.textContent('#banner'), /Open the sign-in link that `fakephone demo` or `fakephone console web` printed/)
    await context.addCookies(cookies)
  })

  await t.test('a phone-sized screen: one column, no sideways scrolling; the keyboard reaches a device page', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 })
    await reload()
    await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    const wide = await page.evaluate(() => document.documentElement.scrollWidth)
    t.ok(wide <= 390, `the page is ${wide} px wide`)
    await page.keyboard.press('Tab')
    t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to the device', 'the first stop skips to the device')
    await page.getByRole('link', { name: 'phone-a' }).focus()
    await page.keyboard.press('Enter')
    // The title is drawn before the page's data has loaded; the focus moves once it has.
    await page.waitForSelector('#device-title')
    await page.waitForFunction(() => document.activeElement?.id === 'detail', undefined, { timeout: 5_000 })
    t.equal(await page.evaluate(() => document.activeElement?.id), 'detail', 'the device page takes the focus')
    t.equal(
      await page
        .locator('input:not([type=hidden]):not([aria-label]):not([id])')
        .evaluateAll((l) => l.filter((i) => !i.closest('label')).length),
      0,
      'every field has a label',
    )
    await page.waitForSelector('#command-table tbody tr')
    t.same(await sticksOut(page), [], 'no table pushes its text or buttons out of the screen')
    t.same(await lowContrast(page), [], 'every text on the device page reads at 4.5:1 or more (WCAG AA)')
    await page.screenshot({ path: join(IMG, 'web-phone.png') })
  })

  await t.test('1,000 phones on the map', async (t) => {
    const { registry, store } = s.cloud.broker
    const at = s.clock.now()
    const ids = Array.from({ length: 999 }, (_, i) => `fleet-${String(i).padStart(4, '0')}`)
    // In one transaction, as `fakephone fleet provision` does: one commit, not three per phone.
    registry.addMany(ids.map((id) => ({ id, account: 'fleet' })))
    for (const [i, id] of ids.entries()) {
      store.recordHeartbeat(
        id,
        {
          seq: 1,
          at,
          lat: 35 + (i % 37) * 0.7,
          lon: -10 + Math.floor(i / 37) * 1.3,
          accuracy: 20,
          speed: 0,
          battery: 50 + (i % 50),
          charging: false,
          network: 'mobile',
        },
        at,
      )
    }
    store.flush()
    await page.setViewportSize({ width: 1400, height: 900 })
    await reload()
    await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    const readyAt = await page.evaluate(() => (window as unknown as { fakephone: { readyAt: number } }).fakephone.readyAt)
    t.comment(`1,000 phones: page ready ${Math.round(readyAt)} ms after navigation started`)
    t.equal(await page.locator('#device-table tbody tr').count(), 1000)
    t.same(await page.evaluate(() => (window as unknown as Positions).fakephone.position('fleet-0998')), [
      35 + (998 % 37) * 0.7,
      -10 + 26 * 1.3,
    ])
    await page.screenshot({ path: join(IMG, 'web-fleet.png') })
    const zoom = await page.evaluate(async () => {
      const started = performance.now()
      document.querySelector<HTMLButtonElement>('.leaflet-control-zoom-in')?.click()
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
      return performance.now() - started
    })
    t.comment(`a zoom step redrew in ${Math.round(zoom)} ms`)
    t.same(await lowContrast(page), [], 'every text in the header, the list and the banner reads at 4.5:1 or more (WCAG AA)')
    await page.getByLabel('Find').fill('fleet-0042')
    t.equal(await page.locator('#device-table tbody tr:visible').count(), 1, 'the list filters')
    t.same(problems, [], 'no console error, no failed request')
  })

  await t.test(`the screenshots were taken, into ${SCREENSHOTS ?? "the test's temp folder"}`, async (t) => {
    for (const name of PICTURES) {
      const png = readFileSync(join(IMG, name))
      t.equal(png.subarray(1, 4).toString(), 'PNG', name)
      t.ok(png.length > 10_000, `${name} is a picture, not an empty frame (${png.length} bytes)`)
    }
  })
})

interface Positions {
  fakephone: { position(id: string): [number, number] | null; label(id: string): string | null }
}

function label(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as Positions).fakephone.label('phone-a'))
}

function position(page: Page): Promise<[number, number] | null> {
  return page.evaluate(() => (window as unknown as Positions).fakephone.position('phone-a'))
}
