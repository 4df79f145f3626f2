/**
 * The cloud drive (D1-D5) as one part of CloudData: its files and share
 * links, the SDK tokens third-party apps call with, the entry points for
 * device, console, SDK and share links, and the 7-day clean-up (D4).
 */
import type { CloudParts } from './cloud-data.js'
import { DriveCleanup, type DriveRules } from './drive-cleanup.js'
import { addDriveRoutes } from './drive-routes.js'
import { DriveStore } from './drive-store.js'
import { DriveTokens } from './drive-tokens.js'

export class CloudDrive {
  readonly files: DriveStore
  readonly tokens: DriveTokens
  private readonly cleanup: DriveCleanup

  constructor(parts: CloudParts, rules: DriveRules) {
    this.files = new DriveStore(parts)
    this.tokens = new DriveTokens(parts.db, parts.clock)
    this.cleanup = new DriveCleanup(parts, this.files, rules)
    addDriveRoutes(parts, this.files, this.tokens)
  }

  start(): void {
    this.cleanup.start()
  }

  stop(): void {
    this.cleanup.stop()
  }
}
