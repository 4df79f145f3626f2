/**
 * The phone's resident service framework (like Xiaomi's xmsf), X1-X3. It
 * holds the push channel -- apart from the data channel the Agent holds --
 * shows each notification once (the inbox remembers ids on disk) with how
 * late it is, and keeps the behaviour log. Its own two switches live in
 * `<data>/framework.json`: the framework's network permission (X3: revoked
 * means no push connection; notifications wait in the cloud) and whether
 * behaviour logs may go up over mobile data (X2; Wi-Fi only by default).
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { z } from 'zod'
import type { BackoffOptions } from '../common/backoff.js'
import type { Clock } from '../common/clock.js'
import { JsonFile } from '../common/json-file.js'
import { lazyChild, type Logger } from '../common/log.js'
import type { PushNotification } from '../common/push-protocol.js'
import type { ChannelWaiting } from '../common/phone-status.js'
import { CLOUD_MOVED, readMove, type CloudMove } from '../common/cloud/cloud-move.js'
import {
  BehaviourLog,
  DEFAULT_LOG_TIMINGS,
  type BehaviourLogStatus,
  type BehaviourLogTimings,
  type DataPort,
  type EventType,
  type PhoneState,
} from './behaviour-log.js'
import { PushChannel, type PushState } from './push-channel.js'
import { PushInbox, type InboxStatus, type ShownNotification } from './push-inbox.js'
import type { DeviceCredentials } from './credentials.js'

export const FrameworkSettingsSchema = z.strictObject({
  /** X3: may the framework use the network at all (its push connection). */
  networkPermission: z.boolean(),
  /** X2: may behaviour logs go up over mobile data. */
  logsOverMobile: z.boolean(),
})
export type FrameworkSettings = z.infer<typeof FrameworkSettingsSchema>

const DEFAULT_FRAMEWORK_SETTINGS: FrameworkSettings = { networkPermission: true, logsOverMobile: false }

export interface FrameworkTimings extends BehaviourLogTimings {
  /** Push keep-alive: time between pings, ms. */
  pingMs: number
}

export interface FrameworkOptions {
  /** The device's id and secret: the push channel's hello and a `cloud-moved` notice's check (M2) read them when they need them. */
  credentials: DeviceCredentials
  dataDir: string
  clock: Clock
  log: Logger
  random: () => number
  backoff?: BackoffOptions
  /** The cloud's push endpoint (ws://host:port/push); without one there is no push channel. */
  pushUrl?: string
  /** Push keep-alive timers (real time by default). */
  keepaliveClock?: Clock
  timings?: Partial<FrameworkTimings>
  phone: () => PhoneState
  data: DataPort
  /**
   * The push channel said what time the cloud's clock had at least reached (its welcome, a notification's creation):
   * the phone's clock follows it, as it follows the data channel's `time` messages, before a notification is shown.
   */
  followCloud?: (cloudNow: number) => void
}

export interface FrameworkStatus {
  pushChannel: PushState
  /** X1: only while the push channel waits to retry: since when and why. */
  pushChannelWaiting?: ChannelWaiting
  networkPermission: boolean
  logsOverMobile: boolean
  notifications: InboxStatus
  logs: BehaviourLogStatus
}

interface FrameworkEvents {
  /** A notification was shown to the user. */
  notification: [n: ShownNotification]
  /** A notification that was shown before arrived again and was not shown. */
  duplicate: [id: string]
  /** The push channel changed state. */
  push: [state: PushState]
  /** M2: a verified `cloud-moved` notice: the account migrated, the phone follows. */
  moved: [move: CloudMove]
  /** F1, X1: a push retry after the gateway refused the device's id and secret is about to connect (PushChannel's refusedRetry). */
  refusedRetry: []
}

export class ResidentFramework extends EventEmitter<FrameworkEvents> {
  private settings: FrameworkSettings = DEFAULT_FRAMEWORK_SETTINGS
  private readonly file: JsonFile<FrameworkSettings>
  private readonly inbox: PushInbox
  private readonly behaviour: BehaviourLog
  private readonly push: PushChannel | null
  /** Notifications are taken in one at a time, in the order they arrived. */
  private intake: Promise<void> = Promise.resolve()

  constructor(private readonly opts: FrameworkOptions) {
    super()
    this.file = new JsonFile(join(opts.dataDir, 'framework.json'), FrameworkSettingsSchema)
    this.inbox = new PushInbox(opts.dataDir)
    const log = lazyChild(opts.log, { component: 'framework' })
    // The named options first: an object literal that begins with a spread gets a hidden class of its own in V8 (~300
    // bytes a phone, common/with-changes.ts); the timings' keys are none of them, so the order changes no value.
    this.behaviour = new BehaviourLog({
      dataDir: opts.dataDir,
      clock: opts.clock,
      log,
      random: opts.random,
      phone: opts.phone,
      logsOverMobile: () => this.settings.logsOverMobile,
      data: opts.data,
      ...DEFAULT_LOG_TIMINGS,
      ...opts.timings,
    })
    this.push = opts.pushUrl
      ? new PushChannel({
          url: opts.pushUrl,
          credentials: opts.credentials,
          clock: opts.clock,
          keepaliveClock: opts.keepaliveClock,
          log,
          backoff: opts.backoff,
          random: opts.random,
          pingMs: opts.timings?.pingMs,
        })
      : null
  }

  /** F2 wipe: the notifications shown leave the phone's disk (push-inbox.ts `forgetShown`). */
  forgetShown(): Promise<void> {
    return this.inbox.forgetShown()
  }

  async start(): Promise<void> {
    this.settings = await this.file.load(DEFAULT_FRAMEWORK_SETTINGS)
    await this.inbox.load()
    await this.behaviour.start()
    if (!this.push) return
    this.push.on('state', (state) => this.emit('push', state))
    if (this.opts.followCloud) this.push.on('cloudTime', this.opts.followCloud)
    this.push.on('notification', (n) => this.take(n))
    this.push.on('refusedRetry', () => this.emit('refusedRetry'))
    this.push.start(!this.settings.networkPermission)
  }

  async stop(): Promise<void> {
    await this.push?.stop()
    await this.intake
    await this.behaviour.stop()
  }

  /**
   * Whether the push gateway refused the device's id and secret since it last welcomed it (PushChannel.refused); no push channel, false.
   */
  get pushRefused(): boolean {
    return this.push?.refused === true
  }

  status(): FrameworkStatus {
    return {
      pushChannel: this.push?.state ?? 'off',
      ...(this.push?.waiting ? { pushChannelWaiting: this.push.waiting } : {}),
      networkPermission: this.settings.networkPermission,
      logsOverMobile: this.settings.logsOverMobile,
      notifications: this.inbox.status(),
      logs: this.behaviour.status(),
    }
  }

  /** A usage event on the phone (collected only while the cloud service is on). */
  record(type: EventType, detail: string): void {
    this.behaviour.record(type, detail)
  }

  /** X2: the data channel connected; behaviour logs wait for the cloud's word on which seqs it holds. */
  dataConnecting(): void {
    this.behaviour.connecting()
  }

  /** X2: the cloud holds behaviour-log events of this phone up to `seq` (null: none). */
  cloudHoldsLogs(seq: number | null): void {
    this.behaviour.cloudHolds(seq)
  }

  /** X3: the user grants or revokes the framework's network permission. */
  async setNetworkPermission(on: boolean): Promise<FrameworkStatus> {
    await this.change({ networkPermission: on })
    if (on) this.push?.unblock()
    else this.push?.block()
    return this.status()
  }

  /** X2: the user allows or forbids behaviour-log uploads over mobile data. */
  async setLogsOverMobile(on: boolean): Promise<FrameworkStatus> {
    await this.change({ logsOverMobile: on })
    return this.status()
  }

  /** F1, X1: the device was given a new secret (its credentials hold it): a push retry that waits goes at once, with it. */
  secretChanged(): void {
    this.push?.retryNow()
  }

  /** M2: the push channel goes to the account's new cloud. */
  movePush(url: string): void {
    this.push?.moveTo(url)
  }

  private async change(patch: Partial<FrameworkSettings>): Promise<void> {
    this.settings = { ...this.settings, ...patch }
    await this.file.save(this.settings)
    for (const [name, on] of Object.entries(patch)) this.record('setting-changed', `${name}=${on ? 'on' : 'off'}`)
  }

  /** Shows a notification once (a duplicate only gets its acknowledgement again), then acknowledges it. */
  private take(n: PushNotification): void {
    const push = this.push as PushChannel
    const log = this.opts.log
    this.intake = this.intake
      .then(async () => {
        // M2: a notice that the cloud moved must be this device's, from its own cloud; any other is refused, said and acknowledged.
        const move = n.kind === CLOUD_MOVED ? readMove(n.body, this.opts.credentials.deviceId, this.opts.credentials.secret) : null
        if (move && !move.ok) {
          log.warn({ id: n.id, reason: move.reason }, `cloud-moved notice refused: ${move.reason}`)
          return push.ack(n.id)
        }
        const shown = await this.inbox.receive(n, this.opts.clock.now())
        if (shown) {
          // A title can be personal (a message's sender, a calendar entry): at info only the id and kind, the title at debug.
          log.info({ id: n.id, kind: n.kind, delayMs: shown.delayMs }, 'notification shown')
          log.debug({ id: n.id, title: n.title }, 'notification title')
          // M1: the cloud service is gone; the phone says so in its log and its status.
          if (n.kind === 'service-gone') log.warn({ id: n.id, body: n.body }, `the cloud service is gone: ${n.title}`)
          this.emit('notification', shown)
        } else {
          log.info({ id: n.id }, 'duplicate notification suppressed')
          this.emit('duplicate', n.id)
        }
        push.ack(n.id)
        // After the acknowledgement went out on this connection: following the move closes it.
        if (shown && move) this.emit('moved', move.value)
      })
      .catch((err: unknown) =>
        log.error({ err: (err as Error).message, id: n.id }, 'could not take in a notification; the cloud will send it again'),
      )
  }
}
