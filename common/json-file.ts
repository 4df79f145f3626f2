/**
 * A JSON document on disk, checked by a schema when read and replaced
 * atomically (write to a temporary file, fsync, rename) when saved. Saves
 * that overlap are coalesced: the newest value always lands last.
 */
import { statSync } from 'node:fs'
import { open, readFile, rename, rm } from 'node:fs/promises'
import { syncDir } from './sync-dir.js'
import { dirname } from 'node:path'
import type { z } from 'zod'
import { decodeJson } from './contract.js'
import { FakephoneError } from './errors.js'
import { cannotWrite } from './storage-errors.js'

/**
 * A state file that cannot be read for what it should hold (torn by a failing disk, cut short, edited by hand): it names
 * the file (and `where` in it) and what the operator can do, as the process stops rather than start without it.
 */
export class JsonFileError extends FakephoneError {
  constructor(
    readonly file: string,
    reason: string,
    where = file,
  ) {
    super('INVALID', `${where}: ${reason}: the file is damaged; restore it from a backup, or move it away to start without what it held`)
  }
}

/**
 * A state file valid but for fields this build does not know: what a newer fakephone writes (the schemas are strict), so
 * the usual words (damaged, move it away) would lose what it holds. The daemon exits EX_CONFIG for it (cli/main.ts).
 */
export class JsonFileTooNewError extends FakephoneError {
  constructor(file: string, reason: string) {
    super(
      'DATA_TOO_NEW',
      `${file}: ${reason}: it holds what this build of fakephone does not know, as a newer fakephone writes it: run that ` +
        'one, or put back the copy of the data directory taken before it (the file is not damaged: keep it)',
    )
  }
}

/** True when `text`, which `schema` refused, is JSON refused only for keys it does not know. */
function onlyUnknownKeys(schema: z.ZodType, text: string): boolean {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return false
  }
  // Refused by decodeJson, so refused here: the error is there.
  const { issues } = schema.safeParse(value).error as z.ZodError
  return issues.every((i) => i.code === 'unrecognized_keys')
}

export class JsonFile<T> {
  private writing: Promise<void> | null = null
  private next: T | undefined
  private hasNext = false
  private onDisk: T | undefined

  /**
   * What the file holds, as far as this object knows: the value loaded (or the fallback standing for no file), or the
   * last one saved since. A holder whose save failed goes back to it (PhoneSettings).
   */
  get stored(): T | undefined {
    return this.onDisk
  }

  constructor(
    readonly path: string,
    private readonly schema: z.ZodType<T>,
  ) {}

  /** The stored value, `fallback` when the file does not exist; an invalid file is an error naming the file. */
  async load(fallback: T): Promise<T> {
    const text = await readTextIfExists(this.path)
    if (text === null) return (this.onDisk = fallback)
    const decoded = decodeJson(this.schema, text)
    if (decoded.ok) return (this.onDisk = decoded.value)
    if (onlyUnknownKeys(this.schema, text)) throw new JsonFileTooNewError(this.path, decoded.reason)
    throw new JsonFileError(this.path, decoded.reason)
  }

  /** Resolves once `value` (or a newer one) is durably on disk. */
  save(value: T): Promise<void> {
    this.next = value
    this.hasNext = true
    if (!this.writing) this.writing = this.drain()
    return this.writing
  }

  /** Resolves when no save is in progress (whether the last one worked or not). */
  async flushed(): Promise<void> {
    await this.writing?.catch(() => undefined)
  }

  private async drain(): Promise<void> {
    try {
      while (this.hasNext) {
        const value = this.next as T
        this.hasNext = false
        await writeAtomic(this.path, JSON.stringify(value, null, 2) + '\n')
        this.onDisk = value
      }
    } finally {
      this.writing = null
    }
  }
}

/**
 * A file's text, or null when it does not exist. A missing file is the usual case at a phone's first start (half a
 * dozen of them): a stat that makes no Error says so at a tenth of the cost of a failed read, whose Error and stack trace
 * cost more than the read (a fleet's ramp).
 */
export async function readTextIfExists(path: string): Promise<string | null> {
  if (!statSync(path, { throwIfNoEntry: false })) return null
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    /* c8 ignore next -- only when the file is removed between the stat and the read */
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/**
 * Replaces `path` with `text` durably: a temporary file beside it, synced, renamed over it, the directory synced. A
 * write that fails (a full disk) leaves `path` as it was and removes the temporary file.
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(tmp, { force: true })
    throw cannotWrite(path, err)
  }
  await fh.close()
  await rename(tmp, path)
  // The rename itself is durable only once the directory is synced (power loss right after it could undo it).
  await syncDir(dirname(path))
}
