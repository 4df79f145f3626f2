/**
 * F2, F3: what a verified remote command does to the phone (agent/remote.ts
 * checks, journals and answers it): locate, ring, lock, lost mode (faster
 * heartbeats) and wipe. A phone answers commands only while Find Device and
 * the cloud service are on and it is paired with its owner.
 */
import type { Clock } from '../common/clock.js'
import type { Command } from '../common/contract.js'
import type { PhoneBackup } from './backup/phone-backup.js'
import type { PhoneDrive } from './drive/phone-drive.js'
import { noFixReason, type LocationSource } from './location.js'
import type { Outcome, Phone } from './remote.js'
import { DEFAULT_SETTINGS, type PhoneSettings } from './settings.js'
import type { SyncEngine } from './sync/engine.js'
import { wipeData } from './wipe.js'

export interface ExecutorOptions {
  dataDir: string
  clock: Clock
  location: LocationSource
  settings: PhoneSettings
  sync: SyncEngine | null
  backup: PhoneBackup
  drive: PhoneDrive
  /** Lost mode changed the heartbeat pace. */
  paceChanged(): void
  /** The switches changed (a wipe): tell the cloud. */
  statusChanged(): void
  /** A wipe: the notifications shown go with the rest of the user's data. */
  forgetNotifications(): Promise<void>
}

export class CommandExecutor implements Phone {
  private ringing: number | null = null

  constructor(private readonly opts: ExecutorOptions) {}

  /** Until when the phone rings (ms since epoch), or null. */
  get ringingUntil(): number | null {
    return this.ringing !== null && this.ringing > this.opts.clock.now() ? this.ringing : null
  }

  findDeviceEnabled(): boolean {
    const { cloudService, findDevice, paired } = this.opts.settings.value
    return cloudService && findDevice && paired
  }

  /**
   * F2: the outcome of a command that changes nothing on the phone, taken at once (locate: the current fix); undefined
   * for a command that must run. agent/remote.ts journals such an outcome as the command's only step.
   */
  answerAtOnce(command: Command): Outcome | undefined {
    if (command.type !== 'locate') return undefined
    const now = this.opts.clock.now()
    const fix = this.opts.location.fix(now)
    if (!fix) return { state: 'failed', reason: noFixReason(this.opts.location.describe?.(now)) }
    return { state: 'succeeded', data: { lat: fix.lat, lon: fix.lon, accuracy: fix.accuracy, at: now } }
  }

  /** F2: runs one verified command against this phone. */
  async run(command: Command): Promise<Outcome> {
    const now = this.opts.clock.now()
    const settings = this.opts.settings
    switch (command.type) {
      case 'locate':
        return this.answerAtOnce(command) as Outcome
      case 'ring':
        this.ringing = now + command.args.seconds * 1000
        return { state: 'succeeded', data: { seconds: command.args.seconds } }
      case 'lock':
        await settings.update({ lock: { message: command.args.message, phone: command.args.phone } })
        return { state: 'succeeded', data: { locked: true } }
      case 'lost-mode':
        if (command.args.on) await settings.update({ lostMode: true, lock: { message: command.args.message, phone: command.args.phone } })
        else await settings.update({ lostMode: false, lostModeEndedAt: now })
        this.opts.paceChanged()
        return { state: 'succeeded', data: { lostMode: command.args.on } }
      case 'wipe':
        return this.wipe(command.args)
    }
  }

  private async wipe(args: Extract<Command, { type: 'wipe' }>['args']): Promise<Outcome> {
    const wipe = () => wipeData(this.opts.dataDir, { keepSdcard: !args.eraseSdcard })
    // Sync holds still while the files go, so the emptied folders are not taken for deletes.
    const { files, bytes } = this.opts.sync ? await this.opts.sync.whilePaused(wipe) : await wipe()
    const { keepFindDevice } = args
    // The sequence numbers go on: a wiped phone's heartbeats still come after its earlier ones.
    const settings = this.opts.settings
    await settings.update({ ...DEFAULT_SETTINGS, nextSeq: settings.value.nextSeq, findDevice: keepFindDevice, paired: keepFindDevice })
    await this.opts.backup.reset()
    await this.opts.drive.reset()
    await this.opts.forgetNotifications()
    this.opts.statusChanged()
    return { state: 'succeeded', data: { files, bytes, sdcardKept: !args.eraseSdcard, findDeviceKept: keepFindDevice } }
  }
}
