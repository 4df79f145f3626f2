/**
 * Who owns what the console writes into a user's folder. `sudo fakephone console locate … --keys ~/keys` runs as root:
 * the files it made there (a device's `.seq`, a key, `devices/`) were root's, and the same command run later without
 * sudo could not write them. When the process is root and the folder is another user's, what it makes there is given to
 * the folder's owner (uid and gid), so it is as if that user had made it. Used by the owner keys folder
 * (common/signing, F2).
 */
import { statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

export interface FileOwner {
  uid: number
  gid: number
}

/**
 * The owner to give what a process of `processUid` makes in a folder owned by `folder`: the folder's, when the process
 * is root (uid 0) and the folder is not root's; undefined when files are to stay the process's own (a user's process
 * cannot give a file away, and root's own folder needs nothing). `processUid` is undefined where there are no uids.
 */
export function ownerToGive(processUid: number | undefined, folder: FileOwner): FileOwner | undefined {
  return processUid === 0 && folder.uid !== 0 ? { uid: folder.uid, gid: folder.gid } : undefined
}

/** stat of `path`, or undefined where nothing is there to look at: missing, or a file in the way (ENOTDIR). */
function statIfThere(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}

/**
 * The owner of the folder `path`, or, while it does not exist yet, of the nearest folder above it that does. A path that
 * cannot be a folder (a file in the way) gives the owner above it; making the folder then fails with its own words.
 */
export function folderOwner(path: string): FileOwner {
  let dir = resolve(path)
  let stats = statIfThere(dir)
  while (!stats && dirname(dir) !== dir) {
    dir = dirname(dir)
    stats = statIfThere(dir)
  }
  /* c8 ignore next -- `/` itself missing: nothing to give anything to */
  if (!stats) return { uid: 0, gid: 0 }
  return { uid: stats.uid, gid: stats.gid }
}
