/**
 * One fake phone. It holds its MQTT data channel, sends location heartbeats
 * (F1) on a jittered schedule read from the injected clock, announces its
 * presence (retained; the last will says offline) and its switches, and
 * stops all location traffic when Find Device or the cloud service is off
 * (F3). It runs its owner's remote commands (F2, through agent/remote.ts):
 * locate, ring, lock, lost mode (more frequent heartbeats) and wipe; and it
 * refuses to switch Find Device off in lost mode or within 72 hours after
 * (F4). Nothing here is module-level state: a process may run many agents.
 * X1: the cloud service off closes the data channel (after telling the cloud)
 * and on opens it again; the resident framework (framework.ts) keeps the
 * push channel and the behaviour log (X2) apart from it.
 */
import { EventEmitter } from 'node:events'
import { once } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { setTimeout as delay } from 'node:timers/promises'
import type { KeyObject } from 'node:crypto'
import { decodePayload, encodePayload, topicFor, type Command, type Heartbeat, type LogBatch, type Network } from '../common/contract.js'
import { formatAge } from '../common/clock.js'
import { FakephoneError } from '../common/errors.js'
import { deviceKeys } from '../common/signing.js'
import { RemoteCommands, type Outcome, type Phone } from './remote.js'
import { CloudClient } from './cloud-client.js'
import { PhoneDrive } from './drive/phone-drive.js'
import { wipeData } from './wipe.js'
import type { BackoffOptions } from '../common/backoff.js'
import type { Clock, Timer } from '../common/clock.js'
import type { JsonFile } from '../common/json-file.js'
import type { Logger } from '../common/log.js'
import { MqttLink, type LinkState } from '../common/mqtt.js'
import { Battery } from './battery.js'
import { ResidentFramework, type FrameworkStatus, type FrameworkTimings } from './framework.js'
import type { LocationSource } from './location.js'
import { PhoneFiles } from './phone-data/store.js'
import type { Category, LocalItem, PhoneData } from './phone-data/types.js'
import { SyncEngine, type SyncStatus } from './sync/engine.js'
import { DEFAULT_SETTINGS, RestorableSettingsSchema, settingsFile, type Settings } from './settings.js'
import { PhoneBackup, type BackupStatus } from './backup/phone-backup.js'
import { ensureSystemProfile } from './backup/system-profile.js'

export interface AgentOptions {
  id: string
  secret: string
  brokerUrl: string
  dataDir: string
  clock: Clock
  log: Logger
  location: LocationSource
  /** Mean time between heartbeats, ms. */
  heartbeatMs: number
  /** Each interval is drawn from heartbeatMs × (1 ± jitter). */
  jitter: number
  random?: () => number
  backoff?: BackoffOptions
  /** MQTT keep-alive, seconds. */
  keepaliveS?: number
  /** How long a stop waits for the broker to acknowledge "offline", ms (default 2000). */
  stopTimeoutMs?: number
  /** The owner's public key, learnt at provisioning; without it the phone refuses every remote command. */
  ownerKey?: KeyObject
  /** The cloud's push endpoint, ws://host:port/push (X1); no push channel without it. */
  pushUrl?: string
  /** The cloud's HTTP side, http://host:port, for sync, backup and drive transfers; none without it. */
  cloudUrl?: string
  /** Bytes per upload request (default 256 KiB). */
  uploadChunkBytes?: number
  /** D2: time between syncs of the phone's Drive folder (default 5 minutes). */
  driveSyncMs?: number
  /** Time between scheduled sync passes, ms (S1; default 15 minutes). */
  syncIntervalMs?: number
  /** B1: make the phone's system profile (preferences, apps, home screen, Wi-Fi, app data) on first start; `fakephone agent` does. */
  systemProfile?: boolean
  /** Push keep-alive timers (real time by default). */
  keepaliveClock?: Clock
  /** Push keep-alive and behaviour-log schedules (X2). */
  framework?: Partial<FrameworkTimings>
  /** The cloud said what time it is (its `time` topic): `clock` follows it (see PhoneClock). */
  followCloud?: (cloudNow: number) => void
}

/** F4: how long Find Device stays on after lost mode ends. */
export const LOST_MODE_GUARD_MS = 72 * 3_600_000
/** F2: in lost mode heartbeats come this many times as often. */
export const LOST_MODE_SPEEDUP = 6

export class GuardError extends FakephoneError {
  constructor(message: string) {
    super('F4_GUARD', message)
  }
}

export interface AgentStatus {
  id: string
  dataChannel: LinkState
  cloudService: boolean
  findDevice: boolean
  network: Network
  heartbeatsSent: number
  lastHeartbeat: Heartbeat | null
  /** The lock screen, when locked remotely. */
  lock: { message: string; phone: string } | null
  lostMode: boolean
  /** Until when the phone rings (ms since epoch), or null. */
  ringingUntil: number | null
  /** The push channel, network permission, notifications and behaviour log (X1-X3). */
  framework: FrameworkStatus
  /** App data sync per category (S1-S4); null without a cloud to talk to. */
  sync: SyncStatus | null
  /** The cloud-backup switch and the last backup (B1-B4). */
  backup: BackupStatus
}

interface AgentEvents {
  heartbeat: [hb: Heartbeat]
  /** Bulk transfers became possible (true: cloud service on and a network) or were halted (false). */
  transfers: [possible: boolean]
  /** The data channel changed state. */
  channel: [state: LinkState]
}

export type Switch = 'cloudService' | 'findDevice'

export class Agent extends EventEmitter<AgentEvents> implements Phone {
  readonly framework: ResidentFramework
  private settings: Settings = { ...DEFAULT_SETTINGS }
  private readonly file: JsonFile<Settings>
  private link?: MqttLink
  private timer: Timer | null = null
  private readonly battery: Battery
  private readonly random: () => number
  private sent = 0
  private last: Heartbeat | null = null
  private ringingUntil: number | null = null
  readonly remote: RemoteCommands
  /** The data channel's bulk transfers (sync, backup, drive); null when no cloud URL was given. */
  readonly cloud: CloudClient | null
  /** The cloud drive's file-manager entry and the Drive folder's sync (D1-D3). */
  readonly drive: PhoneDrive
  private transfers = new AbortController()
  /** The user's photos, contacts, notes and recordings (S1-S4), as files under the data directory. */
  readonly data: PhoneData
  /** App data sync (S1-S4); null when no cloud URL was given. */
  readonly sync: SyncEngine | null
  /** Cloud backup (B1-B4). */
  readonly backup: PhoneBackup

  constructor(private readonly opts: AgentOptions) {
    super()
    this.file = settingsFile(opts.dataDir)
    this.data = new PhoneFiles({ dataDir: opts.dataDir, clock: opts.clock, log: opts.log.child({ component: 'phone-data' }) })
    this.random = opts.random ?? Math.random
    this.battery = new Battery({ level: 60 + Math.floor(this.random() * 40), at: opts.clock.now() })
    const remoteLog = opts.log.child({ component: 'remote' })
    this.remote = new RemoteCommands(
      { deviceId: opts.id, ownerKey: opts.ownerKey, deviceKey: deviceKeys(opts.secret).privateKey, dataDir: opts.dataDir, clock: opts.clock, log: remoteLog },
      this,
    )
    this.cloud = opts.cloudUrl === undefined ? null : new CloudClient({ baseUrl: opts.cloudUrl, deviceId: opts.id, secret: opts.secret, chunkBytes: opts.uploadChunkBytes })
    this.drive = new PhoneDrive(this, opts.dataDir, opts.clock, opts.log.child({ component: 'drive' }), opts.driveSyncMs)
    this.sync = this.cloud && new SyncEngine({ dataDir: opts.dataDir, data: this.data, cloud: this.cloud, gate: this, clock: opts.clock, log: opts.log.child({ component: 'sync' }), intervalMs: opts.syncIntervalMs })
    this.backup = new PhoneBackup({
      deviceId: opts.id,
      dataDir: opts.dataDir,
      clock: opts.clock,
      log: opts.log.child({ component: 'backup' }),
      cloud: this.cloud,
      canTransfer: () => this.canTransfer(),
      transferSignal: () => this.transferSignal,
      pin: () => this.settings.pin,
      applySettings: (values) => this.update(RestorableSettingsSchema.parse(values)),
      switchChanged: () => this.publishStatus(),
    })
    this.framework = new ResidentFramework({
      deviceId: opts.id,
      secret: opts.secret,
      dataDir: opts.dataDir,
      clock: opts.clock,
      log: opts.log,
      random: this.random,
      backoff: opts.backoff,
      pushUrl: opts.pushUrl,
      keepaliveClock: opts.keepaliveClock,
      timings: opts.framework,
      phone: () => this.settings,
      data: { connected: () => this.link?.connected === true, publish: (batch) => this.publishLogs(batch) },
    })
  }

  /** Loads the phone's settings and opens the data channel. */
  async start(): Promise<void> {
    await mkdir(this.opts.dataDir, { recursive: true })
    this.settings = await this.file.load(DEFAULT_SETTINGS)
    await this.remote.load()
    await this.backup.load()
    if (this.opts.systemProfile === true) await ensureSystemProfile(this.opts.dataDir, this.opts.id)
    await this.framework.start()
    await this.drive.start()
    // Sync reads its switches and lists the phone's files before the data channel opens, so a phone that is up is also syncing.
    await this.sync?.start()
    const presence = topicFor(this.opts.id, 'presence')
    this.link = new MqttLink({
      url: this.opts.brokerUrl,
      clock: this.opts.clock,
      log: this.opts.log,
      backoff: this.opts.backoff,
      random: this.random,
      startOff: !this.settings.cloudService,
      mqtt: {
        clientId: this.opts.id,
        username: this.opts.id,
        password: this.opts.secret,
        clean: false,
        keepalive: this.opts.keepaliveS ?? 30,
        will: { topic: presence, payload: Buffer.from(encodePayload('presence', { state: 'offline' })), qos: 1, retain: true },
      },
    })
    this.link.on('state', (state) => this.emit('channel', state))
    this.link.on('connect', () => {
      this.publish('presence', encodePayload('presence', { state: 'online', at: this.opts.clock.now() }), true)
      // Transfers may start once the cloud has taken in that the service is on, or it refuses them.
      this.publishStatus(() => this.transfersChanged())
      void this.remote.onConnect(this.link as MqttLink)
      ;(this.link as MqttLink).client.subscribe([topicFor(this.opts.id, 'plan'), topicFor(this.opts.id, 'time')], { qos: 1 })
    })
    const planTopic = topicFor(this.opts.id, 'plan')
    const timeTopic = topicFor(this.opts.id, 'time')
    this.link.client.on('message', (topic, payload) => {
      if (topic === timeTopic) return this.receiveCloudTime(payload)
      void (topic === planTopic ? this.backup.receivePlan(payload) : this.remote.receive(payload))
    })
    this.schedule()
  }

  /** Says goodbye (presence offline), closes the data channel and stops every timer. */
  async stop(): Promise<void> {
    this.haltTransfers()
    await this.sync?.stop()
    this.timer?.cancel()
    this.timer = null
    await this.drive.stop()
    const link = this.link
    if (!link) return
    await this.sayOffline(link)
    await link.stop()
    await this.remote.idle()
    await this.framework.stop()
    await this.file.flushed()
    await this.backup.flushed()
  }

  status(): AgentStatus {
    return {
      id: this.opts.id,
      dataChannel: this.link?.state ?? 'stopped',
      cloudService: this.settings.cloudService,
      findDevice: this.settings.findDevice,
      network: this.settings.network,
      heartbeatsSent: this.sent,
      lastHeartbeat: this.last,
      lock: this.settings.lock,
      lostMode: this.settings.lostMode,
      ringingUntil: this.ringingUntil !== null && this.ringingUntil > this.opts.clock.now() ? this.ringingUntil : null,
      framework: this.framework.status(),
      sync: this.sync?.status() ?? null,
      backup: this.backup.status(),
    }
  }

  /** The user flips a switch on the phone. F4: Find Device stays on in lost mode and for 72 h after. */
  async setSwitch(name: Switch, on: boolean): Promise<AgentStatus> {
    if (name === 'findDevice' && !on) this.checkLostModeGuard()
    const saved = this.update({ [name]: on })
    // S3: switched off, transfers halt at once -- not after the settings file and the broker have answered.
    if (name === 'cloudService' && !on) this.transfersChanged()
    await saved
    this.publishStatus()
    // Switched on, transfers become possible when the data channel is up again and the cloud has the status (see 'connect').
    if (name === 'cloudService') await this.switchDataChannel(on)
    this.framework.record('setting-changed', `${name}=${on ? 'on' : 'off'}`)
    return this.status()
  }

  /** The user types the PIN on the lock screen. */
  async unlock(pin: string): Promise<AgentStatus> {
    if (pin !== this.settings.pin) throw new FakephoneError('WRONG_PIN', 'wrong PIN')
    await this.update({ lock: null })
    return this.status()
  }

  findDeviceEnabled(): boolean {
    return this.locating && this.settings.paired
  }

  /** F2: runs one verified command against this phone. */
  async run(command: Command): Promise<Outcome> {
    const now = this.opts.clock.now()
    switch (command.type) {
      case 'locate': {
        const fix = this.opts.location.fix(now)
        if (!fix) return { state: 'failed', reason: 'no location fix' }
        return { state: 'succeeded', data: { lat: fix.lat, lon: fix.lon, accuracy: fix.accuracy, at: now } }
      }
      case 'ring':
        this.ringingUntil = now + command.args.seconds * 1000
        return { state: 'succeeded', data: { seconds: command.args.seconds } }
      case 'lock':
        await this.update({ lock: { message: command.args.message, phone: command.args.phone } })
        return { state: 'succeeded', data: { locked: true } }
      case 'lost-mode':
        if (command.args.on) await this.update({ lostMode: true, lock: { message: command.args.message, phone: command.args.phone } })
        else await this.update({ lostMode: false, lostModeEndedAt: now })
        this.timer?.cancel()
        this.schedule()
        return { state: 'succeeded', data: { lostMode: command.args.on } }
      case 'wipe': {
        const wipe = () => wipeData(this.opts.dataDir, { keepSdcard: !command.args.eraseSdcard })
        // Sync holds still while the files go, so the emptied folders are not taken for deletes.
        const { files, bytes } = this.sync ? await this.sync.whilePaused(wipe) : await wipe()
        const { keepFindDevice } = command.args
        await this.update({ ...DEFAULT_SETTINGS, nextSeq: this.settings.nextSeq, findDevice: keepFindDevice, paired: keepFindDevice })
        await this.backup.reset()
        await this.drive.reset()
        this.publishStatus()
        return { state: 'succeeded', data: { files, bytes, sdcardKept: !command.args.eraseSdcard, findDeviceKept: keepFindDevice } }
      }
    }
  }

  /** The user takes a photo: at the phone's current location fix (none: no GPS in it) and clock time. */
  takePhoto(): Promise<LocalItem> {
    const now = this.opts.clock.now()
    const fix = this.opts.location.fix(now)
    return this.data.add({ category: 'photos', takenAt: now, ...(fix ? { lat: fix.lat, lon: fix.lon } : {}) })
  }

  /** S3: whether an item carries the "in the cloud" marker (the cloud confirmed these bytes); null without a cloud. */
  inCloud(category: Category, id: string): boolean | null {
    return this.sync ? this.sync.inCloud(category, id) : null
  }

  private checkLostModeGuard(): void {
    if (this.settings.lostMode) throw new GuardError('Find Device cannot be turned off in lost mode: the owner must leave lost mode first')
    const ended = this.settings.lostModeEndedAt
    const left = ended === null ? 0 : ended + LOST_MODE_GUARD_MS - this.opts.clock.now()
    if (left > 0) throw new GuardError(`Find Device cannot be turned off until 72 hours after lost mode ended: ${formatAge(left)} left`)
  }

  private async update(change: Partial<Settings>): Promise<void> {
    this.settings = { ...this.settings, ...change }
    await this.file.save(this.settings)
  }

  async setNetwork(network: Network): Promise<AgentStatus> {
    const saved = this.update({ network })
    // S3: a cut network halts transfers at once, before the settings file is written.
    this.transfersChanged()
    await saved
    this.framework.record('setting-changed', `network=${network}`)
    return this.status()
  }

  /** True while bulk transfers may run: the cloud service on, a network, a cloud to talk to. */
  canTransfer(): boolean {
    return this.cloud !== null && this.settings.cloudService && this.settings.network !== 'none'
  }

  /**
   * Aborted the moment transfers stop being possible (S3: the cloud-service
   * component force-stopped, the network cut, the agent stopped): every
   * upload in progress passes it to fetch and halts at once.
   */
  get transferSignal(): AbortSignal {
    return this.transfers.signal
  }

  private transfersChanged(): void {
    const possible = this.canTransfer()
    if (!possible) this.haltTransfers()
    this.emit('transfers', possible)
  }

  private haltTransfers(): void {
    this.transfers.abort()
    this.transfers = new AbortController()
  }

  /** X1: off closes the data channel once the status above and "offline" are acknowledged; on opens it again. */
  private async switchDataChannel(on: boolean): Promise<void> {
    const link = this.link as MqttLink
    if (on) return link.resume()
    await this.sayOffline(link)
    await link.pause()
  }

  /** Publishes "offline" when connected: said, or the connection dropped, or the broker stopped answering -- never hangs on a dead broker. */
  private async sayOffline(link: MqttLink): Promise<void> {
    if (!link.connected) return
    const offline = encodePayload('presence', { state: 'offline', at: this.opts.clock.now() })
    await Promise.race([
      link.client.publishAsync(topicFor(this.opts.id, 'presence'), offline, { qos: 1, retain: true }),
      once(link, 'state'),
      delay(this.opts.stopTimeoutMs ?? 2000, undefined, { ref: false }),
    ])
  }

  /** One time for the whole system: the cloud's clock is the authority; a bad message is logged and changes nothing. */
  receiveCloudTime(payload: Buffer): void {
    const decoded = decodePayload('time', payload)
    if (!decoded.ok) return void this.opts.log.warn({ reason: decoded.reason }, 'cloud time refused')
    try {
      this.opts.followCloud?.(decoded.value.now)
    } catch (err) {
      this.opts.log.warn({ err }, 'could not record the cloud time')
    }
  }

  /** X2: one batch of behaviour logs over the data channel, acknowledged by the cloud. */
  private publishLogs(batch: LogBatch): Promise<void> {
    return (this.link as MqttLink).publishAcked(topicFor(this.opts.id, 'logs'), encodePayload('logs', batch))
  }

  private get locating(): boolean {
    return this.settings.cloudService && this.settings.findDevice
  }

  private schedule(): void {
    const { jitter } = this.opts
    const heartbeatMs = this.settings.lostMode ? this.opts.heartbeatMs / LOST_MODE_SPEEDUP : this.opts.heartbeatMs
    const interval = heartbeatMs * (1 + jitter * (2 * this.random() - 1))
    this.timer = this.opts.clock.after(interval, () => {
      this.beat()
      this.schedule()
    })
  }

  /** One heartbeat, when locating is on, connected, and there is a fix. */
  private beat(): void {
    const now = this.opts.clock.now()
    const fix = this.opts.location.fix(now)
    if (!this.locating || !this.link?.connected || !fix) return
    const battery = this.battery.read(now)
    const hb: Heartbeat = {
      seq: this.settings.nextSeq,
      at: now,
      lat: fix.lat,
      lon: fix.lon,
      accuracy: fix.accuracy,
      speed: fix.speed,
      battery: battery.level,
      charging: battery.charging,
      network: this.settings.network,
    }
    this.settings = { ...this.settings, nextSeq: hb.seq + 1 }
    this.publish('heartbeat', encodePayload('heartbeat', hb), false)
    this.file.save(this.settings).catch((err: unknown) => this.opts.log.error({ err }, 'could not save settings'))
    this.sent++
    this.last = hb
    this.emit('heartbeat', hb)
  }

  /** `acked` runs once the cloud acknowledged the status (it takes a status in before it acknowledges it). */
  private publishStatus(acked?: () => void): void {
    const { cloudService, findDevice } = this.settings
    this.publish('status', encodePayload('status', { cloudService, findDevice, backup: this.backup.enabled, at: this.opts.clock.now() }), true, acked)
  }

  private publish(kind: 'heartbeat' | 'presence' | 'status', payload: string, retain: boolean, acked?: () => void): void {
    const link = this.link as MqttLink
    if (!link.connected) return
    // QoS 1: mqtt.js keeps the message until PUBACK and resends it after a reconnect; its errors reach MqttLink's log.
    link.client.publish(topicFor(this.opts.id, kind), payload, { qos: 1, retain }, (err) => {
      if (!err) acked?.()
    })
  }
}
