/**
 * The phone's cloud drive (D1-D3): its file manager's drive entry (list,
 * upload, download, share) and the sync of its local Drive folder
 * (`<data>/sdcard/Drive/`). Every transfer takes the agent's transfer
 * signal, so switching the cloud service off or losing the network halts it.
 *
 * - D2: drive sync off stops the folder's uploads and nothing else: every
 *   file stays in the cloud with the same access.
 * - D3: with the phone's cloud service off the file manager shows no drive
 *   entries and says so, without calling the cloud; when the cloud itself
 *   answers SERVICE_NOT_ENABLED (the account's service is off) it says the same.
 * - A3: once the cloud cleared the account's data, the folder is uploaded
 *   again (cloudCleared).
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'
import type { z } from 'zod'
import { DRIVE_DEVICE_PATH, DriveFileReplySchema, DriveListSchema, DriveShareSchema, type DriveFile } from '../../common/cloud/drive-api.js'
import type { Clock, Timer } from '../../common/clock.js'
import { FakephoneError } from '../../common/errors.js'
import type { JsonFile } from '../../common/json-file.js'
import type { Logger } from '../../common/log.js'
import { saveFile } from '../../common/save-file.js'
import type { CloudClient } from '../cloud-client.js'
import { AFTER_WIPE_DRIVE_SETTINGS, DEFAULT_DRIVE_SETTINGS, driveFolder, driveSettingsFile, type DriveSettings } from './drive-settings.js'
import { makeDirsSync } from '../../common/make-dirs.js'

/** D3: what the file manager says instead of the drive while the cloud service is off. */
export const PHONE_NOT_ENABLED = 'cloud service is not enabled, enable it in settings'

/** Time between syncs of the Drive folder while sync is on. */
const DEFAULT_DRIVE_SYNC_MS = 5 * 60_000

/** What the drive needs of the phone it runs on. */
export interface DrivePhone {
  readonly cloud: CloudClient | null
  canTransfer(): boolean
  readonly transferSignal: AbortSignal
  status(): { cloudService: boolean }
  on(event: 'transfers', listener: (possible: boolean) => void): unknown
}

export interface DriveListing {
  files: DriveFile[]
  /** Why there are no drive entries (D3), when there are none for that reason. */
  notice?: string
}

export interface SyncReport {
  /** Drive-folder paths uploaded by this sync. */
  uploaded: string[]
  /** Why nothing was looked at, when nothing was. */
  skipped?: string
}

export class PhoneDrive {
  private settings: DriveSettings = DEFAULT_DRIVE_SETTINGS
  private readonly file: JsonFile<DriveSettings>
  private timer: Timer | null = null
  private running: Promise<SyncReport> | null = null

  constructor(
    private readonly phone: DrivePhone,
    private readonly dataDir: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly syncEveryMs = DEFAULT_DRIVE_SYNC_MS,
  ) {
    this.file = driveSettingsFile(dataDir)
  }

  async start(): Promise<void> {
    this.settings = await this.file.load(DEFAULT_DRIVE_SETTINGS)
    this.phone.on('transfers', (possible) => {
      if (possible) this.syncInBackground()
    })
    this.schedule()
  }

  async stop(): Promise<void> {
    this.timer?.cancel()
    this.timer = null
    // A sync in progress was halted by the agent's transfer signal; how it ended is its caller's business.
    await Promise.allSettled([this.running])
    await this.file.flushed()
  }

  get syncOn(): boolean {
    return this.settings.sync
  }

  /** D2: the drive sync switch; on syncs the folder at once. */
  async setSync(on: boolean): Promise<SyncReport> {
    this.settings = { ...this.settings, sync: on }
    await this.file.save(this.settings)
    return this.sync()
  }

  /** After a wipe: drive sync off and nothing counted as uploaded, on disk too (the wipe leaves drive.json to this). */
  async reset(): Promise<void> {
    this.settings = AFTER_WIPE_DRIVE_SETTINGS
    await this.file.save(this.settings)
  }

  /**
   * A3: the cloud cleared the account's data (app data sync heard it on its change feed): nothing the folder's sync
   * uploaded is there any more, so it forgets what it uploaded and syncs the folder again, every file in it.
   */
  async cloudCleared(): Promise<void> {
    await Promise.allSettled([this.running])
    this.settings = { ...this.settings, synced: {} }
    await this.file.save(this.settings)
    this.syncInBackground()
  }

  /** D3: the file manager's drive entries, or none and why. */
  async list(): Promise<DriveListing> {
    if (!this.phone.status().cloudService) return { files: [], notice: PHONE_NOT_ENABLED }
    const signal = this.phone.transferSignal
    try {
      return await this.cloud().call('GET', `${DRIVE_DEVICE_PATH}/files`, DriveListSchema, undefined, signal)
    } catch (err) {
      if ((err as FakephoneError).code === 'SERVICE_NOT_ENABLED') return { files: [], notice: PHONE_NOT_ENABLED }
      throw err
    }
  }

  /** Uploads a file from anywhere on the phone into the drive folder `folder`. */
  async upload(path: string, folder = '/'): Promise<DriveFile> {
    const signal = this.phone.transferSignal
    return this.put(await readFile(path), basename(path), folder, signal)
  }

  /** Saves a drive file's bytes (checked against their SHA-256) at `dest`. */
  async download(id: string, dest: string): Promise<DriveFile> {
    const signal = this.phone.transferSignal
    const file = (await this.list()).files.find((f) => f.id === id)
    if (!file) throw new FakephoneError('NOT_FOUND', `no drive file "${id}" (see \`phone drive list\`)`)
    const bytes = await this.cloud().download(file.sha256, signal)
    makeDirsSync(dirname(dest))
    // Whole or not at all: a failed write (a full disk) leaves `dest` as it was.
    await saveFile(dest, bytes)
    return file
  }

  /** A public link to a drive file. */
  share(id: string): Promise<z.infer<typeof DriveShareSchema>> {
    return this.cloud().call(
      'POST',
      `${DRIVE_DEVICE_PATH}/files/${encodeURIComponent(id)}/shares`,
      DriveShareSchema,
      {},
      this.phone.transferSignal,
    )
  }

  /** Uploads what changed in the Drive folder, while drive sync is on and transfers are possible (D2). */
  sync(): Promise<SyncReport> {
    if (!this.settings.sync) return Promise.resolve({ uploaded: [], skipped: 'drive sync is off' })
    if (!this.phone.canTransfer())
      return Promise.resolve({ uploaded: [], skipped: 'no transfers now: the cloud service is off or there is no network' })
    this.running ??= this.syncFolder(this.phone.transferSignal).finally(() => (this.running = null))
    return this.running
  }

  /** `signal` is taken when the sync starts, so a halt (service off, network cut, agent stopped) stops the rest of it. */
  private async syncFolder(signal: AbortSignal): Promise<SyncReport> {
    const root = driveFolder(this.dataDir)
    const uploaded: string[] = []
    for (const path of await filesUnder(root)) {
      const key = relative(root, path).split(sep).join('/')
      const bytes = await readFile(path)
      const sha256 = createHash('sha256').update(bytes).digest('hex')
      if (this.settings.synced[key] === sha256) continue
      const folder = `/${dirname(key) === '.' ? '' : dirname(key)}`
      await this.put(bytes, basename(key), folder, signal)
      this.settings = { ...this.settings, synced: { ...this.settings.synced, [key]: sha256 } }
      await this.file.save(this.settings)
      uploaded.push(key)
    }
    if (uploaded.length > 0) this.log.info({ uploaded: uploaded.length }, 'drive folder synced')
    return { uploaded }
  }

  private async put(bytes: Buffer, name: string, folder: string, signal: AbortSignal): Promise<DriveFile> {
    const cloud = this.cloud()
    const sha256 = await cloud.upload(bytes, signal)
    const reply = await cloud.call(
      'POST',
      `${DRIVE_DEVICE_PATH}/files`,
      DriveFileReplySchema,
      { name, folder, sha256, size: bytes.length },
      signal,
    )
    return reply.file
  }

  private cloud(): CloudClient {
    if (!this.phone.status().cloudService) throw new FakephoneError('SERVICE_NOT_ENABLED', PHONE_NOT_ENABLED)
    if (!this.phone.cloud) throw new FakephoneError('NO_CLOUD', 'this phone has no cloud URL (start the agent with --cloud)')
    if (!this.phone.canTransfer()) throw new FakephoneError('NO_NETWORK', 'no network: the cloud drive needs Wi-Fi or mobile data')
    return this.phone.cloud
  }

  /** Syncs the folder without waiting for the schedule (A3: the account is back); a failure is logged, the schedule tries again. */
  syncInBackground(): void {
    this.sync().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'drive sync failed; it tries again later'))
  }

  private schedule(): void {
    this.timer = this.clock.after(this.syncEveryMs, () => {
      this.syncInBackground()
      this.schedule()
    })
  }
}

/** Every regular file under `dir`, sorted; none when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true })
  } catch {
    return []
  }
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort()
}
