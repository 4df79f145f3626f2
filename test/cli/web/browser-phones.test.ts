/**
 * The web console follows every phone of the account, not only the one whose page is open, in a real Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core) against a real broker and two real phones: with phone-a's page
 * open, a locate of phone-b from the terminal (`console locate`) moves phone-b's dot and its list row to the fix it
 * brought, saying it is the locate's (F2); a ring's outcome shows on phone-b's row; phone-b going away turns its row and
 * its dot offline (F1) -- all without a reload, over the page's one event stream. A console started again (a new process,
 * nothing moving after it) shows phone-b's last command and its locate's fix from the broker's command history (F2), and
 * a phone's removal (`fakephone device remove`) takes its row and its dot off the page (F1), also off a page whose
 * stream was cut when it happened (its line to the console through a proxy the test takes down): once its stream is back.
 * A page whose browser gave up on its stream (the proxy answered 502) opens a new one itself, 2 s on, and that stream too
 * brings what changed meanwhile: a phone removed goes, one added comes, with no reload (F1).
 */
import type { Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { chromiumTest, pageProblems } from '../../fixtures/browser.js'
import { startProxy, type Proxy } from '../../fixtures/proxy.js'
import { consoleCli, secondPhone } from '../../fixtures/web.js'
import { run } from '../../fixtures/io.js'
import { WebConsole } from '../../../cli/web/server.js'

interface Phones {
  fakephone: {
    ready: boolean
    position(id: string): [number, number] | null
    label(id: string): string | null
    fill(id: string): string | null
  }
  notReloaded?: boolean
}

chromiumTest("the web console follows every phone's commands and presence, in Chromium", async (t, { s, page, problems }) => {
  const b = await secondPhone(t, s, 'phone-b', { lat: 51.5007, lon: -0.1246 })
  let streams = 0
  page.on('request', (r) => void (new URL(r.url()).pathname === '/events' && streams++))
  await page.goto(`${s.web.url}#/device/phone-a`)
  await page.waitForFunction(() => (window as unknown as Phones).fakephone?.ready === true)
  await page.waitForSelector('#device-title:text-is("phone-a")')
  // Gone after a reload: what the page shows below came to this very page.
  await page.evaluate(() => ((window as unknown as Phones).notReloaded = true))
  const row = page.locator('#device-table tr[data-device="phone-b"]')
  const where = (): Promise<{ at: [number, number] | null; label: string | null }> =>
    page.evaluate(() => {
      const map = (window as unknown as Phones).fakephone
      return { at: map.position('phone-b'), label: map.label('phone-b') }
    })
  t.same(await where(), { at: [51.5007, -0.1246], label: 'phone-b' }, "phone-b's dot at its heartbeat's fix")

  await t.test("F2: phone-b located from the terminal: its dot and its row move to the locate's fix", async (t) => {
    // phone-b walks on; no heartbeat is due (real time stands), the cloud's clock moves 5 s on.
    b.place.point = { lat: 51.5033, lon: -0.1196 }
    s.clock.advance(5_000)
    const located = await consoleCli(s, 'locate', 'phone-b')
    t.match(located.out, /^phone-b is at 51\.50330,-0\.11960/, 'the terminal says where')
    await page.waitForFunction(() => (window as unknown as Phones).fakephone.position('phone-b')?.[0] === 51.5033)
    const at = `fix from locate at ${new Date(s.clock.now()).toISOString().slice(0, 19).replace('T', ' ')} UTC`
    t.same(await where(), { at: [51.5033, -0.1196], label: `phone-b · ${at}` }, "the dot is at the locate's fix, and says so")
    await page.waitForSelector('#device-table tr[data-device="phone-b"] .last-command:text-is("locate succeeded · verified")')
    t.match(await row.locator('td:nth-child(3)').textContent(), /^\d+s ago \(locate\)$/, "the list's last fix is the locate's")
    t.match(await row.locator('.receipt').textContent(), /^verified receipt signed by phone-b at /)
    t.equal(await page.textContent('#device-title'), 'phone-a', "phone-a's page stayed open")
    t.equal(await page.locator('#device-table tr[data-device="phone-a"] .last-command').count(), 0, 'phone-a had no command')
  })

  await t.test("F2: a ring of phone-b from the terminal: its outcome shows on phone-b's row", async (t) => {
    const rang = await consoleCli(s, 'ring', 'phone-b', '--seconds', '5')
    t.match(rang.out, /^phone-b is ringing for 5 s/)
    await page.waitForSelector('#device-table tr[data-device="phone-b"] .last-command:text-is("ring succeeded · verified")')
    t.match((await where()).label, /fix from locate at/, "the dot stays at the locate's fix: a ring brings none")
  })

  await t.test('F1: phone-b goes away: its row and its dot say offline', async (t) => {
    t.equal(await page.evaluate(() => (window as unknown as Phones).fakephone.fill('phone-b')), '#1b7f3a', 'online')
    await b.agent.stop()
    await page.waitForSelector('#device-table tr[data-device="phone-b"] td:nth-child(2) span:text-is("offline")')
    await page.waitForFunction(() => (window as unknown as Phones).fakephone.fill('phone-b') === '#666666')
    t.pass("the dot is offline's grey")
  })

  t.equal(await page.evaluate(() => (window as unknown as Phones).notReloaded), true, 'no reload')
  t.equal(streams, 1, 'one event stream for every phone')

  // A new console process knows nothing of what the old one heard; nothing moves after it starts.
  await s.web.stop()
  const again = new WebConsole({
    apiUrl: s.cloud.apiUrl,
    consoleToken: s.cloud.consoleToken,
    keysDir: s.owner.keys.dir,
    log: s.cloud.logs.logger().child({ module: 'web' }),
  })
  await again.start()
  t.teardown(() => again.stop())

  await t.test("F2: the console restarted: phone-b's row and dot show its last command from the broker's history", async (t) => {
    await page.goto(again.loginUrl as string)
    await page.waitForFunction(() => (window as unknown as Phones).fakephone?.ready === true)
    await page.waitForSelector('#device-table tr[data-device="phone-b"] .last-command:text-is("ring succeeded · verified")')
    t.match(await row.locator('.receipt').textContent(), /^verified receipt signed by phone-b at /)
    t.match((await where()).label, /^phone-b · fix from locate at /, "the dot is at the locate's fix again")
    t.equal(await page.locator('#device-table tr[data-device="phone-a"] .last-command').count(), 0, 'phone-a never had a command')
  })

  // The removals below are seen on phone-a's page of the new console.
  await secondPhone(t, s, 'phone-c', { lat: 51.4545, lon: -2.5879 })
  await page.goto(`${again.url}#/device/phone-a`)
  await page.waitForSelector('#device-title:text-is("phone-a")')

  /**
   * A second window whose way to the console goes through a line the test cuts (the network away, or an HTTP proxy that
   * answers with an error status); the console and the broker run on. Ready, on the list, marked to tell a reload.
   */
  const windowThrough = async (t: Test): Promise<{ line: Proxy; cut: Page; problems: string[] }> => {
    const line = await startProxy(t, again.url)
    const context = await (page.context().browser() as Browser).newContext({ proxy: { server: line.url } })
    t.teardown(() => context.close())
    await context.addCookies((await page.context().cookies()).filter((k) => k.name === 'fakephone_session'))
    const cut = await context.newPage()
    cut.setDefaultTimeout(10_000)
    const problems = pageProblems(cut)
    await cut.goto(again.url)
    await cut.waitForFunction(() => (window as unknown as Phones).fakephone?.ready === true)
    await cut.evaluate(() => ((window as unknown as Phones).notReloaded = true))
    return { line, cut, problems }
  }
  const removeDevice = async (t: Test, id: string): Promise<void> => {
    t.equal((await run(['device', 'remove', id, '--data', s.cloud.dataDir])).code, 0)
    // The first window hears the removal.
    await page.waitForSelector(`#device-table tr[data-device="${id}"]`, { state: 'detached' })
  }

  await t.test("F1: phone-c removed while a page's stream is cut: its row and its dot go once the stream is back", async (t) => {
    const { line, cut, problems: cutProblems } = await windowThrough(t)
    await cut.waitForSelector('#device-table tr[data-device="phone-c"]')
    t.not(await cut.evaluate(() => (window as unknown as Phones).fakephone.position('phone-c')), null, "phone-c's dot is on the map")
    line.away()
    await cut.waitForSelector('#live:text-is("reconnecting…")')
    await removeDevice(t, 'phone-c')
    t.equal(await cut.locator('#device-table tr[data-device="phone-c"]').count(), 1, 'the cut page still shows it')
    line.back()
    await cut.waitForSelector('#live:text-is("live")')
    await cut.waitForSelector('#device-table tr[data-device="phone-c"]', { state: 'detached' })
    await cut.waitForSelector('#device-count:text-is("(2)")')
    t.equal(await cut.evaluate(() => (window as unknown as Phones).fakephone.position('phone-c')), null, 'no dot of it on the map')
    t.equal(await cut.evaluate(() => (window as unknown as Phones).notReloaded), true, 'no reload')
    // The browser's attempts to reach the console while the line was down are the absence the page said.
    t.same(cutProblems, [], 'no page error')
  })

  await t.test(
    "F1: a page's browser gave up on its stream (its proxy answered 502): the page's own new stream brings phone-d's removal and phone-e",
    async (t) => {
      await secondPhone(t, s, 'phone-d', { lat: 53.4808, lon: -2.2426 })
      const { line, cut, problems: cutProblems } = await windowThrough(t)
      await cut.waitForSelector('#device-table tr[data-device="phone-d"]')
      let streams = 0
      cut.on('request', (r) => void (new URL(r.url()).pathname === '/events' && streams++))
      // The stream is cut; the browser's reconnect is answered 502, so the browser closes the stream for good and the
      // page asks the console why (502 too) before it opens a new one of its own, 2 s on.
      line.away(502)
      await cut.waitForResponse((r) => new URL(r.url()).pathname === '/app/api/clock' && r.status() === 502)
      t.equal(await cut.textContent('#live'), 'reconnecting…')
      t.ok(streams >= 1, 'the browser tried the stream again and was answered 502')
      // Meanwhile phone-d goes and phone-e comes: no stream of this page is open to hear either.
      await removeDevice(t, 'phone-d')
      await secondPhone(t, s, 'phone-e', { lat: 52.2053, lon: 0.1218 })
      await page.waitForSelector('#device-table tr[data-device="phone-e"]')
      t.equal(await cut.locator('#device-table tr[data-device="phone-d"]').count(), 1, 'the page still shows phone-d')
      line.back()
      await cut.waitForSelector('#device-table tr[data-device="phone-d"]', { state: 'detached' })
      await cut.waitForSelector('#device-table tr[data-device="phone-e"]')
      t.equal(await cut.textContent('#live'), 'live')
      t.equal(await cut.evaluate(() => (window as unknown as Phones).fakephone.position('phone-d')), null, 'no dot of phone-d')
      t.same(await cut.evaluate(() => (window as unknown as Phones).fakephone.position('phone-e')), [52.2053, 0.1218], "phone-e's dot")
      t.equal(await cut.evaluate(() => (window as unknown as Phones).notReloaded), true, 'no reload')
      t.same(cutProblems, [], 'no page error')
      // The list as the later tests expect it.
      await removeDevice(t, 'phone-e')
    },
  )

  await t.test('F1: phone-b removed with `fakephone device remove`: its row and its dot leave the page', async (t) => {
    t.equal((await run(['device', 'remove', 'phone-b', '--data', s.cloud.dataDir])).code, 0)
    await page.waitForSelector('#device-table tr[data-device="phone-b"]', { state: 'detached' })
    await page.waitForSelector('#device-count:text-is("(1)")')
    t.equal(await page.evaluate(() => (window as unknown as Phones).fakephone.position('phone-b')), null, 'no dot of it on the map')
    t.equal(await page.textContent('#device-title'), 'phone-a', "phone-a's page stays open")
  })

  await t.test('F1: phone-a removed while its page is open: the page goes back to the list, which is empty', async (t) => {
    t.equal((await run(['device', 'remove', 'phone-a', '--data', s.cloud.dataDir])).code, 0)
    await page.waitForFunction(() => location.hash === '#/')
    await page.waitForSelector('#device-count:text-is("(0)")')
    t.equal(await page.locator('#device-table tr[data-device]').count(), 0, 'no row left')
  })

  t.same(problems, [], 'no page error')
})
