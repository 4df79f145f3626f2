/**
 * The cloud data's HTTP entry points, one router for three kinds of caller:
 *   - `console`: the console API's bearer token (the web/console of D1, R, B, A);
 *   - `device`:  a phone, HTTP Basic with its device id and secret (the data
 *                channel's bulk transfers: sync, backup, drive);
 *   - `sdk`:     a third-party app with a drive SDK token (D1, D5);
 *   - `public`:  anyone, no credentials (the drive's share links, D1).
 * Each feature adds its routes with the callers it accepts; bodies are JSON
 * checked by a zod schema, except blob uploads which stream. Every error is
 * `{"error": "...", "code": "..."}` with a status that says what kind it is.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { decodeJson } from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import type { Logger } from '../../common/log.js'
import { readBodyText } from '../http-body.js'
import type { Accounts } from './accounts.js'

export type Principal =
  | { kind: 'console' }
  | { kind: 'device'; deviceId: string; account: string }
  | { kind: 'sdk'; account: string; app: string }
  | { kind: 'public' }
export type CallerKind = Principal['kind']

export class HttpError extends FakephoneError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message)
  }
}

/** The status each expected error code answers with. */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  NOT_FOUND: 404,
  QUOTA_EXCEEDED: 507,
  FROZEN: 403,
  SERVICE_NOT_ENABLED: 403,
  CHECKSUM_MISMATCH: 422,
  BAD_OFFSET: 409,
  BUSY: 409,
  TOO_LARGE: 413,
  READ_ONLY: 409,
  CONFLICT: 409,
  BAD_REQUEST: 400,
}

export interface RouteContext {
  params: Readonly<Record<string, string>>
  url: URL
  principal: Principal
  /** The request, for handlers that stream its body. */
  req: IncomingMessage
  /** Reads the JSON body (at most 1 MiB) and checks it; a bad body is a 400. */
  json<T>(schema: z.ZodType<T>): Promise<T>
}

export type Reply =
  | { status: number; body: unknown }
  | { status: number; stream: Readable; headers: Record<string, string> }

type Handler = (ctx: RouteContext) => Reply | Promise<Reply>

interface Route {
  method: string
  pattern: RegExp
  names: string[]
  callers: ReadonlySet<CallerKind>
  handler: Handler
}

export interface Authenticator {
  isConsoleToken(token: string): boolean
  /** The device's account when `secret` is its secret. */
  device(deviceId: string, secret: string): Promise<string | undefined>
  /** The account and app a drive SDK token was issued for. */
  sdk(token: string): { account: string; app: string } | undefined
}

const MAX_JSON_BYTES = 1024 * 1024
/** Verified device credentials are remembered this many at most, so a sync of 1,000 items does not run scrypt 1,000 times. */
const CREDENTIAL_CACHE = 10_000
/** ...and for this long: a device removed with `fakephone device remove` (maybe by another process) is locked out within a minute. */
const CREDENTIAL_TTL_MS = 60_000

export class CloudRouter {
  private readonly routes: Route[] = []
  /** sha256(id:secret) → the account and until when the verification holds. */
  private readonly verified = new Map<string, { account: string; until: number }>()

  constructor(
    private readonly auth: Authenticator,
    private readonly log: Logger,
    private readonly now: () => number,
    /** Verified credentials remembered at most. */
    private readonly cacheSize = CREDENTIAL_CACHE,
  ) {}

  /** Adds a route; `pattern` is a path with `:name` segments. */
  add(method: 'GET' | 'POST' | 'PUT' | 'DELETE', pattern: string, callers: readonly CallerKind[], handler: Handler): void {
    const names: string[] = []
    const source = pattern.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
      names.push(name)
      return '([^/]+)'
    })
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), names, callers: new Set(callers), handler })
  }

  /** Answers the request and returns true when a route's path matches it; false leaves it to others. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    // Node's HTTP server always sets method and url on a request it received.
    const url = new URL(req.url as string, 'http://localhost')
    const matches = this.routes.filter((r) => r.pattern.test(url.pathname))
    if (matches.length === 0) return false
    void this.answer(req, res, url, matches)
    return true
  }

  private async answer(req: IncomingMessage, res: ServerResponse, url: URL, matches: Route[]): Promise<void> {
    let reply: Reply
    try {
      const route = matches.find((r) => r.method === req.method)
      if (!route) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported on ${url.pathname}; use ${matches.map((r) => r.method).join(' or ')}`)
      const principal = await this.authenticate(String(req.headers.authorization ?? ''), route.callers)
      const values = (route.pattern.exec(url.pathname) as RegExpExecArray).slice(1)
      const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(values[i] as string)]))
      reply = await route.handler({ params, url, principal, req, json: (schema) => readJson(req, schema) })
    } catch (err) {
      reply = this.errorReply(err, url)
      // Whatever of the body was not read is not wanted; closing keeps a client from sending the rest into the void.
      if (!req.complete) res.setHeader('connection', 'close')
    }
    if ('stream' in reply) {
      res.writeHead(reply.status, reply.headers)
      reply.stream.on('error', (err) => {
        this.log.error({ err: err.message, path: url.pathname }, 'download failed')
        res.destroy()
      })
      reply.stream.pipe(res)
      return
    }
    res.writeHead(reply.status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(reply.body))
  }

  private errorReply(err: unknown, url: URL): Reply {
    if (err instanceof HttpError) return { status: err.status, body: { error: err.message, code: err.code } }
    if (err instanceof FakephoneError && STATUS_OF_CODE[err.code] !== undefined) {
      return { status: STATUS_OF_CODE[err.code] as number, body: { error: err.message, code: err.code } }
    }
    this.log.error({ err, path: url.pathname }, 'cloud request failed')
    return { status: 500, body: { error: 'the cloud could not answer this request; its log says why', code: 'INTERNAL' } }
  }

  private async authenticate(header: string, callers: ReadonlySet<CallerKind>): Promise<Principal> {
    if (callers.has('public')) return { kind: 'public' }
    const bearer = /^Bearer (.+)$/.exec(header)?.[1]
    if (bearer !== undefined) {
      if (callers.has('console') && this.auth.isConsoleToken(bearer)) return { kind: 'console' }
      const sdk = callers.has('sdk') ? this.auth.sdk(bearer) : undefined
      if (sdk) return { kind: 'sdk', ...sdk }
    }
    const basic = /^Basic (.+)$/.exec(header)?.[1]
    if (basic !== undefined && callers.has('device')) {
      const text = Buffer.from(basic, 'base64').toString()
      const colon = text.indexOf(':')
      const deviceId = text.slice(0, colon)
      const key = createHash('sha256').update(text).digest('hex')
      const cached = this.verified.get(key)
      let account = cached !== undefined && cached.until > this.now() ? cached.account : undefined
      if (account === undefined && colon > 0) {
        account = await this.auth.device(deviceId, text.slice(colon + 1))
        if (account !== undefined) {
          if (this.verified.size >= this.cacheSize) this.verified.clear()
          this.verified.set(key, { account, until: this.now() + CREDENTIAL_TTL_MS })
        }
      }
      if (account !== undefined) return { kind: 'device', deviceId, account }
    }
    throw new HttpError(401, 'UNAUTHORIZED', `missing or wrong credentials: this needs ${[...callers].map((c) => CREDENTIALS[c]).join(' or ')}`)
  }
}

const CREDENTIALS: Record<CallerKind, string> = {
  console: 'the console token',
  device: "a device's id and secret",
  sdk: 'a drive SDK token',
  public: 'nothing',
}

async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = await readBodyText(req, MAX_JSON_BYTES)
  if (text === null) throw new HttpError(413, 'TOO_LARGE', `the request body is over ${MAX_JSON_BYTES} bytes`)
  const decoded = decodeJson(schema, text === '' ? '{}' : text)
  if (!decoded.ok) throw new HttpError(400, 'BAD_REQUEST', `bad request: ${decoded.reason}`)
  return decoded.value
}

/** The calling phone, on a route added for device callers only, once its account may use the cloud: service on, not frozen (D3, A3). */
export function servedDevice(accounts: Accounts, ctx: RouteContext): { account: string; deviceId: string } {
  const { account, deviceId } = ctx.principal as Extract<Principal, { kind: 'device' }>
  accounts.assertServiceOn(account)
  return { account, deviceId }
}

/** A request's query parameter as a whole number in [min, max], or a 400. */
export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name)
  const n = raw === null ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, 'BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}`)
  return n
}
