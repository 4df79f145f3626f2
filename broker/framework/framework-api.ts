/**
 * The console API's part for the resident framework (X1-X3), routes on the
 * broker's one HTTP router with the same bearer token as the rest of the
 * console API:
 *   GET  /api/devices/:id/channels        both channels, notification counts, behaviour logs received
 *   GET  /api/devices/:id/notifications   the newest notifications and their states (?limit=N, at most 1000)
 *   POST /api/devices/:id/notifications   queue one: {"kind","title","body","ttlMs"}
 * The request and reply shapes are in common/console-api.ts.
 *   GET  /api/devices/:id/logs            behaviour-log events the cloud received, newest first (?limit=N)
 */
import {
  NotifyRequestSchema,
  type ChannelsView,
  type NotificationRecord,
  type NotifyRequest,
  type ReceivedEvent,
} from '../../common/console-api.js'
import { HttpError, intParam, type HttpRouter, type RouteContext } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'

/** What the framework API reads and changes; FrameworkServices wires it to the real parts. */
export interface FrameworkApiContext {
  now(): number
  channels(deviceId: string): Omit<ChannelsView, 'now' | 'device'> | undefined
  notifications(deviceId: string, limit: number): NotificationRecord[]
  notify(deviceId: string, req: NotifyRequest): NotificationRecord
  logs(deviceId: string, limit: number): ReceivedEvent[]
}

/** Largest request body, bytes. */
export const MAX_FRAMEWORK_BODY_BYTES = 16 * 1024

/** Adds the framework's console routes. */
export function addFrameworkRoutes(router: HttpRouter, ctx: FrameworkApiContext): void {
  const channelsOf = (r: RouteContext): { id: string; channels: Omit<ChannelsView, 'now' | 'device'> } => {
    const id = r.params.id as string
    const channels = ctx.channels(id)
    if (!channels) throw new HttpError(404, 'NOT_FOUND', `device ${quoted(id)} not found`)
    return { id, channels }
  }
  const CONSOLE = ['console'] as const
  router.add('GET', '/api/devices/:id/channels', CONSOLE, (r) => {
    const { id, channels } = channelsOf(r)
    return { status: 200, body: { now: ctx.now(), device: id, ...channels } }
  })
  router.add('GET', '/api/devices/:id/notifications', CONSOLE, (r) => {
    const { id } = channelsOf(r)
    const limit = intParam(r.url, 'limit', 20, 1, 1000)
    return { status: 200, body: { now: ctx.now(), device: id, notifications: ctx.notifications(id, limit) } }
  })
  router.add('POST', '/api/devices/:id/notifications', CONSOLE, async (r) => {
    const { id } = channelsOf(r)
    const req = await r.json(NotifyRequestSchema, { maxBytes: MAX_FRAMEWORK_BODY_BYTES, what: 'notification' })
    return { status: 201, body: { now: ctx.now(), notification: ctx.notify(id, req) } }
  })
  router.add('GET', '/api/devices/:id/logs', CONSOLE, (r) => {
    const { id, channels } = channelsOf(r)
    const limit = intParam(r.url, 'limit', 100, 1, 1000)
    return { status: 200, body: { now: ctx.now(), device: id, total: channels.logs.events, events: ctx.logs(id, limit) } }
  })
}
