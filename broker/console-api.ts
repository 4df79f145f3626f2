/**
 * The console's HTTP API (JSON, bearer token = the console token). The
 * `fakephone console` command and any other tool act on the cloud through it.
 *   GET  /api/devices                      every device with presence and last fix (F1)
 *   GET  /api/devices/:id                  one device
 *   GET  /api/devices/:id/history          location history, newest first (?limit=N, at most 10,000)
 *   GET  /api/devices/:id/commands         its remote commands, newest first (F2)
 *   POST /api/devices/:id/commands         submit a signed command (F2); 409 when Find Device is off (F3)
 *   GET  /api/commands/:cid                one command (?wait=MS waits up to 60 s for a final state)
 *   POST /api/commands/:cid/cancel         cancel a command still queued
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { FINAL_STATES } from '../common/contract.js'
import type { CommandCenter, CommandError, CommandErrorCode, CommandView } from './commands.js'
import type { StateStore } from './state-store.js'
import { readBodyText } from './http-body.js'

export interface ApiContext {
  store: StateStore
  commands: CommandCenter
  isConsoleToken(token: string): boolean
  now(): number
}

export type ApiResult = { status: number; body: unknown }

export interface ApiRequest {
  method: string
  url: URL
  authorization: string
  /** The parsed JSON body of a POST, undefined when there was none. */
  body?: unknown
}

const MAX_WAIT_MS = 60_000
const MAX_BODY_BYTES = 64 * 1024

const notFound = (what: string): ApiResult => ({ status: 404, body: { error: `${what} not found` } })

const STATUS_OF: Record<CommandErrorCode, number> = { BAD_COMMAND: 400, NOT_ENABLED: 409, DUPLICATE: 409, NOT_FOUND: 404, NOT_CANCELLABLE: 409 }

function commandCall(fn: () => CommandView, ok: number): ApiResult {
  try {
    return { status: ok, body: { command: fn() } }
  } catch (err) {
    const e = err as CommandError
    return { status: STATUS_OF[e.code], body: { error: e.message, command: e.view } }
  }
}

/** Resolves with the command once it is final, or as it is after `ms`. */
function waitForFinal(commands: CommandCenter, id: string, ms: number): Promise<CommandView> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      commands.off('changed', onChange)
      resolve(commands.get(id) as CommandView)
    }
    const onChange = (view: CommandView): void => {
      if (view.id === id && FINAL_STATES.has(view.state)) done()
    }
    const timer = setTimeout(done, ms)
    commands.on('changed', onChange)
  })
}

/** Routes one request; apart from the store and the commands it touches nothing, so it is easy to test. */
export async function route(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  const token = /^Bearer (.+)$/.exec(req.authorization)?.[1]
  if (!token || !ctx.isConsoleToken(token)) return { status: 401, body: { error: 'missing or wrong console token' } }
  const parts = req.url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  const [api, collection, id, sub, extra] = parts
  if (api !== 'api' || extra !== undefined) return notFound(req.url.pathname)
  const key = `${req.method} ${collection ?? ''}${id === undefined ? '' : '/:id'}${sub === undefined ? '' : `/${sub}`}`
  switch (key) {
    case 'GET devices':
      return { status: 200, body: { now: ctx.now(), devices: ctx.store.devices() } }
    case 'GET devices/:id':
    case 'GET devices/:id/history':
    case 'GET devices/:id/commands':
    case 'POST devices/:id/commands': {
      const device = ctx.store.device(id as string)
      if (!device) return notFound(`device "${id}"`)
      if (key === 'GET devices/:id') return { status: 200, body: { now: ctx.now(), device } }
      if (key === 'GET devices/:id/commands') return { status: 200, body: { now: ctx.now(), commands: ctx.commands.list(device.id) } }
      if (key === 'POST devices/:id/commands') return commandCall(() => ctx.commands.submit(device.id, req.body), 201)
      const limit = Number(req.url.searchParams.get('limit') ?? 100)
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return { status: 400, body: { error: 'limit must be a whole number from 1 to 10000' } }
      return { status: 200, body: { now: ctx.now(), device: device.id, history: ctx.store.history(device.id, limit) } }
    }
    case 'GET commands/:id': {
      const view = ctx.commands.get(id as string)
      if (!view) return notFound(`command ${id}`)
      const wait = Number(req.url.searchParams.get('wait') ?? 0)
      if (!Number.isInteger(wait) || wait < 0 || wait > MAX_WAIT_MS) return { status: 400, body: { error: `wait must be a whole number of ms from 0 to ${MAX_WAIT_MS}` } }
      const command = wait > 0 && !FINAL_STATES.has(view.state) ? await waitForFinal(ctx.commands, view.id, wait) : view
      return { status: 200, body: { now: ctx.now(), command } }
    }
    case 'POST commands/:id/cancel':
      return commandCall(() => ctx.commands.cancel(id as string), 200)
    default:
      return { status: req.method === 'GET' || req.method === 'POST' ? 404 : 405, body: { error: `${req.method} ${req.url.pathname} is not supported` } }
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBodyText(req, MAX_BODY_BYTES)
  if (text === null) throw new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`)
  return text === '' ? undefined : (JSON.parse(text) as unknown)
}

export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let result: ApiResult
  try {
    const body = req.method === 'POST' ? await readBody(req) : undefined
    // Node's HTTP server always sets method and url on a request it received.
    result = await route(ctx, { method: req.method as string, url: new URL(req.url as string, 'http://localhost'), authorization: String(req.headers.authorization), body })
  } catch (err) {
    result = { status: 400, body: { error: `bad request: ${(err as Error).message}` } }
  }
  res.writeHead(result.status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(result.body))
}
