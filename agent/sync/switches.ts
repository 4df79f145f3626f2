/**
 * The phone's sync switches (S1, S3), kept in `<data>/sync-switches.json`
 * (a wipe switches every one off, see AFTER_WIPE):
 * - S1: one switch per category in the app-data-sync list; off, the
 *   category is neither uploaded nor pulled.
 * - S3: photos can be stopped in three places -- the gallery app's own
 *   auto-backup, the album switch on the cloud-service page and the photos
 *   entry of the app-data-sync list; any one of them off stops photo upload.
 */
import { join } from 'node:path'
import { JsonFile } from '../../common/json-file.js'
import { SyncSwitchesSchema, type SyncSwitchValues } from '../../common/phone-status.js'
import type { Category } from '../phone-data/types.js'

/** The file's schema is shared with the status the control socket answers (common/phone-status). */
export type { SyncSwitchValues }

/** A phone signed in to the cloud syncs everything until told otherwise. */
export const DEFAULT_SYNC_SWITCHES: SyncSwitchValues = {
  categories: { photos: true, contacts: true, notes: true, recordings: true },
  galleryBackup: true,
  albumSync: true,
}

/**
 * A wiped phone syncs nothing until its user switches each category on
 * again: a lost phone wiped remotely must not pull its owner's photos and
 * contacts straight back down from the cloud.
 */
const AFTER_WIPE: SyncSwitchValues = {
  categories: { photos: false, contacts: false, notes: false, recordings: false },
  galleryBackup: true,
  albumSync: true,
}

export type PhotoSwitch = 'galleryBackup' | 'albumSync'

export class SyncSwitches {
  private values: SyncSwitchValues = structuredClone(DEFAULT_SYNC_SWITCHES)
  private readonly file: JsonFile<SyncSwitchValues>

  constructor(dataDir: string) {
    this.file = new JsonFile(join(dataDir, 'sync-switches.json'), SyncSwitchesSchema)
  }

  /** Reads the switches from disk (their defaults when the file is gone, e.g. after a wipe). */
  async load(): Promise<void> {
    this.values = await this.file.load(structuredClone(DEFAULT_SYNC_SWITCHES))
  }

  /** After a wipe: every category off (AFTER_WIPE). */
  async reset(): Promise<void> {
    this.values = structuredClone(AFTER_WIPE)
    await this.file.save(this.values)
  }

  get current(): SyncSwitchValues {
    return structuredClone(this.values)
  }

  /** S1: the category's switch in the app-data-sync list. */
  isOn(category: Category): boolean {
    return this.values.categories[category]
  }

  /** S1, S3: whether local changes of the category go up (photos need all three switches on). */
  uploads(category: Category): boolean {
    return this.isOn(category) && (category !== 'photos' || (this.values.galleryBackup && this.values.albumSync))
  }

  async setCategory(category: Category, on: boolean): Promise<void> {
    await this.set({ ...this.values, categories: { ...this.values.categories, [category]: on } })
  }

  async setPhotoSwitch(name: PhotoSwitch, on: boolean): Promise<void> {
    await this.set({ ...this.values, [name]: on })
  }

  /** A switch the user flips: in force at once, undone when it cannot be saved (a full disk), as the phone's settings are. */
  private async set(values: SyncSwitchValues): Promise<void> {
    this.values = values
    try {
      await this.file.save(values)
    } catch (err) {
      /* c8 ignore next -- the switches are loaded (so the file's value known) before any is flipped */
      if (this.file.stored) this.values = this.file.stored
      throw err
    }
  }

  async flushed(): Promise<void> {
    await this.file.flushed()
  }
}
