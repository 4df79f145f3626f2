/**
 * Makes a directory's entries durable: a file created, renamed or linked into `dir` survives a power cut only once
 * the directory itself is fsynced (the file's own fsync covers its bytes, not its name). Used where a file must be
 * there after a crash: a secret file written before its devices exist (common/secret-file), a bag put at its
 * target (M3), a JSON file replaced (common/json-file).
 */
import { open } from 'node:fs/promises'

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
