/**
 * `node dist/bench/recall.js [--phones 1000] [--rounds 3]`: what the web console's recall of every phone's last command
 * outcome costs (F2, cli/web/live.ts recall()), with a real broker and the console client in one process (their CPU
 * together). Each phone has three commands seeded straight into the broker's store -- two locates that succeeded, then a
 * ring that succeeded, each with its receipt signed by the phone's key -- and the owner's keys folder knows every phone.
 * Measured, each `--rounds` times: `per-phone`, the recall as it was (list the devices, then each phone's command list
 * 8 at a time, outcomeOf over it), and `bulk`, LiveFeed.recall() (GET /api/commands/latest, a page per 1,000 phones)
 * of a feed that just started, and `bulk again`, the same feed's next recall (it found the broker again: the receipts it
 * verified are not checked again, cli/verified-receipts.ts). All must say the same outcomes (checked); `bulk read only`
 * is bulk's requests alone, no receipt checked (the broker's share and the transfer). Prints one JSON line per round and
 * way: wall and CPU ms, requests, bytes, signatures checked.
 */
import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { ensureConsoleToken } from '../broker/console-token.js'
import { openDb } from '../broker/db.js'
import { ConsoleClient } from '../cli/console-client.js'
import { LiveFeed } from '../cli/web/live.js'
import { outcomeOf, type DeviceOutcome } from '../cli/web/outcomes.js'
import { eachAtOnce } from '../cli/transfer/each-at-once.js'
import { VerifiedReceipts } from '../cli/verified-receipts.js'
import { SystemClock } from '../common/clock.js'
import { OwnerKeys, deviceKeys, signPayload } from '../common/signing.js'

const { values } = parseArgs({ options: { phones: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } } })
const phones = Number(values.phones)
const rounds = Number(values.rounds)
const log = pino({ level: 'warn' })
const dataDir = mkdtempSync(join(tmpdir(), 'fakephone-bench-recall-'))
const keys = new OwnerKeys(join(dataDir, 'keys'))

/** Every phone with its three commands, written in one transaction before the broker starts. */
function seed(): void {
  const ownerKey = keys.signingKey('fleet')
  const db = openDb(dataDir)
  const device = db.prepare("INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, 'fleet', 'x', 0)")
  const state = db.prepare('INSERT INTO device_state (device_id) VALUES (?)')
  const command = db.prepare(
    `INSERT INTO commands (id, device_id, type, envelope, state, data, receipt, created_at, updated_at, expires_at, sent_at)
     VALUES (?, ?, ?, ?, 'succeeded', ?, ?, ?, ?, ?, ?)`,
  )
  db.transaction(() => {
    for (let i = 0; i < phones; i++) {
      const id = `phone-${String(i).padStart(5, '0')}`
      const secret = `secret-${id}-0123456789abcdef`
      keys.rememberDevice(id, secret)
      const receiptKey = deviceKeys(secret).privateKey
      device.run(id)
      state.run(id)
      for (const [n, type] of (['locate', 'locate', 'ring'] as const).entries()) {
        const at = 1_000_000 + n * 1000
        const args = type === 'ring' ? { seconds: 5 } : {}
        const envelope = signPayload({ id: randomUUID(), device: id, type, args, issuedAt: at, expiresAt: at + 600_000, seq: at }, ownerKey)
        const data = type === 'locate' ? { lat: 55.9 + i / 1e6, lon: -3.2, accuracy: 8, at: at + 500 } : null
        const receipt = signPayload(
          { command: envelope.id, device: id, state: 'succeeded', at: at + 500, ...(data ? { data } : {}) },
          receiptKey,
        )
        command.run(
          envelope.id,
          id,
          type,
          JSON.stringify(envelope),
          data && JSON.stringify(data),
          JSON.stringify(receipt),
          at,
          at,
          at + 600_000,
          at,
        )
      }
    }
  })()
  db.close()
}

/** The recall as it was before GET /api/commands/latest: the devices, then each one's command list, 8 at once. */
async function perPhone(api: ConsoleClient): Promise<DeviceOutcome[]> {
  const ids = (await api.devices()).devices.map((d) => d.id)
  const outcomes: DeviceOutcome[] = []
  await eachAtOnce(ids, 8, async (id) => {
    const outcome = outcomeOf(id, (await api.commands(id)).commands, keys)
    if (outcome.command) outcomes.push(outcome)
  })
  return outcomes
}

/** The receipts the round's feed verified (new each round): `bulk` starts the feed, `bulk again` is its next recall. */
let receipts = new VerifiedReceipts()
let feed: LiveFeed | undefined

/** LiveFeed.recall() as the console runs it, its outcomes as a page would hear them: a new feed's first. */
async function bulk(api: ConsoleClient): Promise<DeviceOutcome[]> {
  feed = new LiveFeed(api, { mqttUrl: 'ws://127.0.0.1:1/mqtt', consoleToken: 'x', keys, receipts, log })
  return recallOf(feed)
}

/** The same feed's next recall, as when it finds the broker again. */
async function bulkAgain(): Promise<DeviceOutcome[]> {
  const again = feed as LiveFeed
  try {
    return await recallOf(again)
  } finally {
    await again.stop()
  }
}

/** One recall of `feed`, what a page attached for it heard. */
async function recallOf(feed: LiveFeed): Promise<DeviceOutcome[]> {
  const heard: DeviceOutcome[] = []
  // A page without an HTTP response: only its outcomes frames are wanted.
  const page = {
    writeHead: () => page,
    on: () => page,
    end: () => page,
    write: (frame: string) => {
      if (frame.startsWith('event: outcomes'))
        heard.push(...(JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { outcomes: DeviceOutcome[] }).outcomes)
      return true
    },
  }
  // The feed writes frames and listens for close: the stand-in above has those, not the rest of a ServerResponse.
  feed.attach(page as unknown as ServerResponse)
  // What the feed remembers, told at once to a page that attaches: not this recall's.
  heard.length = 0
  await feed.recall()
  return heard
}

/** The bulk read alone, its pages parsed, no receipt checked: the broker's share of `bulk` and the transfer. */
async function bulkReadOnly(api: ConsoleClient): Promise<DeviceOutcome[]> {
  const outcomes: DeviceOutcome[] = []
  for (let after: string | null = ''; after !== null;) {
    const page = await api.latestCommands(after)
    for (const { device } of page.latest) outcomes.push({ device, command: null, located: null })
    after = page.next
  }
  return outcomes
}

seed()
const broker = new CloudBroker({ ...DEFAULT_BROKER_OPTIONS, dataDir, mqttPort: 0, httpPort: 0 }, new SystemClock(), log)
const { httpPort } = await broker.start()
let requests = 0
let bytes = 0
broker.http.on('request', (_req, res) => {
  requests++
  const end = res.end.bind(res)
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) bytes += Buffer.byteLength(chunk)
    return (end as (...a: unknown[]) => unknown)(chunk, ...rest)
  }) as typeof res.end
})
const api = new ConsoleClient(`http://127.0.0.1:${httpPort}`, ensureConsoleToken(dataDir))
const sorted = (o: DeviceOutcome[]): string => JSON.stringify([...o].sort((a, b) => a.device.localeCompare(b.device)))
let expected: string | undefined
try {
  for (let round = 1; round <= rounds; round++) {
    receipts = new VerifiedReceipts()
    for (const [way, recall] of [
      ['per-phone', perPhone],
      ['bulk', bulk],
      ['bulk again', bulkAgain],
      ['bulk read only', bulkReadOnly],
    ] as const) {
      requests = 0
      bytes = 0
      const checked = receipts.checks
      const cpu = process.cpuUsage()
      const start = performance.now()
      const outcomes = await recall(api)
      const wallMs = performance.now() - start
      const used = process.cpuUsage(cpu)
      const said = sorted(outcomes)
      expected ??= said
      if ((way !== 'bulk read only' && said !== expected) || outcomes.length !== phones)
        throw new Error(`${way} said other outcomes than per-phone`)
      console.log(
        JSON.stringify({
          phones,
          round,
          way,
          wallMs: Math.round(wallMs),
          cpuMs: Math.round((used.user + used.system) / 1000),
          requests,
          bytes,
          signaturesChecked: receipts.checks - checked,
        }),
      )
    }
  }
} finally {
  await broker.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
