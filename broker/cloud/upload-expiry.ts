/**
 * A1, S3: an unfinished upload is removed once no new bytes of it reached the
 * cloud for UPLOAD_IDLE_MS (24 h) on the cloud's clock; the quota its partial
 * file held (blob-routes.ts counts it) is free again, and the cloud log says
 * what went and why. A phone resumes within the 24 h as before; after them it
 * is told (409 BAD_OFFSET) to start again from the first byte. The removal
 * itself is BlobStore.expireIdle; this is its timer and its log lines.
 */
import { formatBytes } from '../../common/format-bytes.js'
import { DueTimer } from '../due-timer.js'
import { UPLOAD_IDLE_MS, type ExpiredUpload } from './blob-store.js'
import type { CloudParts } from './cloud-data.js'
import { plural } from '../../common/plural.js'

/** A log line names this many uploads at most. */
const SHOWN = 5

export class UploadExpiry {
  private readonly timer: DueTimer

  constructor(private readonly parts: CloudParts) {
    const { blobs, clock, log } = parts
    // Woken every UPLOAD_IDLE_MS at least: a partial file the database does not know yet is taken in by a run.
    this.timer = new DueTimer(
      clock,
      () => blobs.nextIdleDue(),
      (now) => this.run(now),
      log,
      'upload-expiry',
      UPLOAD_IDLE_MS,
    )
    blobs.onIdleDue = (at) => this.timer.dueBy(at)
  }

  /** Runs at once: takes in the partial files already there (an upgrade, a crash) and removes those idle meanwhile. */
  start(): void {
    this.timer.startNow()
  }

  stop(): void {
    this.timer.stop()
  }

  private run(now: number): void {
    const byAccount = new Map<string, ExpiredUpload[]>()
    for (const u of this.parts.blobs.expireIdle(now)) byAccount.set(u.account, [...(byAccount.get(u.account) ?? []), u])
    for (const [account, uploads] of byAccount) {
      const bytes = uploads.reduce((n, u) => n + u.bytes, 0)
      const names =
        uploads
          .slice(0, SHOWN)
          .map((u) => `${u.sha256.slice(0, 12)} (${formatBytes(u.bytes)})`)
          .join(', ') + (uploads.length > SHOWN ? ` and ${uploads.length - SHOWN} more` : '')
      this.parts.cloudLog.record(
        account,
        'upload-expiry',
        `${plural(uploads.length, 'unfinished upload')} removed after ${UPLOAD_IDLE_MS / 3_600_000} h without new bytes: ${names}; ` +
          `the ${formatBytes(bytes)} ${uploads.length === 1 ? 'it' : 'they'} held count against the quota no more, and an ` +
          `upload of ${uploads.length === 1 ? 'it' : 'them'} starts again from ` +
          'the first byte',
        uploads.length,
      )
    }
  }
}
