/**
 * M3, M2: everything the cloud keeps of one account, read in one go for an
 * export or a migration: the account (tier, quota, dates), its devices,
 * every synced item (recycle-bin entries with their purge date and days
 * left), drive files, backup packages, location history, remote commands
 * with their receipts, notifications and the cloud log. Blobs are named by
 * SHA-256 and read separately (transfer-routes.ts). Reading is not activity
 * (A3): an export does not keep an account alive.
 */
import type { AccountSnapshot, CommandRecord, ItemRecord } from '../../common/cloud/transfer-api.js'
import type { CloudItem } from '../../common/cloud/sync-api.js'
import { one, pluck } from '../db.js'
import { ALL, type TransferDeps } from './deps.js'

const DAY = 86_400_000

export class AccountSnapshots {
  private readonly sql

  constructor(private readonly deps: TransferDeps) {
    const { db } = deps
    this.sql = {
      createdAt: pluck<[id: string], number>(db, 'SELECT created_at FROM accounts WHERE id = ?'),
      devices: db.prepare<[account: string], { id: string; createdAt: number }>(
        'SELECT id, created_at AS createdAt FROM devices WHERE account = ? ORDER BY id',
      ),
    }
  }

  take(accountId: string): AccountSnapshot {
    const { cloud, store, commands, queue, clock } = this.deps
    const a = cloud.accounts.need(accountId)
    const now = clock.now()
    // R2: a bin entry's purge date and days left as the recycle bin says them (a day after its notice at the earliest).
    const binned = new Map(cloud.bin.view(a.id).entries.map((e) => [`${e.category}/${e.id}`, e]))
    const item = (i: CloudItem): ItemRecord => {
      const entry = binned.get(`${i.category}/${i.id}`)
      return entry === undefined ? { ...i, purgeAt: null, daysLeft: null } : { ...i, purgeAt: entry.purgeAt, daysLeft: entry.daysLeft }
    }
    const devices = this.sql.devices.all(a.id)
    return {
      now,
      account: {
        id: a.id,
        tier: a.tier,
        premiumUntil: a.premiumUntil,
        quotaBytes: a.quotaBytes,
        usedBytes: a.usedBytes,
        createdAt: one(this.sql.createdAt, a.id),
        lastActivityAt: a.lastActivityAt,
        lastActivity: a.lastActivity,
        frozenAt: a.frozenAt,
        serviceOffAt: a.serviceOffAt,
        binWindowDays: Math.round(a.binMs / DAY),
      },
      devices,
      items: [...cloud.items.live(a.id).items, ...cloud.items.bin(a.id)].map(item),
      drive: cloud.drive.files.list(a.id),
      backups: cloud.backups.store
        .list(a.id)
        .reverse()
        .map(({ account: _, ...b }) => b),
      locations: devices.flatMap((d) =>
        store
          .history(d.id, ALL)
          .reverse()
          .map((fix) => ({ device: d.id, ...fix })),
      ),
      commands: devices.flatMap((d) =>
        commands
          .list(d.id, ALL)
          .reverse()
          // A stored command's data is parsed from its row: an object or null, never undefined.
          .map(({ args: _, ...c }) => ({ ...c, data: c.data as CommandRecord['data'] })),
      ),
      notifications: devices.flatMap((d) => queue.list(d.id, ALL)),
      log: cloud.cloudLog.list(a.id, ALL).reverse(),
    }
  }
}
