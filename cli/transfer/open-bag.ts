/**
 * A bag given on the command line (M3): a bag directory, or its single-file
 * form (a .tar), unpacked into a temporary directory removed by `close`.
 * Writing a bag to a tar goes the other way: built in a temporary directory
 * beside the target, then archived.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { readTar, writeTar } from '../../common/bagit/tar.js'
import { storageFailure } from '../../common/storage-errors.js'
import { UserError } from '../io.js'

export interface OpenBag {
  dir: string
  close(): Promise<void>
}

export async function openBag(path: string): Promise<OpenBag> {
  const found = await stat(path).catch(() => undefined)
  if (!found) throw new UserError(`${path} does not exist`)
  if (found.isDirectory()) return { dir: path, close: () => Promise.resolve() }
  const tmp = await mkdtemp(join(dirname(path), '.fakephone-bag-'))
  const close = (): Promise<void> => rm(tmp, { recursive: true, force: true })
  try {
    const tops = await readTar(path, tmp)
    if (tops.length !== 1) throw new UserError(`${path} holds ${tops.length} top-level entries; a bag archive holds one directory, the bag`)
    return { dir: join(tmp, tops[0] as string), close }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * Runs `write` on a fresh bag directory: `out` itself, or (as a tar) a temporary one archived into `out` afterwards.
 * A disk that fills up (or fails) under it leaves no part of a bag behind (`out` goes, as the temporary directory and
 * a tar cut short do) and is said as the user's to fix, with the reason.
 */
export async function bagTo<T>(out: string, tar: boolean, mtime: number, write: (dir: string) => Promise<T>): Promise<T> {
  try {
    return await (tar ? toTar(out, mtime, write) : write(out))
  } catch (err) {
    const full = storageFailure(err)
    if (!full) throw err
    // A bag goes into a new or empty directory (BagWriter.create): all that is in it is the part written.
    if (!tar) await rm(out, { recursive: true, force: true })
    throw new UserError(
      `cannot write the bag ${out}: ${full}; the part written was removed and nothing else changed: free some space and run it again`,
    )
  }
}

async function toTar<T>(out: string, mtime: number, write: (dir: string) => Promise<T>): Promise<T> {
  const tmp = await mkdtemp(join(dirname(out), '.fakephone-bag-'))
  try {
    const name = basename(out).replace(/\.tar$/, '')
    const result = await write(join(tmp, name))
    await writeTar(join(tmp, name), out, name, mtime)
    return result
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
