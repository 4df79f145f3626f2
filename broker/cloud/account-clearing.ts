/**
 * M1, A3: the two ways the cloud clears an account, from one list of its
 * tables. Both run the Accounts clearers first (items with the recycle bin,
 * drive files with their share links, backups) and then this list:
 *   - M1's purge, when the service retires: the account never comes back, so
 *     all of it goes but the record of the retirement;
 *   - A3's freeze, after a year without activity: the account comes back by
 *     signing in (any A3 activity), empty, so what it needs to come back stays.
 *
 * Deleted by both, table by table (what an export lists as the account's
 * own, and whatever the cloud kept about the account and its phones besides):
 *   - locations, commands (receipts with them), behaviour_logs: its phones'
 *     location history, remote commands and X2 behaviour logs;
 *   - device_state: its phones' last known position and lost mode (the
 *     message and the number to call shown on the lock screen);
 *   - notifications: every notice to its phones (their bodies) but each
 *     phone's `service-gone` notice and the `cloud-moved` one device_moves
 *     points at;
 *   - backup_plans, drive_tokens (its SDK apps' tokens: an app
 *     is given a new one after the account is back);
 *   - cloud_log: every entry of the account but its retirement's
 *     (`retirement-…`); a freeze also keeps its own record (`freeze-warning`,
 *     `inactivity-freeze`).
 * Deleted by the purge only (a freeze keeps them, as STEPS says why):
 *   - backup_devices: each phone's backup switch as it last reported it;
 *   - backup_retention: B3's state of the account's cloud-service switch;
 *   - sync_counters: where the phones' change feeds stand.
 * Blobs no other account holds leave the disk with the backups clearer's
 * sweep, after the clearing's transaction commits. Unfinished uploads (their
 * partial files under blobs/incoming) and proofs of uploaded bytes need no
 * step here: upload-expiry.ts removes each one 24 hours (UPLOAD_IDLE_MS)
 * after its last bytes: long before a purge (uploads stop at sync-off), and
 * a day after a freeze at most (a frozen account's uploads are refused).
 *
 * Kept by both (PURGE_KEEPS, FREEZE_KEEPS say it in their cloud-log entries):
 *   - accounts (its name, tier, dates; a freeze's date) and the retirement's
 *     record (retirement_steps, retirement_deadlines, account_migrations);
 *   - devices and device_state's presence and switches: a phone of a purged
 *     account that signs in is told the service is gone (410), not that it
 *     is unknown; a phone of a frozen account signs in as before;
 *   - device_moves, where a migrated phone went, and the notices above;
 *   - a freeze also keeps when it cleared the account (accounts.cleared_at,
 *     which its phones' change feeds say, so each uploads its items again),
 *     and each phone's notice of it, queued after the clearing.
 * test/broker/cloud/retirement-purge.test.ts and inactivity-freeze.test.ts
 * read every table of the schema: a new table with an `account` or
 * `device_id` column fails them until STEPS clears its rows or the test's
 * list of what stays names it.
 */
import type { Db } from '../db.js'

const OF_ACCOUNT = 'device_id IN (SELECT id FROM devices WHERE account = ?)'

/** M1's purge (the account never comes back) or A3's freeze (it comes back, empty, by signing in). */
export type Clearing = 'purge' | 'freeze'

/** What a purge keeps of an account, as its cloud-log entry and `console service status` say it. */
export const PURGE_KEEPS =
  "the account's name and its retirement's record, its phones' registration (a phone that signs in is told the service is " +
  'gone), their service-gone notice and where a migrated phone went'

/** What a freeze keeps of an account, as its cloud-log entry says it. */
export const FREEZE_KEEPS =
  "the account's name, membership and this record, its phones' registration and switches, and where their sync feeds " +
  'stand: any activity (a console sign-in, say) brings the account back, empty'

/** What goes with the kinds a clearing counts, uncounted. */
const CLEARED_WITH = "with them the recycle bin, share links, command receipts, and its phones' last known position and lost mode"

/** A clearing's statement for one table, or why it keeps the table's rows. */
type Action = string | { keeps: string }

interface Step {
  /** What the clearing's cloud-log entry calls these rows, counted; null: not counted (CLEARED_WITH, or kept). */
  kind: string | null
  purge: Action
  freeze: Action
}

const both = (sql: string): Pick<Step, Clearing> => ({ purge: sql, freeze: sql })

const STEPS: readonly Step[] = [
  { kind: 'location fixes', ...both(`DELETE FROM locations WHERE ${OF_ACCOUNT}`) },
  { kind: 'remote commands', ...both(`DELETE FROM commands WHERE ${OF_ACCOUNT}`) },
  {
    kind: 'notifications',
    ...both(`DELETE FROM notifications WHERE ${OF_ACCOUNT} AND kind != 'service-gone' AND id NOT IN (SELECT notice FROM device_moves)`),
  },
  { kind: 'behaviour-log events', ...both(`DELETE FROM behaviour_logs WHERE ${OF_ACCOUNT}`) },
  // By device, the index a plan is found by (its account is its device's): a freeze clears every account idle for the
  // year at once, and a scan of every plan ever made (one a day per phone) for each of them would hold the cloud up.
  { kind: 'backup plans', ...both(`DELETE FROM backup_plans WHERE ${OF_ACCOUNT}`) },
  { kind: 'drive SDK tokens', ...both('DELETE FROM drive_tokens WHERE account = ?') },
  {
    kind: 'cloud-log entries',
    // Its retirement's entries stay (the purge's own is written after it): the record of what the service did.
    purge: "DELETE FROM cloud_log WHERE account = ? AND rule NOT LIKE 'retirement-%'",
    // The freeze's record stays too: the owner who comes back reads when and why the data went.
    freeze:
      "DELETE FROM cloud_log WHERE account = ? AND rule NOT LIKE 'retirement-%' AND rule NOT IN ('freeze-warning', 'inactivity-freeze')",
  },
  // The last known position and lost mode; presence and the switches the phone last reported stay.
  {
    kind: null,
    ...both(
      `UPDATE device_state SET seq = NULL, at = NULL, lat = NULL, lon = NULL, accuracy = NULL, speed = NULL,
         battery = NULL, charging = NULL, network = NULL, received_at = NULL,
         lost_mode = NULL, lost_message = NULL, lost_phone = NULL, lost_mode_at = NULL
       WHERE ${OF_ACCOUNT}`,
    ),
  },
  {
    kind: null,
    purge: `DELETE FROM backup_devices WHERE ${OF_ACCOUNT}`,
    freeze: { keeps: "each phone's backup switch as it last reported it: the schedule plans its backups once the account is back" },
  },
  {
    kind: null,
    purge: 'DELETE FROM backup_retention WHERE account = ?',
    freeze: { keeps: "B3's state of the account's cloud-service switch, which stays as the phones set it; it holds no data" },
  },
  {
    kind: null,
    purge: 'DELETE FROM sync_counters WHERE account = ?',
    freeze: {
      keeps:
        "where the phones' change feeds stand: a counter from 0 again would hide the account's new changes from a phone " +
        'whose cursor is past it; it holds no data',
    },
  },
]

/** Deletes what a clearing deletes besides the Accounts clearers; answers how many rows went, by kind. */
export type ClearRest = (account: string) => Record<string, number>

/** `writeHeartbeats` writes the heartbeats received and not written yet, so they are deleted too. */
export function accountClearing(db: Db, writeHeartbeats: () => void): Record<Clearing, ClearRest> {
  const clearing = (which: Clearing): ClearRest => {
    const steps = STEPS.flatMap(({ kind, [which]: action }) =>
      typeof action === 'string' ? [{ kind, stmt: db.prepare<[account: string]>(action) }] : [],
    )
    return (account) => {
      writeHeartbeats()
      const removed: Record<string, number> = {}
      for (const { kind, stmt } of steps) {
        const { changes } = stmt.run(account)
        if (kind !== null) removed[kind] = changes
      }
      return removed
    }
  }
  return { purge: clearing('purge'), freeze: clearing('freeze') }
}

/** A clearing's removed rows, kind by kind, and what goes with them: "items 2, drive files 1, …; with them …". */
export function describeCleared(removed: Record<string, number>): string {
  return `${Object.entries(removed)
    .map(([what, n]) => `${what} ${n}`)
    .join(', ')}; ${CLEARED_WITH}`
}

/** How many rows a clearing removed in all. */
export function totalCleared(removed: Record<string, number>): number {
  return Object.values(removed).reduce((a, b) => a + b, 0)
}
