/**
 * The broker's config file (`fakephone broker --config FILE`): the schema of
 * every setting with its default, and the mapping to BrokerOptions. Loading,
 * environment overrides and error reporting are common/config.ts's job.
 */
import { z } from 'zod'
import { DurationSchema, LogLevelSchema, PortSchema, SizeSchema, type ConfigSpec } from '../common/config.js'
import { checkCron } from '../common/cron.js'
import { DEFAULT_ACCOUNT_RULES } from './cloud/accounts.js'
import { DEFAULT_DRIVE_RULES } from './cloud/drive-cleanup.js'
import { DEFAULT_BACKUP_OPTIONS } from './cloud/backups.js'
import { DEFAULT_BROKER_OPTIONS as D, type BrokerOptions } from './server.js'

export const BrokerConfigSchema = z.strictObject({
  /** Database, console token. */
  dataDir: z.string().min(1).default(D.dataDir),
  /** Address both listeners bind to; loopback unless you mean to serve a network. */
  host: z.string().min(1).default(D.host),
  mqttPort: PortSchema.default(D.mqttPort),
  httpPort: PortSchema.default(D.httpPort),
  maxPacketBytes: z.number().int().positive().default(D.maxPacketBytes),
  /** How long a new connection may take to send CONNECT. */
  connectTimeout: DurationSchema.default(D.connectTimeoutMs),
  rateLimit: z
    .strictObject({
      /** Connections one address may open at once. */
      burst: z.number().int().positive().default(D.rateLimit.burst),
      /** Connections earned back per second. */
      perSecond: z.number().positive().default(D.rateLimit.perSecond),
    })
    .prefault({}),
  /** X3: queue a weather warning or a system-update reminder for every device this often; 0 for never. */
  serviceNotices: DurationSchema.default(0),
  /** Run the cloud on simulated time: real speed, but `fakephone console clock advance 73h` jumps it forward. */
  simulatedTime: z.boolean().default(false),
  /** A1: what a free account may store, bytes or text such as 5GB. */
  freeQuota: SizeSchema.default(DEFAULT_ACCOUNT_RULES.freeQuotaBytes),
  /** What a premium member may store. */
  premiumQuota: SizeSchema.default(DEFAULT_ACCOUNT_RULES.premiumQuotaBytes),
  /** D4: drive files deleted per clean-up batch, once kept 7 days after the service went off. */
  driveCleanupBatch: z.number().int().positive().default(DEFAULT_DRIVE_RULES.batchSize),
  /** D4: time between two clean-up batches of one account. */
  driveCleanupEvery: DurationSchema.default(DEFAULT_DRIVE_RULES.batchEveryMs),
  /** B1: when the cloud plans backups, a cron expression (minute hour day-of-month month day-of-week) read in UTC. */
  backupCron: z
    .string()
    .superRefine((expr, ctx) => {
      try {
        checkCron(expr)
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message })
      }
    })
    .default(DEFAULT_BACKUP_OPTIONS.cron),
  /** B3: how long backups stay read-only before the gradual clean-up starts. */
  backupCleanupDelay: DurationSchema.default(DEFAULT_BACKUP_OPTIONS.retention.cleanupDelayMs),
  /** B3: backups removed per clean-up batch. */
  backupCleanupBatch: z.number().int().positive().default(DEFAULT_BACKUP_OPTIONS.retention.batchSize),
  /** B3: time between clean-up batches. */
  backupCleanupEvery: DurationSchema.default(DEFAULT_BACKUP_OPTIONS.retention.batchIntervalMs),
  logLevel: LogLevelSchema.default('info'),
})
export type BrokerConfig = z.output<typeof BrokerConfigSchema>

export const BROKER_CONFIG: ConfigSpec<typeof BrokerConfigSchema> = { kind: 'broker', schema: BrokerConfigSchema }

export function brokerOptions(c: BrokerConfig): BrokerOptions {
  return {
    dataDir: c.dataDir,
    host: c.host,
    mqttPort: c.mqttPort,
    httpPort: c.httpPort,
    maxPacketBytes: c.maxPacketBytes,
    connectTimeoutMs: c.connectTimeout,
    rateLimit: c.rateLimit,
    framework: { ...D.framework, serviceNoticeEveryMs: c.serviceNotices },
    cloud: {
      ...D.cloud,
      accounts: { ...D.cloud.accounts, freeQuotaBytes: c.freeQuota, premiumQuotaBytes: c.premiumQuota },
      drive: { ...D.cloud.drive, batchSize: c.driveCleanupBatch, batchEveryMs: c.driveCleanupEvery },
      backup: {
        ...D.cloud.backup,
        cron: c.backupCron,
        retention: {
          ...D.cloud.backup.retention,
          cleanupDelayMs: c.backupCleanupDelay,
          batchSize: c.backupCleanupBatch,
          batchIntervalMs: c.backupCleanupEvery,
        },
      },
    },
  }
}
