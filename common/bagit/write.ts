/**
 * Writes a BagIt 1.0 bag (RFC 8493; M3): payload files under `data/`, each
 * hashed with SHA-256 while it is written; then `manifest-sha256.txt`,
 * `bagit.txt`, `bag-info.txt` (with `Payload-Oxum` and `Bagging-Date`, plus
 * whatever fields the caller adds) and `tagmanifest-sha256.txt` over those
 * three. The bag goes into a directory that must not exist yet or be empty.
 */
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FakephoneError } from '../errors.js'
import { encodeManifestPath, unsafePath } from './paths.js'
import { makeDirsSync } from '../make-dirs.js'

export const BAGIT_TXT = 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n'

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

/** `Label: value` lines; a value's own line breaks become continuation lines (section 2.2.2). */
export function formatBagInfo(info: BagInfo): string {
  let text = ''
  for (const [label, value] of Object.entries(info)) {
    if (!/^[^:\s][^:\r\n]*$/.test(label)) throw new BagError('BAD_INFO', `bag-info label "${label}" may not hold ":" or a line break`)
    for (const v of typeof value === 'string' ? [value] : value) text += `${label}: ${v.replace(/\r?\n/g, '\n  ')}\n`
  }
  return text
}

export class BagWriter {
  private readonly files = new Map<string, WrittenFile>()
  private bytes = 0

  private constructor(readonly dir: string) {}

  /** Starts a bag in `dir`, which must not exist or be empty. */
  static async create(dir: string): Promise<BagWriter> {
    makeDirsSync(dir)
    if ((await readdir(dir)).length > 0) throw new BagError('BAG_EXISTS', `${dir} is not empty: a bag goes into a new or empty directory`)
    await mkdir(join(dir, 'data'))
    return new BagWriter(dir)
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
    const rel = `data/${path}`
    const why = unsafePath(path)
    if (why !== null) throw new BagError('BAD_PATH', `cannot put ${JSON.stringify(path)} in a bag: ${why}`)
    if (this.files.has(rel)) throw new BagError('DUPLICATE', `${JSON.stringify(rel)} is already in the bag`)
    const target = join(this.dir, rel)
    await mkdir(dirname(target), { recursive: true })
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

  /** Writes a payload file holding `value` as indented JSON. */
  addJson(path: string, value: unknown): Promise<WrittenFile> {
    return this.add(path, JSON.stringify(value, null, 2) + '\n')
  }

  /** Writes the manifests, bagit.txt and bag-info.txt (`info` after Payload-Oxum and Bagging-Date). */
  async finish(info: BagInfo, now: number): Promise<BagSummary> {
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
}
