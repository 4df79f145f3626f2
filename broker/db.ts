/**
 * The cloud's embedded database (SQLite through better-sqlite3, WAL mode):
 * device registry, last known state and location history. Schema changes are
 * numbered migrations keyed on `PRAGMA user_version`.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { FakephoneError } from '../common/errors.js'
import { makeDataDirSync } from '../common/make-dirs.js'

export type Db = Database.Database

/** A prepared statement taking `P` and answering rows of type `R`. */
export type Stmt<P extends unknown[], R = unknown> = Database.Statement<P, R>

/**
 * A statement answering one column: `get`/`all` return that column's values (type `V`), not rows.
 * `P` is the parameter tuple, or `[{ ...named }]` for named parameters.
 */
export function pluck<P extends unknown[], V>(db: Db, sql: string): Stmt<P, V> {
  return db.prepare<P, V>(sql).pluck()
}

/** The row of a query that always answers one (an aggregate, `RETURNING` of a row just written). */
export function one<P extends unknown[], R>(stmt: Stmt<P, R>, ...params: P): R {
  const row = stmt.get(...params)
  /* c8 ignore next -- only a bug (a query that can answer no row used here) makes it undefined */
  if (row === undefined) throw new Error(`the query answered no row: ${stmt.source}`)
  return row
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     account TEXT NOT NULL,
     secret_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE device_state (
     device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
     online INTEGER NOT NULL DEFAULT 0,
     presence_at INTEGER,
     seq INTEGER, at INTEGER, lat REAL, lon REAL, accuracy REAL, speed REAL,
     battery REAL, charging INTEGER, network TEXT, received_at INTEGER,
     cloud_service INTEGER, find_device INTEGER, status_at INTEGER,
     location_off_at INTEGER
   );
   CREATE TABLE locations (
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL, at INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
     accuracy REAL NOT NULL, speed REAL NOT NULL, battery REAL NOT NULL,
     charging INTEGER NOT NULL, network TEXT NOT NULL, received_at INTEGER NOT NULL,
     PRIMARY KEY (device_id, seq)
   ) WITHOUT ROWID;
   CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // F2: remote commands live here, not only in MQTT queues (Aedes acknowledges a QoS 1 publish before storing it).
  `CREATE TABLE commands (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
     type TEXT NOT NULL,
     envelope TEXT NOT NULL,
     state TEXT NOT NULL,
     reason TEXT,
     data TEXT,
     receipt TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     sent_at INTEGER
   );
   CREATE INDEX commands_by_device ON commands (device_id, created_at);`,
  // The next-expiry query runs on every submit; without this it scans every command ever sent.
  `CREATE INDEX commands_queued_expiry ON commands (expires_at) WHERE state = 'queued';`,
  // X3: the push gateway's durable notification queue; seq keeps the order they were queued in.
  `CREATE TABLE notifications (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
     kind TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
     state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'expired')),
     sends INTEGER NOT NULL DEFAULT 0,
     delivered_at INTEGER, expired_at INTEGER
   );
   CREATE INDEX notifications_by_device ON notifications (device_id, state, seq);
   CREATE INDEX notifications_by_deadline ON notifications (state, expires_at);`,
  // X2: the behaviour logs the cloud received, one row per (device, event seq).
  `CREATE TABLE behaviour_logs (
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (device_id, seq)
   ) WITHOUT ROWID;`,
  // Cloud data (A1-A3): accounts with their membership, quota use and activity; content-addressed
  // blobs and who holds them; the log of every rule that removed or changed cloud data.
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     tier TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'premium')),
     premium_until INTEGER,
     used_bytes INTEGER NOT NULL DEFAULT 0,
     last_activity_at INTEGER NOT NULL,
     last_activity TEXT NOT NULL DEFAULT 'created',
     freeze_warned_at INTEGER,
     frozen_at INTEGER,
     service_off_at INTEGER,
     created_at INTEGER NOT NULL
   );
   INSERT INTO accounts (id, last_activity_at, created_at)
     SELECT account, MIN(created_at), MIN(created_at) FROM devices GROUP BY account;
   CREATE TABLE blobs (
     sha256 TEXT PRIMARY KEY,
     size INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE blob_refs (
     account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     sha256 TEXT NOT NULL REFERENCES blobs(sha256),
     refs INTEGER NOT NULL CHECK (refs > 0),
     PRIMARY KEY (account, sha256)
   ) WITHOUT ROWID;
   CREATE INDEX blob_refs_by_blob ON blob_refs (sha256);
   CREATE TABLE cloud_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     account TEXT NOT NULL,
     at INTEGER NOT NULL,
     rule TEXT NOT NULL,
     message TEXT NOT NULL,
     count INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX cloud_log_by_account ON cloud_log (account, seq);`,
  // The cloud drive (D1-D5): files by account and folder, share links and SDK tokens (both kept
  // as SHA-256 hashes), and the 7-day clean-up that starts once the service was turned off.
  `CREATE TABLE drive_files (
     id TEXT PRIMARY KEY,
     account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     folder TEXT NOT NULL,
     name TEXT NOT NULL,
     sha256 TEXT NOT NULL REFERENCES blobs(sha256),
     size INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     uploaded_by TEXT NOT NULL,
     UNIQUE (account, folder, name)
   );
   CREATE TABLE drive_shares (
     token_hash TEXT PRIMARY KEY,
     file_id TEXT NOT NULL REFERENCES drive_files(id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX drive_shares_by_file ON drive_shares (file_id);
   CREATE TABLE drive_tokens (
     id TEXT PRIMARY KEY,
     account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     app TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE drive_cleanup (
     account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
     next_at INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // S1-S4, R1-R3: synced items per account and category, with a change counter per account for the
  // phones' change feeds and deleted_at for the recycle bin; bin_notices remembered how far ahead
  // the owner had been told of purges (replaced by sync_items.bin_noticed_at below).
  `CREATE TABLE sync_items (
     account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     category TEXT NOT NULL,
     id TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     size INTEGER NOT NULL,
     meta TEXT NOT NULL,
     modified_at INTEGER NOT NULL,
     seq INTEGER NOT NULL,
     changed_by TEXT NOT NULL,
     deleted_at INTEGER,
     PRIMARY KEY (account, category, id)
   ) WITHOUT ROWID;
   CREATE INDEX sync_items_feed ON sync_items (account, category, seq);
   CREATE INDEX sync_items_bin ON sync_items (account, deleted_at) WHERE deleted_at IS NOT NULL;
   CREATE TABLE sync_counters (
     account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL
   );
   CREATE TABLE bin_notices (
     account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
     noticed_until INTEGER NOT NULL
   );`,
  // B1-B4: each phone's backup switch as the cloud last heard it, the plans the schedule made,
  // the stored packages, and each account's progress through B3 (read-only, notice, batches).
  `CREATE TABLE backup_devices (
     device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
     backup_on INTEGER NOT NULL,
     service_on INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE backup_plans (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
     account TEXT NOT NULL,
     planned_at INTEGER NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'done', 'failed', 'dropped')),
     reason TEXT,
     backup_id TEXT,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX backup_plans_by_device ON backup_plans (device_id, state);
   CREATE TABLE backups (
     id TEXT PRIMARY KEY,
     account TEXT NOT NULL,
     device_id TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     size INTEGER NOT NULL,
     manifest TEXT NOT NULL,
     plan_id TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX backups_by_account ON backups (account, created_at);
   CREATE TABLE backup_retention (
     account TEXT PRIMARY KEY,
     off_at INTEGER NOT NULL,
     read_only_at INTEGER,
     cleaning_from INTEGER,
     next_batch_at INTEGER
   );`,
  // Nothing ever read or wrote it: the console token lives in a file (console-token.ts).
  `DROP TABLE secrets;`,
  // M1: the service's retirement plan (one row), per-account deadlines that differ from it, the accounts that
  // migrated or exported (written by M2/M3 through ServiceRetirement.markMigrated), and each account's steps done.
  `CREATE TABLE service_retirement (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     announce_at INTEGER NOT NULL,
     sync_off_at INTEGER NOT NULL,
     deadline_at INTEGER NOT NULL,
     shutdown_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     last_purge_at INTEGER
   );
   CREATE TABLE retirement_deadlines (
     account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
     deadline_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE account_migrations (
     account TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
     how TEXT NOT NULL CHECK (how IN ('migrate', 'export')),
     at INTEGER NOT NULL,
     detail TEXT NOT NULL DEFAULT ''
   ) WITHOUT ROWID;
   CREATE TABLE retirement_steps (
     account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     step TEXT NOT NULL,
     done_at INTEGER NOT NULL,
     PRIMARY KEY (account, step)
   ) WITHOUT ROWID;`,
  // F2: lost mode as the device's state, recorded when a lost-mode command's signed receipt says it succeeded.
  `ALTER TABLE device_state ADD COLUMN lost_mode INTEGER;
   ALTER TABLE device_state ADD COLUMN lost_message TEXT;
   ALTER TABLE device_state ADD COLUMN lost_phone TEXT;
   ALTER TABLE device_state ADD COLUMN lost_mode_at INTEGER;`,
  // An account's devices by index, not a scan of every device: each phone's status asks whether any phone of its
  // account has the cloud service on (A3, D3), quadratic at a fleet's connect ramp without it.
  `CREATE INDEX devices_by_account ON devices (account, id);`,
  // M2: the small blobs a migration's batch brings are appended to one pack file per batch (blob-store.ts): a blob's
  // pack and where in it it starts, or NULL for a blob in a file of its own; a pack goes once no row points into it.
  `ALTER TABLE blobs ADD COLUMN pack TEXT;
   ALTER TABLE blobs ADD COLUMN pack_offset INTEGER;
   CREATE INDEX blobs_by_pack ON blobs (pack) WHERE pack IS NOT NULL;`,
  // F2: a device's open commands, sent again at each SUBSCRIBE (commands.ts `pending`), by an index of the open ones
  // only: commands are kept as history, so the device's index walked its whole history at every reconnect (4.4 ms a
  // SUBSCRIBE at 10,000 past commands, 13 µs with this one).
  `CREATE INDEX commands_open_by_device ON commands (device_id, created_at) WHERE state IN ('queued', 'delivered', 'executing');`,
  // A1, S3: each account's unfinished upload of a blob (its partial file under blobs/incoming) and when new bytes of it
  // last arrived, on the cloud's clock: one idle for UPLOAD_IDLE_MS is removed, its quota freed (upload-expiry.ts);
  // expired_at keeps, for as long again, that it was removed, so a resume is told why it must start again.
  `CREATE TABLE blob_uploads (
     account TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     touched_at INTEGER NOT NULL,
     expired_at INTEGER,
     PRIMARY KEY (account, sha256)
   ) WITHOUT ROWID;`,
  // D1, S1, B1: the accounts that sent a stored blob's bytes and hold no reference to it yet, so a restart between a
  // phone's upload and its item keeps its right to point the item at the blob (blob-store.ts); dropped in the
  // transaction that commits the reference, or UPLOAD_IDLE_MS after the bytes came. By blob first, for the sweep.
  `CREATE TABLE blob_proofs (
     sha256 TEXT NOT NULL,
     account TEXT NOT NULL,
     proved_at INTEGER NOT NULL,
     PRIMARY KEY (sha256, account)
   ) WITHOUT ROWID;`,
  // M2: the devices this cloud told to follow their account's migration (device-move.ts), so its device views say
  // where each went rather than "offline": the cloud it went to, the account there, when, and the cloud-moved notice
  // (its state says whether the phone took it). Filled from the notices of a database older than this table.
  `CREATE TABLE device_moves (
     device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
     notice TEXT NOT NULL,
     cloud TEXT NOT NULL,
     account TEXT NOT NULL,
     at INTEGER NOT NULL
   ) WITHOUT ROWID;
   INSERT OR REPLACE INTO device_moves (device_id, notice, cloud, account, at)
     SELECT n.device_id, n.id, json_extract(n.body, '$.to.cloud'), json_extract(n.body, '$.account'), n.created_at
     FROM notifications n JOIN devices d ON d.id = n.device_id
       JOIN account_migrations m ON m.account = d.account AND m.how = 'migrate'
     WHERE n.kind = 'cloud-moved' AND json_valid(n.body) AND json_extract(n.body, '$.device') = n.device_id
       AND json_type(n.body, '$.to.cloud') = 'text' AND json_type(n.body, '$.account') = 'text'
     ORDER BY n.seq;`,
  // F2: each device's newest locate that succeeded, by an index of those only, for the web console's recall of every
  // phone's outcome in one read (commands.ts LATEST_COMMANDS_SQL): a seek per device, not a walk of its newest commands.
  `CREATE INDEX commands_located_by_device ON commands (device_id, created_at) WHERE type = 'locate' AND state = 'succeeded';`,
  // A3: when the cloud last cleared the account's data (its freeze), kept after the account is back, so its phones'
  // change feeds can say it and a phone that still takes its items for in the cloud uploads them again (sync-api.ts).
  `ALTER TABLE accounts ADD COLUMN cleared_at INTEGER;
   UPDATE accounts SET cleared_at = frozen_at WHERE frozen_at IS NOT NULL;`,
  // R2: when the owner was told of each recycle-bin entry's purge (NULL: not yet), so that an entry goes no sooner than a
  // day after the notice that named it -- also when a membership that ends shortens the window at once (A2), and when
  // entries deleted minutes apart share one notice. One "told until" per account (bin_notices) could not say that: a
  // notice sent late was followed by the purge at once. Entries told of under the old table are told again.
  `ALTER TABLE sync_items ADD COLUMN bin_noticed_at INTEGER;
   DROP TABLE bin_notices;`,
]

export const DB_FILE = 'cloud.sqlite'
/** The broker's data directory unless told otherwise. */
export const DEFAULT_DATA_DIR = './data'

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length

export class DbVersionError extends FakephoneError {
  constructor(path: string, found: number) {
    super(
      'DB_TOO_NEW',
      `the database ${path} has schema version ${found}, newer than this build of fakephone understands (${SCHEMA_VERSION}): ` +
        'it was written by a newer fakephone; run that one (an older build would silently change it)',
    )
  }
}

/**
 * Builds from before the check above (schema 9 and lower, before 2026-12-04) wrote their own version over any database
 * they opened, so going back to one leaves a newer database saying 9 or less: migrations from there would fail half-way
 * (`no such table: secrets`). Migration 9 (the tenth) drops `secrets`, which every earlier schema has: a database that
 * says 1 to 9 without it was newer, by how much no one can tell.
 */
export const OVERWRITTEN_BEFORE = 10

export class DbVersionLostError extends FakephoneError {
  constructor(path: string, found: number) {
    super(
      'DB_VERSION_LOST',
      `the database ${path} says schema version ${found}, but a newer fakephone had already changed it: a build from ` +
        `before 2026-12-04 (schema ${OVERWRITTEN_BEFORE - 1} or lower) was started on it and wrote its own version over ` +
        'the real one; put back the copy of the data directory taken before that, or before the upgrade',
    )
  }
}

/** SQLite's codes (their prefixes) for a database file that cannot be used at all, with what that means. */
const DB_UNUSABLE: readonly [prefix: string, why: string][] = [
  ['SQLITE_CANTOPEN', 'it cannot be opened (a folder, or a path this user may not use)'],
  ['SQLITE_NOTADB', 'it is not a database (another file, or a damaged one)'],
  ['SQLITE_CORRUPT', 'it is damaged'],
]

/** `err` as one line naming the file and what to do, when it says the file cannot be used; any other, as it is. */
function unusable(path: string, err: unknown): unknown {
  const code = String((err as { code?: unknown }).code)
  const why = DB_UNUSABLE.find(([prefix]) => code.startsWith(prefix))?.[1]
  if (why === undefined) return err
  return new FakephoneError(
    'DB_UNUSABLE',
    `the database ${path} cannot be used: ${why} (${code}); restore it from a backup, or give another data directory`,
  )
}

/**
 * Opens (creating if needed) the database in `dataDir` and brings its schema up to date.
 * A database newer than this code is refused, untouched. Migrations run in one
 * `BEGIN IMMEDIATE` transaction: two processes opening an old database at once
 * cannot both migrate it (the second waits for the write lock, then finds it done).
 */
export function openDb(dataDir: string): Db {
  makeDataDirSync(dataDir)
  const path = join(dataDir, DB_FILE)
  let db: Db
  try {
    db = new Database(path)
  } catch (err) {
    throw unusable(path, err)
  }
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
    // What a rule or an owner deletes is overwritten with zeros where it lay, in its page and in the pages it frees, not
    // left in the file's free space for `strings` to find (docs/DATA-LIFECYCLE.md); the WAL's older copies of it go with
    // `truncateWal`. A deletion's pages are written anyway: heartbeats, which only add rows, cost the same.
    db.pragma('secure_delete = ON')
    db.transaction(() => {
      const version = schemaVersion(db)
      if (version > SCHEMA_VERSION) throw new DbVersionError(path, version)
      if (version > 0 && version < OVERWRITTEN_BEFORE && !hasTable(db, 'secrets')) throw new DbVersionLostError(path, version)
      for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string)
      if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
    }).immediate()
  } catch (err) {
    db.close()
    throw unusable(path, err)
  }
  return db
}

/**
 * Copies the WAL into the database and cuts it to 0 bytes, so the older copies of deleted rows it held (every version
 * of a page written since it last started over) leave the disk; with `secure_delete` the database's own copy of them
 * is zeros already. Waits for a reader (the checkpoint worker) at most `busy_timeout`; false when one kept it from
 * finishing (the next call does).
 */
export function truncateWal(db: Db): boolean {
  const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]
  return row?.busy === 0
}

/** Whether the database holds a table called `name`. */
function hasTable(db: Db, name: string): boolean {
  return pluck<[string], number>(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) === 1
}

/** The database's `PRAGMA user_version`. */
export function schemaVersion(db: Db): number {
  const [row] = db.prepare<[], { user_version: number }>('PRAGMA user_version').all()
  /* c8 ignore next -- PRAGMA user_version always answers one row */
  return row?.user_version ?? 0
}
