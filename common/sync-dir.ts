/**
 * Makes files and folders durable before something depends on them. A file created, renamed or linked into `dir`
 * survives a power cut only once the directory itself is fsynced (the file's own fsync covers its bytes, not its name):
 * `syncDir`. A whole tree -- every file's bytes and every folder's entries -- before it is renamed into place:
 * `syncTree` (M3: a bag appears at OUT only whole, after a power cut too). Used where a file must be there after a
 * crash: a secret file written before its devices exist (common/secret-file), a bag put at its target
 * (cli/transfer/open-bag), a JSON file replaced (common/json-file).
 */
import { closeSync, fsyncSync, openSync } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** fsyncs `path` (a file or a directory) through a descriptor of its own. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** fsyncs the directory `dir`, so the names created, renamed or linked into it last. */
export const syncDir = syncPath

/** syncPath, synchronously: for a few small files at a command's or a daemon's start (common/new-file). */
export function syncPathSync(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * fsyncs every file and folder under `dir` and `dir` itself, `at` a time (the fsyncs of a tree's files overlap in the
 * disk's queue and libuv's threads; one after another, each waits for the last). For a tree of files and folders
 * only (a bag): anything else in it is opened as a file is.
 */
export async function syncTree(dir: string, at = 4): Promise<void> {
  const paths: string[] = []
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name)
      if (entry.isDirectory()) await walk(path)
      else paths.push(path)
    }
    paths.push(folder)
  }
  await walk(dir)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < paths.length) await syncPath(paths[next++] as string)
  }
  await Promise.all(Array.from({ length: Math.min(at, paths.length) }, worker))
}
