/**
 * The web console as its owner meets it, in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * on a phone-sized screen a tap on a phone brings its page into view; a refusal because the phone's cloud service is off
 * says so (F3: the cloud's words are those for Find Device off); a locate's fresh fix moves the phone's dot and its
 * list row there, saying it is the locate's fix and when, until a newer heartbeat (F2); a command just issued for a phone that is away
 * reads "issued 0s ago" (never "in the future ago") and its age grows while it waits (F2); a long move of the cloud
 * clock says it is under way; the cloud data panel, reread while the broker is away, keeps what it showed and says it
 * could not read it; a year without activity freezes the account and the panel says when the cloud cleared it, also once
 * the owner signed in again (A3); a button pressed with Enter keeps the focus; and Sign out ends the session here and in
 * the browser's other tabs.
 */
import type { Route } from 'playwright-core'
import { mintLoginToken } from '../../../cli/web/session.js'
import { chromiumTest } from '../../fixtures/browser.js'
import { storedHeartbeats } from '../../fixtures/cloud.js'

interface Ready {
  fakephone?: { ready: boolean }
}

interface Map {
  fakephone: { position(id: string): [number, number] | null; label(id: string): string | null }
}

chromiumTest('the web console as its owner meets it, in Chromium', async (t, { s, page, problems }) => {
  const stored = storedHeartbeats(s.cloud, 1)
  s.real.advance(30_000)
  await stored
  const ready = async (): Promise<void> => {
    await page.waitForFunction(() => (window as unknown as Ready).fakephone?.ready === true)
  }

  await t.test('on a phone-sized screen, a tap on a phone in the list brings its page into view', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(s.web.url)
    await ready()
    await page.getByRole('link', { name: 'phone-a' }).click()
    // Open: the device page takes the focus once it has read what it shows.
    await page.waitForFunction(() => document.activeElement?.id === 'detail')
    const where = await page.evaluate(() => {
      const facts = (document.getElementById('facts') as HTMLElement).getBoundingClientRect()
      return { top: facts.top, bottom: facts.bottom, height: window.innerHeight }
    })
    t.ok(where.top >= 0 && where.bottom <= where.height, `the device's facts are on the screen (${JSON.stringify(where)})`)
    await page.setViewportSize({ width: 1400, height: 900 })
  })

  await t.test('F3: a refusal because the cloud service is off says so, beside "Find Device on"', async (t) => {
    await s.agent.setSwitch('cloudService', false)
    await page.waitForSelector('#facts dt:has-text("Cloud service") + dd:has-text("off")')
    t.equal(await page.textContent('#facts dt:has-text("Find Device") + dd'), 'on')
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#command-result:has-text("error")')
    t.equal(
      await page.textContent('#command-result'),
      "error: this device has not enabled Find Device: the phone's cloud service is off, and Find Device with it " +
        "(turn it on in the phone's settings)",
      "the cloud's words (F3), and which switch",
    )
    await s.agent.setSwitch('cloudService', true)
    await page.waitForSelector('#facts dt:has-text("Cloud service") + dd:has-text("on")')
  })

  await t.test('F2: a locate moves the dot and the list to its fix, saying so and when, until a newer heartbeat', async (t) => {
    const where = (): Promise<{ at: [number, number] | null; label: string | null }> =>
      page.evaluate(() => {
        const map = (window as unknown as Map).fakephone
        return { at: map.position('phone-a'), label: map.label('phone-a') }
      })
    const row = page.locator('#device-table tr[data-device="phone-a"] td:nth-child(3)')
    const fact = page.locator('#facts dt:has-text("Last fix") + dd')
    t.same(await where(), { at: [55.9486, -3.1999], label: 'phone-a' }, "the last heartbeat's fix")
    // The phone walks on; no heartbeat is due (real time stands), the cloud's clock moves 5 s on.
    s.place.point = { lat: 55.9533, lon: -3.1883 }
    s.clock.advance(5_000)
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#command-result:has-text("phone-a is at 55.95330,-3.18830")')
    await page.waitForFunction(() => (window as unknown as Map).fakephone.position('phone-a')?.[0] === 55.9533)
    const located = `fix from locate at ${new Date(s.clock.now()).toISOString().slice(0, 19).replace('T', ' ')} UTC`
    t.same(await where(), { at: [55.9533, -3.1883], label: `phone-a · ${located}` }, "the dot is at the locate's fix, and says so")
    t.match(await row.textContent(), /^\d+s ago \(locate\)$/, "the list's last fix is the locate's")
    t.match(await fact.textContent(), new RegExp(`^55\\.95330, -3\\.18830 \\(±12 m\\), \\d+s ago: ${located}$`), 'and so is the page')

    // A heartbeat after the locate is the newest fix again: the words go.
    const stored = storedHeartbeats(s.cloud, 1)
    s.real.advance(30_000)
    await stored
    await page.waitForFunction(() => (window as unknown as Map).fakephone.label('phone-a') === 'phone-a')
    t.same((await where()).at, [55.9533, -3.1883], "the heartbeat's fix, where the phone is")
    t.notMatch(await row.textContent(), /locate/, "the list says no more that it is the locate's")
    t.notMatch(await fact.textContent(), /locate/, 'nor does the page')
  })

  await t.test('F2: the ring form holds the seconds the cloud accepts (1-600), so the browser says so before sending', async (t) => {
    let sent = 0
    page.on('request', (r) => void (r.method() === 'POST' && r.url().includes('/commands') && sent++))
    const seconds = page.locator('form[name="ring"] input[name="seconds"]')
    await seconds.fill('900')
    await page.locator('form[name="ring"] button[type="submit"]').click()
    t.equal(await seconds.evaluate((el) => (el as HTMLInputElement).validity.rangeOverflow), true, 'over 600 is out of range')
    await seconds.fill('0')
    t.equal(await seconds.evaluate((el) => (el as HTMLInputElement).validity.rangeUnderflow), true, 'under 1 is out of range')
    t.equal(sent, 0, 'no command was sent')
    await seconds.fill('30')
  })

  await t.test('keyboard: a button pressed with Enter keeps the focus once its request is answered', async (t) => {
    const focused = (): Promise<string | undefined> => page.evaluate(() => document.activeElement?.textContent ?? undefined)
    await page.getByRole('button', { name: 'Locate' }).focus()
    await page.keyboard.press('Enter')
    await page.waitForSelector('#command-result:has-text("phone-a")')
    await page.waitForSelector('#commands button:text-is("Locate"):not([disabled])')
    t.equal(await focused(), 'Locate', 'not lost to the page: Enter again sends another')
    const said = await page.textContent('#live')
    await page.getByRole('button', { name: '1 h' }).focus()
    await page.keyboard.press('Enter')
    await page.waitForFunction((was) => document.getElementById('live')?.textContent !== was, said)
    await page.waitForSelector('#live:has-text("Moved the cloud clock")')
    t.equal(await focused(), '1 h')
  })

  await t.test('F2: a command for a phone that is away reads "issued 0s ago", and its age grows while it waits', async (t) => {
    await s.agent.stop()
    await page.waitForSelector('#device-table tr[data-device="phone-a"]:has-text("offline")')
    // The page knows the cloud's time from answers that took a while to come: what the cloud stamps just after can
    // look a few seconds ahead of the page's estimate. Here the cloud's clock moves 4 s on behind the page's back.
    s.real.advance(4_000)
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.waitForSelector('#command-result:has-text("is offline: locate is queued")')
    const issued = page.locator('#command-table tbody tr[data-state="queued"] td:nth-child(2) div').first()
    t.equal(await issued.textContent(), 'issued 0s ago', 'not "issued in the future ago"')
    // The page's own clock jumps 6 s on (Playwright's fake clock: its Date, from here on, for this browser's pages)
    // rather than the test waiting 5 s of real time for it; what shows the new age is the page's own tick, no reread.
    await page.clock.install()
    await page.clock.fastForward(6_000)
    await page.waitForFunction(
      () =>
        /^issued [1-9]\d*s ago$/.test(
          document.querySelector('#command-table tbody tr[data-state="queued"] td:nth-child(2) div')?.textContent ?? '',
        ),
      undefined,
      { timeout: 20_000 },
    )
    t.match(await issued.textContent(), /^issued [1-9]\d*s ago$/, 'the age counts on without a reread')
  })

  await t.test('a long move of the cloud clock says it is under way until the page shows what it did', async (t) => {
    let release: (() => void) | undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const hold = async (route: Route): Promise<void> => {
      await held
      await route.continue()
    }
    await page.route('**/app/api/clock/advance', hold)
    await page.getByRole('button', { name: '7 d' }).click()
    await page.waitForSelector('#live:has-text("Moving the cloud clock 7d ahead…")')
    t.ok(await page.getByRole('button', { name: '1 y' }).isDisabled(), 'no second move meanwhile')
    release?.()
    await page.waitForSelector('#live:has-text("Moved the cloud clock")')
    await page.unroute('**/app/api/clock/advance', hold)
    t.ok(await page.getByRole('button', { name: '1 y' }).isEnabled())
  })

  await t.test('the cloud data, reread while the broker is away, stays as it was read and says it could not be read', async (t) => {
    await page.waitForSelector('#data-read-at:has-text("as the cloud had it at")')
    const before = (await page.textContent('#data-read-at')) as string
    await s.cloud.broker.stop()
    await page.waitForSelector('#banner:has-text("The broker is not answering")')
    await page.getByRole('button', { name: 'Reload cloud data' }).click()
    await page.waitForSelector('#data-read-at:has-text("not read at")')
    t.match(
      await page.textContent('#data-read-at'),
      new RegExp(
        String.raw`^not read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: The broker is not answering at .* ` +
          `\\(shown: ${before.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`,
      ),
    )
    t.match(await page.textContent('#backup-state'), 'active', 'the backups part still shows what the cloud said')
    t.match(await page.textContent('#items-table'), 'notes', 'and so do the items')
    await s.cloud.restart()
    await page.waitForSelector('#data-read-at:has-text("as the cloud had it at")')
    t.pass('back: read again')
  })

  await t.test(
    'A3: a year without activity: the data panel says when the cloud cleared the account, signs in from the page, back',
    async (t) => {
      await page.getByRole('button', { name: '1 y' }).click()
      await page.waitForSelector('#service:has-text("FROZEN since")')
      const frozenAt = ((await page.textContent('#service')) as string).replace('FROZEN since ', '')
      t.equal(await page.textContent('#cleared'), `cleared on ${frozenAt} (a year without activity, A3)`, 'frozen: cleared then')
      // The page's own reads are no sign-in: reloading it leaves the account frozen.
      await page.getByRole('button', { name: 'Reload cloud data' }).click()
      await page.waitForSelector('#service:has-text("FROZEN since")')
      // The owner signs in from the page (the panel's button opens the account): the account is back, not frozen.
      await page.getByRole('button', { name: 'Sign in (brings it back, empty)' }).click()
      await page.waitForSelector('#account-body dd:has-text("a year without activity: ")')
      t.match(s.cloud.broker.cloud.accounts.need('alice'), { frozenAt: null, lastActivity: 'console-sign-in' }, 'signed in from the page')
      t.equal(await page.getByRole('button', { name: 'Sign in (brings it back, empty)' }).count(), 0, 'no sign-in button once back')
      t.notMatch(await page.textContent('#service'), /FROZEN/, 'no longer frozen')
      t.equal(await page.textContent('#cleared'), `cleared on ${frozenAt} (a year without activity, A3)`, 'still says when it was cleared')
    },
  )

  await t.test('sign out: this tab goes to a page that says so, another tab of the browser hears it too', async (t) => {
    const other = await page.context().newPage()
    await other.goto(s.web.url)
    await other.waitForFunction(() => (window as unknown as Ready).fakephone?.ready === true)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(new URL('/signed-out', s.web.url).href)
    t.match(await page.textContent('main p'), /^You signed out of this console: this browser needs a new link to sign in again\./)
    await other.waitForSelector('#live:text-is("signed out")')
    t.match(await other.textContent('#banner'), /^You are signed out of this console: you signed out \(here or in another tab\)/)
    t.equal((await s.call('GET', '/app/api/clock')).status, 401, 'the session no longer works')
    // A new link signs this browser in again.
    await page.goto(new URL(`/login?token=${mintLoginToken(s.cloud.consoleToken, Date.now())}`, s.web.url).href)
    await ready()
    t.equal(await page.textContent('#live'), 'live')
  })

  t.same(problems, [], 'no page error')
})
