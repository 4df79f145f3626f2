/**
 * `node dist/bench/heartbeat-rows.js VARIANT [DEVICES] [--page-size BYTES] [--prefill ROWS] [--checkpoint-batches N]
 * [--turns]`: what one stored heartbeat costs SQLite alone (issue 14, F1), with the ways of storing it that the ninth
 * and tenth ingest parts weighed. A database of the broker's schema and pragmas (`openDb`, the broker's WAL
 * autocheckpoint size), DEVICES registered devices (default 1,000), batches of 50 rows from random devices, each
 * device's seqs counting up, one transaction per batch as the broker's 50 ms batch at 1,000 heartbeats/s, and a PASSIVE
 * checkpoint every 20 batches (or `--checkpoint-batches`) on the same thread (the broker's checkpoint worker, once a
 * second at that rate: its CPU is the broker's too). `--turns`: the devices take turns in one fixed order instead of
 * being drawn at random. `--page-size`: the database is created with that page size instead of SQLite's 4,096 bytes.
 * `--prefill`: ROWS rows per device are stored first, unmeasured (a broker that has kept some history: deeper trees).
 * After 200 unmeasured batches, five windows of 200 batches, each printed as CPU (user + system) per row, commit and
 * checkpoints included, with the bytes and the write calls the process passed to the kernel per row (`/proc/self/io`
 * `wchar` and `syscw`: the WAL's frames, two writes each, and the checkpoints' copies) and the WAL frames per row (what
 * the checkpoints found in the WAL: with nothing else writing, each copies them all and the next commit starts the WAL
 * over). Variants:
 * - `today`: the broker's statement (an insert into a TEMP view whose trigger stores the row and moves the last known
 *   state, as `StateStore`);
 * - `no-state`: the same trigger without the last known state's `UPDATE` (what that update costs);
 * - `no-row`: the same trigger without the row's `INSERT` (what the row costs);
 * - `no-fk`: `today` with `PRAGMA foreign_keys = OFF` (what the per-row look-up of the device costs);
 * - `two`: an `INSERT` and an `UPDATE` statement per heartbeat instead of the view's trigger;
 * - `rowid`: `today` on a `locations` rebuilt as a rowid table, rows in arrival order, with a unique (device_id, seq)
 *   index instead of the `WITHOUT ROWID` primary key;
 * - `memory`: `today` on an in-memory database (what is left without the WAL's writes);
 * - `staged`: the row appended to a staging table in arrival order (rowid, no index but the device's foreign key), the
 *   last known state moved as `today`, and every 100 batches (5 s at 1,000 heartbeats/s) the staged rows copied into
 *   `locations` in key order and deleted, in one transaction: a device's five rows then share one leaf's write. Also
 *   prints how long those merges held the thread (wall time, median and largest);
 * - `json`: the whole batch in one statement, `INSERT INTO heartbeat_in SELECT … FROM json_each(?)` with the batch's rows
 *   as one JSON text, the view's trigger as `today` (one `run` per batch instead of one per row), temporary tables in
 *   memory (twelfth part);
 * - `state-wr`: `today` with `device_state` rebuilt `WITHOUT ROWID` (one b-tree descent per update instead of the
 *   primary key's index and then the table; twelfth part).
 * Run the variants to compare alternately: the machine is shared.
 */
import Database from 'better-sqlite3'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DB_FILE, type Db, openDb } from '../broker/db.js'
import type { HeartbeatParams } from '../broker/devices/state-store.js'
import { WAL_CHECKPOINT_PAGES } from '../broker/server.js'

const VARIANTS = ['today', 'no-state', 'no-row', 'no-fk', 'two', 'rowid', 'memory', 'staged', 'json', 'state-wr'] as const
type Variant = (typeof VARIANTS)[number]
const BATCH_ROWS = 50
const WARM_UP_BATCHES = 200
const WINDOW_BATCHES = 200
const WINDOWS = 5
/** `staged`: batches between merges of the staged rows into `locations`. */
const MERGE_BATCHES = 100
const COLUMNS = 'device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at'

/** A `locations` row, in its column order. */
type Row = HeartbeatParams

const STORE_ROW = `INSERT OR IGNORE INTO locations (device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at)
  VALUES (NEW.device_id, NEW.seq, NEW.at, NEW.lat, NEW.lon, NEW.accuracy, NEW.speed, NEW.battery, NEW.charging, NEW.network,
          NEW.received_at);`
const MOVE_STATE = `UPDATE device_state SET seq = NEW.seq, at = NEW.at, lat = NEW.lat, lon = NEW.lon, accuracy = NEW.accuracy,
  speed = NEW.speed, battery = NEW.battery, charging = NEW.charging, network = NEW.network, received_at = NEW.received_at
  WHERE device_id = NEW.device_id AND (seq IS NULL OR seq < NEW.seq);`

/** A new data directory; with `pageSize`, its database file is created with that page size (before WAL mode is set). */
function dataDir(pageSize: number | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-heartbeat-rows-'))
  if (pageSize !== undefined) {
    const db = new Database(join(dir, DB_FILE))
    db.pragma(`page_size = ${pageSize}`)
    db.pragma('journal_mode = WAL')
    db.close()
  }
  return dir
}

/** The variant's database: the broker's schema, its devices registered. */
function open(variant: Variant, ids: readonly string[], pageSize: number | undefined): Db {
  const db = variant === 'memory' ? memoryDb(pageSize) : openDb(dataDir(pageSize))
  if (pageSize !== undefined && db.pragma('page_size', { simple: true }) !== pageSize) throw new Error(`page size ${pageSize} refused`)
  db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
  if (variant === 'no-fk') db.pragma('foreign_keys = OFF')
  // Before any TEMP object: changing temp_store drops the temp schema. In memory, the ephemeral table that an INSERT …
  // SELECT into the view fills first is never written to a file (better-sqlite3 builds SQLite with TEMP_STORE=1).
  if (variant === 'json') db.pragma('temp_store = MEMORY')
  if (variant === 'rowid')
    db.exec(`CREATE TABLE locations_rowid AS SELECT * FROM locations WHERE 0;
             DROP TABLE locations;
             ALTER TABLE locations_rowid RENAME TO locations;
             CREATE UNIQUE INDEX locations_by_device ON locations (device_id, seq);`)
  if (variant === 'state-wr') {
    const sql = db.prepare<[], string>("SELECT sql FROM sqlite_master WHERE name = 'device_state'").pluck().get() as string
    db.pragma('foreign_keys = OFF')
    db.exec(`${sql.replace('CREATE TABLE device_state', 'CREATE TABLE device_state_wr')} WITHOUT ROWID;
             INSERT INTO device_state_wr SELECT * FROM device_state;
             DROP TABLE device_state;
             ALTER TABLE device_state_wr RENAME TO device_state;`)
    db.pragma('foreign_keys = ON')
  }
  if (variant === 'staged')
    db.exec(`CREATE TABLE heartbeat_log (
               device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
               seq INTEGER NOT NULL, at INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, accuracy REAL NOT NULL,
               speed REAL NOT NULL, battery REAL NOT NULL, charging INTEGER NOT NULL, network TEXT NOT NULL,
               received_at INTEGER NOT NULL)`)
  const device = db.prepare<[id: string]>("INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, 'bench', 'x', 0)")
  const state = db.prepare<[id: string]>('INSERT INTO device_state (device_id) VALUES (?)')
  db.transaction(() => {
    for (const id of ids) {
      device.run(id)
      state.run(id)
    }
  })()
  return db
}

/** An in-memory database with the broker's schema: openDb's migrations, run on a file, copied in. */
function memoryDb(pageSize: number | undefined): Db {
  const file = openDb(dataDir(pageSize))
  // A WAL database's image opens in memory only once its header says rollback journal.
  file.pragma('journal_mode = DELETE')
  const image = file.serialize()
  file.close()
  const db = new Database(image)
  db.pragma('foreign_keys = ON')
  return db
}

/** One batch's write, as the variant does it. */
function batchWriter(variant: Variant, db: Db): (rows: Row[]) => void {
  const write = writer(variant, db)
  if (variant === 'json') {
    const fields = Array.from({ length: 11 }, (_, i) => `value->>${i}`).join(', ')
    const many = db.prepare<[json: string]>(`INSERT INTO heartbeat_in SELECT ${fields} FROM json_each(?)`)
    return db.transaction((rows: Row[]) => {
      many.run(JSON.stringify(rows))
    })
  }
  return db.transaction((rows: Row[]) => {
    for (const r of rows) write(r)
  })
}

/** One heartbeat's write, as the variant does it. */
function writer(variant: Variant, db: Db): (row: Row) => void {
  if (variant === 'two') {
    const row = db.prepare<Row>('INSERT OR IGNORE INTO locations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    const state = db.prepare<[...Omit<Row, 0>, deviceId: string, seq: number]>(
      `UPDATE device_state SET seq = ?, at = ?, lat = ?, lon = ?, accuracy = ?, speed = ?, battery = ?, charging = ?,
         network = ?, received_at = ? WHERE device_id = ? AND (seq IS NULL OR seq < ?)`,
    )
    return (r) => {
      row.run(...r)
      state.run(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[0], r[1])
    }
  }
  const stage = `INSERT INTO heartbeat_log VALUES (NEW.device_id, NEW.seq, NEW.at, NEW.lat, NEW.lon, NEW.accuracy, NEW.speed,
    NEW.battery, NEW.charging, NEW.network, NEW.received_at);`
  const storeRow = variant === 'staged' ? stage : STORE_ROW
  const body = `${variant === 'no-row' ? '' : storeRow} ${variant === 'no-state' ? '' : MOVE_STATE}`
  db.exec(`CREATE TEMP VIEW heartbeat_in AS
             SELECT device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at FROM main.locations WHERE 0;
           CREATE TEMP TRIGGER heartbeat_in_store INSTEAD OF INSERT ON heartbeat_in BEGIN ${body} END;`)
  const store = db.prepare<Row>('INSERT INTO heartbeat_in VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  return (r) => store.run(...r)
}

/** What this process has passed to write system calls so far: bytes and calls (Linux; zeros elsewhere). */
function written(): { bytes: number; calls: number } {
  let io: string
  try {
    io = readFileSync('/proc/self/io', 'utf8')
  } catch {
    return { bytes: 0, calls: 0 }
  }
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? 0)
  return { bytes: field('wchar'), calls: field('syscw') }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'page-size': { type: 'string' },
      prefill: { type: 'string', default: '0' },
      // The broker's checkpoint worker looks once a second (DEFAULT_WAL_CHECKPOINT): 20 batches at 1,000 heartbeats/s.
      'checkpoint-batches': { type: 'string', default: '20' },
      turns: { type: 'boolean', default: false },
    },
  })
  const variant = positionals[0] as Variant
  if (!VARIANTS.includes(variant))
    throw new Error(
      `usage: heartbeat-rows.js ${VARIANTS.join('|')} [DEVICES] [--page-size BYTES] [--prefill ROWS] [--checkpoint-batches N]`,
    )
  const devices = Number(positionals[1] ?? 1000)
  const pageSize = values['page-size'] === undefined ? undefined : Number(values['page-size'])
  const prefill = Number(values.prefill)
  const checkpointBatches = Number(values['checkpoint-batches'])
  const ids = Array.from({ length: devices }, (_, i) => `bench-${String(i).padStart(6, '0')}`)
  const db = open(variant, ids, pageSize)
  const batch = batchWriter(variant, db)
  const merge =
    variant === 'staged'
      ? db.transaction(() => {
          db.exec(`INSERT OR IGNORE INTO locations (${COLUMNS}) SELECT ${COLUMNS} FROM heartbeat_log ORDER BY device_id, seq;
                   DELETE FROM heartbeat_log;`)
        })
      : null
  const mergeMs: number[] = []
  const seqs = new Array<number>(devices).fill(0)
  const row = (i: number): Row => {
    const seq = (seqs[i] = (seqs[i] as number) + 1)
    const at = Date.now()
    return [ids[i] as string, seq, at, 55.9486 + Math.random() / 100, -3.1999, 8, 1.4, 80, 0, 'wifi', at]
  }
  // --turns: the devices take turns in one fixed shuffled order (each once a second at 1,000 heartbeats/s, as the load
  // benches' devices); otherwise each row's device is drawn at random.
  const order = ids.map((_, i) => i).sort(() => Math.random() - 0.5)
  let turn = 0
  const next = values.turns ? () => order[turn++ % devices] as number : () => Math.floor(Math.random() * devices)
  const rows = (): Row[] => Array.from({ length: BATCH_ROWS }, () => row(next()))
  // The history a running broker has: every device's rows interleaved, as they arrive.
  for (let p = 0; p < prefill; p++) {
    batch(ids.map((_, i) => row(i)))
    if (p % checkpointBatches === 0) db.pragma('wal_checkpoint(PASSIVE)')
  }
  let batches = 0
  /** WAL frames the batches wrote: each checkpoint copies them all (nothing else writes), and the next commit starts the WAL over. */
  let frames = 0
  const checkpoint = db.prepare<[], { busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)')
  const store = (b: Row[]): void => {
    batch(b)
    batches++
    if (merge && batches % MERGE_BATCHES === 0) {
      const start = performance.now()
      merge()
      mergeMs.push(performance.now() - start)
    }
    if (batches % checkpointBatches !== 0) return
    const done = checkpoint.get()
    if (done !== undefined && done.log > 0) frames += done.log
  }
  for (let b = 0; b < WARM_UP_BATCHES; b++) store(rows())
  const cpu: number[] = []
  const bytes: number[] = []
  const calls: number[] = []
  const walFrames: number[] = []
  for (let w = 0; w < WINDOWS; w++) {
    frames = 0
    const window = Array.from({ length: WINDOW_BATCHES }, rows)
    const cpuBefore = process.cpuUsage()
    const writtenBefore = written()
    for (const b of window) store(b)
    const used = process.cpuUsage(cpuBefore)
    const after = written()
    const n = WINDOW_BATCHES * BATCH_ROWS
    cpu.push((used.user + used.system) / n)
    bytes.push((after.bytes - writtenBefore.bytes) / n)
    calls.push((after.calls - writtenBefore.calls) / n)
    walFrames.push(frames / n)
  }
  const pages = db.pragma('page_size', { simple: true }) as number
  db.close()
  const turns = values.turns ? ' in turns' : ''
  const how = `${devices} devices${turns}, ${pages}-byte pages, prefill ${prefill}, checkpoint every ${checkpointBatches}`
  const wal =
    `WAL frames per row ${median(walFrames).toFixed(2)}, ` +
    `written per row ${median(bytes).toFixed(0)} bytes in ${median(calls).toFixed(2)} calls`
  const merges =
    mergeMs.length > 0
      ? `; merges ${mergeMs.length}, ms median ${median(mergeMs).toFixed(1)}, largest ${Math.max(...mergeMs).toFixed(1)}`
      : ''
  console.log(
    `${variant}, ${how}: CPU per row ${cpu.map((f) => f.toFixed(2)).join(' ')} µs (median ${median(cpu).toFixed(2)}); ${wal}${merges}`,
  )
}

main()
