/**
 * The console's HTTP API (JSON, bearer token = the console token). The
 * `fakephone console` command and any other tool read the cloud through it.
 *   GET /api/devices               every device with presence and last fix
 *   GET /api/devices/:id           one device
 *   GET /api/devices/:id/history   location history, newest first (?limit=N, at most 10,000)
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { StateStore } from './state-store.js'

export interface ApiContext {
  store: StateStore
  isConsoleToken(token: string): boolean
  now(): number
}

export type ApiResult = { status: number; body: unknown }

const notFound = (what: string): ApiResult => ({ status: 404, body: { error: `${what} not found` } })

/** Routes one request; pure apart from reading the store, so it is easy to test. */
export function route(ctx: ApiContext, method: string, url: URL, authorization: string): ApiResult {
  const token = /^Bearer (.+)$/.exec(authorization)?.[1]
  if (!token || !ctx.isConsoleToken(token)) return { status: 401, body: { error: 'missing or wrong console token' } }
  if (method !== 'GET') return { status: 405, body: { error: `${method} is not supported here` } }
  const parts = url.pathname.split('/').filter(Boolean)
  if (parts[0] !== 'api' || parts[1] !== 'devices') return notFound(url.pathname)
  const id = parts[2] === undefined ? undefined : decodeURIComponent(parts[2])
  if (id === undefined) return { status: 200, body: { now: ctx.now(), devices: ctx.store.devices() } }
  const device = ctx.store.device(id)
  if (!device) return notFound(`device "${id}"`)
  if (parts.length === 3) return { status: 200, body: { now: ctx.now(), device } }
  if (parts[3] === 'history' && parts.length === 4) {
    const limit = Number(url.searchParams.get('limit') ?? 100)
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return { status: 400, body: { error: 'limit must be a whole number from 1 to 10000' } }
    return { status: 200, body: { now: ctx.now(), device: id, history: ctx.store.history(id, limit) } }
  }
  return notFound(url.pathname)
}

export function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): void {
  // Node's HTTP server always sets method and url on a request it received.
  const result = route(ctx, req.method as string, new URL(req.url as string, 'http://localhost'), String(req.headers.authorization))
  res.writeHead(result.status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(result.body))
}
