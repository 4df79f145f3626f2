/**
 * Who may use the web console: whoever opened the one-time login link that
 * `fakephone console web` (or the demo) printed, or a link that
 * `fakephone console web-link` made from the console token. Opening one trades
 * its token for a session cookie (HttpOnly, SameSite=Strict); the token works
 * once. A made link is `NONCE.EXPIRES.MAC`, the MAC an HMAC-SHA256 keyed with
 * the console token (whoever holds that may use the console API anyway), and
 * works once within LINK_TTL_MS on the console's clock. Every other request
 * needs the cookie; a request that changes something also needs the page's
 * own header, which another site's form or image cannot send.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Clock } from '../../common/clock.js'

const SESSION_COOKIE = 'fakephone_session'
/** Sent by the page's own fetches on every request that changes something. */
export const PAGE_HEADER = 'x-fakephone-page'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** How long a link made by `console web-link` works, ms. */
export const LINK_TTL_MS = 10 * 60_000

const mac = (key: string, nonce: string, expires: string): string =>
  createHmac('sha256', key).update(`fakephone web login ${nonce}.${expires}`).digest('base64url')

/** A login token for a console that holds `consoleToken`: works once, until `now` + LINK_TTL_MS. */
export function mintLoginToken(consoleToken: string, now: number): string {
  const nonce = randomBytes(12).toString('base64url')
  const expires = String(now + LINK_TTL_MS)
  return `${nonce}.${expires}.${mac(consoleToken, nonce, expires)}`
}

export interface SessionOptions {
  /** The printed link's token (random unless given: tests). */
  token?: string
  /** The console token: the key of made links. */
  consoleToken: string
  /** This machine's clock: when made links expire. */
  clock: Clock
  /** Called once, when the printed link is used. */
  onUsed?: () => void
}

/**
 * What a login token got: a session, or why not. A made link whose MAC is sound is the console's own, so saying it
 * expired (and when) or was used tells its holder nothing they could not read from it; so is the printed link once it
 * was used (only its holder knows it). Anything else is `wrong`, and says no more.
 */
export type Login = { session: string } | { refused: 'wrong' } | { refused: 'used' } | { refused: 'expired'; at: number }

export class Sessions {
  /** The login link's token until it is used. */
  private loginToken: string | null
  /** The digest of the printed link's token once it was used: a second use is said to be one. */
  private usedLoginToken: Buffer | null = null
  private readonly sessions = new Set<string>()
  /** Made links used, with when they would have expired: each works once. */
  private readonly usedLinks = new Map<string, number>()

  constructor(private readonly opts: SessionOptions) {
    this.loginToken = opts.token ?? randomBytes(24).toString('base64url')
  }

  /** The one-time token for the login link; null once used. */
  get token(): string | null {
    return this.loginToken
  }

  /** A new session when `token` is the unused login token, or a made link's that is sound, unused and unexpired. */
  login(token: string): Login {
    const expected = this.loginToken
    const given = digest(token)
    if (expected !== null && timingSafeEqual(given, digest(expected))) {
      this.loginToken = null
      this.usedLoginToken = given
      this.opts.onUsed?.()
    } else if (this.usedLoginToken !== null && timingSafeEqual(given, this.usedLoginToken)) {
      return { refused: 'used' }
    } else {
      const refused = this.madeLink(token)
      if (refused) return refused
    }
    const session = randomBytes(24).toString('base64url')
    this.sessions.add(session)
    return { session }
  }

  /** Null, once, for a sound link made with the console token that has not expired (it is then used); else why not. */
  private madeLink(token: string): Exclude<Login, { session: string }> | null {
    const { consoleToken, clock } = this.opts
    const parts = token.split('.')
    if (parts.length !== 3) return { refused: 'wrong' }
    const [nonce, expires, given] = parts as [string, string, string]
    if (!timingSafeEqual(digest(given), digest(mac(consoleToken, nonce, expires)))) return { refused: 'wrong' }
    const now = clock.now()
    for (const [used, until] of this.usedLinks) if (until <= now) this.usedLinks.delete(used)
    if (!(Number(expires) > now)) return { refused: 'expired', at: Number(expires) }
    if (this.usedLinks.has(nonce)) return { refused: 'used' }
    this.usedLinks.set(nonce, Number(expires))
    return null
  }

  /** The request's live session, or undefined. */
  of(req: IncomingMessage): string | undefined {
    const session = cookie(req.headers.cookie, SESSION_COOKIE)
    return session !== undefined && this.sessions.has(session) ? session : undefined
  }

  /** Signs a session out: its cookie no longer works; a new link is needed to sign in again. */
  end(session: string): void {
    this.sessions.delete(session)
  }
}

/** The `Set-Cookie` value that takes the session cookie back (signed out). */
export const CLEARED_COOKIE = `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`

/** The `Set-Cookie` value for a session. */
export function sessionCookie(session: string): string {
  return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`
}

/** One cookie's value from a `Cookie` header. */
export function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
