/**
 * The console API's part for the resident framework (X1-X3), with the same
 * bearer token as the rest of the console API:
 *   GET  /api/devices/:id/channels        both channels, notification counts, behaviour logs received
 *   GET  /api/devices/:id/notifications   the newest notifications and their states (?limit=N, at most 1000)
 *   POST /api/devices/:id/notifications   queue one: {"kind","title","body","ttlMs"}
 *   GET  /api/devices/:id/logs            behaviour-log events the cloud received, newest first (?limit=N)
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { decodeJson } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import { NotificationKindSchema, PushNotificationSchema } from '../common/push-protocol.js'
import type { LogSummary, ReceivedEvent } from './behaviour-logs.js'
import type { ApiResult } from './console-api.js'
import { MAX_TTL_MS, type NotificationRecord, type NotificationState } from './notification-queue.js'
import type { PushPresence } from './push-gateway.js'
import { readBodyText } from './http-body.js'

export const NotifyRequestSchema = z.strictObject({
  kind: NotificationKindSchema.default('message'),
  title: PushNotificationSchema.shape.title,
  body: PushNotificationSchema.shape.body.default(''),
  /** Time to live, ms (default four weeks). */
  ttlMs: z.number().int().positive().max(MAX_TTL_MS).optional(),
})
export type NotifyRequest = z.infer<typeof NotifyRequestSchema>

export interface ChannelsView {
  now: number
  device: string
  /** The MQTT data channel (sync, upload, heartbeats): up only while the phone's cloud service is on (X1). */
  data: { online: boolean; cloudService: boolean | null; since: number | null }
  /** The push channel (notifications). */
  push: PushPresence
  notifications: Record<NotificationState, number>
  logs: LogSummary
}

/** What the framework API reads and changes; CloudBroker wires it to the real parts. */
export interface FrameworkApiContext {
  isConsoleToken(token: string): boolean
  now(): number
  channels(deviceId: string): Omit<ChannelsView, 'now' | 'device'> | undefined
  notifications(deviceId: string, limit: number): NotificationRecord[]
  notify(deviceId: string, req: NotifyRequest): NotificationRecord
  logs(deviceId: string, limit: number): ReceivedEvent[]
  log: Logger
}

const PATH = /^\/api\/devices\/([^/]+)\/(channels|notifications|logs)$/
/** Largest request body, bytes. */
const MAX_BODY = 16 * 1024

const error = (status: number, message: string): ApiResult => ({ status, body: { error: message } })

function limitOf(url: URL, fallback: number, max: number): number | ApiResult {
  const limit = Number(url.searchParams.get('limit') ?? fallback)
  if (!Number.isInteger(limit) || limit < 1 || limit > max) return error(400, `limit must be a whole number from 1 to ${max}`)
  return limit
}

/** Routes one request on a framework path; `body` is the raw request body. */
export function routeFramework(ctx: FrameworkApiContext, method: string, url: URL, authorization: string, body: string): ApiResult {
  const token = /^Bearer (.+)$/.exec(authorization)?.[1]
  if (!token || !ctx.isConsoleToken(token)) return error(401, 'missing or wrong console token')
  const [, rawId, what] = PATH.exec(url.pathname) as RegExpExecArray
  const id = decodeURIComponent(rawId as string)
  const channels = ctx.channels(id)
  if (!channels) return error(404, `device "${id}" not found`)
  const now = ctx.now()
  const allowed = what === 'notifications' ? ['GET', 'POST'] : ['GET']
  if (!allowed.includes(method)) return error(405, `${method} is not supported here`)
  if (what === 'channels') return { status: 200, body: { now, device: id, ...channels } }
  if (method === 'POST') {
    const req = decodeJson(NotifyRequestSchema, body)
    if (!req.ok) return error(400, `bad notification: ${req.reason}`)
    return { status: 201, body: { now, notification: ctx.notify(id, req.value) } }
  }
  const limit = limitOf(url, what === 'logs' ? 100 : 20, 1000)
  if (typeof limit !== 'number') return limit
  if (what === 'logs') return { status: 200, body: { now, device: id, total: channels.logs.events, events: ctx.logs(id, limit) } }
  return { status: 200, body: { now, device: id, notifications: ctx.notifications(id, limit) } }
}

/** Answers a request on a framework path and returns true, or returns false for any other path. */
export function handleFrameworkApi(ctx: FrameworkApiContext, req: IncomingMessage, res: ServerResponse): boolean {
  // Node's HTTP server always sets method and url on a request it received.
  const url = new URL(req.url as string, 'http://localhost')
  if (!PATH.test(url.pathname)) return false
  void readBodyText(req, MAX_BODY).then((body) => {
    let result: ApiResult
    try {
      result = body === null ? error(413, `the request body is over ${MAX_BODY} bytes`) : routeFramework(ctx, req.method as string, url, String(req.headers.authorization), body)
    } catch (err) {
      ctx.log.error({ err: (err as Error).message, path: url.pathname }, 'console API request failed')
      result = error(500, 'the cloud could not answer this request; its log says why')
    }
    res.writeHead(result.status, { 'content-type': 'application/json', ...(body === null ? { connection: 'close' } : {}) })
    res.end(JSON.stringify(result.body))
  })
  return true
}
