/**
 * Reads a file fakephone keeps for itself -- a lock (`broker.lock`, `agent.lock`, `export.lock`: common/data-lock), the
 * console token (`console.token`: broker/console-token, the console's `--token-file`, `migrate --to-token-file`), a
 * device's secret file (agent/secret), an owner key (`<account>.key`, `<account>.pub`, a device's `.pub`, the agent's
 * `--owner-key`) and a command sequence file (`devices/<id>.seq`: common/signing), a fleet's credentials file
 * (fleet/credentials, with a cap of its own) -- only when it is a regular file of at most `maxBytes`. Such a file
 * replaced by a link to `/dev/zero`, a FIFO or a directory would otherwise be read for ever (or block until a writer
 * comes): here it is a one-line SmallFileError naming the file (as the terminal shows names: common/terminal-text) and
 * what it is. It is opened non-blocking (a FIFO's open does not wait for a writer) and looked at through the open
 * descriptor (fstat), so what is checked is what is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { FakephoneError } from './errors.js'
import { forTerminal } from './terminal-text.js'

/** Locks, tokens and secrets are a few dozen bytes; 64 KiB is far above any of them and still read at once. */
const SMALL_FILE_MAX = 64 * 1024

export class SmallFileError extends FakephoneError {
  constructor(message: string) {
    super('NOT_A_SMALL_FILE', message)
  }
}

/** What a file that is not a regular one is, in words. */
function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory'
  if (stats.isFIFO()) return 'a FIFO'
  if (stats.isCharacterDevice()) return 'a character device'
  /* c8 ignore next -- a block device or a socket (opening a socket fails before this): whatever else it is */
  return stats.isBlockDevice() ? 'a block device' : 'not a regular file'
}

/**
 * The text (UTF-8) of `path` when it is a regular file of at most `maxBytes`; a SmallFileError when it is not (through
 * a symlink, what it points at counts). A file that cannot be opened (ENOENT, EACCES) throws as `fs` does.
 */
export function readSmallFileSync(path: string, maxBytes = SMALL_FILE_MAX): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    return readSmallFd(fd, path, maxBytes)
  } finally {
    closeSync(fd)
  }
}

/**
 * readSmallFileSync's checks and read, on a descriptor the caller opened (and closes) -- for a file that is read and then
 * written through the same descriptor (a command sequence file: common/signing). `path` only names it in the refusal.
 * Reads from the descriptor's position, which is the start on a fresh one.
 */
export function readSmallFd(fd: number, path: string, maxBytes = SMALL_FILE_MAX): string {
  const stats = fstatSync(fd)
  if (!stats.isFile()) throw new SmallFileError(`${forTerminal(path)} is ${kindOf(stats)}, not a regular file`)
  // Read to its end or one byte past the cap, whichever comes first: never more than that, however large it is (or grows).
  // Not zero-filled: only what was read is used, and a large cap (a fleet's credentials) costs no more than its file.
  const buffer = Buffer.allocUnsafe(maxBytes + 1)
  let length = 0
  for (let n = -1; n !== 0 && length <= maxBytes; length += n) n = readSync(fd, buffer, length, buffer.length - length, null)
  if (length > maxBytes) throw new SmallFileError(`${forTerminal(path)} is larger than ${maxBytes} bytes, too large for what it holds`)
  return buffer.toString('utf8', 0, length)
}
