/**
 * Saves downloaded bytes (a drive file, D1) at a path the user gave, whole or
 * not at all: they go to `<path>.fakephone-download` beside it (the same
 * directory, so the rename is atomic), are synced, then renamed over the
 * path. A write that fails -- a full disk (ENOSPC), a failing one -- removes
 * the temporary file and leaves the path as it was: a file already there
 * survives, and no truncated file appears under the name. A path that is
 * not a regular file (/dev/stdout, a pipe) is written straight to: there is
 * nothing to replace, and renaming over a device would replace the device.
 */
import { open, realpath, rename, rm, stat, writeFile } from 'node:fs/promises'

/** What the temporary file beside the target is called: `<target>` and this. */
export const DOWNLOAD_SUFFIX = '.fakephone-download'

export async function saveFile(path: string, bytes: Uint8Array): Promise<void> {
  // Through a symlink to the file it names, as a plain write would; a path not there yet is the target itself.
  const target = await realpath(path).catch(() => path)
  const existing = await stat(target).catch(() => undefined)
  if (existing !== undefined && !existing.isFile()) return writeFile(target, bytes)
  const tmp = `${target}${DOWNLOAD_SUFFIX}`
  try {
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(bytes)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, target)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
