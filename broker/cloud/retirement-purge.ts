/**
 * M1: what a retirement's purge deletes besides the account's items, drive
 * and backups (the Accounts clearers, shared with A3's freeze): its phones'
 * Find Device data -- their location history, their last known position and
 * their remote commands with the receipts. The purge says "the account's
 * cloud data was deleted"; an export lists those under `devices/` as the
 * account's own, so after the purge `console history` and the device views
 * no longer show where the phones were. Kept: the devices themselves (a phone
 * signing in is told the service is gone), their queued notices (the
 * `service-gone` one must still reach a phone that is away) and where a
 * migrated phone went (`moved to URL`).
 *
 * Only the retirement's purge runs this: after an A3 freeze the phones'
 * Find Device still runs (a heartbeat is not activity), while after the
 * shutdown no heartbeat is stored any more.
 */
import type { Db } from '../db.js'

const OF_ACCOUNT = 'device_id IN (SELECT id FROM devices WHERE account = ?)'

/** Deletes the Find Device data of `account`'s phones; answers how many records went (fixes and commands). */
export type FindDevicePurge = (account: string) => number

export function findDevicePurge(db: Db): FindDevicePurge {
  const sql = {
    locations: db.prepare<[account: string]>(`DELETE FROM locations WHERE ${OF_ACCOUNT}`),
    commands: db.prepare<[account: string]>(`DELETE FROM commands WHERE ${OF_ACCOUNT}`),
    lastFix: db.prepare<[account: string]>(
      `UPDATE device_state SET seq = NULL, at = NULL, lat = NULL, lon = NULL, accuracy = NULL, speed = NULL,
         battery = NULL, charging = NULL, network = NULL, received_at = NULL
       WHERE ${OF_ACCOUNT}`,
    ),
  }
  return (account) => {
    const removed = sql.locations.run(account).changes + sql.commands.run(account).changes
    sql.lastFix.run(account)
    return removed
  }
}
