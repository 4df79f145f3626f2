/**
 * `node dist/bench/heartbeat-rows.js VARIANT [DEVICES]`: what one stored heartbeat costs SQLite alone (issue 14, F1),
 * with the ways of storing it that the ninth ingest part weighed. A database of the broker's schema and pragmas
 * (`openDb`, the broker's WAL autocheckpoint size; no checkpoints happen in the run), DEVICES registered devices
 * (default 1,000), batches of 50 rows from random devices, each device's seqs counting up, one transaction per batch as
 * the broker's 50 ms batch at 1,000 heartbeats/s. After 200 unmeasured batches, five windows of 200 batches, each
 * printed as CPU (user + system) per row, commit included. Variants:
 * - `today`: the broker's statement (an insert into a TEMP view whose trigger stores the row and moves the last known
 *   state, as `StateStore`);
 * - `no-state`: the same trigger without the last known state's `UPDATE` (what that update costs);
 * - `no-row`: the same trigger without the row's `INSERT` (what the row costs);
 * - `no-fk`: `today` with `PRAGMA foreign_keys = OFF` (what the per-row look-up of the device costs);
 * - `two`: an `INSERT` and an `UPDATE` statement per heartbeat instead of the view's trigger;
 * - `rowid`: `today` on a `locations` rebuilt as a rowid table, rows in arrival order, with a unique (device_id, seq)
 *   index instead of the `WITHOUT ROWID` primary key;
 * - `memory`: `today` on an in-memory database (what is left without the WAL's writes).
 * Run the variants to compare alternately: the machine is shared.
 */
import Database from 'better-sqlite3'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Db, openDb } from '../broker/db.js'
import type { HeartbeatParams } from '../broker/devices/state-store.js'
import { WAL_CHECKPOINT_PAGES } from '../broker/server.js'

const VARIANTS = ['today', 'no-state', 'no-row', 'no-fk', 'two', 'rowid', 'memory'] as const
type Variant = (typeof VARIANTS)[number]
const BATCH_ROWS = 50
const WARM_UP_BATCHES = 200
const WINDOW_BATCHES = 200
const WINDOWS = 5

/** A `locations` row, in its column order. */
type Row = HeartbeatParams

const STORE_ROW = `INSERT OR IGNORE INTO locations (device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at)
  VALUES (NEW.device_id, NEW.seq, NEW.at, NEW.lat, NEW.lon, NEW.accuracy, NEW.speed, NEW.battery, NEW.charging, NEW.network,
          NEW.received_at);`
const MOVE_STATE = `UPDATE device_state SET seq = NEW.seq, at = NEW.at, lat = NEW.lat, lon = NEW.lon, accuracy = NEW.accuracy,
  speed = NEW.speed, battery = NEW.battery, charging = NEW.charging, network = NEW.network, received_at = NEW.received_at
  WHERE device_id = NEW.device_id AND (seq IS NULL OR seq < NEW.seq);`

/** The variant's database: the broker's schema, its devices registered. */
function open(variant: Variant, ids: readonly string[]): Db {
  const db = variant === 'memory' ? memoryDb() : openDb(mkdtempSync(join(tmpdir(), 'fp-heartbeat-rows-')))
  db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
  if (variant === 'no-fk') db.pragma('foreign_keys = OFF')
  if (variant === 'rowid')
    db.exec(`CREATE TABLE locations_rowid AS SELECT * FROM locations WHERE 0;
             DROP TABLE locations;
             ALTER TABLE locations_rowid RENAME TO locations;
             CREATE UNIQUE INDEX locations_by_device ON locations (device_id, seq);`)
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
function memoryDb(): Db {
  const file = openDb(mkdtempSync(join(tmpdir(), 'fp-heartbeat-rows-')))
  // A WAL database's image opens in memory only once its header says rollback journal.
  file.pragma('journal_mode = DELETE')
  const image = file.serialize()
  file.close()
  const db = new Database(image)
  db.pragma('foreign_keys = ON')
  return db
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
  const body = `${variant === 'no-row' ? '' : STORE_ROW} ${variant === 'no-state' ? '' : MOVE_STATE}`
  db.exec(`CREATE TEMP VIEW heartbeat_in AS
             SELECT device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at FROM main.locations WHERE 0;
           CREATE TEMP TRIGGER heartbeat_in_store INSTEAD OF INSERT ON heartbeat_in BEGIN ${body} END;`)
  const store = db.prepare<Row>('INSERT INTO heartbeat_in VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  return (r) => store.run(...r)
}

function main(): void {
  const variant = process.argv[2] as Variant
  if (!VARIANTS.includes(variant)) throw new Error(`usage: heartbeat-rows.js ${VARIANTS.join('|')} [DEVICES]`)
  const devices = Number(process.argv[3] ?? 1000)
  const ids = Array.from({ length: devices }, (_, i) => `bench-${String(i).padStart(6, '0')}`)
  const db = open(variant, ids)
  const write = writer(variant, db)
  const batch = db.transaction((rows: Row[]) => {
    for (const r of rows) write(r)
  })
  const seqs = new Array<number>(devices).fill(0)
  const rows = (): Row[] =>
    Array.from({ length: BATCH_ROWS }, () => {
      const i = Math.floor(Math.random() * devices)
      const seq = (seqs[i] = (seqs[i] as number) + 1)
      const at = Date.now()
      return [ids[i] as string, seq, at, 55.9486 + Math.random() / 100, -3.1999, 8, 1.4, 80, 0, 'wifi', at]
    })
  for (let b = 0; b < WARM_UP_BATCHES; b++) batch(rows())
  const figures: number[] = []
  for (let w = 0; w < WINDOWS; w++) {
    const batches = Array.from({ length: WINDOW_BATCHES }, rows)
    const cpu = process.cpuUsage()
    for (const b of batches) batch(b)
    const used = process.cpuUsage(cpu)
    figures.push((used.user + used.system) / (WINDOW_BATCHES * BATCH_ROWS))
  }
  db.close()
  const median = [...figures].sort((a, b) => a - b)[WINDOWS >> 1] as number
  console.log(`${variant}, ${devices} devices: CPU per row ${figures.map((f) => f.toFixed(2)).join(' ')} µs (median ${median.toFixed(2)})`)
}

main()
