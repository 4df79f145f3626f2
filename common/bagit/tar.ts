/**
 * The single-file form of a bag (M3): a POSIX ustar archive (POSIX.1-2001
 * pax), written and read here so fakephone needs no archive dependency.
 * Names that do not fit ustar's 100 + 155 bytes get a pax `path` record.
 * Only directories and regular files are written or read; the reader refuses
 * links, devices and any name that would land outside the target directory.
 */
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { FakephoneError } from '../errors.js'
import { unsafePath } from './paths.js'

const BLOCK = 512
/** The largest pax extended header read (it is read whole). */
const MAX_PAX_BYTES = 1 << 20

/** What a tar entry of a type a bag does not hold is, in words (POSIX ustar typeflags). */
const TAR_KINDS: Readonly<Record<string, string>> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
}

export class TarError extends FakephoneError {
  constructor(message: string) {
    super('BAD_TAR', message)
  }
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

/** Splits a name into ustar's prefix and name fields, or null when it does not fit. */
function splitName(name: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name }
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== 0x2f) continue
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0)
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) }
  }
  return null
}

function header(name: string, type: '0' | '5' | 'x', size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK)
  const bytes = Buffer.from(name, 'utf8')
  // Callers pass only names that fit (a long one goes in a pax record, see headers()).
  const split = splitName(bytes) as { prefix: Buffer; name: Buffer }
  split.name.copy(h, 0)
  h.write(octal(type === '5' ? 0o755 : 0o644, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii')
  h.write(octal(0, 8), 116, 'ascii')
  h.write(octal(size, 12), 124, 'ascii')
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii')
  h.write('        ', 148, 'ascii')
  h.write(type, 156, 'ascii')
  h.write('ustar\u000000', 257, 'ascii')
  split.prefix.copy(h, 345)
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148, 'ascii')
  return h
}

/** The headers for one entry: a pax `path` record first when the name does not fit ustar. */
function headers(name: string, type: '0' | '5', size: number, mtime: number): Buffer[] {
  if (splitName(Buffer.from(name, 'utf8')) !== null) return [header(name, type, size, mtime)]
  const body = ` path=${name}\n`
  let len = Buffer.byteLength(body) + 1
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body)
  const record = Buffer.from(`${len}${body}`, 'utf8')
  return [header('PaxHeader', 'x', record.length, mtime), pad(record), header(asciiStub(name), type, size, mtime)]
}

/** What a reader without pax support sees instead of a long name: its last 90 characters, in ASCII. */
const asciiStub = (name: string): string =>
  name
    .slice(-90)
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/^\/+/, '')

const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((BLOCK - (b.length % BLOCK)) % BLOCK)])

/**
 * Writes the directory `dir` into the tar file `out` (a new file), every entry under `top/`; `onBytes` hears the file bytes
 * written. A write that fails (a full disk) removes `out`: no archive cut short is left under the bag's name.
 */
export async function writeTar(dir: string, out: string, top: string, mtime: number, onBytes?: (n: number) => void): Promise<void> {
  const fh = await open(out, 'wx')
  try {
    const put = async (b: Buffer): Promise<void> => void (await fh.write(b))
    const walk = async (rel: string): Promise<void> => {
      for (const entry of (await readdir(join(dir, rel), { withFileTypes: true })).sort(
        (a, b) => Number(a.name > b.name) - Number(a.name < b.name),
      )) {
        const path = rel === '' ? entry.name : `${rel}/${entry.name}`
        if (entry.isDirectory()) {
          for (const h of headers(`${top}/${path}/`, '5', 0, mtime)) await put(h)
          await walk(path)
        } else if (entry.isFile()) {
          const { size } = await stat(join(dir, path))
          for (const h of headers(`${top}/${path}`, '0', size, mtime)) await put(h)
          for await (const chunk of createReadStream(join(dir, path))) {
            await put(chunk as Buffer)
            onBytes?.((chunk as Buffer).length)
          }
          await put(Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK))
        }
      }
    }
    for (const h of headers(`${top}/`, '5', 0, mtime)) await put(h)
    await walk('')
    await put(Buffer.alloc(BLOCK * 2))
    // Durable before the caller puts it anywhere (M3: an archive at OUT is whole, after a power cut too).
    await fh.sync()
  } catch (err) {
    // Never part of an archive under the bag's name (a full disk): the file this call made goes.
    await fh.close()
    await rm(out, { force: true })
    throw err
  }
  await fh.close()
}

const field = (h: Buffer, at: number, len: number): string => {
  const raw = h.subarray(at, at + len)
  const end = raw.indexOf(0)
  return raw.subarray(0, end === -1 ? len : end).toString('utf8')
}

async function readExactly(fh: FileHandle, at: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len)
  const { bytesRead } = await fh.read(b, 0, len, at)
  if (bytesRead < len) throw new TarError(`the archive ends early: wanted ${len} bytes at offset ${at}, found ${bytesRead}`)
  return b
}

/** A pax extended header's `<length> <key>=<value>\n` records. */
export function paxRecords(body: Buffer): Map<string, string> {
  const records = new Map<string, string>()
  for (let at = 0; at < body.length;) {
    const space = body.indexOf(0x20, at)
    const len = Number(body.subarray(at, space).toString('ascii'))
    if (space === -1 || !Number.isInteger(len) || len <= 0 || at + len > body.length) throw new TarError('a pax header record is malformed')
    const record = body.subarray(space + 1, at + len - 1).toString('utf8')
    const eq = record.indexOf('=')
    records.set(record.slice(0, eq), record.slice(eq + 1))
    at += len
  }
  return records
}

/**
 * The refusal of an entry that cannot be made: one that lands where an earlier one already is (a name given twice, or a
 * name under a file's), or one the file system refuses (a name segment over 255 bytes), said as the archive's fault.
 */
const clash =
  (name: string) =>
  (err: NodeJS.ErrnoException): never => {
    const why = err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'an earlier entry is already there (a name given twice)' : err.message
    throw new TarError(`the archive holds ${JSON.stringify(name)}, which cannot be unpacked: ${why}`)
  }

/**
 * The header block `h`, read at `offset` of the archive: its entry's size, type and ustar name (the prefix joined); a
 * header that fails its checksum or gives no octal size is refused.
 */
function parseHeader(h: Buffer, offset: number): { size: number; type: string; name: string } {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number)
  if (parseInt(field(h, 148, 8).trim(), 8) !== sum)
    throw new TarError(`the header at offset ${offset} fails its checksum: not a tar file, or damaged`)
  // Octal digits only: parseInt would read "-1000" as -512 (a header that points back at itself, read forever) and "x" as NaN.
  const sizeField = field(h, 124, 12).trim()
  if (!/^[0-7]+$/.test(sizeField))
    throw new TarError(`the header at offset ${offset} gives its size as ${JSON.stringify(sizeField)}, not an octal number`)
  const prefix = field(h, 345, 155)
  return {
    size: parseInt(sizeField, 8),
    type: field(h, 156, 1) || '0',
    name: prefix === '' ? field(h, 0, 100) : `${prefix}/${field(h, 0, 100)}`,
  }
}

/** Copies the entry `name`'s `size` bytes at `at` of the archive into a new file `path`, in chunks of 1 MiB at most. */
async function extractFile(fh: FileHandle, at: number, size: number, path: string, name: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true }).catch(clash(name))
  const out = await open(path, 'wx').catch(clash(name))
  try {
    for (let done = 0; done < size;) {
      const chunk = await readExactly(fh, at + done, Math.min(1 << 20, size - done))
      await out.write(chunk)
      done += chunk.length
    }
  } finally {
    await out.close()
  }
}

/** Extracts the tar file `file` into `dir`; returns the top-level names it held. */
export async function readTar(file: string, dir: string): Promise<string[]> {
  const fh = await open(file, 'r')
  const tops = new Set<string>()
  try {
    let at = 0
    let paxPath: string | undefined
    for (;;) {
      const h = await readExactly(fh, at, BLOCK)
      at += BLOCK
      if (h.every((b) => b === 0)) return [...tops]
      const header = parseHeader(h, at - BLOCK)
      const { size, type } = header
      const name = paxPath ?? header.name
      const dataAt = at
      at += Math.ceil(size / BLOCK) * BLOCK
      if (type === 'x') {
        // Read whole into memory: a header claiming gigabytes must not get them allocated (a path record is a few KiB at most).
        if (size > MAX_PAX_BYTES)
          throw new TarError(`the pax header at offset ${dataAt - BLOCK} is ${size} bytes; at most ${MAX_PAX_BYTES} are read`)
        paxPath = paxRecords(await readExactly(fh, dataAt, size)).get('path')
        continue
      }
      paxPath = undefined
      if (type === 'g') continue
      const rel = name.replace(/\/+$/, '')
      const why = unsafePath(rel)
      if (why !== null) throw new TarError(`the archive holds ${JSON.stringify(name)}: ${why}`)
      tops.add(rel.split('/')[0] as string)
      if (type === '5') {
        await mkdir(join(dir, rel), { recursive: true }).catch(clash(name))
      } else if (type === '0') {
        await extractFile(fh, dataAt, size, join(dir, rel), name)
      } else
        throw new TarError(
          `the archive holds ${JSON.stringify(name)}, ${TAR_KINDS[type] ?? `an entry of type "${type}"`}: ` +
            'a bag archive holds only files and directories',
        )
    }
  } finally {
    await fh.close()
  }
}
