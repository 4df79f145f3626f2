/**
 * F2 wipe: removes the phone's user data -- every file under its data
 * directory -- except what the phone needs to stay itself and to finish
 * the wipe exactly once (its command journal, its control socket and lock, its
 * settings file, which the caller resets), and the external storage
 * (`sdcard/`) when asked to keep it. Counts what it removed. Safe to run
 * again after a crash: it removes whatever is left.
 */
import { lstat, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { JOURNAL_FILE } from './journal.js'

/**
 * The phone's own state files: its command journal, settings (reset by the
 * caller), the resident framework's switches, the ids of notifications it has
 * shown (so none shows twice; the executor has the inbox forget what they said) and its behaviour-log counter (so the cloud does
 * not take new events for old ones), sync's switches and state, which
 * sync resets itself around the wipe (agent/sync/engine.ts), and the drive's
 * switch, which the drive resets (agent/drive/phone-drive.ts). Each may have
 * a `.tmp` twin mid-write.
 */
const SYSTEM_FILES = new Set(
  [
    JOURNAL_FILE,
    'settings.json',
    'framework.json',
    'push-inbox.json',
    'behaviour-log.json',
    'sync-switches.json',
    'sync-state.json',
    'drive.json',
  ]
    .flatMap((f) => [f, `${f}.tmp`])
    .concat('control.sock', 'agent.lock'),
)
const SDCARD = 'sdcard'

async function measure(path: string): Promise<{ files: number; bytes: number }> {
  const info = await lstat(path)
  if (!info.isDirectory()) return { files: 1, bytes: info.size }
  let files = 0
  let bytes = 0
  for (const name of await readdir(path)) {
    const inner = await measure(join(path, name))
    files += inner.files
    bytes += inner.bytes
  }
  return { files, bytes }
}

export async function wipeData(dataDir: string, opts: { keepSdcard: boolean }): Promise<{ files: number; bytes: number }> {
  let files = 0
  let bytes = 0
  for (const name of await readdir(dataDir)) {
    if (SYSTEM_FILES.has(name) || (opts.keepSdcard && name === SDCARD)) continue
    const path = join(dataDir, name)
    const gone = await measure(path)
    await rm(path, { recursive: true, force: true })
    files += gone.files
    bytes += gone.bytes
  }
  return { files, bytes }
}
