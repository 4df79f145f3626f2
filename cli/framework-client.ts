/**
 * The console's side of the framework API (X1-X3): channels, notifications and behaviour logs of a device, each answer
 * read through its schema (common/console-api.ts).
 */
import {
  ChannelsViewSchema,
  LogsReplySchema,
  NotificationsReplySchema,
  NotifyReplySchema,
  type ChannelsView,
  type LogsReply,
  type NotificationsReply,
  type NotifyReply,
  type NotifyRequest,
} from '../common/console-api.js'
import type { ConsoleClient } from './console-client.js'

const base = (id: string): string => `/api/devices/${encodeURIComponent(id)}`

export class FrameworkConsole {
  constructor(private readonly api: ConsoleClient) {}

  channels(id: string): Promise<ChannelsView> {
    return this.api.read(ChannelsViewSchema, 'GET', `${base(id)}/channels`)
  }

  notifications(id: string, limit: number): Promise<NotificationsReply> {
    return this.api.read(NotificationsReplySchema, 'GET', `${base(id)}/notifications?limit=${limit}`)
  }

  notify(id: string, req: Partial<NotifyRequest> & Pick<NotifyRequest, 'title'>): Promise<NotifyReply> {
    return this.api.read(NotifyReplySchema, 'POST', `${base(id)}/notifications`, req)
  }

  logs(id: string, limit: number): Promise<LogsReply> {
    return this.api.read(LogsReplySchema, 'GET', `${base(id)}/logs?limit=${limit}`)
  }
}
