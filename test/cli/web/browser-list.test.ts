/**
 * The web console's list of phones beside the map in a real Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core), at the size a laptop's browser opens (1400 × 900) (F1, F2): a phone whose location is off (its cloud
 * service off, F3), beside the demo's phone (demo-phone), keeps every column of its row in view -- before, the list's
 * column was narrower than its table, so the Network column was cut at its edge behind a sideways scroll.
 */
import { chromiumTest } from '../../fixtures/browser.js'
import { secondPhone } from '../../fixtures/web.js'

interface Ready {
  fakephone?: { ready: boolean }
}

chromiumTest('the list of phones shows all its columns beside the map, in Chromium', async (t, { s, page, problems }) => {
  // A phone named as the demo's is, beside phone-a.
  await secondPhone(t, s, 'demo-phone', { lat: 51.5007, lon: -0.1246 })
  await page.goto(s.web.url)
  await page.waitForFunction(() => (window as unknown as Ready).fakephone?.ready === true)
  await s.agent.setSwitch('cloudService', false)
  await page.waitForSelector('#device-table tbody td:has-text("location off")')

  const fit = await page.evaluate(() => {
    const list = document.getElementById('devices') as HTMLElement
    const network = document.querySelector('#device-table thead th:last-child') as HTMLElement
    return {
      list: { client: list.clientWidth, scroll: list.scrollWidth },
      cols: [...document.querySelectorAll('#device-table thead th')].map((th) => (th as HTMLElement).offsetWidth),
      network: { right: network.getBoundingClientRect().right, listRight: list.getBoundingClientRect().right },
    }
  })
  t.ok(fit.list.scroll <= fit.list.client, `the list needs no sideways scroll (${JSON.stringify(fit)})`)
  t.ok(fit.network.right <= fit.network.listRight, `the Network column is inside the list (${JSON.stringify(fit.network)})`)
  t.same(problems, [], 'the page reported no errors')
})
