/**
 * A small file that appears whole or not at all: written aside under a random name, then hard-linked to its name,
 * which fails when the name exists -- so a reader never sees it half written, and of two processes making it at once
 * one wins and the other learns so. Used for the data directory's lock files (common/data-lock) and the console
 * token (broker/console-token), which is made durable too.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, openSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { cannotWrite } from './storage-errors.js'
import { syncPathSync } from './sync-dir.js'

/**
 * Creates `path` holding `text` (with `mode`) unless it exists: true when this call made it, false when the name was
 * taken (by another process, maybe at this very moment). `durable`: the file's bytes are fsynced before the link and
 * its folder after, so a power cut never leaves it empty.
 */
export function createWholeSync(path: string, text: string, opts: { mode: number; durable?: boolean }): boolean {
  const aside = `${path}.${randomBytes(8).toString('hex')}`
  const fd = openSync(aside, 'wx', opts.mode)
  try {
    writeSync(fd, text)
    if (opts.durable === true) fsyncSync(fd)
  } catch (err) {
    // A full disk: the empty file aside goes (each failed start left one), and the error names the file it was for.
    closeSync(fd)
    rmSync(aside)
    throw cannotWrite(path, err)
  }
  closeSync(fd)
  try {
    linkSync(aside, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    /* c8 ignore next 2 -- a link refused for another reason (a read-only directory) is rethrown as is */
    throw err
  } finally {
    rmSync(aside)
  }
  if (opts.durable === true) syncPathSync(dirname(path))
  return true
}
