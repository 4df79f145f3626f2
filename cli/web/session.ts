/**
 * Who may use the web console: whoever opened the one-time login link that
 * `fakephone console web` printed. Opening it trades the link's token for a
 * session cookie (HttpOnly, SameSite=Strict); the token works once. Every
 * other request needs the cookie; a request that changes something also needs
 * the page's own header, which another site's form or image cannot send.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export const SESSION_COOKIE = 'fakephone_session'
/** Sent by the page's own fetches on every request that changes something. */
export const PAGE_HEADER = 'x-fakephone-page'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export class Sessions {
  /** The login link's token until it is used. */
  private loginToken: string | null
  private readonly sessions = new Set<string>()

  constructor(token = randomBytes(24).toString('base64url')) {
    this.loginToken = token
  }

  /** The one-time token for the login link; null once used. */
  get token(): string | null {
    return this.loginToken
  }

  /** A new session when `token` is the unused login token, else null. */
  login(token: string): string | null {
    const expected = this.loginToken
    if (expected === null || !timingSafeEqual(digest(token), digest(expected))) return null
    this.loginToken = null
    const session = randomBytes(24).toString('base64url')
    this.sessions.add(session)
    return session
  }

  /** True when the request carries a live session cookie. */
  valid(req: IncomingMessage): boolean {
    const session = cookie(req.headers.cookie, SESSION_COOKIE)
    return session !== undefined && this.sessions.has(session)
  }
}

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
