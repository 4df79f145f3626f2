/**
 * The phone's own data (S1-S4): what the user has on the device, as real
 * files under the agent's data directory. This file is the interface the
 * rest of the agent (sync, backup, drive) reads it through.
 *
 *   <data>/sdcard/DCIM/Camera/IMG_YYYYMMDD_HHMMSS_NNN.jpg   photos: JPEG with EXIF (capture time, GPS, camera)
 *   <data>/sdcard/Recordings/REC_YYYYMMDD_HHMMSS_NNN.wav   recordings: small WAV files (16-bit PCM mono, 8 kHz)
 *   <data>/contacts/<uuid>.vcf                              contacts: one vCard 3.0 each
 *   <data>/notes/<uuid>.txt                                 notes: first line is the title
 *
 * Times in names are UTC; NNN is the millisecond, moved on by one while a
 * name is taken. Files whose names start with a dot are temporary (an atomic
 * write in progress) and never listed. The implementation is PhoneFiles in
 * store.ts; its errors carry the codes NOT_FOUND, NOT_EDITABLE, BAD_ID,
 * BAD_CATEGORY and BAD_INPUT.
 */
import type { EventEmitter } from 'node:events'

export const CATEGORIES = ['photos', 'contacts', 'notes', 'recordings'] as const
export type Category = (typeof CATEGORIES)[number]

export interface LocalItem {
  category: Category
  /** Stable id: the file's name within its category folder, e.g. `IMG_20260101_120000_001.jpg`. Unique across phones. */
  id: string
  /** Absolute path of the file. */
  path: string
  size: number
  /** Last change, ms since the epoch (the file's mtime, set from the agent's clock). */
  modifiedAt: number
  /** SHA-256 of the bytes, lower-case hex. */
  sha256: string
  /**
   * What the category carries, read from the file itself (null: the file does not say):
   * photos {takenAt, lat, lon, camera} from its EXIF; contacts {name, phone, email}; notes {title}; recordings {durationS}.
   */
  meta: Record<string, string | number | null>
}

/** What a user types to create or change an item. */
export type ItemInput =
  | { category: 'photos'; takenAt?: number; lat?: number; lon?: number; camera?: string }
  | { category: 'contacts'; name: string; phone?: string; email?: string }
  | { category: 'notes'; title: string; body?: string }
  | { category: 'recordings'; durationS?: number }

export interface PhoneDataEvents {
  /** The user added, edited or deleted an item on the phone (not a write that came from the cloud). */
  changed: [category: Category, id: string, kind: 'added' | 'edited' | 'deleted']
}

export interface PhoneData extends EventEmitter<PhoneDataEvents> {
  list(category: Category): Promise<LocalItem[]>
  get(category: Category, id: string): Promise<LocalItem | undefined>
  read(category: Category, id: string): Promise<Buffer>
  /** The user creates an item (a photo taken, a contact typed in). */
  add(input: ItemInput): Promise<LocalItem>
  /** The user changes an item; photos and recordings cannot be edited (a NOT_EDITABLE error). */
  edit(category: Category, id: string, input: ItemInput): Promise<LocalItem>
  /** The user deletes an item; false when there was none. */
  delete(category: Category, id: string): Promise<boolean>
  /**
   * Writes bytes that came from the cloud (sync pull, restore) under `id`, atomically, its mtime `modifiedAt` (default: the clock's now);
   * emits no `changed`.
   */
  write(category: Category, id: string, bytes: Buffer, opts?: { modifiedAt?: number }): Promise<LocalItem>
  /** Removes an item because the cloud said so (a delete synced from another phone); emits no `changed`. */
  remove(category: Category, id: string): Promise<boolean>
}
