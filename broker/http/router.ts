/**
 * The one HTTP router of the broker: every JSON API on its HTTP port -- the
 * console API (F1-F3), the framework's (X1-X3), the cloud data's (S, R, B,
 * D, A) and the drive SDK's (D1, D5) -- hangs its routes here, so every
 * caller meets the same rules. Four kinds of caller:
 *   - `console`: the console API's bearer token;
 *   - `device`:  a phone, HTTP Basic with its device id and secret (the data
 *                channel's bulk transfers: sync, backup, drive), verified
 *                credentials remembered a minute, a removed device's
 *                forgotten at once (forgetDevice);
 *   - `sdk`:     a third-party app with a drive SDK token (D1, D5);
 *   - `grant`:   another cloud pulling an account's blobs with a transfer
 *                grant (M2, broker/transfer/transfer-grants.ts): only the
 *                routes that name this caller take it (the batch read);
 *   - `public`:  anyone, no credentials (the drive's share links, D1).
 * Each feature adds its routes with the callers it accepts; bodies are JSON
 * checked by a zod schema, except blob uploads which stream. Every error is
 * `{"error": "...", "code": "..."}` with a status that says what kind it is:
 * 400 BAD_REQUEST for a malformed request (a bad `%` escape, bad JSON, a body
 * its schema refuses, a path parameter its schema refuses -- checked once the
 * caller is known, so a refusal tells nothing to a caller without
 * credentials), 401 UNAUTHORIZED, 404 NOT_FOUND, 405
 * METHOD_NOT_ALLOWED, 413 TOO_LARGE; 507 INSUFFICIENT_STORAGE when the
 * cloud's own storage cannot take the write now (a full disk or database, a
 * failing disk: common/storage-errors.ts), with the reason, logged -- the
 * write was not stored (see each store for what is kept to resume), the
 * broker goes on, and the same request succeeds once there is room; 500
 * INTERNAL only for the broker's own failure, logged with its error.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { z } from 'zod'
import { decodeJson, decodeValue } from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import { storageFailure } from '../../common/storage-errors.js'
import type { Logger } from '../../common/log.js'
import { readBodyText } from '../../common/http-body.js'
import { basicCredentials, bearerToken } from './credentials.js'
import { badTarget, requestTarget } from '../../common/request-target.js'
import { quoted } from '../../common/terminal-text.js'

export type Principal =
  | { kind: 'console' }
  | { kind: 'device'; deviceId: string; account: string }
  | { kind: 'sdk'; account: string; app: string }
  | { kind: 'grant'; account: string }
  | { kind: 'public' }
export type CallerKind = Principal['kind']

/** A refusal with its HTTP status; `details` go into the error body beside `error` and `code`. */
export class HttpError extends FakephoneError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
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
  /**
   * Reads the JSON body (at most `maxBytes`, 1 MiB unless said) and checks it;
   * an empty body is `{}`, a bad one a 400 ("bad `what`: ...", "bad request" unless said), a larger one a 413.
   */
  json<T>(schema: z.ZodType<T>, opts?: JsonOptions): Promise<T>
}

export interface JsonOptions {
  /** Largest body, bytes; MAX_JSON_BYTES unless said. */
  maxBytes?: number
  /** What the body is, for the refusal ("bad notification: ..."). */
  what?: string
}

export type Reply = { status: number; body: unknown } | { status: number; stream: Readable; headers: Record<string, string> }

type Handler = (ctx: RouteContext) => Reply | Promise<Reply>

interface Route {
  method: string
  pattern: RegExp
  names: string[]
  callers: ReadonlySet<CallerKind>
  handler: Handler
}

/** What a guard sees of a request, once its caller is known and before its handler runs. */
export interface GuardedRequest {
  method: string
  path: string
  params: Readonly<Record<string, string>>
  principal: Principal
}

/** Throws (an HttpError) to refuse a request before its handler runs: a rule that holds for every route (M1's retirement). */
export type Guard = (req: GuardedRequest) => void

export interface Authenticator {
  isConsoleToken(token: string): boolean
  /** The device's account when `secret` is its secret. */
  device(deviceId: string, secret: string): Promise<string | undefined>
  /** The account and app a drive SDK token was issued for. */
  sdk(token: string): { account: string; app: string } | undefined
  /** The account a transfer grant (M2) is for, while it holds. */
  grant(token: string): { account: string } | undefined
}

export const MAX_JSON_BYTES = 1024 * 1024
/** Verified device credentials are remembered this many at most, so a sync of 1,000 items does not look the device up 1,000 times. */
const CREDENTIAL_CACHE = 10_000
/** ...and for this long; a device removed is forgotten at once (forgetDevice), this bounds what a change of secret leaves. */
const CREDENTIAL_TTL_MS = 60_000

export class HttpRouter {
  private readonly routes: Route[] = []
  private readonly guards: Guard[] = []
  private readonly changeListeners: ((req: GuardedRequest) => void)[] = []
  /** The schema each named path parameter is checked against, on every route that has it. */
  private readonly paramSchemas = new Map<string, z.ZodType<string>>()
  /** sha256(id:secret) → the device, its account and until when the verification holds. */
  private readonly verified = new Map<string, { deviceId: string; account: string; until: number }>()
  /** Requests answered 507 because the cloud's storage could not take the write (read by /metrics, broker/metrics.ts). */
  readonly counters = { notStored: 0 }

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

  /** Checks path parameter `name` against `schema` on every route that has one (a refusal is a 400 that quotes the value). */
  param(name: string, schema: z.ZodType<string>): void {
    this.paramSchemas.set(name, schema)
  }

  /** Adds a guard: every request with a route and a known caller passes it before the handler runs. */
  guard(guard: Guard): void {
    this.guards.push(guard)
  }

  /** Hears every request other than a GET that its route answered with success (the live data panel, account-changes.ts). */
  changed(listener: (req: GuardedRequest) => void): void {
    this.changeListeners.push(listener)
  }

  /** Answers any request: a route's reply, or the error that says why there is none. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    void this.answer(req, res)
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Node's HTTP server always sets method and url on a request it received.
    const method = req.method as string
    const target = req.url as string
    let reply: Reply
    let changed: GuardedRequest | undefined
    try {
      const url = requestTarget(req)
      if (!url) throw new HttpError(400, 'BAD_REQUEST', badTarget(req))
      const matches = this.routes.filter((r) => r.pattern.test(url.pathname))
      if (matches.length === 0) throw new HttpError(404, 'NOT_FOUND', `${method} ${url.pathname}: there is no such path`)
      const route = matches.find((r) => r.method === method)
      if (!route) {
        const allowed = matches.map((r) => r.method).join(' or ')
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not supported on ${url.pathname}; use ${allowed}`)
      }
      const values = (route.pattern.exec(url.pathname) as RegExpExecArray).slice(1)
      const params = Object.fromEntries(route.names.map((n, i) => [n, decodeSegment(values[i] as string)]))
      const principal = await this.authenticate(req.headers.authorization, route.callers)
      this.checkParams(params)
      for (const guard of this.guards) guard({ method, path: url.pathname, params, principal })
      const json: RouteContext['json'] = (schema, opts = {}) =>
        readJson(req, schema, opts.maxBytes ?? MAX_JSON_BYTES, opts.what ?? 'request')
      reply = await route.handler({ params, url, principal, req, json })
      if (method !== 'GET' && reply.status < 400) changed = { method, path: url.pathname, params, principal }
    } catch (err) {
      reply = this.errorReply(err, method, target)
      // Whatever of the body was not read is not wanted; closing keeps a client from sending the rest into the void.
      if (!req.complete) res.setHeader('connection', 'close')
    }
    if (changed) for (const heard of this.changeListeners) heard(changed)
    if ('stream' in reply) {
      res.writeHead(reply.status, reply.headers)
      reply.stream.on('error', (err) => {
        this.log.error({ err: err.message, path: target }, 'download failed')
        res.destroy()
      })
      reply.stream.pipe(res)
      return
    }
    res.writeHead(reply.status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(reply.body))
  }

  private checkParams(params: Readonly<Record<string, string>>): void {
    for (const [name, value] of Object.entries(params)) {
      const schema = this.paramSchemas.get(name)
      const decoded = schema && decodeValue(schema, value)
      if (decoded && !decoded.ok) throw new HttpError(400, 'BAD_REQUEST', `bad ${name} ${quoted(value)}: ${decoded.reason}`)
    }
  }

  private errorReply(err: unknown, method: string, target: string): Reply {
    if (err instanceof HttpError) return { status: err.status, body: { error: err.message, code: err.code, ...err.details } }
    if (err instanceof FakephoneError && STATUS_OF_CODE[err.code] !== undefined) {
      // An expected error may say more than its message in `details` (the account rules': A3's FROZEN says when the data went).
      const details = 'details' in err ? (err.details as Readonly<Record<string, unknown>>) : {}
      return { status: STATUS_OF_CODE[err.code] as number, body: { error: err.message, code: err.code, ...details } }
    }
    const storage = storageFailure(err)
    if (storage) {
      this.counters.notStored++
      this.log.error({ reason: storage, method, path: target }, 'HTTP request not stored: the cloud cannot write now')
      const error = `the cloud cannot store this now: ${storage}; nothing of it was kept as stored, try again later`
      return { status: 507, body: { error, code: 'INSUFFICIENT_STORAGE' } }
    }
    this.log.error({ err, method, path: target }, 'HTTP request failed')
    return { status: 500, body: { error: 'the cloud could not answer this request; its log says why', code: 'INTERNAL' } }
  }

  private async authenticate(header: string | undefined, callers: ReadonlySet<CallerKind>): Promise<Principal> {
    if (callers.has('public')) return { kind: 'public' }
    const bearer = bearerToken(header)
    if (bearer !== undefined) {
      if (callers.has('console') && this.auth.isConsoleToken(bearer)) return { kind: 'console' }
      const sdk = callers.has('sdk') ? this.auth.sdk(bearer) : undefined
      if (sdk) return { kind: 'sdk', ...sdk }
      const grant = callers.has('grant') ? this.auth.grant(bearer) : undefined
      if (grant) return { kind: 'grant', ...grant }
    }
    const basic = callers.has('device') ? basicCredentials(header) : undefined
    if (basic !== undefined) {
      const account = await this.deviceAccount(basic)
      if (account !== undefined) return { kind: 'device', deviceId: basic.user, account }
    }
    throw new HttpError(401, 'UNAUTHORIZED', `missing or wrong ${[...callers].map((c) => CREDENTIALS[c]).join(' or ')}`)
  }

  private async deviceAccount(basic: { user: string; password: string; text: string }): Promise<string | undefined> {
    const key = createHash('sha256').update(basic.text).digest('hex')
    const cached = this.verified.get(key)
    if (cached !== undefined && cached.until > this.now()) return cached.account
    const account = await this.auth.device(basic.user, basic.password)
    if (account !== undefined) {
      if (this.verified.size >= this.cacheSize) this.verified.clear()
      this.verified.set(key, { deviceId: basic.user, account, until: this.now() + CREDENTIAL_TTL_MS })
    }
    return account
  }

  /** Device `deviceId` was removed: its verified credentials are forgotten, so its next request is refused (401). */
  forgetDevice(deviceId: string): void {
    for (const [key, entry] of this.verified) if (entry.deviceId === deviceId) this.verified.delete(key)
  }
}

const CREDENTIALS: Record<CallerKind, string> = {
  console: 'console token',
  device: 'device id and secret',
  sdk: 'drive SDK token',
  grant: 'transfer grant (expired or revoked?)',
  public: 'nothing',
}

/** One path segment, %-escapes decoded; a malformed escape is the client's mistake. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `bad request: ${quoted(segment)} has a malformed %-escape`)
  }
}

async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>, maxBytes: number, what: string): Promise<T> {
  const text = await readBodyText(req, maxBytes)
  if (text === null) throw new HttpError(413, 'TOO_LARGE', `the request body is over ${maxBytes} bytes`)
  const decoded = decodeJson(schema, text === '' ? '{}' : text)
  if (!decoded.ok) throw new HttpError(400, 'BAD_REQUEST', `bad ${what}: ${decoded.reason}`)
  return decoded.value
}

/** A request's query parameter as a whole number in [min, max], or a 400. */
export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name)
  const n = raw === null ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new HttpError(400, 'BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}`)
  return n
}
