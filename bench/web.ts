/**
 * The web console with a fleet on the map (F1): a real broker with `--devices`
 * registered phones (1,000 by default), each with a last position, the
 * console's web server, and Debian's Chromium (playwright-core) opening the
 * page. Measured in the page, from navigation start: the first frame with the
 * phones on the map, and the page ready (list, map, clock, live stream).
 * Then interaction latency -- a click or event until the next frame after the
 * work it starts: zoom in and out (until Leaflet's zoomend), a pan, typing in
 * the list's filter, opening a device page, and a live update that moves every
 * phone at once (heartbeats stored → the last phone's dot moved). The longest
 * main-thread task seen (Long Tasks API) says whether the page ever froze.
 *
 * `--only web-command` (runWebCommand) measures F2 through the web console's
 * relay without a browser: the page's POST of a command to /app/api (signed
 * there, relayed to the broker's console API), then the answer, as the first
 * call of a fresh process (what loading the relay's HTTP client costs shows
 * there) and warm, one after another. Nothing else in the process makes an
 * HTTP call before it: the page's side is node:http, as is the sign-in.
 */
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { request, type IncomingHttpHeaders } from 'node:http'
import { FixedSource } from '../agent/location.js'
import { SystemClock } from '../common/clock.js'
import { WebConsole } from '../cli/web/server.js'
import { ensureConsoleToken } from '../broker/console-token.js'
import { encodePayload, type Heartbeat } from '../common/contract.js'
import { CHROMIUM, CHROMIUM_FLAGS } from './chromium.js'
import { benchAgent, deviceIds, registerDevices, startCloud, tempDir } from './cloud.js'
import { Owner } from './commands.js'
import type { ScenarioContext } from './context.js'
import { waitUntil, type Cleanup } from './lifecycle.js'
import { connectPublishers } from './load.js'
import { LatencyRecorder, type LatencySummary } from './stats.js'

/** Page loads measured (after one warm-up load). */
const LOADS = 5
/** Times each interaction is measured. */
const REPEATS = 5

/** The median, lowest and highest of a few samples, ms. */
export interface Summary {
  median: number
  min: number
  max: number
}

function summarize(xs: readonly number[]): Summary {
  const sorted = [...xs].sort((a, b) => a - b)
  return {
    median: sorted[Math.floor((sorted.length - 1) / 2)] as number,
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  }
}

export interface WebResult {
  devices: number
  /** Navigation start → first frame with the phones on the map, ms. */
  firstMap: Summary
  /** Navigation start → page ready (list, map, clock, live stream), ms. */
  ready: Summary
  /** The page's own files (HTML, scripts, CSS, base map) as transferred, bytes. */
  transferBytes: number
  interactions: { name: string; latency: Summary }[]
  /** The longest main-thread task seen during the interactions, ms (0: none over 50 ms). */
  longestTaskMs: number
}

/**
 * What the bench reads from the page: the console's test hooks and Leaflet's map, which the page (web/) puts on `window`.
 * They are not on the DOM's Window type, so each page.evaluate (a function run in the page, where no import reaches)
 * casts `window` to this.
 */
interface PageHooks {
  fakephone: {
    ready: boolean
    readyAt: number
    drawnAt?: number
    position(id: string): [number, number] | null
    leaflet: {
      once(event: string, fn: () => void): void
      zoomIn(by: number, o: object): void
      zoomOut(by: number, o: object): void
      panBy(by: [number, number], o: object): void
    }
  }
  longest: number
}

const position = (i: number, seq: number): { lat: number; lon: number } => ({
  lat: 35 + (i % 37) * 0.7 + seq * 0.01,
  lon: -10 + Math.floor(i / 37) * 1.3,
})

export async function runWeb(ctx: ScenarioContext, cleanup: Cleanup): Promise<WebResult> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium)`)
  // A dev dependency: imported only when this scenario runs.
  const { chromium } = await import('playwright-core')
  const count = ctx.args.devices
  const cloud = await startCloud(cleanup, ctx.log, 'web')
  const { registry, store } = cloud.broker
  const ids = deviceIds('web', count)
  const devices = registry.addMany(ids.map((id) => ({ id, account: `acct-${id.slice(-2)}` })))
  const heartbeat = (i: number, seq: number): Heartbeat => ({
    seq,
    at: Date.now(),
    ...position(i, seq),
    accuracy: 25,
    speed: 0,
    battery: 40 + (i % 60),
    charging: false,
    network: 'wifi',
  })
  // The first positions straight into the store; the moves later come over MQTT, as a fleet's would.
  ids.forEach((id, i) => store.recordHeartbeat(id, heartbeat(i, 0), Date.now()))
  store.flush()
  const creds = devices.map(({ device, secret }) => ({ id: device.id, secret }))
  const { publishers } = await connectPublishers(cloud.mqttUrl, creds, cleanup, ctx.signal)
  /** Every phone sends a heartbeat at a new position. */
  const beat = (seq: number): void =>
    publishers.forEach((p, i) => p.client.publish(p.topic, encodePayload('heartbeat', heartbeat(i, seq)), { qos: 1 }))
  ctx.progress(`web: ${count} phones registered with a position, ${publishers.length} connected`)

  const web = new WebConsole({
    apiUrl: cloud.httpUrl,
    consoleToken: ensureConsoleToken(join(cloud.dataDir, 'cloud')),
    keysDir: await tempDir(cleanup, 'web-keys'),
    log: ctx.log.child({ module: 'web' }),
  })
  await web.start()
  cleanup.defer('stop the web console', () => web.stop())
  const login = await fetch(web.loginUrl as string, { redirect: 'manual' })
  const session = /^fakephone_session=([^;]*)/.exec(login.headers.get('set-cookie') ?? '')?.[1] as string

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, timeout: 30_000 })
  cleanup.defer('close Chromium', () => browser.close())
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
  await context.addCookies([{ name: 'fakephone_session', value: session, url: web.url }])
  const page = await context.newPage()
  page.setDefaultTimeout(30_000)

  const firstMap: number[] = []
  const ready: number[] = []
  let transferBytes = 0
  for (let i = 0; i <= LOADS; i++) {
    ctx.signal.throwIfAborted()
    await page.goto(web.url)
    await page.waitForFunction(() => {
      const hooks = (window as unknown as Partial<PageHooks>).fakephone
      return hooks?.ready === true && hooks.drawnAt !== undefined
    })
    const m = await page.evaluate(() => {
      const hooks = (window as unknown as PageHooks).fakephone
      const bytes = performance
        .getEntriesByType('resource')
        .concat(performance.getEntriesByType('navigation'))
        .filter((e) => !e.name.includes('/app/api/') && !e.name.endsWith('/events'))
        .reduce((sum, e) => sum + (e as PerformanceResourceTiming).encodedBodySize, 0)
      return { drawn: hooks.drawnAt as number, ready: hooks.readyAt, bytes }
    })
    // The first load warms Chromium's caches and the broker's statements: not counted.
    if (i === 0) continue
    firstMap.push(m.drawn)
    ready.push(m.ready)
    transferBytes = m.bytes
  }
  ctx.progress(`web: ${LOADS} loads, first map median ${summarize(firstMap).median.toFixed(0)} ms`)

  await page.evaluate(() => {
    const w = window as unknown as PageHooks
    w.longest = 0
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration)
    }).observe({ type: 'longtask', buffered: false })
  })
  /** Runs `act` in the page and answers the time until the frame after `until` resolved. */
  const inPage = (act: 'zoomIn' | 'zoomOut' | 'pan'): Promise<number> =>
    page.evaluate(async (what) => {
      const map = (window as unknown as PageHooks).fakephone.leaflet
      const started = performance.now()
      const done = new Promise<void>((resolve) => map.once(what === 'pan' ? 'moveend' : 'zoomend', resolve))
      // Without Leaflet's 250 ms animation: what is measured is the page's own work, a redraw of every phone.
      if (what === 'pan') map.panBy([300, 120], { animate: false })
      else map[what](1, { animate: false })
      await done
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
      return performance.now() - started
    }, act)
  const samples = new Map<string, number[]>()
  const add = (name: string, ms: number): void => void samples.set(name, [...(samples.get(name) ?? []), ms])
  for (let r = 0; r < REPEATS; r++) {
    ctx.signal.throwIfAborted()
    add('zoom in, no animation (until zoomend + frame)', await inPage('zoomIn'))
    add('zoom out', await inPage('zoomOut'))
    add('pan 300 px', await inPage('pan'))
    add(
      'type in the filter (input → frame)',
      await page.evaluate(async (n) => {
        const input = document.getElementById('filter') as HTMLInputElement
        const started = performance.now()
        input.value = n % 2 === 0 ? 'web-00042' : ''
        input.dispatchEvent(new Event('input'))
        await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
        return performance.now() - started
      }, r),
    )
    const target = ids[(r * 97) % ids.length] as string
    const opened = performance.now()
    await page.evaluate((id) => (location.hash = `#/device/${encodeURIComponent(id)}`), target)
    await page.waitForSelector(`#device-title:text-is("${target}")`)
    add('open a device page (hash → its page drawn)', performance.now() - opened)
    await page.evaluate(() => (location.hash = '#/'))
    await page.waitForSelector('#detail h2:text-is("Choose a device")')
    const last = (publishers[publishers.length - 1] as { id: string }).id
    const moved = performance.now()
    beat(r + 1)
    const want = position(publishers.length - 1, r + 1)
    await page.waitForFunction(
      ([id, lat]) => (window as unknown as PageHooks).fakephone.position(id as string)?.[0] === lat,
      [last, want.lat] as const,
      { polling: 'raf' },
    )
    add(`live update: all ${count} phones move (stored → last dot moved)`, performance.now() - moved)
  }
  const longestTaskMs = await page.evaluate(() => (window as unknown as PageHooks).longest)
  return {
    devices: count,
    firstMap: summarize(firstMap),
    ready: summarize(ready),
    transferBytes,
    interactions: [...samples].map(([name, ms]) => ({ name, latency: summarize(ms) })),
    longestTaskMs,
  }
}

/** Commands the page sends after the first, before the measured ones: JIT, SQLite's page cache. */
const WEB_COMMAND_WARMUP = 20
/** Commands measured warm, one after another. */
const WEB_COMMANDS = 200
/** How long the phone may take to connect and report Find Device on. */
const ENABLE_LIMIT_MS = 30_000

export interface WebCommandResult {
  /** The process's first command through the relay (its first relayed call): wall and process CPU, ms. */
  first: { ms: number; cpuMs: number }
  /** Warm commands, one after another: latency, and process CPU per command (broker and web console share it), ms. */
  warm: LatencySummary & { cpuMsPerCommand: number }
}

/** One HTTP exchange as the page makes it (node:http, the global keep-alive agent): status, headers and body text. */
function pageCall(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

/** F2 through the web console's relay: a command's POST from the page to its answer, first in the process and warm. */
export async function runWebCommand(ctx: ScenarioContext, cleanup: Cleanup): Promise<WebCommandResult> {
  const cloud = await startCloud(cleanup, ctx.log, 'web-command')
  const owner = new Owner(await tempDir(cleanup, 'web-command-keys'))
  const [device] = await registerDevices(cloud, deviceIds('webcmd', 1), ctx.signal)
  const { id, secret } = device as { id: string; secret: string }
  owner.keys.rememberDevice(id, secret)
  // The phone reports Find Device on, then goes away: every command stays queued, so only the submission is timed.
  const agent = benchAgent(ctx, cloud, { id, secret }, new SystemClock(), {
    location: new FixedSource({ lat: 55.9486, lon: -3.1999 }),
    heartbeatMs: 3_600_000,
    jitter: 0,
    ownerKey: owner.publicKey,
  })
  await agent.start()
  const enabled = await waitUntil(() => cloud.broker.store.device(id)?.findDevice === true, ENABLE_LIMIT_MS, ctx.signal)
  await agent.stop()
  if (!enabled) throw new Error(`${id} did not report Find Device on within ${ENABLE_LIMIT_MS} ms`)

  const web = new WebConsole({
    apiUrl: cloud.httpUrl,
    consoleToken: ensureConsoleToken(join(cloud.dataDir, 'cloud')),
    keysDir: owner.keys.dir,
    log: ctx.log.child({ module: 'web' }),
  })
  await web.start()
  cleanup.defer('stop the web console', () => web.stop())
  const login = await pageCall(new URL(web.loginUrl as string), 'GET', {})
  const session = /^fakephone_session=[^;]*/.exec(login.headers['set-cookie']?.[0] ?? '')?.[0]
  if (session === undefined) throw new Error(`the sign-in link answered ${login.status} without a session`)
  const target = new URL(`/app/api/devices/${id}/commands`, web.url)
  const headers = { cookie: session, 'x-fakephone-page': '1', 'content-type': 'application/json' }
  const command = JSON.stringify({ type: 'locate', args: {} })
  const submit = async (): Promise<void> => {
    const answer = await pageCall(target, 'POST', headers, command)
    if (answer.status !== 201) throw new Error(`the page's command was answered ${answer.status}: ${answer.text}`)
  }

  let cpu = process.cpuUsage()
  let started = performance.now()
  await submit()
  const first = { ms: performance.now() - started, cpuMs: cpuMs(cpu) }
  for (let i = 0; i < WEB_COMMAND_WARMUP; i++) await submit()
  const latency = new LatencyRecorder(WEB_COMMANDS)
  cpu = process.cpuUsage()
  for (let i = 0; i < WEB_COMMANDS; i++) {
    ctx.signal.throwIfAborted()
    started = performance.now()
    await submit()
    latency.record(performance.now() - started)
  }
  const warm = { ...latency.summary(), cpuMsPerCommand: cpuMs(cpu) / WEB_COMMANDS }
  ctx.progress(`web-command: first ${first.ms.toFixed(1)} ms (${first.cpuMs.toFixed(1)} ms CPU), warm p50 ${warm.p50?.toFixed(2)} ms`)
  return { first, warm }
}
