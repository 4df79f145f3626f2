/**
 * X3: what the phone has shown of its push notifications, kept on disk
 * (`<data>/push-inbox.json`) so a notification the cloud sends again -- its
 * acknowledgement was lost with the connection, or the phone restarted in
 * between -- is recognised by its id and not shown twice. The id is written
 * before the notification is shown and acknowledged.
 */
import { join } from 'node:path'
import { z } from 'zod'
import { JsonFile } from '../common/json-file.js'
import type { PushNotification } from '../common/push-protocol.js'
import { ShownNotificationSchema, type ShownNotification } from '../common/phone-status.js'

/** Its schema is shared with the status the control socket answers (common/phone-status). */
export type { ShownNotification }

/** Ids remembered: far more than can be in flight between two acknowledgements. */
const REMEMBERED_IDS = 1000
/** Notifications kept for `fakephone phone notifications`. */
const INBOX_SIZE = 20

const InboxSchema = z.strictObject({
  /** Ids already shown, oldest first. */
  delivered: z.array(z.string()).max(REMEMBERED_IDS),
  /** The newest shown notifications, newest first. */
  recent: z.array(ShownNotificationSchema).max(INBOX_SIZE),
  shown: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
  /** M1: the newest notice of the cloud service's end (kind `retirement` or `service-gone`), or M2's `cloud-moved`; kept however old. */
  service: ShownNotificationSchema.nullable().optional(),
})
type Inbox = z.infer<typeof InboxSchema>

const EMPTY: Inbox = { delivered: [], recent: [], shown: 0, duplicates: 0 }

/**
 * M1: what the phone knows of its cloud service's end: retiring (with the newest notice), or gone (since the shutdown notice);
 * M2: moved (its account migrated and the phone followed: what the old cloud said of its end is no longer the phone's).
 */
export interface CloudServiceNotice {
  state: 'retiring' | 'gone' | 'moved'
  title: string
  body: string
  /** When the cloud sent the notice. */
  at: number
}

export interface InboxStatus {
  shown: number
  duplicatesSuppressed: number
  recent: ShownNotification[]
  /** M1: null while the cloud said nothing of its end. */
  service: CloudServiceNotice | null
}

export class PushInbox {
  private state: Inbox = EMPTY
  private ids = new Set<string>()
  private readonly file: JsonFile<Inbox>

  constructor(dataDir: string) {
    this.file = new JsonFile(join(dataDir, 'push-inbox.json'), InboxSchema)
  }

  async load(): Promise<void> {
    this.state = await this.file.load(EMPTY)
    this.ids = new Set(this.state.delivered)
  }

  /**
   * Takes in a received notification: null when it was shown before (a
   * duplicate), else what the phone shows. Either way it is on disk first;
   * if the write fails, nothing changed and the error is thrown.
   */
  async receive(n: PushNotification, now: number): Promise<ShownNotification | null> {
    if (this.ids.has(n.id)) {
      await this.commit({ ...this.state, duplicates: this.state.duplicates + 1 })
      return null
    }
    const shown: ShownNotification = { ...n, shownAt: now, delayMs: Math.max(0, now - n.createdAt) }
    const previous = this.state.service ?? null
    // Once gone, the service stays gone: a later notice (a purge date) says more, but not that it is back.
    const service =
      n.kind === 'service-gone' || n.kind === 'cloud-moved' || (n.kind === 'retirement' && previous?.kind !== 'service-gone')
        ? shown
        : previous
    await this.commit({
      delivered: [...this.state.delivered, n.id].slice(-REMEMBERED_IDS),
      recent: [shown, ...this.state.recent].slice(0, INBOX_SIZE),
      shown: this.state.shown + 1,
      duplicates: this.state.duplicates,
      service,
    })
    return shown
  }

  /**
   * F2 wipe: the notifications shown (their titles and bodies) go; the ids stay, so none is shown again after the wipe,
   * and so does the newest notice of the cloud service's end (M1, M2: the cloud's word, not the user's).
   */
  async forgetShown(): Promise<void> {
    await this.commit({ ...this.state, recent: [] })
  }

  private async commit(next: Inbox): Promise<void> {
    await this.file.save(next)
    this.state = next
    this.ids = new Set(next.delivered)
  }

  status(): InboxStatus {
    const s = this.state.service ?? null
    const service: CloudServiceNotice | null = s && {
      state: s.kind === 'service-gone' ? 'gone' : s.kind === 'cloud-moved' ? 'moved' : 'retiring',
      title: s.title,
      body: s.body,
      at: s.createdAt,
    }
    return { shown: this.state.shown, duplicatesSuppressed: this.state.duplicates, recent: this.state.recent, service }
  }
}
