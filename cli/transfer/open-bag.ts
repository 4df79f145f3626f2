/**
 * A bag given on the command line (M3): a bag directory, or its single-file
 * form (a .tar), unpacked into a temporary directory removed by `close`.
 * Writing a bag to a tar goes the other way: built in a temporary directory
 * beside the target, then archived.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { readTar, writeTar } from '../../common/bagit/tar.js'
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

/** Runs `write` on a fresh bag directory: `out` itself, or (as a tar) a temporary one archived into `out` afterwards. */
export async function bagTo<T>(out: string, tar: boolean, mtime: number, write: (dir: string) => Promise<T>): Promise<T> {
  if (!tar) return write(out)
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
