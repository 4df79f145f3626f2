/**
 * One broker, and one agent, per data directory. The broker takes `DATA/broker.lock` before it
 * opens the database or touches any state, so a second broker (a second
 * `npm start`) on the same directory refuses at once, naming the process that
 * holds it, instead of resetting the running broker's presence rows. An agent takes
 * `DATA/agent.lock` the same way: two phones on one directory would take each other's
 * MQTT session over and over, and write the same journal and settings.
 *
 * The lock file appears whole (written aside, then hard-linked into place, which
 * fails if the name exists), holds the owner's pid, when it took the lock and a
 * random token, and the machine's boot id (Linux); a lock whose process is gone (a crash, SIGKILL) is taken over
 * and the take-over is logged. After a power cut the pid in the lock is often alive again as another process (a Pi
 * boots its services in the same order, so the broker may even get the same pid): a lock written before the machine
 * restarted (another boot id), or naming this process's pid without being one it took, is stale too, and so is one
 * that names another directory (copied with a running broker's folder: a backup restored beside it; the directory is
 * told by its device and inode, so a link to it or a rename does not make a second broker's start take it over). Release removes
 * the file only while it is still ours. A lock file that is not a regular file (a link to /dev/zero, a FIFO) or is far
 * too large is never read for ever: taking the lock is refused with one line naming it (common/small-file), as it is
 * no lock fakephone made.
 *
 * A broker's or an agent's data directory is made private (0700: it holds the account's data); one that other users
 * can read is warned about at every start, with the command that fixes it.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Logger } from './log.js'
import { FakephoneError } from './errors.js'
import { makeDataDirSync, makeDirsSync } from './make-dirs.js'
import { createWholeSync } from './new-file.js'
import { SmallFileError, readSmallFileSync } from './small-file.js'

/** The broker's lock file (an agent's is `agent.lock`). */
export const LOCK_FILE = 'broker.lock'

/** What holds a directory: its lock file is `<kind>.lock` (an export holds its partial bag's folder). */
export type LockKind = 'broker' | 'agent' | 'export'

interface LockRecord {
  pid: number
  startedAt: string
  token: string
  /** The boot it was written in (Linux's boot id); absent where there is none to read, and in older lock files. */
  bootId?: string
  /** The directory it locks: its path (for the log) and its device and inode (the same through a link or a rename). */
  dir?: string
  dirId?: string
}

/** Where Linux says which boot this is (a new random id at every start of the machine). */
export const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id'

/** This boot's id, or undefined where there is none to read (not Linux). */
export function readBootId(file = BOOT_ID_FILE): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

const BOOT_ID = readBootId()

/** The tokens of the locks this process holds: a lock naming this pid with another token was left by an earlier process. */
const HELD = new Set<string>()

export class DataDirLockedError extends FakephoneError {
  constructor(
    dataDir: string,
    readonly holder: { pid: number; startedAt: string },
    kind: LockKind = 'broker',
  ) {
    super(
      'DATA_DIR_LOCKED',
      `the data directory ${dataDir} is in use by another ${kind}: process ${holder.pid}, running since ${holder.startedAt} ` +
        '(stop it first, or give this one another data directory)',
    )
  }
}

/** A lock file that is not a regular file, or far too large: not one fakephone made, and never read. */
export class LockFileError extends FakephoneError {
  constructor(why: string) {
    super('LOCK_FILE', `cannot use the lock file: ${why}; it is not one fakephone made: move it away and start again`)
  }
}

/** A held lock; `release()` is idempotent. */
export class DataDirLock {
  private held = true

  constructor(
    readonly path: string,
    private readonly token: string,
  ) {}

  release(): void {
    if (!this.held) return
    this.held = false
    HELD.delete(this.token)
    // Another process may have taken the file over (it thought us dead), or put something else there: then it is not
    // ours to remove.
    if (readRecordOrNull(this.path)?.token === this.token) unlinkSync(this.path)
  }
}

/**
 * Takes the lock on `dataDir` (creating the directory), or throws DataDirLockedError
 * naming the live process that holds it. A lock left by a process that is gone is taken over.
 */
export function lockDataDir(dataDir: string, log: Logger, kind: LockKind = 'broker'): DataDirLock {
  if (kind === 'export') makeDirsSync(dataDir)
  else {
    makeDataDirSync(dataDir)
    const mode = statSync(dataDir).mode & 0o777
    if ((mode & 0o077) !== 0)
      log.warn(
        { dataDir, mode: mode.toString(8) },
        `the data directory is readable by other users (mode ${mode.toString(8)}): \`chmod 700 ${dataDir}\` keeps its data to you`,
      )
  }
  const path = join(dataDir, `${kind}.lock`)
  const stat = statSync(dataDir)
  const dir = { dir: resolve(dataDir), dirId: `${String(stat.dev)}:${String(stat.ino)}` }
  const record: LockRecord = { pid: process.pid, startedAt: new Date().toISOString(), token: randomUUID(), bootId: BOOT_ID, ...dir }
  if (tryCreate(path, record)) return held(path, record.token)
  const holder = readRecord(path)
  const why = holder ? whyStale(holder, dir) : 'unreadable'
  if (holder && why === undefined) throw new DataDirLockedError(dataDir, holder, kind)
  log.warn({ path, stale: holder ?? 'unreadable', why }, 'taking over a stale data directory lock: its process is gone')
  // Removed only if it is still the stale one we read (another starter may have just taken it over).
  if (readRecord(path)?.token === holder?.token) rmSync(path, { force: true })
  if (tryCreate(path, record)) return held(path, record.token)
  /* c8 ignore next 2 -- another starter took the lock over between our check and our create: it wins */
  throw new DataDirLockedError(dataDir, readRecord(path) ?? { pid: 0, startedAt: 'an unknown time' }, kind)
}

function held(path: string, token: string): DataDirLock {
  HELD.add(token)
  return new DataDirLock(path, token)
}

/** Why the holder of a lock is gone, in words for the log; undefined while it may still run. */
function whyStale(holder: LockRecord, dir: { dirId: string }): string | undefined {
  // A backup of a running broker's folder (cp -a, rsync, tar) restored or tried elsewhere holds that broker's lock.
  if (holder.dirId !== undefined && holder.dirId !== dir.dirId) return `copied with its folder from ${String(holder.dir)}`
  if (holder.bootId !== undefined && BOOT_ID !== undefined && holder.bootId !== BOOT_ID) return 'written before this machine restarted'
  if (holder.pid === process.pid && !HELD.has(holder.token)) return 'written by an earlier process that had this pid'
  return isAlive(holder.pid) ? undefined : 'its process is gone'
}

/** Creates `path` with `record`, atomically and only if it does not exist. */
function tryCreate(path: string, record: LockRecord): boolean {
  return createWholeSync(path, JSON.stringify(record) + '\n', { mode: 0o644 })
}

/** The record in the lock file `path`; null when there is none to read or it is not one; LockFileError when it is not a file to read. */
function readRecord(path: string): LockRecord | null {
  let text: string
  try {
    text = readSmallFileSync(path)
  } catch (err) {
    if (err instanceof SmallFileError) throw new LockFileError(err.message)
    return null
  }
  try {
    const r = JSON.parse(text) as Partial<LockRecord>
    if (
      typeof r.pid === 'number' &&
      Number.isInteger(r.pid) &&
      r.pid > 0 &&
      typeof r.startedAt === 'string' &&
      typeof r.token === 'string'
    ) {
      return {
        pid: r.pid,
        startedAt: r.startedAt,
        token: r.token,
        ...(typeof r.bootId === 'string' && { bootId: r.bootId }),
        ...(typeof r.dir === 'string' && { dir: r.dir }),
        ...(typeof r.dirId === 'string' && { dirId: r.dirId }),
      }
    }
  } catch {
    // Not JSON: someone else's file or a damaged one; treated as no owner.
  }
  return null
}

/** readRecord, with a lock file that is not one to read taken as no record. */
function readRecordOrNull(path: string): LockRecord | null {
  try {
    return readRecord(path)
  } catch {
    return null
  }
}

/** True if a process with this pid exists (EPERM: it exists, under another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
