/**
 * `node dist/bench/access-path.js [check|store] [DATA_DIR]`: the broker's own JavaScript per heartbeat, in-process and
 * without sockets (issue 14, F1): `authorizePublish` (the access check and the payload decode) on a fresh packet object
 * per message, as Aedes hands one over, and with `store` also what Aedes' `published` hook does with it (the decoded
 * message taken from the packet, queued, and written in batches of 50 rows, as the broker's 50 ms batches at 1,000
 * heartbeats/s, with their `data_version` looks, and the WAL checkpointed by the broker's worker thread). 1,000
 * registered devices take turns, 20 messages per event-loop turn; five 1 s windows after a 1 s warm-up, each printed
 * as CPU (user + system) per message. The packets' payloads are built beforehand, so what is timed is the broker's
 * part; each device's messages carry seqs 0, 1, 2, ..., so every one stored is a new row, as from a real device. Run
 * the builds to compare alternately: the machine is shared.
 */
import type { Client, PublishPacket } from 'aedes'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DB_FILE, openDb } from '../broker/db.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import { StateStore } from '../broker/devices/state-store.js'
import { AccessControl } from '../broker/mqtt/access.js'
import { WAL_CHECKPOINT_PAGES } from '../broker/server.js'
import { DEFAULT_WAL_CHECKPOINT, WalCheckpointer } from '../broker/wal-checkpointer.js'
import { createLogger } from '../common/log.js'
import { heartbeatPayload } from './load.js'

const DEVICES = 1000
const PER_TURN = 20
const PAYLOADS = 20_000
/** As the broker (server.ts): the heartbeat batch and the registry's look for another process's removals. */
const BATCH_MS = 50
const RECHECK_MS = 20
/** Rows a batch writes: the broker's at 1,000 heartbeats/s (50 ms of them); the bench runs faster, so the batch is cut by size. */
const BATCH_ROWS = 50

async function main(): Promise<void> {
  const mode = process.argv[2] === 'store' ? 'store' : 'check'
  const dataDir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'fp-access-path-'))
  const db = openDb(dataDir)
  // The WAL as the broker keeps it (server.ts): its own autocheckpoint rare, the checkpoints in a worker thread.
  db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
  const log = createLogger({ level: 'silent' })
  const checkpointer = new WalCheckpointer(join(dataDir, DB_FILE), DEFAULT_WAL_CHECKPOINT, log)
  checkpointer.start()
  const registry = new DeviceRegistry(db, () => Date.now(), {
    recheckMs: RECHECK_MS,
    failed: (err) => {
      throw err
    },
  })
  const ids = Array.from({ length: DEVICES }, (_, i) => `d${i}`)
  const secrets = registry.addMany(ids.map((id) => ({ id, account: 'bench' }))).map((r) => r.secret)
  const store = new StateStore(db, BATCH_ROWS, BATCH_MS, () => registry.recheck())
  const access = new AccessControl(registry, 'bench-console-token', log)
  const hooks = access.hooks()
  // Stand-in clients: the hooks read only the id and key their principals by the object.
  const clients = ids.map((id) => ({ id }) as Client)
  await Promise.all(
    clients.map(
      (c, i) =>
        new Promise<void>((resolve, reject) =>
          hooks.authenticate(c, c.id, Buffer.from(secrets[i] as string), (err) => (err ? reject(err) : resolve())),
        ),
    ),
  )
  const topics = ids.map((id) => `fp/v1/${id}/heartbeat`)
  const payloads = Array.from({ length: PAYLOADS }, (_, k) => Buffer.from(heartbeatPayload(k)))
  let n = 0
  const refused = (err?: Error | null): void => {
    if (err) throw err
  }
  const one = (): void => {
    const i = n % DEVICES
    // Device i's r-th message has seq r: every stored heartbeat is a new row (until 2026-12-05 payload n % PAYLOADS was
    // sent, so from the 20,000th message on each (device, seq) came again and the store ignored it without a write).
    const packet = {
      cmd: 'publish',
      topic: topics[i],
      payload: payloads[Math.floor(n / DEVICES) % PAYLOADS],
      qos: 1,
      retain: false,
      dup: false,
    }
    n++
    hooks.authorizePublish(clients[i] as Client, packet as PublishPacket, refused)
    if (mode === 'store') {
      const msg = access.accepted(packet as PublishPacket)
      if (msg?.kind === 'heartbeat') store.recordHeartbeat(msg.deviceId, msg.value, Date.now())
    }
  }
  const window = async (ms: number): Promise<number> => {
    const start = performance.now()
    const cpu = process.cpuUsage()
    const first = n
    while (performance.now() - start < ms) {
      for (let k = 0; k < PER_TURN; k++) one()
      await new Promise((resolve) => setImmediate(resolve))
    }
    const used = process.cpuUsage(cpu)
    return (used.user + used.system) / (n - first)
  }
  await window(1000)
  const figures: number[] = []
  for (let w = 0; w < 5; w++) figures.push(await window(1000))
  const sorted = [...figures].sort((a, b) => a - b)
  console.log(`${mode}: CPU per message ${figures.map((f) => f.toFixed(2)).join(' ')} µs (median ${(sorted[2] as number).toFixed(2)})`)
  store.flush()
  await checkpointer.stop()
  db.close()
}

await main()
