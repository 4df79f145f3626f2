/**
 * A bag given on the command line (M3): a bag directory, or its single-file
 * form (a .tar), unpacked into a temporary directory removed by `close`.
 * Writing a bag goes the other way (`bagTo`): built in a partial folder
 * beside the target, marked as fakephone's, and put at the target only once
 * it is whole; a run cut short is carried on by the next.
 */
import { link, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { readTar, TarError, writeTar } from '../../common/bagit/tar.js'
import { DataDirLockedError, lockDataDir, type DataDirLock } from '../../common/data-lock.js'
import { readSmallFileSync } from '../../common/small-file.js'
import { storageFailure } from '../../common/storage-errors.js'
import { syncDir, syncTree } from '../../common/sync-dir.js'
import { UserError } from '../io.js'
import { forTerminal } from '../../common/terminal-text.js'

export interface OpenBag {
  dir: string
  close(): Promise<void>
}

export async function openBag(path: string): Promise<OpenBag> {
  const found = await stat(path).catch(() => undefined)
  if (!found) throw new UserError(`${forTerminal(path)} does not exist`)
  if (found.isDirectory()) return { dir: path, close: () => Promise.resolve() }
  const tmp = await mkdtemp(join(dirname(path), '.fakephone-bag-'))
  const close = (): Promise<void> => rm(tmp, { recursive: true, force: true })
  try {
    const tops = await readTar(path, tmp)
    if (tops.length !== 1)
      throw new UserError(`${forTerminal(path)} holds ${tops.length} top-level entries; a bag archive holds one directory, the bag`)
    return { dir: join(tmp, tops[0] as string), close }
  } catch (err) {
    await close()
    // What is wrong, that nothing of the bag was looked at, and how to get an archive that opens.
    if (err instanceof TarError)
      throw new UserError(
        `${forTerminal(path)} cannot be opened as a bag: ${err.message}; nothing in it was checked. Make the archive ` +
          'again (fakephone console export ACCOUNT --out FILE --format tar) or give the bag as a directory.',
      )
    throw err
  }
}

/** Beside the target, while a bag is being written: `OUT.fakephone-partial`. */
const PARTIAL = '.fakephone-partial'
/** The file that marks a partial folder as fakephone's (only such a folder is ever resumed or removed). */
const MARKER = 'fakephone-partial.json'
const MARKER_FORMAT = 'fakephone-partial-bag/1'

/** Where the bag for `out` is written until it is whole. */
const partialOf = (out: string): string => resolve(out) + PARTIAL

/**
 * True when `partial` is a folder fakephone made for an unfinished bag (its marker is there and says so). At once, not
 * awaited: a Ctrl-C asks it on its way out, before the process ends. A marker that is not a small regular file is not one.
 */
function ours(partial: string): boolean {
  try {
    return (JSON.parse(readSmallFileSync(join(partial, MARKER))) as { format?: unknown } | null)?.format === MARKER_FORMAT
  } catch {
    return false
  }
}

/** The partial folder of an unfinished bag for `out`, when fakephone left one; undefined when none is there. */
export function unfinished(out: string): string | undefined {
  const partial = partialOf(out)
  return ours(partial) ? partial : undefined
}

/** Refuses a target that holds something already: a bag never goes over the user's files. */
async function mustBeFree(out: string, tar: boolean): Promise<void> {
  const found = await stat(out).catch(() => undefined)
  if (found === undefined) return
  if (tar) throw new UserError(`${forTerminal(out)} exists: the tar goes to a new file; give another --out or move it away`)
  if (!found.isDirectory() || (await readdir(out)).length > 0)
    throw new UserError(`${forTerminal(out)} is not empty: a bag goes into a new or empty directory; give another --out or move it away`)
}

/**
 * Makes the partial folder for `out`, or finds the one an earlier run left (true: resume it). A folder of that name
 * that fakephone did not make is refused, never touched.
 */
async function openPartial(out: string, partial: string): Promise<boolean> {
  const found = await lstat(partial).catch(() => undefined)
  if (found === undefined) {
    await mkdir(partial, { recursive: true })
    const marker = { format: MARKER_FORMAT, bag: resolve(out), note: 'an export fakephone has not finished: the same command resumes it' }
    await writeFile(join(partial, MARKER), JSON.stringify(marker, null, 2) + '\n', { flag: 'wx' })
    return false
  }
  if (found.isDirectory() && ours(partial)) return true
  throw new UserError(
    `${forTerminal(partial)} is in the way: fakephone writes an unfinished bag there, but this is not one of its own; move it ` +
      `away and run again`,
  )
}

export interface BagToOptions {
  /** Told when an earlier run's unfinished bag is carried on, with its folder. */
  onResume?: (partial: string) => void
}

/**
 * Runs `write` on a bag directory and puts the bag at `out` once it is whole (M3): a directory, or (`tar`) one file.
 * The bag is written in `OUT.fakephone-partial/bag` (the folder marked as fakephone's), then renamed to `out` (a
 * directory; an empty one there is replaced, anything else refused) or archived and linked there (a tar; a file there
 * is never replaced), and the partial folder goes: nothing at `out` is ever less than a whole bag. Every file and
 * folder of the bag (or the archive) is fsynced before the rename (or link), and `out`'s folder after it, so that
 * holds after a power cut too. A run cut short (a
 * broken connection, a checksum that differs, the process killed) once a file is written leaves the partial folder (one
 * refused before that, as by a wrong token or an unknown account, leaves nothing); the next run for the
 * same `out` carries it on (`write` is told `resumed`, and `onResume`). A disk that fills up (or fails) leaves no
 * part of a bag behind (the partial folder goes too) and is said as the user's to fix, with the reason.
 */
export async function bagTo<T>(
  out: string,
  tar: boolean,
  mtime: number,
  write: (dir: string, resumed: boolean) => Promise<T>,
  opts: BagToOptions = {},
): Promise<T> {
  await mustBeFree(out, tar)
  const partial = partialOf(out)
  const resumed = await openPartial(out, partial)
  const lock = await holdPartial(partial, out)
  if (resumed) opts.onResume?.(partial)
  return await writeWhole(out, tar, mtime, partial, () => write(join(partial, 'bag'), resumed)).finally(() => lock.release())
}

/** bagTo's work in the partial folder it holds: the bag written, then put at `out`; on a failure, what is left and why. */
async function writeWhole<T>(out: string, tar: boolean, mtime: number, partial: string, write: () => Promise<T>): Promise<T> {
  try {
    const bag = join(partial, 'bag')
    const result = await write()
    // Durable before it appears at `out` (the archive synced by writeTar; the bag's files and folders here), and its name
    // at `out` durable after: a power cut never leaves a bag at `out` that is less than whole.
    if (tar) {
      const file = join(partial, 'bag.tar')
      await rm(file, { force: true })
      await writeTar(bag, file, basename(out).replace(/\.tar$/, ''), mtime)
      await placeFile(file, out)
    } else {
      await syncTree(bag)
      await placeDir(bag, out)
    }
    await syncDir(dirname(resolve(out)))
    await rm(partial, { recursive: true, force: true })
    return result
  } catch (err) {
    // Stopped before a file of the bag was written (the broker refused, the account is unknown): nothing to carry on.
    if ((await lstat(join(partial, 'bag')).catch(() => undefined)) === undefined) await rm(partial, { recursive: true, force: true })
    const full = storageFailure(err)
    if (!full) throw err
    await rm(partial, { recursive: true, force: true })
    throw new UserError(
      `cannot write the bag ${forTerminal(out)}: ${full}; the part written was removed and nothing else changed: free some space ` +
        `and run it again`,
    )
  }
}

/**
 * Holds the partial folder for this run: a second export to the same `out` while one runs is refused, naming it (both
 * would write the same files). A lock left by a run that is gone (killed) is taken over, as the resume says already.
 */
async function holdPartial(partial: string, out: string): Promise<DataDirLock> {
  // pino loads for an export only: `bag validate` and `console import` open bags too and log nothing.
  const { createLogger } = await import('../../common/log.js')
  try {
    return lockDataDir(partial, createLogger({ level: 'silent' }), 'export')
  } catch (err) {
    /* c8 ignore next -- a lock file refused for another reason (a read-only folder) is its own */
    if (!(err instanceof DataDirLockedError)) throw err
    throw new ExportRunningError(out, err.holder)
  }
}

/** Another export to the same `out` holds its partial folder: that one's to finish, not this one's to carry on. */
export class ExportRunningError extends UserError {
  constructor(out: string, holder: { pid: number; startedAt: string }) {
    super(
      `another export to ${out} is running (process ${holder.pid}, since ${holder.startedAt}): ` +
        'wait for it to finish, or give this one another --out',
    )
  }
}

/** Renames the whole bag to `out`, which must still be missing or an empty directory. */
async function placeDir(bag: string, out: string): Promise<void> {
  await rename(bag, out).catch(async (err: unknown) => {
    // Something appeared at `out` meanwhile (ENOTEMPTY, ENOTDIR): said as the check before the export says it.
    await mustBeFree(out, false)
    /* c8 ignore next -- any other failure (the target still free) is its own */
    throw err
  })
}

/** Puts the archive at `out` without replacing a file that appeared there meanwhile (a hard link: EEXIST). */
async function placeFile(file: string, out: string): Promise<void> {
  await link(file, out).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return mustBeFree(out, true)
    /* c8 ignore next 3 -- a filesystem without hard links (FAT on a USB stick): checked, then renamed */
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(err.code ?? '')) throw err
    await mustBeFree(out, true)
    await rename(file, out)
  })
}
