/**
 * `mkdir -p` that always ends. Node 20's `mkdir(path, { recursive: true })` (sync and async) spins for ever where a
 * folder exists but refuses a new entry with ENOENT -- anywhere under /proc, such as `--prefix /proc/self/x` or
 * `--data /proc/1/x`: it makes the parent (EEXIST), tries the child again (ENOENT), and so on. This makes each
 * missing folder once, from the deepest one that exists down, and throws the first failure with Node's own words,
 * which name the folder (ENOENT, ENOTDIR, EACCES...). A path that is a directory already is fine, as with
 * `recursive`; one that is a file is EEXIST, said in words that name it. For paths a user gives (a prefix, a data or keys folder); it is
 * synchronous, a few system calls at a command's start.
 */
import { mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

const code = (err: unknown): unknown => (err as { code?: unknown }).code

/**
 * Makes `path` and any folders above it that are missing, each with `mode` (default 0777 less the umask); returns the
 * folders it made, the topmost first (common/signing gives them to the keys folder's owner under sudo).
 */
export function makeDirsSync(path: string, mode?: number): string[] {
  const missing: string[] = []
  const made: string[] = []
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      mkdirSync(dir, { mode })
      made.push(dir)
      break
    } catch (err) {
      // The deepest folder that exists (the path itself: fine when it is a directory): make the rest below it.
      if (code(err) === 'EEXIST' && (missing.length > 0 || statSync(dir).isDirectory())) break
      // The path itself is a file: said as `config check` says it (Node's "EEXIST: file already exists, mkdir" puzzled).
      if (code(err) === 'EEXIST')
        throw Object.assign(new Error(`${path} is a file, not a folder: give a folder, or move the file away`), { code: 'EEXIST' })
      if (code(err) === 'ENOENT' && dirname(dir) !== dir) {
        missing.push(dir)
        continue
      }
      throw err
    }
  }
  // Each once: a folder that refuses a new entry throws here, where `recursive` would try it again.
  for (const dir of missing.reverse()) {
    mkdirSync(dir, { mode })
    made.push(dir)
  }
  return made
}

/**
 * A data folder (the cloud's database and blobs, a phone's files): made private, 0700 (with any folders above it that
 * are missing), because the files in it are one person's data and get the umask's 0644 by default. A folder that is
 * already there keeps its mode (common/data-lock warns when others can read it).
 */
export function makeDataDirSync(path: string): void {
  makeDirsSync(path, 0o700)
}
