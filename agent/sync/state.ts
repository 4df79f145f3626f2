/**
 * What the phone knows of the cloud (S1-S4), kept in `<data>/sync-state.json`
 * (a wipe resets it, so a wiped phone never takes its empty folders for
 * deletes): per category the cursor of the cloud's change feed, and per
 * item the version the cloud confirmed. An item carries the "in the cloud"
 * marker (S3) only when its bytes match that version -- never while an
 * upload is cut short, since the link is written only after the cloud
 * answered the item's metadata. A3: when the change feed says the cloud
 * cleared the account's data since, every link goes (cloudCleared).
 */
import { join } from 'node:path'
import { z } from 'zod'
import { JsonFile } from '../../common/json-file.js'
import { CATEGORIES, type Category } from '../phone-data/types.js'

const LinkSchema = z.strictObject({ sha256: z.string(), size: z.number().int().nonnegative() })
export type CloudLink = z.infer<typeof LinkSchema>

const CategoryStateSchema = z.strictObject({
  /** The change feed's cursor: every change up to here has been pulled. */
  cursor: z.number().int().nonnegative(),
  /** Item id → the version the cloud holds of it. */
  links: z.record(z.string(), LinkSchema),
  /** When this category last finished a sync, ms. */
  lastSync: z.number().int().nullable(),
})

type CategoryState = z.infer<typeof CategoryStateSchema>

export const SyncStateSchema = z.strictObject({
  photos: CategoryStateSchema,
  contacts: CategoryStateSchema,
  notes: CategoryStateSchema,
  recordings: CategoryStateSchema,
  /**
   * A3: when the cloud last cleared the account's data, as its change feed said it; null or absent (a data dir older
   * than the field) while the phone has seen none.
   */
  clearedAt: z.number().int().nullable().optional(),
  /**
   * A3: the cloud's last answer said the account is frozen (403 FROZEN); false or absent once an answer says it is not.
   * Kept, so a phone restarted while its account is frozen still says so.
   */
  frozen: z.boolean().optional(),
})
export type SyncStateValues = z.infer<typeof SyncStateSchema>

const empty = (): SyncStateValues => ({
  ...(Object.fromEntries(CATEGORIES.map((c) => [c, { cursor: 0, links: {}, lastSync: null }])) as Record<Category, CategoryState>),
  clearedAt: null,
  frozen: false,
})

export class SyncState {
  private values: SyncStateValues = empty()
  private readonly file: JsonFile<SyncStateValues>

  constructor(dataDir: string) {
    this.file = new JsonFile(join(dataDir, 'sync-state.json'), SyncStateSchema)
  }

  async load(): Promise<void> {
    this.values = await this.file.load(empty())
  }

  /** Forgets every link and cursor (a wipe). */
  async reset(): Promise<void> {
    this.values = empty()
    await this.file.save(this.values)
  }

  of(category: Category): CategoryState {
    return this.values[category]
  }

  link(category: Category, id: string): CloudLink | undefined {
    return this.values[category].links[id]
  }

  setLink(category: Category, id: string, link: CloudLink): void {
    this.values[category].links[id] = link
    this.save()
  }

  forget(category: Category, id: string): void {
    if (!(id in this.values[category].links)) return
    delete this.values[category].links[id]
    this.save()
  }

  /**
   * A3: the change feed says when the cloud last cleared the account's data. Another value than the one last seen
   * (none, in a data dir older than the field) means the cloud no longer holds what the links say: every link goes, so
   * no item carries the "in the cloud" marker and the next pass uploads each local item again; the cursors stay (the
   * cloud kept its feed's counter). True when the links went.
   */
  cloudCleared(clearedAt: number | null | undefined): boolean {
    if (clearedAt === null || clearedAt === undefined || clearedAt === this.values.clearedAt) return false
    for (const c of CATEGORIES) this.values[c].links = {}
    this.values.clearedAt = clearedAt
    this.save()
    return true
  }

  /** A3: when the cloud last cleared the account's data, as the phone was told; null while it was told of none. */
  get clearedAt(): number | null {
    return this.values.clearedAt ?? null
  }

  /** A3: whether the cloud's last answer said the account is frozen. */
  get frozen(): boolean {
    return this.values.frozen === true
  }

  setFrozen(frozen: boolean): void {
    if (this.frozen === frozen) return
    this.values.frozen = frozen
    this.save()
  }

  /** M2: the cloud moved: its change feed is another one, read from its start (the links stay: same ids, same bytes). */
  async restartFeeds(): Promise<void> {
    for (const c of CATEGORIES) this.values[c].cursor = 0
    await this.file.save(this.values)
  }

  setCursor(category: Category, cursor: number): void {
    this.values[category].cursor = cursor
    this.save()
  }

  synced(category: Category, at: number): void {
    this.values[category].lastSync = at
    this.save()
  }

  /** Resolves once everything changed so far is on disk. */
  async flushed(): Promise<void> {
    await this.file.flushed()
  }

  /** Saves in the background; overlapping saves are coalesced, so a sync of 1,000 items does not write 1,000 times. */
  private save(): void {
    // JsonFile keeps the newest value and writes it last; a failed write is retried by the next change.
    this.file
      .save(this.values)
      /* c8 ignore next -- a full or broken disk; flushed() after the pass reports nothing either */
      .catch(() => undefined)
  }
}
