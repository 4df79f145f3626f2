/**
 * The web console follows the truth live, in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
 * against a real broker: the device page's cloud data panel shows a phone's sync, its delete into the recycle bin and
 * the days left moving with `console clock advance` (S1, R1, R2), a membership and a retirement plan set from the CLI
 * (A1, M1) -- all without a reload or a click, and a burst of uploads costs fewer rereads than uploads. When the broker
 * stops, comes back, or refuses the console's token, the banner says so in words a person acts on, with the last
 * contact's time, and keeps Node's or MQTT's reason in its tooltip.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONSOLE_TOKEN_FILE } from '../../../broker/console-token.js'
import type { Page } from 'playwright-core'
import { chromiumTest } from '../../fixtures/browser.js'
import { deleteNote, syncNote } from '../../fixtures/web.js'
import { run } from '../../fixtures/io.js'
import { addDevice, connectDevice, heartbeat, storedHeartbeats } from '../../fixtures/cloud.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { endpointsOf } from '../../../common/cloud/cloud-move.js'
import type { NotificationRecord } from '../../../common/console-api.js'
import type { RetirementStatus } from '../../../broker/cloud/retirement-plan.js'

/** The number of notes the panel's table shows. */
const notesShown = (page: Page): Promise<string | null> =>
  page.locator('#items-table tbody tr:has(td:text-is("notes")) td:nth-child(2)').textContent()

/** Waits until the panel's table shows `count` notes. */
const notesCount = (page: Page, count: number): Promise<unknown> =>
  page.waitForFunction(
    (n) =>
      [...document.querySelectorAll('#items-table tbody tr')].some(
        (tr) => tr.children[0]?.textContent === 'notes' && tr.children[1]?.textContent === n,
      ),
    String(count),
  )

chromiumTest('the web console follows the cloud live, in Chromium', async (t, { s, page, problems }) => {
  /** How many times the panel read the account's items. */
  let itemReads = 0
  page.on('request', (r) => void (new URL(r.url()).pathname === '/app/api/accounts/alice/items' && itemReads++))
  const cli = (...args: string[]) => run(['console', '--api', s.cloud.apiUrl, '--data', s.cloud.dataDir, ...args], s.real)

  await page.goto(`${s.web.url}#/device/phone-a`)
  await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
  await page.waitForSelector('#items-table')
  t.equal(await notesShown(page), '0')
  t.equal(await page.textContent('#bin-body'), 'Deleted items stay 30 days, then go for good.The recycle bin is empty.')

  await t.test('S1, R1: a phone syncs a note and deletes it; the panel shows both, with no reload', async (t) => {
    await syncNote(s, 'n-1', 'milk, eggs')
    await notesCount(page, 1)
    t.equal(await notesShown(page), '1', 'the synced note is counted')
    await deleteNote(s, 'n-1')
    await page.waitForSelector('#bin-table')
    t.match(
      await page.textContent('#bin-table'),
      /^notes\/n-1.*30 days leftpurged \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/,
      'R1: in the recycle bin, with its days left and when it goes',
    )
    t.equal(await notesShown(page), '0')
  })

  await t.test("R2: `console clock advance`, or another tab's button, moves the days left on the page, the phone away", async (t) => {
    // The phone hears the jump over its data channel; away, it cannot pass it on: the cloud's own word must.
    await s.agent.stop()
    const moved = await cli('clock', 'advance', '2d')
    t.equal(moved.code, 0, moved.err)
    await page.waitForSelector('#bin-table :text("28 days left")')
    t.pass('28 days left, two days on')
    // Another tab moves the clock with its button: this page hears it from the broker's word too.
    const other = await page.context().newPage()
    await other.goto(s.web.url)
    await other.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    await other.getByRole('button', { name: '7 d' }).click()
    await other.waitForSelector('#live:has-text("Moved the cloud clock")')
    await other.close()
    await page.waitForSelector('#bin-table :text("21 days left")')
    t.pass('21 days left, a week on from the other tab')
    t.equal((await cli('clock', 'advance', '20d')).code, 0)
    await page.waitForSelector('#bin-table :text-is("1 day left")')
    t.pass('the last day in words, as the CLI says it')
  })

  await t.test('A1, M1: a membership and a retirement plan from the CLI show without a click', async (t) => {
    const premium = await cli('membership', 'alice', 'premium', '--days', '30')
    t.equal(premium.code, 0, premium.err)
    await page.waitForSelector('#account-body dd:has-text("premium until")')
    t.match(await page.textContent('#quota-text'), / of 200 GB$/)
    const plan = await cli(
      'service',
      'retire',
      '--announce',
      'now',
      '--sync-off',
      '30d',
      '--migration-deadline',
      '60d',
      '--shutdown',
      '90d',
    )
    t.equal(plan.code, 0, plan.err)
    await page.waitForSelector('#retirement-phase:has-text("announced")')
    t.pass('the retirement phase shows')
  })

  await t.test('a burst of uploads: the panel rereads fewer times than there were changes', async (t) => {
    const before = itemReads
    const burst = 20
    await Promise.all(Array.from({ length: burst }, (_, i) => syncNote(s, `b-${i}`, `note ${i}`)))
    await notesCount(page, burst)
    const reads = itemReads - before
    t.ok(reads >= 1 && reads < burst / 2, `${reads} rereads for ${burst} uploads (${2 * burst} requests)`)
  })

  await t.test('M2: a phone told to follow its account to another cloud shows where it went, not "offline"', async (t) => {
    // It was on the map before it went: one heartbeat over its data channel, then away.
    const secret = await addDevice(s.cloud, 'phone-m', 'mover')
    const device = await connectDevice(t, s.cloud, 'phone-m', secret)
    const stored = storedHeartbeats(s.cloud, 1)
    await device.publishAsync('fp/v1/phone-m/heartbeat', JSON.stringify(heartbeat(1, { at: s.cloud.clock.now(), lat: 57.15 })), {
      qos: 1,
    })
    await stored
    await device.endAsync()
    const api = new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken)
    await api.request('/api/accounts/mover/transferred', { how: 'migrate' })
    await api.request('/api/accounts/mover/moved', { account: 'mover', to: endpointsOf('http://127.0.0.1:9') })
    const row = '#device-table tr[data-device="phone-m"]'
    const dot = (): Promise<{ label: string | null; fill: string | null }> =>
      page.evaluate(() => {
        const map = (window as unknown as { fakephone: { label(id: string): string | null; fill(id: string): string | null } }).fakephone
        return { label: map.label('phone-m'), fill: map.fill('phone-m') }
      })
    // A colour as the browser computes it, and that of an entry in the map's key.
    const css = (colour: string | null): Promise<string> =>
      page.evaluate((c) => {
        const el = document.body.appendChild(document.createElement('span'))
        el.style.background = c ?? ''
        const computed = getComputedStyle(el).backgroundColor
        el.remove()
        return computed
      }, colour)
    const keyColour = (text: string): Promise<string> =>
      page.locator(`.map-legend li:text-is("${text}") .swatch`).evaluate((el) => getComputedStyle(el).backgroundColor)
    const reload = async (hash: string): Promise<void> => {
      await page.goto(`${s.web.url}${hash}`)
      await page.reload()
      await page.waitForFunction(() => (window as unknown as { fakephone?: { ready: boolean } }).fakephone?.ready === true)
    }
    await reload('#/')
    await page.waitForSelector(`${row}:has-text("offline: follows to http://127.0.0.1:9 when back (told ")`)
    t.pass('away: the list says it follows when it is back')
    const away = await dot()
    t.match(away.label, /^phone-m · offline: follows to http:\/\/127\.0\.0\.1:9 when back/, 'and so does its label on the map')
    t.equal(await css(away.fill), await keyColour('offline'), 'its dot is offline grey')
    // The phone takes the notice (its push channel acknowledges it): it has moved.
    const queue = s.cloud.broker.framework.queue
    queue.acknowledge('phone-m', (queue.list('phone-m', 10)[0] as NotificationRecord).id)
    await reload('#/device/phone-m')
    const moved = /^moved to http:\/\/127\.0\.0\.1:9 on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/
    await page.waitForSelector(`${row}:has-text("moved to http://127.0.0.1:9 on ")`)
    t.match(await page.textContent(`${row} td:nth-child(2)`), moved, 'the list')
    await page.waitForSelector('#facts dd:has-text("moved to")')
    t.match(await page.textContent('#facts dt:text-is("Data channel") + dd'), moved, "the device's page")
    const onMap = await dot()
    t.match(onMap.label, /^phone-m · moved to http:\/\/127\.0\.0\.1:9 on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/, 'the map: its label says where')
    t.equal(await css(onMap.fill), await keyColour('moved to another cloud (its label says where)'), 'its dot has the colour of the key…')
    t.not(onMap.fill, away.fill, '…no longer the grey of an offline phone')
    // Back to phone-a for the tests after this one.
    await reload('#/device/phone-a')
    await page.waitForSelector('#items-table')
  })

  await t.test("M1: the clock moved past the shutdown from the page: the purge's record shows, what went and what stays", async (t) => {
    // Its record as `console service status` prints it, from the same answer of the broker.
    const record = async (): Promise<string> => {
      const status = await new ConsoleClient(s.cloud.apiUrl, s.cloud.consoleToken).send<RetirementStatus>('GET', '/api/service')
      return status.accounts.find((a) => a.account === 'alice')?.purged ?? 'not purged'
    }
    t.equal(await record(), 'not purged')
    await page.getByRole('button', { name: '1 y' }).click()
    await page.waitForSelector('#retirement-purged')
    // The move ends with its words in the header, once the page has reread what it changed: the next test's stopped
    // broker must not meet a move still under way (its words would then replace "broker unreachable").
    await page.waitForSelector('#live:has-text("Moved the cloud clock")')
    t.match(await page.locator('#retirement').innerText(), /This account\s+access PURGED; not migrated; data purged 20\d\d-/)
    const shown = (await page.textContent('#retirement-purged')) as string
    t.match(shown, /^Purge record: the service retired: deleted drive files 0, items 20, backups 0, location fixes \d+, remote /)
    t.match(shown, /cloud-log entries \d+; .*\. Kept: the account's name and its retirement's record/)
    t.equal(shown, `Purge record: ${await record()}`, "the CLI's words, read from the same answer")
    // The account's own parts are refused alike (410): each says so in a line, pointing at the record, not at a terminal.
    t.equal(await page.textContent('#bin-body'), 'Deleted when the service shut down: its purge record is under Service retirement.')
  })

  await t.test('the broker stopped, back, then with a new console token: the banner says so in words', async (t) => {
    const port = new URL(s.cloud.apiUrl).port
    await s.cloud.broker.stop()
    await page.waitForSelector(`#banner:has-text("The broker is not answering at 127.0.0.1:${port}")`)
    const said = (await page.textContent('#banner')) as string
    t.match(
      said,
      new RegExp(
        `^The broker is not answering at 127\\.0\\.0\\.1:${port}: is \`fakephone broker\` \\(or \`fakephone demo\`\\) running\\? ` +
          'Retrying… Last contact \\d\\d:\\d\\d:\\d\\d; the page shows what the broker said then\\.$',
      ),
    )
    t.notMatch(said, /ECONNREFUSED|Error/, "no Node text in the banner's words")
    t.match(await page.getAttribute('#banner', 'title'), new RegExp(`^Technical reason: .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`))
    t.equal(await page.textContent('#live'), 'broker unreachable')
    await s.cloud.restart()
    await page.waitForFunction(() => document.getElementById('banner')?.hidden === true)
    t.equal(await page.textContent('#live'), 'live', 'back: the banner is gone')

    // The broker's data directory gets a new console token: this console's is refused, and the page says so.
    await s.cloud.broker.stop()
    writeFileSync(join(s.cloud.dataDir, CONSOLE_TOKEN_FILE), 'a-new-console-token\n')
    await s.cloud.restart()
    await page.waitForSelector(`#banner:has-text("The broker refuses this console's token")`)
    t.match(
      await page.getAttribute('#banner', 'title'),
      /^Technical reason: Connection refused: (Not authorized|Bad username or password)$/,
    )
    t.equal(await page.textContent('#live'), 'token refused', 'beside "live": not "broker unreachable"')
    // What the page reads is refused too: said in the same words, not as "signed out"; the panel keeps what it read.
    await page.getByRole('button', { name: 'Reload cloud data' }).click()
    await page.waitForSelector(`#data-read-at:has-text("The broker refuses this console's token")`)
    t.match(
      await page.textContent('#data-read-at'),
      /^not read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: The broker refuses this console's token/,
    )
    t.notMatch(await page.textContent('#banner'), /signed out/)
  })

  t.same(problems, [], 'no page error')
})
