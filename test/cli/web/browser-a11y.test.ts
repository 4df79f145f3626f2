/**
 * The web console for an owner who uses it with the keyboard and a screen reader, at 200 % zoom (a 360 px wide window of
 * CSS pixels), asking the system for dark mode and less motion, in a real Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core): nothing scrolls sideways at 360 or 320 px -- before, the list kept a 350 px floor and the page
 * scrolled 6 px sideways; every Tab stop shows a focus ring at 3:1 or more -- before, an orange ring at 2.1:1 on the white
 * panes and 1.3:1 on the map's sea; the device page is a region named by its phone, its cloud data a part of it (h3) --
 * before, a second h2 beside the phone's; the clock's move and the connection are said (role=status), the clock's
 * every-second tick, the device page's redraws and a heartbeat's fix are not -- before, the header's clock and the whole
 * device page were live regions that spoke every second, the track's line at every heartbeat, and a clock move's words
 * were in none; the wipe, a Cancel, a heartbeat's redraw
 * of the list and "← all devices" leave the focus on the form, the command table, the phone's link and its line in the
 * list -- before, each sent it to the page's body; the open phone's "online" reads at 4.5:1 on its highlighted row --
 * before, 4.26:1; in dark mode the page and its fields are dark, its texts and rings at the same contrasts -- before, the
 * page ignored it; the map is dark in dark mode (its sea, land, tiles, labels, key and buttons; each dot 3:1 by its
 * ring) and follows the setting when it changes, the track too -- before, it stayed light; on the light map each dot
 * stands out at 3:1 on the sea as on the land -- before, the grey (offline) and the orange (location off) were 2.8:1 on
 * the sea; and with less motion asked for, the map
 * jumps where it goes -- before, it glided. A success's message is polite (role=status), an error's assertive
 * (role=alert), each in its own region whose role stays -- before, both alerts, then one region whose role switched with
 * its words; the clock's buttons are named "Move the clock 1 hour" and so on -- before, "1 h"; a row's receipt and the
 * banner's technical reason are words
 * the keyboard reaches -- before, only tooltips.
 */
import type { CDPSession } from 'playwright-core'
import { chromiumTest, faintRing, lowContrast, sticksOut } from '../../fixtures/browser.js'
import { storedHeartbeats } from '../../fixtures/cloud.js'
import { deleteNote, syncNote } from '../../fixtures/web.js'

interface Fakephone {
  fakephone: {
    ready: boolean
    leaflet: {
      options: Record<string, unknown>
      getZoom(): number
      getCenter(): { lat: number; lng: number }
      setView(at: [number, number], zoom: number, options: { animate: boolean }): void
      getBounds(): { contains(at: [number, number]): boolean }
    }
    position(id: string): [number, number]
  }
}

/** What a screen reader speaks by itself when it changes: the live regions. */
const LIVE = '[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log]'

/** Leaflet's tile layer, as the page makes one with --tiles (map.js base()). */
interface Leaflet {
  tileLayer(
    url: string,
    options: { maxZoom: number },
  ): { once(event: 'load', fn: (v: unknown) => void): { addTo(map: unknown): void }; remove(): void }
}

/** A white map tile (every tile of the layer: its address has no {z}/{x}/{y}). */
const WHITE_TILE = `data:image/svg+xml,${encodeURIComponent(
  "<svg xmlns='http://www.w3.org/2000/svg' width='256' height='256'><rect width='256' height='256' fill='white'/></svg>",
)}`

/** Halfway between the fix phone-a sent as it connected (test/fixtures/web.ts MovableSource) and the next one. */
const TRACK_MIDDLE: [number, number] = [55.9486, -3.1899]

/** What the map paints (rgb): its land, its sea, phone-a's track, and each kind of dot's fill and ring in its key. */
interface MapPaint {
  land: number[]
  sea: number[]
  track: number[]
  dots: { state: string; fill: number[]; ring: number[] }[]
}

interface AXNode {
  ignored: boolean
  role?: { value: string }
  name?: { value: string }
  properties?: { name: string; value: { value: unknown } }[]
}

chromiumTest('the web console by keyboard and screen reader, at 200 % zoom, in Chromium', async (t, { s, page, problems }) => {
  // A heartbeat a street east of where the phone connected: its track is a line, halfway along it TRACK_MIDDLE.
  s.place.point = { lat: 55.9486, lon: -3.1799 }
  const stored = storedHeartbeats(s.cloud, 1)
  s.real.advance(30_000)
  await stored
  await page.setViewportSize({ width: 360, height: 740 })
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' })
  await page.goto(`${s.web.url}#/device/phone-a`)
  await page.waitForFunction(() => (window as unknown as Fakephone).fakephone?.ready === true)
  await page.waitForSelector('#command-table')
  /**
   * From now on, what a screen reader would say by itself: every change in a live region is spoken, so each is kept
   * (the id of its region) until heard() reads them.
   */
  const listen = (): Promise<void> =>
    page.evaluate((live) => {
      const w = window as unknown as { spoken: string[] }
      w.spoken = []
      const region = (n: Node): string => (n.nodeType === 1 ? (n as Element) : n.parentElement)?.closest(live)?.id ?? '?'
      const seen = new MutationObserver((records) => w.spoken.push(...records.map((r) => region(r.target))))
      for (const el of document.querySelectorAll(live)) seen.observe(el, { subtree: true, childList: true, characterData: true })
    }, LIVE)
  const heard = (): Promise<string[]> => page.evaluate(() => [...new Set((window as unknown as { spoken: string[] }).spoken)])
  const focused = (): Promise<string> =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement
      return el === document.body ? 'the page' : `${el.tagName.toLowerCase()}#${el.id} ${el.textContent?.trim().slice(0, 30)}`
    })

  await t.test('a 360 px window (200 % zoom) and a 320 px one: one column, nothing scrolls sideways', async (t) => {
    for (const width of [360, 320]) {
      await page.setViewportSize({ width, height: 740 })
      const wide = await page.evaluate(() => document.documentElement.scrollWidth)
      t.ok(wide <= width, `at ${width} px the page is ${wide} px wide`)
      t.same(await sticksOut(page), [], `at ${width} px nothing sticks out of the list or the device page`)
    }
    await page.setViewportSize({ width: 360, height: 740 })
  })

  await t.test('every Tab stop, the whole page round, shows a focus ring at 3:1 or more, in dark mode and in light', async (t) => {
    for (const colorScheme of ['dark', 'light'] as const) {
      await page.emulateMedia({ colorScheme, reducedMotion: 'reduce' })
      await page.focus('#filter')
      const stops: string[] = []
      const faint: string[] = []
      // Once round the page: back at the list's filter (a bounded number of presses).
      for (let i = 0; i < 100 && (stops.length === 0 || !stops[stops.length - 1]?.startsWith('input#filter')); i++) {
        await page.keyboard.press('Tab')
        stops.push(await focused())
        faint.push(...(await faintRing(page)))
      }
      t.match(stops[stops.length - 1], /^input#filter/, `${colorScheme}: round the page in ${stops.length} presses`)
      for (const control of ['button# Locate', 'input#wipe-confirm', 'button#sign-out', 'button# 1 h', 'button# phone-a'])
        t.ok(
          stops.some((stop) => stop.startsWith(control)),
          `Tab reaches ${control}`,
        )
      t.same(faint, [], `${colorScheme}: no ring missing or under 3:1`)
    }
    await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' })
  })

  await t.test('headings and landmarks: the device page is a region named by its phone, its cloud data part of it', async (t) => {
    const cdp: CDPSession = await page.context().newCDPSession(page)
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as unknown as { nodes: AXNode[] }
    await cdp.detach()
    const prop = (n: AXNode, name: string): unknown => n.properties?.find((p) => p.name === name)?.value.value
    const seen = nodes.filter((n) => !n.ignored)
    const headings = seen.filter((n) => n.role?.value === 'heading').map((n) => `${String(prop(n, 'level'))} ${n.name?.value}`)
    t.same(headings.slice(0, 5), ['1 fakephone', '2 Devices (1)', '2 phone-a', '3 Track', '3 Remote commands'])
    t.ok(
      headings.includes('3 Cloud data') && headings.includes('4 Account alice'),
      `the cloud data under the phone: ${headings.join(', ')}`,
    )
    const levels = headings.map((h) => Number(h.split(' ')[0]))
    t.ok(
      levels.every((l, i) => i === 0 || l <= (levels[i - 1] as number) + 1),
      'no level skipped',
    )
    const landmarks = seen
      .filter((n) => ['banner', 'main', 'region'].includes(n.role?.value ?? ''))
      .map((n) => `${n.role?.value} ${n.name?.value ?? ''}`.trim())
    for (const l of ['banner', 'main', 'region Devices (1)', 'region Map of the devices', 'region phone-a']) t.ok(landmarks.includes(l), l)
    const unnamed = seen.filter((n) => prop(n, 'focusable') === true && !n.name?.value).map((n) => n.role?.value)
    t.same(unnamed, [], 'every control has a name')
  })

  await t.test('a clock move is said; the clock ticking and the device page redrawn every second are not', async (t) => {
    const inLive = (id: string): Promise<boolean> =>
      page.evaluate((at) => !!document.getElementById(at.id)?.closest(at.live), { id, live: LIVE })
    // Nobody doing anything while the page's clock ticks twice.
    await listen()
    const clock = await page.textContent('#clock')
    await page.waitForFunction((was) => document.getElementById('clock')?.textContent !== was, clock)
    const next = await page.textContent('#clock')
    await page.waitForFunction((was) => document.getElementById('clock')?.textContent !== was, next)
    t.same(await heard(), [], 'nothing spoken by the tick')
    t.ok(await inLive('live'), "the header's line (a clock move's words, the connection) is a live region")
    t.ok(await inLive('command-result'), "a command's result and error are")
    t.ok((await inLive('toast-status')) && (await inLive('toast-alert')), 'the messages are')
    // Each clock button says what it does by itself: "1 h" alone is a name only its group's label explains.
    const cdp: CDPSession = await page.context().newCDPSession(page)
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as unknown as { nodes: AXNode[] }
    await cdp.detach()
    const clockButtons = nodes.filter((n) => !n.ignored && n.role?.value === 'button' && /clock|^\d+ [hdy]$/.test(n.name?.value ?? ''))
    t.same(
      clockButtons.map((n) => n.name?.value),
      ['Move the clock 1 hour', 'Move the clock 73 hours', 'Move the clock 7 days', 'Move the clock 31 days', 'Move the clock 1 year'],
    )
    await page.getByRole('button', { name: 'Move the clock 1 hour', exact: true }).focus()
    await page.keyboard.press('Enter')
    await page.waitForSelector('#live:has-text("Moved the cloud clock")')
    t.equal(await page.getAttribute('#live', 'role'), 'status')
  })

  await t.test("dark mode is dark; every text reads at 4.5:1 or more, the open phone's state on its highlighted row too", async (t) => {
    t.equal(await page.textContent('#device-table tr.selected .on'), 'online')
    const dark = await page.evaluate(() =>
      [document.documentElement, document.getElementById('detail') as HTMLElement, document.getElementById('filter') as HTMLElement].map(
        (el) => `${getComputedStyle(el).colorScheme} ${getComputedStyle(el).backgroundColor}`,
      ),
    )
    t.same(
      dark.map((d) => d.split(' ')[0]),
      ['dark', 'dark', 'dark'],
      `the page and its fields follow the system's dark mode (${dark.join('; ')})`,
    )
    t.same(await lowContrast(page), [])
    await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' })
    t.same(await lowContrast(page), [])
    await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' })
  })

  await t.test('F1: the map dark in dark mode: its sea and land, texts 4.5:1, each dot and the track 3:1 (light too)', async (t) => {
    /**
     * What the map paints at its centre over land (Germany), over the sea (the Atlantic) and halfway along phone-a's
     * track (close in, its ends and its dot out of view), and the key's dots.
     */
    const painted = (): Promise<MapPaint> =>
      page.evaluate(async (middle) => {
        const map = (window as unknown as Fakephone).fakephone.leaflet
        const rgb = (c: string): number[] => (c.match(/[\d.]+/g) ?? []).map(Number).slice(0, 3)
        const el = document.getElementById('map') as HTMLElement
        const sea = rgb(getComputedStyle(el).backgroundColor)
        const canvas = el.querySelector('canvas') as HTMLCanvasElement
        const was = { at: map.getCenter(), zoom: map.getZoom() }
        const at = async (where: [number, number], zoom = 6): Promise<number[]> => {
          map.setView(where, zoom, { animate: false })
          // The canvas is painted on the next frame: two, and it has been.
          await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
          const [view, box] = [el.getBoundingClientRect(), canvas.getBoundingClientRect()]
          const x = Math.round(((view.left + view.width / 2 - box.left) * canvas.width) / box.width)
          const y = Math.round(((view.top + view.height / 2 - box.top) * canvas.height) / box.height)
          const [r, g, b, a] = (canvas.getContext('2d') as CanvasRenderingContext2D).getImageData(x, y, 1, 1).data as unknown as number[]
          // Where the canvas paints nothing (or not all), the map's background shows: the sea.
          return [r, g, b].map((v, i) => ((v as number) * (a as number) + (sea[i] as number) * (255 - (a as number))) / 255)
        }
        const land = await at([51, 10])
        const open = await at([0, -30])
        const track = await at(middle, 16)
        map.setView([was.at.lat, was.at.lng], was.zoom, { animate: false })
        const dots = [...document.querySelectorAll('.map-legend li')].map((li) => {
          const swatch = getComputedStyle(li.querySelector('.swatch') as HTMLElement)
          return { state: li.textContent as string, fill: rgb(swatch.backgroundColor), ring: rgb(swatch.borderTopColor) }
        })
        return { land, sea: open, track, dots }
      }, TRACK_MIDDLE)
    const lum = (c: number[]): number => {
      const f = (v: number): number => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
      return 0.2126 * f(c[0] as number) + 0.7152 * f(c[1] as number) + 0.0722 * f(c[2] as number)
    }
    const ratio = (a: number[], b: number[]): number => {
      const [x, y] = [lum(a), lum(b)]
      return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05)
    }
    /** The dots that stand out under 3:1 on `ground` by neither their fill nor their ring. */
    const faintDots = (paint: MapPaint, ground: 'land' | 'sea'): string[] =>
      paint.dots
        .map((d) => ({ state: d.state, r: Math.max(ratio(d.fill, paint[ground]), ratio(d.ring, paint[ground])) }))
        .filter((d) => d.r < 3)
        .map((d) => `${d.state} on ${ground} ${d.r.toFixed(2)}:1`)
    /** The track, if it is under 3:1 on the land or the sea (what it crosses). */
    const faintTrack = (paint: MapPaint): string[] =>
      (['land', 'sea'] as const)
        .map((g) => ({ g, r: ratio(paint.track, paint[g]) }))
        .filter((x) => x.r < 3)
        .map((x) => `track on ${x.g} ${x.r.toFixed(2)}:1`)
    const dark = await painted()
    t.ok(lum(dark.land) < 0.1 && lum(dark.sea) < 0.1, `the land and the sea are dark (${JSON.stringify(dark)})`)
    t.equal(dark.dots.length, 4, 'the key has its four kinds of dot')
    t.same([...faintDots(dark, 'land'), ...faintDots(dark, 'sea')], [], 'each dot stands out, on land and at sea')
    t.same(faintTrack(dark), [], `the track stands out, on land and at sea (${JSON.stringify(dark.track)})`)
    t.same(await lowContrast(page), [], "the map's labels, key, buttons and credits read at 4.5:1 or more")
    const whiteParts = await page.evaluate(() =>
      ['.leaflet-bar a', '.map-legend', '.leaflet-control-attribution', '.leaflet-tooltip']
        .map((what) => `${what} ${getComputedStyle(document.querySelector(`#map ${what}`) as HTMLElement).backgroundColor}`)
        .filter((c) => (c.match(/[\d.]+/g) ?? []).slice(0, 3).some((v) => Number(v) > 80)),
    )
    t.same(whiteParts, [], 'its buttons, key, credits and labels are dark too')
    // With --tiles the tiles are the base layer (map.js base()): a white tile, at sea where the canvas paints nothing over
    // it, comes out dark. Read from what Chromium shows: a screenshot of the map, its centre's pixel.
    await page.evaluate(async (tile) => {
      const w = window as unknown as Fakephone & { L: Leaflet; tiles: { remove(): void } }
      w.fakephone.leaflet.setView([0, -30], 6, { animate: false })
      const layer = w.L.tileLayer(tile, { maxZoom: 19 })
      w.tiles = layer
      await new Promise((resolve) => layer.once('load', resolve).addTo(w.fakephone.leaflet))
    }, WHITE_TILE)
    const shot = (await page.locator('#map').screenshot()).toString('base64')
    const tile = await page.evaluate(async (png) => {
      const picture = await createImageBitmap(await (await fetch(`data:image/png;base64,${png}`)).blob())
      const canvas = new OffscreenCanvas(picture.width, picture.height)
      const g = canvas.getContext('2d') as OffscreenCanvasRenderingContext2D
      g.drawImage(picture, 0, 0)
      ;(window as unknown as { tiles: { remove(): void } }).tiles.remove()
      return [...g.getImageData(picture.width >> 1, picture.height >> 1, 1, 1).data].slice(0, 3)
    }, shot)
    t.ok(lum(tile) < 0.1, `a white tile is shown dark (${JSON.stringify(tile)})`)
    // The system's setting changed with the page open: the map follows it, both ways.
    await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' })
    const light = await painted()
    t.ok(lum(light.land) > 0.5, `light again: its land is light (${JSON.stringify(light.land)})`)
    t.same([...faintDots(light, 'land'), ...faintDots(light, 'sea')], [], 'each dot stands out, on land and at sea')
    // The track was drawn in dark mode, its colour light: it takes the light theme's (dark) as the land does.
    t.same(faintTrack(light), [], `the track stands out, on land and at sea (${JSON.stringify(light.track)})`)
    await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' })
    const again = await painted()
    t.same([again.land, again.track], [dark.land, dark.track], 'and dark again, the track as it was')
  })

  await t.test('F2: the wipe from the keyboard: typed confirmation, then the focus stays on its form', async (t) => {
    await page.focus('#wipe-confirm')
    await page.keyboard.type('phone-a')
    await page.keyboard.press('Tab')
    t.equal(await focused(), 'button# Wipe', 'Tab reaches Wipe once the id is typed')
    await page.keyboard.press('Enter')
    await page.waitForSelector('#command-result:has-text("was wiped")')
    await page.waitForSelector('#commands button:text-is("Locate"):not([disabled])')
    t.equal(await focused(), 'input#wipe-confirm ', 'the focus is on the cleared confirmation, not lost to the page')
  })

  await t.test(
    'F1: a heartbeat redraws the list and the track: the focused phone link keeps the focus, and nothing is spoken',
    async (t) => {
      const link = page.locator('#device-table a:text-is("phone-a")')
      await link.focus()
      await page.evaluate(() => ((window as unknown as { was: Element | null }).was = document.activeElement))
      await listen()
      const beat = storedHeartbeats(s.cloud, 1)
      s.real.advance(30_000)
      await beat
      await page.waitForFunction(() => (window as unknown as { was: Element }).was.isConnected === false)
      t.equal(await focused(), 'a# phone-a', 'the new link has it')
      // The fix joined the track (the replay's line says so); a screen reader does not read it out every 30 s.
      await page.waitForSelector('#replay-at:has-text("fix 3 of 3")')
      t.same(await heard(), [], 'nothing spoken by the heartbeat')
    },
  )

  await t.test('"← all devices" from the keyboard: the focus goes to the phone\'s line in the list', async (t) => {
    await page.getByRole('link', { name: '← all devices' }).focus()
    await page.keyboard.press('Enter')
    await page.waitForSelector('#detail h2:text-is("Choose a device")')
    t.equal(await focused(), 'a# phone-a')
    // F2: the wipe's receipt is words in the phone's row, not a tooltip the keyboard and a screen reader never reach.
    const receipt = page.locator('#device-table tr[data-device="phone-a"] .receipt')
    t.match(await receipt.textContent(), /^verified receipt signed by phone-a at /)
    t.ok(await receipt.isVisible(), 'shown')
    t.equal(await page.getAttribute('#device-table tr[data-device="phone-a"] .last-command', 'title'), null, 'no tooltip')
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => document.activeElement?.id === 'detail')
  })

  await t.test('R1: "Delete for good" from the keyboard, confirmed in its dialog: the focus goes to the bin\'s heading', async (t) => {
    await syncNote(s, 'n-1', 'milk, eggs')
    await deleteNote(s, 'n-1')
    const purge = page.locator('#bin-table tr[data-key="notes/n-1"] button:text-is("Delete for good")')
    await purge.focus()
    const asked = new Promise<string>((resolve) => page.once('dialog', (d) => void d.accept().then(() => resolve(d.message()))))
    await page.keyboard.press('Enter')
    t.equal(await asked, 'Delete notes/n-1 for good? It cannot be recovered.')
    await page.waitForSelector('#bin-body:has-text("The recycle bin is empty.")')
    t.equal(await focused(), 'h4#bin-title Recycle bin', 'not lost to the page')
  })

  await t.test('F2: a Cancel pressed from the keyboard: the focus goes to the command table', async (t) => {
    await s.agent.stop()
    await page.waitForSelector('#device-table tr[data-device="phone-a"]:has-text("offline")')
    await page.getByRole('button', { name: 'Locate' }).click()
    const cancel = page.locator('#command-table tbody button:text-is("Cancel")')
    await cancel.focus()
    await page.keyboard.press('Enter')
    await page.waitForSelector('#command-table tbody tr[data-state="cancelled"]')
    await page.waitForFunction(() => document.querySelector('#command-table tbody button') === null)
    t.match(await focused(), /^table#command-table Commands, newest first/, 'the table, named by its caption')
    // A success waits its turn (polite); an error interrupts (assertive); each in a live region whose role stays what it
    // is while the messages come and go (a screen reader reads a region whose role changes badly).
    const messages = page.locator('#toasts')
    const roles = await page.evaluate(() => {
      const w = window as unknown as { roleChanges: string[] }
      w.roleChanges = []
      const seen = new MutationObserver((records) =>
        w.roleChanges.push(...records.map((r) => `${(r.target as Element).id}: ${r.oldValue}`)),
      )
      seen.observe(document.body, { subtree: true, attributeFilter: ['role'], attributeOldValue: true })
      return [...document.querySelectorAll('#toasts > *')].map((el) => el.getAttribute('role'))
    })
    t.same(roles, ['status', 'alert'], 'one polite region and one assertive region')
    await page.waitForSelector('#toast-status:text-is("Cancelled.")')
    t.equal(await messages.ariaSnapshot(), '- status: Cancelled.\n- alert', 'a success is a status')
    await page.getByRole('button', { name: 'Lost mode on' }).click()
    await page.waitForSelector('#toast-alert:has-text("error: lost-mode on needs a message")')
    t.equal(
      await messages.ariaSnapshot(),
      '- status\n- alert: "error: lost-mode on needs a message and a phone number"',
      'an error is an alert, the success gone',
    )
    await page.getByRole('button', { name: 'Locate' }).click()
    await page.locator('#command-table tbody button:text-is("Cancel")').click()
    await page.waitForSelector('#toast-status:text-is("Cancelled.")')
    t.equal(await messages.ariaSnapshot(), '- status: Cancelled.\n- alert', 'the next success is a status again, the error gone')
    t.same(await page.evaluate(() => (window as unknown as { roleChanges: string[] }).roleChanges), [], 'no role changed')
  })

  await t.test("the banner's technical reason: reached from the keyboard, read by a screen reader", async (t) => {
    await s.cloud.broker.stop()
    await page.waitForSelector('#banner:has-text("The broker is not answering")')
    const summary = page.getByRole('group').getByText('Technical reason', { exact: true })
    await summary.focus()
    t.equal(await focused(), 'summary# Technical reason', 'a Tab stop')
    await page.keyboard.press('Enter')
    t.match(await page.locator('#banner-reason code').innerText(), /ECONNREFUSED 127\.0\.0\.1:/, 'open: the reason, shown')
    await s.cloud.restart()
    await page.waitForFunction(() => document.getElementById('banner')?.hidden === true)
    t.ok(await page.locator('#banner-reason').isHidden(), 'gone with the banner')
  })

  await t.test('less motion asked for: the map jumps where it goes, with no glide', async (t) => {
    const moved = await page.evaluate(() => {
      const { leaflet: map, position } = (window as unknown as Fakephone).fakephone
      const zoom = map.getZoom()
      // Far from the phone, then its dot's button takes the focus: the map is at the dot at once.
      map.setView([0, 100], 4, { animate: false })
      const key = document.querySelector<HTMLElement>('.dot-key[data-device="phone-a"]') as HTMLElement
      key.focus()
      const there = map.getBounds().contains(position('phone-a'))
      key.blur()
      document.querySelector<HTMLElement>('.leaflet-control-zoom-in')?.click()
      return { there, zoomed: map.getZoom() - 4, zoom, fade: map.options['fadeAnimation'] }
    })
    t.match(moved, { there: true, zoomed: 1, fade: false })
    t.same(problems, [], 'no console error, no failed request')
  })
})
