/**
 * M2 across devices: where the phone's cloud is once its account migrated.
 * A verified `cloud-moved` notice (common/cloud/cloud-move.ts) is kept in
 * `<data>/cloud-home.json`; the agent reads it when it is built, so after a
 * restart the data channel, push channel and cloud transfers go to the new
 * cloud whatever URLs the agent was started with.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJson } from '../common/contract.js'
import { JsonFile, JsonFileError } from '../common/json-file.js'
import { CloudHomeSchema, type CloudHome } from '../common/phone-status.js'

/** The file's schema is shared with the status the control socket answers (common/phone-status). */
export type { CloudHome }

export const homeFile = (dataDir: string): JsonFile<CloudHome> => new JsonFile(join(dataDir, 'cloud-home.json'), CloudHomeSchema)

/** The kept home, or null before any move; an unreadable or invalid file is an error naming it (the phone must not guess its cloud). */
export function readHome(dataDir: string): CloudHome | null {
  const path = homeFile(dataDir).path
  let text: string
  try {
    // No move yet (nearly always): a stat says so without the Error and stack trace of a failed read.
    if (!statSync(path, { throwIfNoEntry: false })) return null
    text = readFileSync(path, 'utf8')
  } catch (err) {
    // No file, or no data directory yet (made by start, which says what is wrong with it).
    const { code } = err as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') return null
    throw err
  }
  const decoded = decodeJson(CloudHomeSchema, text)
  if (!decoded.ok) throw new JsonFileError(path, decoded.reason)
  return decoded.value
}
