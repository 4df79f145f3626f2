/**
 * Writes a BagIt 1.0 bag (RFC 8493; M3): payload files under `data/`, each
 * hashed with SHA-256 while it is written; then `manifest-sha256.txt`,
 * `bagit.txt`, `bag-info.txt` (with `Payload-Oxum` and `Bagging-Date`, plus
 * whatever fields the caller adds) and `tagmanifest-sha256.txt` over those
 * three. The bag goes into a directory that must not exist yet or be empty
 * (`create`), or carries on one an earlier run left unfinished (`resume`): a
 * payload file already there is kept when its SHA-256 and size are the ones
 * expected (`keep`), any other is written again, and `finish` removes what
 * this run did not write, so the bag holds exactly this run's files.
 */
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { lstat, mkdir, readdir, rm, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FakephoneError } from '../errors.js'
import { encodeManifestPath, unsafePath } from './paths.js'
import { sha256File } from '../hash-file.js'
import { makeDirsSync } from '../make-dirs.js'

const BAGIT_TXT = 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n'

/** A bag-info.txt field: one value, or several (the label repeated, RFC 8493 section 2.2.2). */
export type BagInfo = Readonly<Record<string, string | readonly string[]>>

export class BagError extends FakephoneError {
  constructor(code: 'BAG_EXISTS' | 'BAD_PATH' | 'DUPLICATE' | 'BAD_INFO', message: string) {
    super(code, message)
  }
}

export interface WrittenFile {
  /** Relative to the bag's base directory, e.g. `data/photos/IMG_1.jpg`. */
  path: string
  sha256: string
  size: number
}

export interface BagSummary {
  dir: string
  files: number
  bytes: number
  /** `bytes.files`, as bag-info.txt says it. */
  oxum: string
}

/**
 * `Label: value` lines; each line break in a value (LF, CR or CRLF, section 2.2.2's three) starts a continuation line
 * indented by two spaces, so no break is left for a reader to take as the end of a field (a legacy account name may
 * hold a lone CR). parseBagInfo reads each back as LF.
 */
export function formatBagInfo(info: BagInfo): string {
  let text = ''
  for (const [label, value] of Object.entries(info)) {
    if (!/^[^:\s][^:\r\n]*$/.test(label)) throw new BagError('BAD_INFO', `bag-info label "${label}" may not hold ":" or a line break`)
    for (const v of typeof value === 'string' ? [value] : value) text += `${label}: ${v.replace(/\r\n|\r|\n/g, '\n  ')}\n`
  }
  return text
}

export class BagWriter {
  private readonly files = new Map<string, WrittenFile>()
  private bytes = 0

  private constructor(
    readonly dir: string,
    /** Carrying on an unfinished bag: files may be there already. */
    private readonly resuming = false,
  ) {}

  /** Starts a bag in `dir`, which must not exist or be empty. */
  static async create(dir: string): Promise<BagWriter> {
    makeDirsSync(dir)
    if ((await readdir(dir)).length > 0) throw new BagError('BAG_EXISTS', `${dir} is not empty: a bag goes into a new or empty directory`)
    await mkdir(join(dir, 'data'))
    return new BagWriter(dir)
  }

  /**
   * Carries on the unfinished bag an earlier run left in `dir` (made when it is not there): its payload files stay for
   * `keep` to check, its tag files go (`finish` writes them again). Only for a directory the caller made itself: what
   * this run does not write in it is removed.
   */
  static async resume(dir: string): Promise<BagWriter> {
    await mkdir(join(dir, 'data'), { recursive: true })
    for (const name of await readdir(dir)) if (name !== 'data') await rm(join(dir, name), { recursive: true, force: true })
    return new BagWriter(dir, true)
  }

  /** Payload files written so far. */
  get written(): readonly WrittenFile[] {
    return [...this.files.values()]
  }

  /**
   * Writes one payload file at `data/<path>` from bytes or a stream, hashing
   * it on the way; `onBytes` hears each chunk's length (for a progress line).
   */
  async add(path: string, source: Uint8Array | string | Readable, onBytes?: (n: number) => void): Promise<WrittenFile> {
    const { rel, target } = this.place(path)
    await mkdir(dirname(target), { recursive: true })
    // A file an earlier run left there (cut short, or not the one wanted now) is written again.
    if (this.resuming) await rm(target, { force: true })
    const hash = createHash('sha256')
    let size = 0
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk)
        size += chunk.length
        onBytes?.(chunk.length)
        done(null, chunk)
      },
    })
    const input = source instanceof Readable ? source : Readable.from([Buffer.from(source)])
    await pipeline(input, tap, createWriteStream(target, { flags: 'wx' }))
    const file = { path: rel, sha256: hash.digest('hex'), size }
    this.files.set(rel, file)
    this.bytes += size
    return file
  }

  /**
   * When resuming: the payload file at `data/<path>` an earlier run wrote, counted into the bag when its size and
   * SHA-256 are `size` and `sha256` (it is read and hashed, never taken on trust); undefined when it is not there or
   * differs (then `add` writes it again). Always undefined for a new bag.
   */
  async keep(path: string, sha256: string, size: number): Promise<WrittenFile | undefined> {
    const { rel, target } = this.place(path)
    if (!this.resuming) return undefined
    const found = await lstat(target).catch(() => undefined)
    if (found?.isFile() !== true || found.size !== size) return undefined
    if ((await sha256File(target)) !== sha256) return undefined
    const file = { path: rel, sha256, size }
    this.files.set(rel, file)
    this.bytes += size
    return file
  }

  /** Where a payload file goes; refuses a path that may not be in a bag or is in it already. */
  private place(path: string): { rel: string; target: string } {
    const rel = `data/${path}`
    const why = unsafePath(path)
    if (why !== null) throw new BagError('BAD_PATH', `cannot put ${JSON.stringify(path)} in a bag: ${why}`)
    if (this.files.has(rel)) throw new BagError('DUPLICATE', `${JSON.stringify(rel)} is already in the bag`)
    return { rel, target: join(this.dir, rel) }
  }

  /** Writes a payload file holding `value` as indented JSON. */
  addJson(path: string, value: unknown): Promise<WrittenFile> {
    return this.add(path, JSON.stringify(value, null, 2) + '\n')
  }

  /** Writes the manifests, bagit.txt and bag-info.txt (`info` after Payload-Oxum and Bagging-Date). */
  async finish(info: BagInfo, now: number): Promise<BagSummary> {
    if (this.resuming) await this.prune('data')
    const oxum = `${this.bytes}.${this.files.size}`
    const manifest = [...this.files.values()]
      .sort((a, b) => Number(a.path > b.path) - Number(a.path < b.path))
      .map((f) => `${f.sha256}  ${encodeManifestPath(f.path)}\n`)
      .join('')
    const tags: [string, string][] = [
      ['bagit.txt', BAGIT_TXT],
      ['bag-info.txt', formatBagInfo({ 'Payload-Oxum': oxum, 'Bagging-Date': new Date(now).toISOString().slice(0, 10), ...info })],
      ['manifest-sha256.txt', manifest],
    ]
    let tagManifest = ''
    for (const [name, text] of tags) {
      await writeFile(join(this.dir, name), text)
      tagManifest += `${createHash('sha256').update(text).digest('hex')}  ${name}\n`
    }
    await writeFile(join(this.dir, 'tagmanifest-sha256.txt'), tagManifest)
    return { dir: this.dir, files: this.files.size, bytes: this.bytes, oxum }
  }

  /** Removes what an earlier run left under `rel` that this run did not write (a file the source no longer has), and emptied folders. */
  private async prune(rel: string): Promise<void> {
    for (const entry of await readdir(join(this.dir, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`
      if (entry.isDirectory()) {
        await this.prune(path)
        if ((await readdir(join(this.dir, path))).length === 0) await rmdir(join(this.dir, path))
      } else if (!this.files.has(path)) await rm(join(this.dir, path))
    }
  }
}
