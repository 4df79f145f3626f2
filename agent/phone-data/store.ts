/**
 * The phone's own data as real files (S1-S4): photos, contacts, notes and
 * recordings under the agent's data directory, in the layout types.ts
 * describes. The user's changes (add, edit, delete) emit `changed`; writes
 * and removals that came from the cloud do not (S4: a delete made while sync
 * is off is the user's, and sync decides what to do with it). Every write is
 * atomic (a temporary file, its mtime set from the agent's clock, renamed
 * into place). Listing reads each file's hash and metadata once and keeps
 * them keyed by size, mtime and inode, so 1,000 photos list fast.
 */
import { createHash, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import type { Clock } from '../../common/clock.js'
import { FakephoneError } from '../../common/errors.js'
import type { Logger } from '../../common/log.js'
import { readPhotoMeta } from '../../common/photo-meta.js'
import { parseNote, toNoteText } from './note.js'
import { seedOf } from '../../common/random.js'
import { makePhoto, splitCamera } from './photo.js'
import { CATEGORIES, type Category, type ItemInput, type LocalItem, type PhoneData, type PhoneDataEvents } from './types.js'
import { parseVcard, toVcard } from './vcard.js'
import { makeWav, wavDuration } from './wav.js'

export type PhoneDataErrorCode = 'NOT_FOUND' | 'NOT_EDITABLE' | 'BAD_ID' | 'BAD_CATEGORY' | 'BAD_INPUT'

export class PhoneDataError extends FakephoneError {
  constructor(
    override readonly code: PhoneDataErrorCode,
    message: string,
  ) {
    super(code, message)
  }
}

interface Layout {
  /** The category's folder, relative to the data directory. */
  dir: string[]
  /** The file names it holds. */
  ext: RegExp
  /** What an id of it looks like, for error messages. */
  example: string
  editable: boolean
}

const LAYOUT: Readonly<Record<Category, Layout>> = {
  photos: { dir: ['sdcard', 'DCIM', 'Camera'], ext: /\.jpe?g$/i, example: 'IMG_20260101_120000_000.jpg', editable: false },
  recordings: { dir: ['sdcard', 'Recordings'], ext: /\.wav$/i, example: 'REC_20260101_120000_000.wav', editable: false },
  contacts: { dir: ['contacts'], ext: /\.vcf$/i, example: '<uuid>.vcf', editable: true },
  notes: { dir: ['notes'], ext: /\.txt$/i, example: '<uuid>.txt', editable: true },
}

/** The category named by `name`, or a BAD_CATEGORY error listing the ones there are. */
export function checkCategory(name: string): Category {
  if ((CATEGORIES as readonly string[]).includes(name)) return name as Category
  throw new PhoneDataError('BAD_CATEGORY', `unknown category "${name}": use one of ${CATEGORIES.join(', ')}`)
}

/** Ids are plain file names: letters, digits, `.`, `_` and `-`, not starting with a dot, with the category's extension. */
export function checkId(category: Category, id: string): string {
  const { ext, example } = LAYOUT[checkCategory(category)]
  if (id.length > 200 || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) || !ext.test(id))
    throw new PhoneDataError('BAD_ID', `bad ${category} id "${id}": an id is a file name in the ${category} folder, like ${example}`)
  return id
}

/** The folder a category's files live in. */
export const categoryDir = (dataDir: string, category: Category): string => join(dataDir, ...LAYOUT[category].dir)

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** `YYYYMMDD_HHMMSS_mmm` in UTC: how the camera and the recorder name their files. */
export function fileStamp(ms: number): string {
  const t = new Date(ms)
  const date = `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}`
  return `${date}_${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}_${pad(t.getUTCMilliseconds(), 3)}`
}

/** What the user typed, checked: a BAD_INPUT error says what is wrong. */
function checkInput(input: ItemInput): void {
  const bad = (why: string): never => {
    throw new PhoneDataError('BAD_INPUT', why)
  }
  checkCategory(input.category)
  switch (input.category) {
    case 'photos':
      if (input.lat !== undefined && !(Math.abs(input.lat) <= 90)) bad(`latitude ${input.lat} is not between -90 and 90`)
      if (input.lon !== undefined && !(Math.abs(input.lon) <= 180)) bad(`longitude ${input.lon} is not between -180 and 180`)
      if ((input.lat === undefined) !== (input.lon === undefined)) bad('a photo position needs both latitude and longitude')
      if (input.camera !== undefined && input.camera.trim() === '') bad('the camera name is empty')
      break
    case 'recordings':
      if (input.durationS !== undefined && !(input.durationS >= 0.1 && input.durationS <= 3600))
        bad(`a recording lasts 0.1 to 3600 seconds, not ${input.durationS}`)
      break
    case 'contacts':
      if (input.name.trim() === '' || input.name.length > 200) bad('a contact needs a name of 1 to 200 characters')
      break
    case 'notes':
      if (input.title.trim() === '' || input.title.length > 200 || /[\r\n]/.test(input.title))
        bad('a note needs a title of 1 to 200 characters on one line')
      break
  }
}

export interface PhoneFilesOptions {
  dataDir: string
  clock: Clock
  /** The camera named in new photos' EXIF (default "Xiaomi 13"). */
  camera?: string
  /** Where a failing `changed` listener is reported (it never fails the user's change). */
  log?: Logger
}

interface Cached {
  key: string
  sha256: string
  meta: LocalItem['meta']
}

export class PhoneFiles extends EventEmitter<PhoneDataEvents> implements PhoneData {
  private readonly cache = new Map<string, Cached>()
  /** Ids handed out but not yet on disk, so two adds in the same millisecond get different names. */
  private readonly reserved = new Set<string>()
  private tmpCount = 0

  constructor(private readonly opts: PhoneFilesOptions) {
    super()
  }

  async list(category: Category): Promise<LocalItem[]> {
    let names: string[]
    try {
      names = await readdir(categoryDir(this.opts.dataDir, checkCategory(category)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const ids = names.filter((name) => !name.startsWith('.') && LAYOUT[category].ext.test(name)).sort()
    const items = await Promise.all(ids.map((id) => this.get(category, id)))
    // A file deleted while the folder was being read is simply not listed.
    return items.filter((item) => item !== undefined)
  }

  async get(category: Category, id: string): Promise<LocalItem | undefined> {
    const path = this.pathOf(category, id)
    let info: Stats
    try {
      info = await stat(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    if (!info.isFile()) return undefined
    return this.describe(category, id, path, info)
  }

  /** The item at `path` as `info` found it; `bytes`, when the caller has just written them, spare reading the file back. */
  private async describe(category: Category, id: string, path: string, info: Stats, bytes?: Buffer): Promise<LocalItem> {
    const key = `${info.size}:${info.mtimeMs}:${info.ino}`
    let cached = this.cache.get(path)
    if (cached?.key !== key) {
      const content = bytes ?? (await readFile(path))
      cached = { key, sha256: createHash('sha256').update(content).digest('hex'), meta: await metaOf(category, content) }
      this.cache.set(path, cached)
    }
    return { category, id, path, size: info.size, modifiedAt: Math.round(info.mtimeMs), sha256: cached.sha256, meta: cached.meta }
  }

  async read(category: Category, id: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(category, id))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(category, id)
      throw err
    }
  }

  async add(input: ItemInput): Promise<LocalItem> {
    checkInput(input)
    const now = this.opts.clock.now()
    const { category } = input
    let id: string
    let bytes: Buffer
    switch (input.category) {
      case 'photos': {
        const takenAt = input.takenAt ?? now
        id = await this.freshId('photos', 'IMG', takenAt, '.jpg')
        const { make, model } = splitCamera(input.camera ?? this.opts.camera ?? 'Xiaomi 13')
        bytes = makePhoto({ takenAt, lat: input.lat ?? null, lon: input.lon ?? null, make, model }, seedOf(id))
        break
      }
      case 'recordings':
        id = await this.freshId('recordings', 'REC', now, '.wav')
        bytes = makeWav(input.durationS ?? 5, 220 + (seedOf(id) % 660))
        break
      case 'contacts': {
        const uid = randomUUID()
        id = `${uid}.vcf`
        bytes = Buffer.from(
          toVcard({ uid, name: input.name.trim(), phone: blankToNull(input.phone), email: blankToNull(input.email), rev: now }),
        )
        break
      }
      case 'notes':
        id = `${randomUUID()}.txt`
        bytes = Buffer.from(toNoteText({ title: input.title.trim(), body: input.body ?? '' }))
        break
    }
    try {
      const item = await this.write(category, id, bytes)
      this.changed(category, id, 'added')
      return item
    } finally {
      this.reserved.delete(`${category}/${id}`)
    }
  }

  /** Replaces what the user typed; a field left out (undefined) keeps its value, an empty one clears it. */
  async edit(category: Category, id: string, input: ItemInput): Promise<LocalItem> {
    checkId(category, id)
    if (!LAYOUT[category].editable)
      throw new PhoneDataError('NOT_EDITABLE', `${category} cannot be edited on the phone, only taken and deleted`)
    if (input.category !== category) throw new PhoneDataError('BAD_INPUT', `the changes are for ${input.category}, not ${category}`)
    checkInput(input)
    const old = (await this.read(category, id)).toString('utf8')
    const text = input.category === 'contacts' ? editedContact(old, id, input, this.opts.clock.now()) : editedNote(old, input as NoteInput)
    const item = await this.write(category, id, Buffer.from(text))
    this.changed(category, id, 'edited')
    return item
  }

  async delete(category: Category, id: string): Promise<boolean> {
    const gone = await this.remove(category, id)
    if (gone) this.changed(category, id, 'deleted')
    return gone
  }

  /**
   * Writes `bytes` under `id` atomically, its mtime `modifiedAt` (default: the
   * clock's now) already set when it appears; emits no `changed`.
   */
  async write(category: Category, id: string, bytes: Buffer, opts: { modifiedAt?: number } = {}): Promise<LocalItem> {
    const path = this.pathOf(category, id)
    const dir = categoryDir(this.opts.dataDir, category)
    await mkdir(dir, { recursive: true })
    const tmp = join(dir, `.${id}.${process.pid}.${++this.tmpCount}.tmp`)
    const mtime = new Date(opts.modifiedAt ?? this.opts.clock.now())
    try {
      await writeFile(tmp, bytes)
      await utimes(tmp, mtime, mtime)
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return this.describe(category, id, path, await stat(path), bytes)
  }

  async remove(category: Category, id: string): Promise<boolean> {
    const path = this.pathOf(category, id)
    try {
      await rm(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
    this.cache.delete(path)
    return true
  }

  /** Tells the listeners; one that throws is logged, and the change (already on disk) stands. */
  private changed(category: Category, id: string, kind: 'added' | 'edited' | 'deleted'): void {
    try {
      this.emit('changed', category, id, kind)
    } catch (err) {
      this.opts.log?.error({ err, category, id, kind }, 'a listener of phone data changes failed')
    }
  }

  private pathOf(category: Category, id: string): string {
    return join(categoryDir(this.opts.dataDir, category), checkId(category, id))
  }

  /** `PREFIX_YYYYMMDD_HHMMSS_mmm.ext`, the millisecond part moved on while that name is taken. */
  private async freshId(category: Category, prefix: string, at: number, ext: string): Promise<string> {
    const name = (t: number): string => `${prefix}_${fileStamp(t)}${ext}`
    let t = at
    while (!(await this.claim(category, name(t)))) t++
    return name(t)
  }

  /** Reserves `id` for an add in progress; false when it is reserved already or on disk. */
  private async claim(category: Category, id: string): Promise<boolean> {
    const key = `${category}/${id}`
    if (this.reserved.has(key)) return false
    this.reserved.add(key)
    if ((await this.get(category, id)) === undefined) return true
    this.reserved.delete(key)
    return false
  }
}

type ContactInput = Extract<ItemInput, { category: 'contacts' }>
type NoteInput = Extract<ItemInput, { category: 'notes' }>

function editedContact(old: string, id: string, input: ContactInput, now: number): string {
  const was = parseVcard(old)
  const phone = input.phone === undefined ? was.phone : blankToNull(input.phone)
  const email = input.email === undefined ? was.email : blankToNull(input.email)
  return toVcard({ uid: was.uid || id.replace(/\.vcf$/i, ''), name: input.name.trim(), phone, email, rev: now })
}

const editedNote = (old: string, input: NoteInput): string =>
  toNoteText({ title: input.title.trim(), body: input.body ?? parseNote(old).body })

const blankToNull = (v: string | undefined): string | null => (v === undefined || v.trim() === '' ? null : v.trim())

export const notFound = (category: Category, id: string): PhoneDataError =>
  new PhoneDataError('NOT_FOUND', `no ${category} item "${id}" on this phone`)

/** What each category's `meta` carries, read from the file itself. */
async function metaOf(category: Category, bytes: Buffer): Promise<LocalItem['meta']> {
  switch (category) {
    case 'photos':
      return readPhotoMeta(bytes)
    case 'recordings':
      return { durationS: wavDuration(bytes) }
    case 'contacts': {
      const c = parseVcard(bytes.toString('utf8'))
      return { name: c.name, phone: c.phone, email: c.email }
    }
    case 'notes':
      return { title: parseNote(bytes.toString('utf8')).title }
  }
}
