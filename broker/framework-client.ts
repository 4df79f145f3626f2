/** The console's side of the framework API (X1-X3): channels, notifications and behaviour logs of a device. */
import type { ReceivedEvent } from './behaviour-logs.js'
import type { ConsoleClient } from './console-client.js'
import type { ChannelsView, NotifyRequest } from './framework-api.js'
import type { NotificationRecord } from './notification-queue.js'

const base = (id: string): string => `/api/devices/${encodeURIComponent(id)}`

export class FrameworkConsole {
  constructor(private readonly api: ConsoleClient) {}

  channels(id: string): Promise<ChannelsView> {
    return this.api.request(`${base(id)}/channels`)
  }

  notifications(id: string, limit: number): Promise<{ now: number; device: string; notifications: NotificationRecord[] }> {
    return this.api.request(`${base(id)}/notifications?limit=${limit}`)
  }

  notify(id: string, req: Partial<NotifyRequest> & Pick<NotifyRequest, 'title'>): Promise<{ now: number; notification: NotificationRecord }> {
    return this.api.request(`${base(id)}/notifications`, req)
  }

  logs(id: string, limit: number): Promise<{ now: number; device: string; total: number; events: ReceivedEvent[] }> {
    return this.api.request(`${base(id)}/logs?limit=${limit}`)
  }
}
