/**
 * One fake phone, composed of its parts: the MQTT data channel (built with
 * the phone, opened by `start`), the location heartbeats (F1, F3:
 * agent/heartbeat.ts), the remote commands (F2: agent/remote.ts checks them,
 * agent/executor.ts runs them), sync, backup, drive and the resident
 * framework. It announces its presence (retained; the last will says offline)
 * and its switches, and takes the user's thumbs: switches, network, PIN. It
 * refuses to switch Find Device off in lost mode or within 72 hours after
 * (F4). `start` records how to undo each step it took and `stop` undoes them
 * in reverse, so a start that failed part-way stops cleanly too. Nothing here
 * is module-level state: a process may run many agents. X1: the cloud
 * service off closes the data channel (after telling the cloud) and on opens
 * it again; the resident framework (framework.ts) keeps the push channel and
 * the behaviour log (X2) apart from it. M2: a verified `cloud-moved` notice
 * moves the data channel, the push channel and the cloud transfers to the
 * account's new cloud, kept in `<data>/cloud-home.json` (cloud-home.ts) so a
 * restart stays there; sync carries on there without uploading again what
 * the migration copied (same ids, same bytes). F1, X1: a phone the broker
 * refuses (its device removed, then added again with a new secret) reads its
 * secret file again before each retry, and both channels connect with a new
 * secret found there, without a restart. M1: a connected phone whose
 * retained presence and status the broker cleared (its account purged) says
 * them again.
 */
import { EventEmitter, once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import type { KeyObject } from 'node:crypto'
import {
  decodePayload,
  encodePayload,
  topicFor,
  type Command,
  type Heartbeat,
  type LocationStatus,
  type LogBatch,
  type Network,
} from '../common/contract.js'
import { formatAge } from '../common/clock.js'
import { FakephoneError } from '../common/errors.js'
import { RemoteCommands, type Outcome, type Phone } from './remote.js'
import { CloudClient } from './cloud-client.js'
import { PhoneDrive } from './drive/phone-drive.js'
import type { BackoffOptions } from '../common/backoff.js'
import type { Clock } from '../common/clock.js'
import { lazyChild, type Logger } from '../common/log.js'
import { MqttLink, NOT_MQTT_WHY, type LinkState } from '../common/mqtt.js'
import type { ChannelWaiting } from '../common/phone-status.js'
import { Battery, deviceBattery, type BatteryModel } from './battery.js'
import { CommandExecutor } from './executor.js'
import { ResidentFramework, type FrameworkStatus, type FrameworkTimings } from './framework.js'
import { HeartbeatLoop } from './heartbeat.js'
import { SeqReserve } from './heartbeat-seq.js'
import type { LocationSource } from './location.js'
import { PhoneFiles } from './phone-data/store.js'
import type { Category, LocalItem, PhoneData } from './phone-data/types.js'
import { SyncEngine, type SyncStatus } from './sync/engine.js'
import { PhoneSettings, RestorableSettingsSchema } from './settings.js'
import { PhoneBackup, type BackupStatus } from './backup/phone-backup.js'
import { ensureSystemProfile } from './backup/system-profile.js'
import { homeFile, readHome, type CloudHome } from './cloud-home.js'
import type { CloudMove } from '../common/cloud/cloud-move.js'
import { makeDataDirSync } from '../common/make-dirs.js'
import { readSecretFile } from './secret.js'
import { DeviceCredentials } from './credentials.js'

export interface AgentOptions {
  id: string
  secret: string
  /**
   * The file `secret` was read from. F1, X1: read again each time either channel is refused (as often as their backoff
   * retries), so a device removed and added again with its new secret written there connects without a restart.
   */
  secretFile?: string
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
  /**
   * The owner's public key, learnt at provisioning; without it the phone refuses every remote command. A function is
   * asked only when a command arrives: a fleet's phones mostly never get one, and reading the key was ~1 ms a phone.
   */
  ownerKey?: KeyObject | (() => KeyObject | undefined)
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
  /**
   * The cloud said what time it is: `clock` follows it (see PhoneClock). `exact` for its `time` topic (the cloud's time
   * as sent, which may also take a lead the phone should not have off); not for the push channel's times it has passed.
   */
  followCloud?: (cloudNow: number, exact?: boolean) => void
  /** Heartbeat sequence numbers reserved per settings write (default SEQ_BLOCK). */
  seqBlock?: number
  /**
   * The battery's level at clock time `at`, and its model: fleet scenarios set it (a phone back from an outage carries on
   * along the curve of its first start). Default: the device's own curve (deviceBattery), the same across restarts.
   */
  battery?: { level: number; model: BatteryModel; at: number }
}

/** F4: how long Find Device stays on after lost mode ends. */
export const LOST_MODE_GUARD_MS = 72 * 3_600_000

export class GuardError extends FakephoneError {
  constructor(message: string) {
    super('F4_GUARD', message)
  }
}

export interface AgentStatus {
  id: string
  dataChannel: LinkState
  /** Present (true) while the broker refuses this device's id or secret: the data channel retries in vain until fixed. */
  dataChannelRefused?: true
  /** Present while the data channel waits to retry: since when it has failed and why, as `phone status` says it. */
  dataChannelWaiting?: ChannelWaiting
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
  /** M2: where the phone's cloud moved to when its account migrated; null while it is the one it was started with. */
  home: CloudHome | null
  /** F1: where the position comes from and whether there is one; null from a source that does not say. */
  location: LocationStatus | null
}

interface AgentEvents {
  heartbeat: [hb: Heartbeat]
  /** The broker acknowledged a heartbeat (PUBACK). */
  heartbeatAcked: [hb: Heartbeat]
  /** Bulk transfers became possible (true: cloud service on and a network) or were halted (false). */
  transfers: [possible: boolean]
  /** The data channel changed state. */
  channel: [state: LinkState]
  /** F1: the cloud said on this connection which heartbeat seqs it holds of the phone: heartbeats go from now. */
  heartbeatsReady: []
}

export type Switch = 'cloudService' | 'findDevice'

export class Agent extends EventEmitter<AgentEvents> implements Phone {
  readonly framework: ResidentFramework
  private readonly settings: PhoneSettings
  /** The data channel: built with the phone, opened by `start`, closed for good by `stop`; M2 replaces it when the cloud moves. */
  private link: MqttLink
  /** M2: the cloud the account moved to (cloud-home.ts), or null. */
  private home: CloudHome | null
  /** M2: a move in progress (stop waits for it). */
  private moving: Promise<void> = Promise.resolve()
  private readonly seqs: SeqReserve
  private readonly heartbeat: HeartbeatLoop
  private readonly executor: CommandExecutor
  private readonly random: () => number
  /** How to undo each step `start` took, in the order taken. */
  private readonly undo: { step: string; run: () => Promise<void> | void }[] = []
  private channelOpened = false
  readonly remote: RemoteCommands
  /** The data channel's bulk transfers (sync, backup, drive); null when no cloud URL was given. */
  readonly cloud: CloudClient | null
  /** The cloud drive's file-manager entry and the Drive folder's sync (D1-D3). */
  readonly drive: PhoneDrive
  /** Made when a transfer first asks for its signal (a phone without a cloud never does): aborting one costs an Error and an event. */
  private transfers: AbortController | null = null
  /** The user's photos, contacts, notes and recordings (S1-S4), as files under the data directory. */
  readonly data: PhoneData
  /** App data sync (S1-S4); null when no cloud URL was given. */
  readonly sync: SyncEngine | null
  /** Cloud backup (B1-B4). */
  readonly backup: PhoneBackup

  /** The options, but the secret: `credentials` holds it. */
  private readonly opts: Omit<AgentOptions, 'secret'>
  /**
   * F1, X1: the device's id and secret, the one copy every part reads when it sends them (the data channel, the push
   * channel, the cloud client, the receipts, the `cloud-moved` check); a new secret read from the file goes here only.
   */
  private readonly credentials: DeviceCredentials

  constructor({ secret, ...options }: AgentOptions) {
    super()
    this.home = readHome(options.dataDir)
    this.credentials = new DeviceCredentials(options.id, secret)
    // M2: a phone whose account migrated talks to the new cloud, whatever it was started with.
    const opts = {
      ...options,
      ...(this.home && { brokerUrl: this.home.to.mqtt, pushUrl: this.home.to.push, cloudUrl: this.home.to.cloud }),
    }
    this.opts = opts
    this.settings = new PhoneSettings(opts.dataDir)
    this.data = new PhoneFiles({ dataDir: opts.dataDir, clock: opts.clock, log: lazyChild(opts.log, { component: 'phone-data' }) })
    this.random = opts.random ?? Math.random
    this.cloud =
      opts.cloudUrl === undefined
        ? null
        : new CloudClient({ baseUrl: opts.cloudUrl, credentials: this.credentials, chunkBytes: opts.uploadChunkBytes })
    this.drive = new PhoneDrive(this, opts.dataDir, opts.clock, lazyChild(opts.log, { component: 'drive' }), opts.driveSyncMs)
    this.sync =
      this.cloud &&
      new SyncEngine({
        dataDir: opts.dataDir,
        data: this.data,
        cloud: this.cloud,
        gate: this,
        clock: opts.clock,
        log: lazyChild(opts.log, { component: 'sync' }),
        intervalMs: opts.syncIntervalMs,
        random: this.random,
      })
    // A3: the change feed is where the phone hears the cloud cleared the account; the Drive folder was cleared with it.
    this.sync?.on('cloud-cleared', () => {
      this.drive
        .cloudCleared()
        /* c8 ignore next -- drive.json cannot be written (a full or broken disk): the next clearing heard tries again */
        .catch((err: unknown) => opts.log.warn({ err: (err as Error).message }, 'the Drive folder is not uploaded again'))
    })
    // A3: back after a clearing, what went besides the items goes up again now: the Drive folder and a fresh backup.
    this.sync?.on('account-back', () => {
      this.drive.syncInBackground()
      void this.backup.afterClearing()
    })
    this.backup = new PhoneBackup({
      deviceId: opts.id,
      dataDir: opts.dataDir,
      clock: opts.clock,
      log: lazyChild(opts.log, { component: 'backup' }),
      cloud: this.cloud,
      canTransfer: () => this.canTransfer(),
      transferSignal: () => this.transferSignal,
      pin: () => this.settings.value.pin,
      applySettings: (values) => this.settings.update(RestorableSettingsSchema.parse(values)),
      switchChanged: () => this.publishStatus(),
      cloudClearing: () => this.sync?.clearing ?? null,
      frozenRefusal: (clearedAt) => this.sync?.refusedFrozen(clearedAt),
    })
    this.link = this.dataChannel(opts.brokerUrl)
    this.seqs = new SeqReserve(this.settings, opts.seqBlock)
    this.heartbeat = new HeartbeatLoop({
      clock: opts.clock,
      log: opts.log,
      location: opts.location,
      random: this.random,
      heartbeatMs: opts.heartbeatMs,
      jitter: opts.jitter,
      battery: opts.battery ? new Battery(opts.battery, opts.battery.model) : deviceBattery(opts.id),
      settings: this.settings,
      seqs: this.seqs,
      connected: () => this.link.connected,
      send: (hb) => this.publish('heartbeat', encodePayload('heartbeat', hb), false, () => this.emit('heartbeatAcked', hb)),
    })
    this.heartbeat.on('heartbeat', (hb) => this.emit('heartbeat', hb))
    this.executor = new CommandExecutor({
      dataDir: opts.dataDir,
      clock: opts.clock,
      location: opts.location,
      settings: this.settings,
      sync: this.sync,
      backup: this.backup,
      drive: this.drive,
      paceChanged: () => this.heartbeat.reschedule(),
      statusChanged: () => this.publishStatus(),
      forgetNotifications: () => this.framework.forgetShown(),
    })
    const remoteLog = lazyChild(opts.log, { component: 'remote' })
    // The phone the commands run on is this one (which hands them to the executor), so whoever holds the agent sees every command.
    this.remote = new RemoteCommands(
      {
        credentials: this.credentials,
        ownerKey: opts.ownerKey,
        dataDir: opts.dataDir,
        clock: opts.clock,
        log: remoteLog,
      },
      this,
    )
    this.framework = new ResidentFramework({
      credentials: this.credentials,
      dataDir: opts.dataDir,
      clock: opts.clock,
      log: opts.log,
      random: this.random,
      backoff: opts.backoff,
      pushUrl: opts.pushUrl,
      keepaliveClock: opts.keepaliveClock,
      timings: opts.framework,
      phone: () => this.settings.value,
      data: { connected: () => this.link.connected, publish: (batch) => this.publishLogs(batch) },
      // One time for the whole system: the push channel carries the cloud's time too, and stays up with the service off (X1).
      followCloud: (now) => this.followCloud(now),
    })
    // A3: a cloud notice (the freeze's among them) may mean the cloud cleared the account: sync asks, with sync off too.
    this.framework.on('notification', (n) => {
      if (n.kind === 'cloud') this.sync?.checkCleared()
    })
    this.framework.on('moved', (move) => {
      this.moving = this.moving.then(() => this.follow(move))
    })
    this.framework.on('refusedRetry', () => this.secretRefused())
  }

  /**
   * Loads the phone's settings, starts its parts and opens the data channel.
   * A step that fails leaves the steps before it running: `stop()` undoes them.
   */
  async start(): Promise<void> {
    makeDataDirSync(this.opts.dataDir)
    // F1: a phone without settings.json may have lived before; its seqs start above all it sent then (agent/heartbeat-seq.ts).
    await this.settings.load({ nextSeq: this.opts.clock.now() })
    this.seqs.load()
    await this.remote.load()
    await this.backup.load()
    if (this.opts.systemProfile === true) await ensureSystemProfile(this.opts.dataDir, this.opts.id)
    await this.framework.start()
    this.undo.push({ step: 'framework', run: () => this.framework.stop() })
    await this.drive.start()
    this.undo.push({ step: 'drive', run: () => this.drive.stop() })
    // Sync reads its switches and lists the phone's files before the data channel opens, so a phone that is up is also syncing.
    const sync = this.sync
    if (sync) {
      await sync.start()
      this.undo.push({ step: 'sync', run: () => sync.stop() })
    }
    this.channelOpened = true
    if (this.settings.value.cloudService) this.link.resume()
    this.undo.push({ step: 'data channel', run: () => this.closeDataChannel() })
    this.heartbeat.start()
    this.undo.push({
      step: 'heartbeats',
      run: async () => {
        await this.heartbeat.stop()
        await this.seqs.release()
      },
    })
  }

  /**
   * Undoes what `start` did, last step first: heartbeats stop, the data
   * channel says "offline" and closes, then sync, drive and the framework
   * stop. Safe after a failed start and when called again.
   */
  async stop(): Promise<void> {
    // A move that arrives from here on changes the home on disk, and opens no channel.
    this.channelOpened = false
    await this.moving
    this.haltTransfers()
    for (let next = this.undo.pop(); next; next = this.undo.pop()) {
      try {
        await next.run()
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message, step: next.step }, 'a part of the phone did not stop cleanly')
      }
    }
    await this.link.stop()
    await this.settings.flushed()
    await this.backup.flushed()
  }

  /** The data channel's state alone: a fleet asks it of every phone, often, and `status()` builds every part's. */
  get dataChannelState(): LinkState {
    return this.channelOpened ? this.link.state : 'stopped'
  }

  /** While the data channel waits to retry: whether the broker refused this device, and the last failure's words (null: unsaid). */
  get dataChannelFailure(): { refused: boolean; notMqtt: boolean; failure: string | null } {
    return { refused: this.link.credentialsRefused, notMqtt: this.link.answersNotMqtt, failure: this.link.failure }
  }

  /** While the data channel waits to retry: since when, and the last failure's words (an HTTP port said as such). */
  private dataChannelWaiting(): Pick<AgentStatus, 'dataChannelWaiting'> {
    if (this.dataChannelState !== 'waiting') return {}
    const { notMqtt, failure } = this.dataChannelFailure
    // A waiting link has failed at least once since it last connected: it knows since when.
    const since = this.link.waitingSince as number
    // A link that found the server's bytes not MQTT said what it found: the failure is said (MqttLink's notMqtt).
    return { dataChannelWaiting: { since, why: notMqtt ? `${failure as string}: ${NOT_MQTT_WHY}` : failure } }
  }

  /** The cloud-service switch alone (see `dataChannelState`). */
  get cloudServiceOn(): boolean {
    return this.settings.value.cloudService
  }

  status(): AgentStatus {
    const settings = this.settings.value
    return {
      id: this.opts.id,
      dataChannel: this.dataChannelState,
      ...(this.channelOpened && this.link.credentialsRefused ? { dataChannelRefused: true as const } : {}),
      ...this.dataChannelWaiting(),
      cloudService: settings.cloudService,
      findDevice: settings.findDevice,
      network: settings.network,
      heartbeatsSent: this.heartbeat.sent,
      lastHeartbeat: this.heartbeat.last,
      lock: settings.lock,
      lostMode: settings.lostMode,
      ringingUntil: this.executor.ringingUntil,
      framework: this.framework.status(),
      sync: this.sync?.status() ?? null,
      backup: this.backup.status(),
      home: this.home,
      location: this.opts.location.describe?.(this.opts.clock.now()) ?? null,
    }
  }

  /**
   * M2: the account migrated and its cloud said so (a verified notice): the
   * new home is written first (a crash mid-way still ends there), then the
   * cloud transfers, the push channel and the data channel -- the old one
   * says "offline" -- move, and sync reads the new cloud's change feed from
   * its start: what the migration copied has the same ids and bytes, so
   * nothing is uploaded or downloaded again.
   */
  private async follow(move: CloudMove): Promise<void> {
    const log = this.opts.log
    const from = { mqtt: this.opts.brokerUrl, push: this.opts.pushUrl, cloud: this.opts.cloudUrl }
    if (from.mqtt === move.to.mqtt && from.push === move.to.push && from.cloud === move.to.cloud)
      return void log.info({ to: move.to }, 'cloud moved: already there')
    const home: CloudHome = { to: move.to, account: move.account, movedAt: move.at, from }
    try {
      await homeFile(this.opts.dataDir).save(home)
    } catch (err) {
      return void log.error({ err: (err as Error).message, to: move.to }, 'cloud moved, but the phone cannot keep its new home: it stays')
    }
    this.home = home
    Object.assign(this.opts, { brokerUrl: move.to.mqtt, pushUrl: move.to.push, cloudUrl: move.to.cloud })
    log.warn({ from, to: move.to, account: move.account }, `cloud moved: the phone follows its account to ${move.to.cloud}`)
    this.haltTransfers()
    this.cloud?.moveTo(move.to.cloud)
    await this.sync?.cloudMoved()
    this.framework.movePush(move.to.push)
    const old = this.link
    this.link = this.dataChannel(move.to.mqtt)
    await this.closeLink(old)
    old.removeAllListeners()
    if (this.channelOpened && this.settings.value.cloudService) this.link.resume()
  }

  /**
   * F1, X1: a channel refused the device's id and secret is about to retry: the secret file is read again first (so no
   * more often than the channels retry, each after its backoff). A new secret there (the device removed and added again)
   * goes into the credentials, which every part that sends it reads, and both channels connect with it now (the other's
   * waiting retry goes at once); an unreadable file (the old one deleted, the new one not written yet) changes nothing.
   * The secret is never logged.
   */
  private secretRefused(): void {
    const file = this.opts.secretFile
    if (file === undefined) return
    let secret: string
    try {
      secret = readSecretFile(file)
    } catch (err) {
      return void this.opts.log.debug({ err: (err as Error).message }, 'the secret file cannot be read again; the secret stays')
    }
    if (!this.credentials.replace(secret)) return
    this.opts.log.info({ file }, `new device secret read from ${file}; connecting again`)
    // Every part reads the secret from the credentials when it sends it: the channels' waiting retries need only go now.
    this.framework.secretChanged()
    this.link.retryNow()
  }

  /** The user flips a switch on the phone. F4: Find Device stays on in lost mode and for 72 h after. */
  async setSwitch(name: Switch, on: boolean): Promise<AgentStatus> {
    if (name === 'findDevice' && !on) this.checkLostModeGuard()
    const saved = this.settings.update({ [name]: on })
    // S3: switched off, transfers halt at once -- not after the settings file and the broker have answered.
    if (name === 'cloudService' && !on) this.transfersChanged()
    await saved
    this.publishStatus()
    // Switched on, transfers become possible when the data channel is up again and the cloud has the status (see 'connect').
    if (name === 'cloudService') await this.switchDataChannel(on)
    this.framework.record('setting-changed', `${name}=${on ? 'on' : 'off'}`)
    return this.status()
  }

  /** The user types the PIN on the lock screen; with no lock screen there is nothing to type it into (F2). */
  async unlock(pin: string): Promise<AgentStatus> {
    // Said before the PIN is checked: "wrong PIN" on a phone that was never locked sent a user looking for the right one.
    if (this.settings.value.lock === null) throw new FakephoneError('NOT_LOCKED', 'the screen is not locked: nothing to unlock')
    if (pin !== this.settings.value.pin) throw new FakephoneError('WRONG_PIN', 'wrong PIN')
    await this.settings.update({ lock: null })
    return this.status()
  }

  findDeviceEnabled(): boolean {
    return this.executor.findDeviceEnabled()
  }

  /** F2: the outcome of a command that changes nothing, taken at once (locate), or undefined (agent/executor.ts). */
  answerAtOnce(command: Command): Outcome | undefined {
    return this.executor.answerAtOnce(command)
  }

  /** F2: runs one verified command against this phone (agent/executor.ts). */
  run(command: Command): Promise<Outcome> {
    return this.executor.run(command)
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
    const settings = this.settings.value
    if (settings.lostMode) throw new GuardError('Find Device cannot be turned off in lost mode: the owner must leave lost mode first')
    const ended = settings.lostModeEndedAt
    const left = ended === null ? 0 : ended + LOST_MODE_GUARD_MS - this.opts.clock.now()
    if (left > 0) throw new GuardError(`Find Device cannot be turned off until 72 hours after lost mode ended: ${formatAge(left)} left`)
  }

  async setNetwork(network: Network): Promise<AgentStatus> {
    const saved = this.settings.update({ network })
    // S3: a cut network halts transfers at once, before the settings file is written.
    this.transfersChanged()
    await saved
    this.framework.record('setting-changed', `network=${network}`)
    return this.status()
  }

  /** True while bulk transfers may run: the cloud service on, a network, a cloud to talk to. */
  canTransfer(): boolean {
    return this.cloud !== null && this.settings.value.cloudService && this.settings.value.network !== 'none'
  }

  /**
   * Aborted the moment transfers stop being possible (S3: the cloud-service
   * component force-stopped, the network cut, the agent stopped): every
   * upload in progress passes it to fetch and halts at once.
   */
  get transferSignal(): AbortSignal {
    return (this.transfers ??= new AbortController()).signal
  }

  private transfersChanged(): void {
    const possible = this.canTransfer()
    if (!possible) this.haltTransfers()
    this.emit('transfers', possible)
  }

  private haltTransfers(): void {
    this.transfers?.abort()
    this.transfers = null
  }

  /** The MQTT data channel, switched off until `start` opens it; its last will says "offline". */
  private dataChannel(url: string): MqttLink {
    const { id } = this.opts
    const link = new MqttLink({
      url,
      clock: this.opts.clock,
      log: this.opts.log,
      backoff: this.opts.backoff,
      random: this.random,
      startOff: true,
      secret: this.credentials,
      mqtt: {
        clientId: id,
        username: id,
        clean: false,
        // The phone subscribes on every connect itself (below): mqtt.js would send the same SUBSCRIBE again after a reconnect.
        resubscribe: false,
        keepalive: this.opts.keepaliveS ?? 30,
        will: {
          topic: topicFor(id, 'presence'),
          payload: Buffer.from(encodePayload('presence', { state: 'offline' })),
          qos: 1,
          retain: true,
        },
      },
    })
    link.on('state', (state) => this.emit('channel', state))
    link.on('refusedRetry', () => this.secretRefused())
    const planTopic = topicFor(id, 'plan')
    const timeTopic = topicFor(id, 'time')
    const clearedTopic = topicFor(id, 'cleared')
    // Commands, the backup plan, the cloud's time and (M1) the broker's word that it cleared the phone's presence and
    // status, in one SUBSCRIBE: one packet and one SUBACK each way per connect.
    const topics = [topicFor(id, 'cmd'), planTopic, timeTopic, clearedTopic]
    link.on('connect', () => {
      this.sayOnline()
      // Transfers may start once the cloud has taken in that the service is on, or it refuses them.
      this.publishStatus(() => this.transfersChanged())
      link.client.subscribe(topics, { qos: 1 })
      void this.remote.onConnect(link)
      // F1: heartbeats wait for the cloud's answer to the subscription (the seqs it holds); the run's first fix goes then.
      this.heartbeat.connecting()
      // X2: and so do behaviour-log uploads (the log seqs it holds).
      this.framework.dataConnecting()
    })
    link.client.on('message', (topic, payload) => {
      if (topic === timeTopic) return this.receiveCloudTime(payload)
      if (topic === clearedTopic) return this.receiveRetainedCleared(payload)
      void (topic === planTopic ? this.backup.receivePlan(payload) : this.remote.receive(payload))
    })
    return link
  }

  /**
   * M1: the broker cleared what it retains of this phone (its account purged; the phone stays registered and connected)
   * and said so after the clearing: the phone says its presence and status again, in its own words, so a watcher that
   * subscribes later still finds it online with its switches. A message that breaks the contract is logged and changes
   * nothing.
   */
  receiveRetainedCleared(payload: Buffer): void {
    const decoded = decodePayload('cleared', payload)
    if (!decoded.ok) return void this.opts.log.warn({ reason: decoded.reason }, 'cleared message refused')
    this.opts.log.info({ at: decoded.value.at }, 'the broker cleared what it retains of this phone: presence and status said again')
    this.sayOnline()
    this.publishStatus()
  }

  /** Presence "online", retained: said on every connect, and again when the broker cleared it (M1). */
  private sayOnline(): void {
    this.publish('presence', encodePayload('presence', { state: 'online', at: this.opts.clock.now() }), true)
  }

  /** Says goodbye (presence offline), closes the data channel for good and lets the commands in hand finish. */
  private closeDataChannel(): Promise<void> {
    return this.closeLink(this.link)
  }

  private async closeLink(link: MqttLink): Promise<void> {
    await this.sayOffline(link)
    await link.stop()
    await this.remote.idle()
    // No command can arrive on a closed channel: the journal's descriptor goes now, not a second later (a fleet counts them).
    await this.remote.journal.release()
  }

  /** X1: off closes the data channel once the status above and "offline" are acknowledged; on opens it again. */
  private async switchDataChannel(on: boolean): Promise<void> {
    if (on) return this.link.resume()
    await this.sayOffline(this.link)
    await this.link.pause()
  }

  /**
   * Publishes "offline" when connected: said, or the connection dropped, or the broker stopped answering -- never hangs on a dead broker.
   */
  private async sayOffline(link: MqttLink): Promise<void> {
    if (!link.connected) return
    const offline = encodePayload('presence', { state: 'offline', at: this.opts.clock.now() })
    await Promise.race([
      link.client.publishAsync(topicFor(this.opts.id, 'presence'), offline, { qos: 1, retain: true }),
      once(link, 'state'),
      delay(this.opts.stopTimeoutMs ?? 2000, undefined, { ref: false }),
    ])
  }

  /**
   * One time for the whole system: the cloud's clock is the authority; a bad message is logged and changes nothing.
   * F1: the answer to the phone's subscription also says the highest heartbeat seq the cloud holds of it: the seqs move
   * past it (settings restored from an old backup count from below it) and the heartbeats held for it go. X2: it says
   * the highest behaviour-log seq too, and the behaviour log does the same with it (a broker that does not say it holds none).
   */
  receiveCloudTime(payload: Buffer): void {
    const decoded = decodePayload('time', payload)
    if (!decoded.ok) return void this.opts.log.warn({ reason: decoded.reason }, 'cloud time refused')
    const { now, heartbeatSeq, logSeq } = decoded.value
    // The cloud's time as it sent it (a lead it does not share comes off): common/clock.ts FollowingClock.follow.
    this.followCloud(now, true)
    if (heartbeatSeq === undefined) return
    this.framework.cloudHoldsLogs(logSeq ?? null)
    if (heartbeatSeq !== null && this.seqs.skipPast(heartbeatSeq))
      this.opts.log.warn(
        { heartbeatSeq },
        'the cloud holds heartbeats up to this seq, past these settings (restored from an older copy?): the seqs go on above it',
      )
    this.heartbeat.channelUp()
    this.emit('heartbeatsReady')
  }

  /** F1: the data channel is up and the cloud said which heartbeat seqs it holds of the phone (`heartbeatsReady`). */
  get heartbeatsReady(): boolean {
    return this.link.connected && this.heartbeat.ready
  }

  /** The cloud's clock has reached `now` (said on either channel): the phone's clock follows; a failure to record it is logged. */
  private followCloud(now: number, exact = false): void {
    try {
      this.opts.followCloud?.(now, exact)
    } catch (err) {
      this.opts.log.warn({ err }, 'could not record the cloud time')
    }
  }

  /** X2: one batch of behaviour logs over the data channel, acknowledged by the cloud. */
  private publishLogs(batch: LogBatch): Promise<void> {
    return this.link.publishAcked(topicFor(this.opts.id, 'logs'), encodePayload('logs', batch))
  }

  /** `acked` runs once the cloud acknowledged the status (it takes a status in before it acknowledges it). */
  private publishStatus(acked?: () => void): void {
    const { cloudService, findDevice } = this.settings.value
    this.publish(
      'status',
      encodePayload('status', { cloudService, findDevice, backup: this.backup.enabled, at: this.opts.clock.now() }),
      true,
      acked,
    )
  }

  /** Publishes at QoS 1 when connected; returns whether it was handed to the client. */
  private publish(kind: 'heartbeat' | 'presence' | 'status', payload: string, retain: boolean, acked?: () => void): boolean {
    const link = this.link
    if (!link.connected) return false
    // QoS 1: mqtt.js keeps the message until PUBACK and resends it after a reconnect; its errors reach MqttLink's log.
    link.client.publish(topicFor(this.opts.id, kind), payload, { qos: 1, retain }, (err) => {
      if (!err) acked?.()
    })
    return true
  }
}
