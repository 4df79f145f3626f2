/**
 * Upgrading over an existing installation: the current code started on the data directories older fakephones left
 * (test/fixtures/upgrade/<commit>/, made by those versions: its README says how), and on databases it must refuse.
 */
import t from 'tap'
import Database from 'better-sqlite3'
import { chmodSync, cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Agent } from '../../agent/agent.js'
import { DB_FILE, SCHEMA_VERSION, openDb, schemaVersion } from '../../broker/db.js'
import { ManualClock } from '../../common/clock.js'
import { readPublicKey } from '../../common/signing.js'
import { agentConnected, firstFix, startAgent, startCloud, type Cloud } from '../fixtures/cloud.js'
import { run, runJson } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/upgrade/', import.meta.url))
const VERSIONS = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)

/** What the old version left pending in its database: the commands and notifications the phone has not had. */
function pendingIn(dataDir: string): { heartbeats: number; lastSeq: number; commands: string[]; notifications: string[] } {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true })
  try {
    const hb = db.prepare<[], { n: number; seq: number }>('SELECT count(*) AS n, max(seq) AS seq FROM locations').get()
    const commands = db.prepare<[], string>("SELECT id FROM commands WHERE state = 'queued'").pluck().all()
    const notifications = db.prepare<[], string>("SELECT title FROM notifications WHERE state = 'queued'").pluck().all()
    return { heartbeats: hb?.n ?? 0, lastSeq: hb?.seq ?? 0, commands, notifications }
  } finally {
    db.close()
  }
}

/** The console's answer to `console ARGS --json` on `cloud`, as the owner runs it. */
const consoleJson = <T>(cloud: Cloud, ...args: string[]): Promise<T> =>
  runJson<T>(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, '--json', ...args], cloud.clock)

for (const version of VERSIONS) {
  t.test(
    `F1 F2 X1 S1 B1 D1: upgrading from ${version}, the phone signs in with its old secret, its history, items, backup and ` +
      'drive are there, and what was pending arrives, once',
    async (t) => {
      const dir = tempDir(t)
      cpSync(join(FIXTURES, version), dir, { recursive: true })
      const dataDir = join(dir, 'data')
      const before = pendingIn(dataDir)
      t.ok(before.commands.length > 0 && before.notifications.length > 0, 'the fixture holds a pending command and notifications')
      // The clock a minute after the old version stopped: its pending command has not expired.
      const clock = new ManualClock(Number(readFileSync(join(dir, 'made-at'), 'utf8')) + 60_000)
      const cloud = await startCloud(t, { dataDir }, clock)
      const ran: string[] = []
      const shown: string[] = []
      let duplicates = 0
      const watch = (agent: Agent): void => {
        agent.remote.on('settled', (id: string | null, how: string) => void (how === 'ran' && id !== null && ran.push(id)))
        agent.framework.on('notification', (n: { title: string }) => shown.push(n.title))
        agent.framework.on('duplicate', () => duplicates++)
      }
      const receipts = before.commands.map((id) =>
        cloud.logs.waitFor((l) => l.msg === 'command state' && l.command === id && l.state === 'succeeded'),
      )
      const secret = readFileSync(join(dir, 'pi.secret'), 'utf8').trim()
      const ownerKey = readPublicKey(join(dir, 'keys', 'me.pub'))
      const agent = await startAgent(t, cloud, 'pi', secret, { dataDir: join(dir, 'phone'), ownerKey }, watch)
      const fix = firstFix(cloud, agent)
      await agentConnected(agent)
      t.ok((await fix).seq > before.lastSeq, 'signed in with its old secret; its heartbeats go on from the seq it had reached')

      await Promise.all(receipts)
      t.same(ran, before.commands, 'the command queued while it was away ran once, and its receipt reached the cloud')
      const commands = await consoleJson<{ commands: { id: string; state: string }[] }>(cloud, 'commands', 'pi')
      t.ok(
        commands.commands.every((c) => c.state === 'succeeded'),
        'every command, before and after the upgrade, succeeded',
      )

      t.equal(agent.status().framework.networkPermission, false, "the user's switch (push off) is kept")
      const delivered = before.notifications.map((title) =>
        cloud.logs.waitFor((l) => l.msg === 'notification delivered' && shown.includes(title)),
      )
      await agent.framework.setNetworkPermission(true)
      await Promise.all(delivered)
      t.same([...shown].sort(), [...before.notifications].sort(), 'the notifications queued before the upgrade are shown, once each')
      t.equal(duplicates, 0, 'none was sent again')

      const history = await consoleJson<{ history: unknown[] }>(cloud, 'history', 'pi', '--limit', '1000')
      t.ok(history.history.length > before.heartbeats, 'the history from before the upgrade is there, and grows')
      const items = await consoleJson<{ totals: Record<string, { count: number }> }>(cloud, 'items', 'me')
      t.match(items.totals, { photos: { count: 1 }, contacts: { count: 2 }, notes: { count: 1 } }, 'the synced items are kept')
      const drive = await consoleJson<{ files: { id: string; name: string }[] }>(cloud, 'drive', 'list', 'me')
      const file = drive.files.find((f) => f.name === 'drive.txt')
      const saved = join(dir, 'saved.txt')
      await consoleJson(cloud, 'drive', 'download', 'me', String(file?.id), saved)
      t.equal(readFileSync(saved, 'utf8'), 'drive file\n', 'a drive file uploaded before the upgrade downloads whole')
      const backups = await run(['console', '--api', cloud.apiUrl, '--data', dataDir, 'backups', 'me'], cloud.clock)
      t.match(backups.out, /pi\s/, 'the backup made before the upgrade is listed')
      t.equal(schemaVersion(cloud.broker.db), SCHEMA_VERSION, 'the database was brought up to date')
    },
  )
}

t.test('a database a newer fakephone wrote is refused, untouched, and the broker exits 78 (EX_CONFIG)', async (t) => {
  const dataDir = tempDir(t)
  openDb(dataDir).close()
  const raw = new Database(join(dataDir, DB_FILE))
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  raw.close()
  const started = await run(['broker', '--data', dataDir, '--mqtt-port', '0', '--http-port', '0'])
  t.equal(started.code, 78, 'systemd does not restart it in a loop (RestartPreventExitStatus=78)')
  t.match(started.err, `has schema version ${SCHEMA_VERSION + 1}, newer than this build of fakephone understands (${SCHEMA_VERSION})`)
  const after = new Database(join(dataDir, DB_FILE), { readonly: true })
  t.equal(schemaVersion(after), SCHEMA_VERSION + 1, 'left as it was')
  after.close()
})

t.test('a database whose version a build from before 2026-12-04 wrote over is refused with what to do, exit 78', async (t) => {
  // What going back to such a build does (tried with 0d5bf96): it writes its own version (9) over the newer one's and
  // fails on the tables it no longer finds; the newer build then ran migration 9 again: "no such table: secrets".
  const dataDir = tempDir(t)
  openDb(dataDir).close()
  const raw = new Database(join(dataDir, DB_FILE))
  raw.pragma('user_version = 9')
  raw.close()
  const started = await run(['broker', '--data', dataDir, '--mqtt-port', '0', '--http-port', '0'])
  t.equal(started.code, 78)
  t.match(started.err, 'says schema version 9, but a newer fakephone had already changed it')
  t.match(started.err, 'put back the copy of the data directory taken before that, or before the upgrade')
  const listed = await run(['device', 'list', '--data', dataDir])
  t.equal(listed.code, 1, 'a one-shot command says the same, exit 1')
  t.match(listed.err, 'says schema version 9')
})

t.test('F1: a phone file a newer fakephone wrote is refused as such, kept, and the agent exits 78 (EX_CONFIG)', async (t) => {
  const dir = tempDir(t)
  cpSync(join(FIXTURES, '47df08a'), dir, { recursive: true })
  // git keeps no file modes but the executable bit: the secret is private again, as `device add` wrote it on the Pi.
  chmodSync(join(dir, 'pi.secret'), 0o600)
  const settings = join(dir, 'phone', 'settings.json')
  const agent = (): ReturnType<typeof run> =>
    run(['agent', '--id', 'pi', '--secret-file', join(dir, 'pi.secret'), '--data', join(dir, 'phone'), '--broker', 'mqtt://127.0.0.1:1'])
  // What going back to 0d5bf96 met (its push-inbox.json has no `service`): a field this build does not know.
  const newer = JSON.stringify({ ...JSON.parse(readFileSync(settings, 'utf8')), vibrate: true })
  writeFileSync(settings, newer)
  const started = await agent()
  t.equal(started.code, 78, 'systemd does not restart it in a loop')
  t.equal(
    started.err,
    `error: ${settings}: ✖ Unrecognized key: "vibrate": it holds what this build of fakephone does not know, as a newer ` +
      'fakephone writes it: run that one, or put back the copy of the data directory taken before it (the file is not ' +
      'damaged: keep it)\n',
  )
  t.equal(readFileSync(settings, 'utf8'), newer, 'the file is left as it was')
  writeFileSync(settings, JSON.stringify({ ...JSON.parse(newer), vibrate: undefined, cloudService: 'yes' }))
  const damaged = await agent()
  t.equal(damaged.code, 1, 'a value this build cannot read is damage, as before')
  t.match(damaged.err, 'the file is damaged; restore it from a backup, or move it away')
})
