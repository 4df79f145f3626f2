/**
 * M1: what a retirement's purge deletes besides the account's items (the
 * recycle bin with them), drive files (their share links with them) and
 * backups -- the Accounts clearers, shared with A3's freeze -- and what it
 * keeps, on purpose. Only the retirement's purge runs this: an A3 freeze
 * keeps the account's credentials, counters and Find Device (a frozen
 * account comes back by signing in), while a purged account never comes back.
 *
 * Deleted, table by table (what an export lists as the account's own, and
 * whatever the cloud kept about the account and its phones besides):
 *   - locations, commands (receipts with them), behaviour_logs,
 *     backup_devices: its phones' Find Device, command and X2 log data;
 *   - device_state: its phones' last known position and lost mode (the
 *     message and the number to call shown on the lock screen);
 *   - notifications: every notice to its phones (their bodies) but those
 *     kept below;
 *   - backup_plans, backup_retention, sync_counters, bin_notices,
 *     drive_tokens (its SDK apps' tokens);
 *   - cloud_log: every entry of the account but its retirement's
 *     (`retirement-…`), this purge's own among them.
 * Blobs no other account holds leave the disk with the backups clearer's
 * sweep, after the purge's transaction commits. Unfinished uploads (their
 * partial files under blobs/incoming) and proofs of uploaded bytes need no
 * step here: uploads stop at sync-off, and upload-expiry.ts removes each
 * one 24 hours (UPLOAD_IDLE_MS) after its last bytes, long before a purge.
 *
 * Kept (PURGE_KEEPS says it in the purge's cloud-log entry):
 *   - accounts (its name, tier, dates) and retirement_steps,
 *     retirement_deadlines, account_migrations: the retirement's record, so
 *     every request of the account answers 410 ACCOUNT_PURGED with the date
 *     and `console service status` says what the purge did;
 *   - devices and device_state's presence and switches: a phone that signs
 *     in is told the service is gone (410), not that it is unknown;
 *   - the phones' `service-gone` notice (a phone that is away learns the
 *     service is gone when it is back), and device_moves with the
 *     `cloud-moved` notice it points at (where a migrated phone went: the
 *     device views say `moved to URL`).
 * test/broker/cloud/retirement-purge.test.ts reads every table of the
 * schema: a new table with an `account` or `device_id` column fails it until
 * this purge deletes its rows or the test's list of what stays names it.
 */
import type { Db } from '../db.js'

const OF_ACCOUNT = 'device_id IN (SELECT id FROM devices WHERE account = ?)'

/** What a purge keeps of an account, as its cloud-log entry and `console service status` say it. */
export const PURGE_KEEPS =
  "the account's name and its retirement's record, its phones' registration (a phone that signs in is told the service is " +
  'gone), their service-gone notice and where a migrated phone went'

/** Deletes what the retirement's purge deletes besides the Accounts clearers; answers how many rows went, by kind. */
export type RetirementPurge = (account: string) => Record<string, number>

/** `writeHeartbeats` writes the heartbeats received before the shutdown and not written yet, so they are deleted too. */
export function retirementPurge(db: Db, writeHeartbeats: () => void): RetirementPurge {
  const run = (sql: string) => {
    const stmt = db.prepare<[account: string]>(sql)
    return (account: string): number => stmt.run(account).changes
  }
  const counted = {
    'location fixes': run(`DELETE FROM locations WHERE ${OF_ACCOUNT}`),
    'remote commands': run(`DELETE FROM commands WHERE ${OF_ACCOUNT}`),
    notifications: run(
      `DELETE FROM notifications WHERE ${OF_ACCOUNT} AND kind != 'service-gone'
         AND id NOT IN (SELECT notice FROM device_moves)`,
    ),
    'behaviour-log events': run(`DELETE FROM behaviour_logs WHERE ${OF_ACCOUNT}`),
    'backup plans': run('DELETE FROM backup_plans WHERE account = ?'),
    'drive SDK tokens': run('DELETE FROM drive_tokens WHERE account = ?'),
    // Its retirement's entries stay (this purge's own is written after it): the record of what the service did.
    'cloud-log entries': run("DELETE FROM cloud_log WHERE account = ? AND rule NOT LIKE 'retirement-%'"),
  }
  const uncounted = [
    // The last known position and lost mode; presence and the switches the phone last reported stay.
    run(
      `UPDATE device_state SET seq = NULL, at = NULL, lat = NULL, lon = NULL, accuracy = NULL, speed = NULL,
         battery = NULL, charging = NULL, network = NULL, received_at = NULL,
         lost_mode = NULL, lost_message = NULL, lost_phone = NULL, lost_mode_at = NULL
       WHERE ${OF_ACCOUNT}`,
    ),
    run(`DELETE FROM backup_devices WHERE ${OF_ACCOUNT}`),
    run('DELETE FROM backup_retention WHERE account = ?'),
    run('DELETE FROM sync_counters WHERE account = ?'),
    run('DELETE FROM bin_notices WHERE account = ?'),
  ]
  return (account) => {
    writeHeartbeats()
    const removed: Record<string, number> = {}
    for (const [kind, purge] of Object.entries(counted)) removed[kind] = purge(account)
    for (const purge of uncounted) purge(account)
    return removed
  }
}
