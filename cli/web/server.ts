/**
 * `fakephone console web`: the owner's console in a browser. A small HTTP
 * server in the console's own process, on 127.0.0.1 unless told otherwise,
 * serving the page (web/), Leaflet and the base map from this machine, the
 * page's calls (page-api.ts: relayed to the broker with the console token;
 * commands signed here with the owner's keys, which never leave this process
 * and never reach the broker or the browser) and a live event stream
 * (live.ts). Every request needs the session cookie that the one-time login
 * link gives (the printed one, or one `fakephone console web-link` made:
 * session.ts); a request naming another host is refused (DNS rebinding); no
 * answer may be shown in another page's frame (NOT_FRAMED: clickjacking). It speaks plain HTTP: on an address beyond
 * loopback it says at every start, in its log, what that exposes (exposed.ts).
 *   GET /login?token=T   trade the link's token for a session cookie, then go to /
 *   POST /logout         sign this browser out: its cookie stops working and its event streams close
 *   GET /signed-out      where the page goes after signing out: says so, and how to sign in again
 *   GET /events          server-sent events: devices, commands and their outcomes, accounts, clock, broker
 *   GET /config.json     what the page needs to know: tile URL (if any), login state
 *   *   /app/api/...     page-api.ts
 *   GET /, /app.css, /js/*.js, /vendor/*, /world.geojson   the page's files (assets.ts)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FakephoneError } from '../../common/errors.js'
import { badTarget, requestTarget } from '../../common/request-target.js'
import { keepIdleConnections } from '../../common/http-keep-alive.js'
import type { Logger } from '../../common/log.js'
import { SystemClock, type Clock } from '../../common/clock.js'
import { OwnerKeys } from '../../common/signing.js'
import { ConsoleClient } from '../console-client.js'
import { VerifiedReceipts } from '../verified-receipts.js'
import { Assets } from './assets.js'
import { warnIfExposed } from './exposed.js'
import { LiveFeed } from './live.js'
import { PageApi } from './page-api.js'
import { CLEARED_COOKIE, PAGE_HEADER, Sessions, sessionCookie, type Login } from './session.js'

export interface WebConsoleOptions {
  /** The broker's HTTP address (its console API). */
  apiUrl: string
  consoleToken: string
  /** The owner's keys folder: commands are signed with it here. */
  keysDir: string
  log: Logger
  host?: string
  port?: number
  /** A tile URL template for users who are online (e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png); vectors only when absent. */
  tiles?: string
  /** The login token (random unless given: tests). */
  loginToken?: string
  coalesceMs?: number
  /** How soon the live feed and the pages try again to reach what went away (LiveFeedOptions.retryMs): 1 s unless given. */
  retryMs?: number
  /** This machine's clock (real time): when a link made by `console web-link` expires. */
  clock?: Clock
  /** Called once, when the printed login link is used: the console says it is dead and how to get another. */
  onLinkUsed?: () => void
}

/**
 * On every answer: no other page may show this console in a frame. The session cookie is SameSite=Strict, but a site is
 * a host, not a host and port: any page served from this machine (another port of 127.0.0.1) is the same site, so its
 * frame of this console is signed in, and a click meant for that page could press a button here (1 y forward on the
 * cloud clock; lost mode). The page's header requirement stops a form, not a click on the real page in a frame.
 */
const NOT_FRAMED: readonly [string, string][] = [
  ['x-frame-options', 'DENY'],
  ['content-security-policy', "frame-ancestors 'none'"],
  ['x-content-type-options', 'nosniff'],
]

/**
 * The sign-in and signed-out page: in English for a screen reader's voice, a heading to find, the browser's own dark
 * colours in dark mode (it has no style of its own).
 */
const LOGIN_PAGE = (why: string): string =>
  `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<meta name="color-scheme" content="light dark"><title>fakephone console</title><main><h1>fakephone console</h1><p>${why}</p>` +
  `<p>Open the sign-in link that <code>fakephone demo</code> (<code>npm start</code>) or <code>fakephone console web</code> ` +
  `printed when it started. A link works once: for another browser, <code>fakephone console web-link URL</code> (URL: this ` +
  `console's address) makes a new one from the console token, which works once within 10 minutes.</p></main>\n`

/** Why a login link did not sign in, as the login page says it: a wrong one only that it does not work (cli/web/session). */
function refusedLogin(login: Exclude<Login, { session: string }>): string {
  if (login.refused === 'used') return 'This login link was already used: a link works once.'
  if (login.refused === 'wrong') return 'This login link is wrong, was already used, or has expired.'
  const at = new Date(login.at).toISOString()
  return (
    `This login link expired at ${at.slice(11, 16)} UTC (${at.slice(0, 10)}); ` +
    '<code>fakephone console web-link URL</code> makes a new one.'
  )
}

/** What a page without a session is told: the one-time link cannot be opened again, and nothing else issues one. */
const NOT_SIGNED_IN =
  'not signed in: open the login link this console printed when it started ' +
  '(a link works once; `fakephone console web-link URL` makes a new one)'

/** What the page shows once its owner signed out. */
const SIGNED_OUT_PAGE = LOGIN_PAGE('You signed out of this console: this browser needs a new link to sign in again.')

export class WebConsole {
  private readonly sessions: Sessions
  /** Each session's open event streams: signing out closes them, so a tab left open stops hearing the phones. */
  private readonly streams = new Map<string, Set<ServerResponse>>()
  private readonly assets = new Assets()
  private readonly live: LiveFeed
  private readonly pageApi: PageApi
  private server: Server | undefined
  private hosts = new Set<string>()
  private base = ''

  constructor(private readonly opts: WebConsoleOptions) {
    this.sessions = new Sessions({
      token: opts.loginToken,
      consoleToken: opts.consoleToken,
      clock: opts.clock ?? new SystemClock(),
      onUsed: opts.onLinkUsed,
    })
    const api = new ConsoleClient(opts.apiUrl, opts.consoleToken)
    const keys = new OwnerKeys(opts.keysDir)
    // One memory of verified receipts for the feed's recalls and the device pages' command lists.
    const receipts = new VerifiedReceipts()
    this.live = new LiveFeed(api, {
      mqttUrl: mqttUrlFor(opts.apiUrl),
      consoleToken: opts.consoleToken,
      keys,
      receipts,
      log: opts.log,
      coalesceMs: opts.coalesceMs,
      retryMs: opts.retryMs,
    })
    this.pageApi = new PageApi({ api, apiUrl: opts.apiUrl, keys, receipts })
  }

  /** The page's address, once started. */
  get url(): string {
    return this.base
  }

  /** The one-time link that signs a browser in; null once used. */
  get loginUrl(): string | null {
    const token = this.sessions.token
    return token === null ? null : `${this.base}login?token=${token}`
  }

  get listeners(): number {
    return this.live.listeners
  }

  async start(): Promise<void> {
    await this.live.start()
    // The base map is converted while the first page loads its script, not after it asks.
    void this.assets.get('/world.geojson')
    // A page's next fetch never goes out on a connection this server is closing (common/http-keep-alive.ts).
    const server = keepIdleConnections(createServer((req, res) => void this.handle(req, res)))
    const host = this.opts.host ?? '127.0.0.1'
    const wanted = this.opts.port ?? 0
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(wanted, host, resolve)
      })
    } catch (err) {
      await this.live.stop()
      // The person's to fix (another --port), said in one line as the CLI says a FakephoneError, not as a bug's stack.
      throw new FakephoneError('EWEBLISTEN', `the web console cannot listen on ${host}:${wanted}: ${(err as Error).message}`)
    }
    this.server = server
    const { port } = server.address() as AddressInfo
    const shown = urlHost(host)
    this.hosts = new Set([`${shown}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`])
    this.base = `http://${shown}:${port}/`
    warnIfExposed(this.opts.log, host, port)
  }

  async stop(): Promise<void> {
    await this.live.stop()
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [name, value] of NOT_FRAMED) res.setHeader(name, value)
    const method = req.method as string
    const url = requestTarget(req)
    if (!url) return text(res, 400, `${badTarget(req)}\n`)
    // Node's server answers 400 itself to a request without a Host header (requireHostHeader).
    if (!this.hosts.has(req.headers.host as string)) return text(res, 421, `this server answers for ${[...this.hosts].join(' or ')} only\n`)
    if (url.pathname === '/login' && method === 'GET') return this.login(url, res)
    if (url.pathname === '/signed-out' && method === 'GET') return html(res, 200, SIGNED_OUT_PAGE)
    const api = url.pathname.startsWith('/app/api/')
    const session = this.sessions.of(req)
    if (session === undefined) {
      if (api || url.pathname === '/events') return refuse(res, 401, 'UNAUTHORIZED', NOT_SIGNED_IN)
      return html(res, 401, LOGIN_PAGE('You are not signed in to this console.'))
    }
    if (method !== 'GET' && method !== 'HEAD' && req.headers[PAGE_HEADER] !== '1') {
      return refuse(res, 403, 'FORBIDDEN', `a change needs the ${PAGE_HEADER} header the page sends`)
    }
    if (api) return this.pageApi.handle(req, res, url.pathname.slice('/app/api'.length), url)
    if (url.pathname === '/logout' && method === 'POST') return this.logout(session, res)
    if (method !== 'GET') return refuse(res, 405, 'METHOD_NOT_ALLOWED', `${method} is not supported on ${url.pathname}`)
    if (url.pathname === '/events') return this.stream(session, res)
    if (url.pathname === '/config.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      return void res.end(JSON.stringify({ tiles: this.opts.tiles ?? null }))
    }
    const asset = await this.assets.get(url.pathname)
    if (!asset) return refuse(res, 404, 'NOT_FOUND', `${url.pathname}: there is no such file`)
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' })
    res.end(asset.body)
  }

  /** An event stream, remembered under its session until it closes. */
  private stream(session: string, res: ServerResponse): void {
    const open = this.streams.get(session) ?? new Set<ServerResponse>()
    this.streams.set(session, open)
    open.add(res)
    res.on('close', () => {
      open.delete(res)
      if (open.size === 0 && this.streams.get(session) === open) this.streams.delete(session)
    })
    this.live.attach(res)
  }

  /** Signs the session out: the cookie is taken back and stops working here, and its streams end (another tab hears it). */
  private logout(session: string, res: ServerResponse): void {
    this.sessions.end(session)
    for (const open of this.streams.get(session) ?? []) open.end()
    this.streams.delete(session)
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': CLEARED_COOKIE, 'cache-control': 'no-store' })
    res.end(JSON.stringify({ signedOut: true, next: '/signed-out' }))
  }

  private login(url: URL, res: ServerResponse): void {
    const login = this.sessions.login(url.searchParams.get('token') ?? '')
    if ('refused' in login) return html(res, 401, LOGIN_PAGE(refusedLogin(login)))
    res.writeHead(303, { location: '/', 'set-cookie': sessionCookie(login.session), 'cache-control': 'no-store' })
    res.end()
  }
}

/** The broker's MQTT over WebSocket address, beside its console API. */
export function mqttUrlFor(apiUrl: string): string {
  const url = new URL('/mqtt', apiUrl)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.href
}

/** An address as a URL names it: an IPv6 one in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(body)
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' })
  res.end(body)
}

function refuse(res: ServerResponse, status: number, code: string, error: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error, code }))
}
