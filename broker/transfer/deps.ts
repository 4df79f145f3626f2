/** What the account transfer (M2, M3) reads and writes: the cloud data, the device state, commands and notifications. */
import type { Clock } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import type { CloudData } from '../cloud/cloud-data.js'
import type { Db } from '../db.js'
import type { CommandCenter } from '../devices/commands.js'
import type { StateStore } from '../devices/state-store.js'
import type { NotificationQueue } from '../framework/notification-queue.js'

export interface TransferDeps {
  db: Db
  clock: Clock
  log: Logger
  cloud: CloudData
  store: StateStore
  commands: CommandCenter
  queue: NotificationQueue
  /** How long a blob pull waits for its connection to the source, ms (PULL_CONNECT_TIMEOUT_MS unless the options say). */
  pullConnectTimeoutMs: number
}

/** SQLite's LIMIT -1: every row. */
export const ALL = -1
