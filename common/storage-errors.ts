/**
 * Which failures mean "the storage cannot take this now" -- a full disk or
 * database, a failing disk, a read-only filesystem, a database locked by
 * another process -- as opposed to "this one write is wrong" (a constraint a
 * row breaks, a bad path). The first kind is the operator's to fix and the
 * write is worth holding and retrying (the heartbeat batch) or answering with
 * 507 Insufficient Storage (an upload); the second is the caller's. Each
 * answer is a sentence for a log line or an HTTP reason.
 */

/** SQLite's result codes (better-sqlite3's SqliteError `code`) that say the storage, not the row, failed. */
const SQLITE_STORAGE: readonly [prefix: string, reason: string][] = [
  ['SQLITE_FULL', 'the database or the disk it is on is full'],
  ['SQLITE_IOERR', 'the disk failed to read or write the database'],
  ['SQLITE_READONLY', 'the database cannot be written (a read-only file or filesystem)'],
  ['SQLITE_BUSY', 'the database is locked by another process'],
]

/** Node's fs error codes that say the storage failed. */
const FS_STORAGE: ReadonlyMap<string, string> = new Map([
  ['ENOSPC', 'the disk is full'],
  ['EDQUOT', 'the disk quota is used up'],
  ['EIO', 'the disk failed to read or write'],
  ['EROFS', 'the filesystem is read-only'],
])

/**
 * The reason `err` is a storage failure (see the module comment), with its code: "the disk is full (ENOSPC)"; null for
 * any other failure.
 */
export function storageFailure(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return null
  const fs = FS_STORAGE.get(code)
  if (fs) return `${fs} (${code})`
  const sqlite = SQLITE_STORAGE.find(([prefix]) => code.startsWith(prefix))
  return sqlite ? `${sqlite[1]} (${code})` : null
}

/**
 * A failed write that names its file: Node's words for a failed write ("ENOSPC: no space left on device, write") do not.
 * The code stays, so that the failure is still known for what it is (storageFailure).
 */
export function cannotWrite(path: string, err: unknown): Error {
  const { code, message } = err as NodeJS.ErrnoException
  return Object.assign(new Error(`cannot write ${path}: ${message}`, { cause: err }), { code })
}
