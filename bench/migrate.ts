/**
 * Scenario: M2's migration against `tar c DIR | sha256sum`. One account on
 * a real CloudBroker is seeded with the phone's own seeded data (S1's
 * seedPhoneData: 1,000 EXIF photos, contacts, notes) and a 64 MiB drive
 * file; `console migrate`'s job (cli/transfer/migrate.ts) copies it to a
 * second broker over loopback HTTP through the batch blob routes and
 * verifies it (every blob read back in batches and hashed, every record
 * and each photo's EXIF compared). In the
 * same run, on the same disk, `tar c` of the source's blob directory (the
 * same bytes) piped into `sha256sum` is timed before and after; the ratio is
 * migration / tar-and-hash (the mean of the two).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { seedPhoneData } from '../agent/phone-data/seed.js'
import { PhoneFiles } from '../agent/phone-data/store.js'
import { CATEGORIES } from '../agent/phone-data/types.js'
import { ensureConsoleToken } from '../broker/console-token.js'
import { ConsoleClient } from '../cli/console-client.js'
import { migrate } from '../cli/transfer/migrate.js'
import { Progress } from '../cli/transfer/progress.js'
import { SystemClock } from '../common/clock.js'
import { startCloud, tempDir, type BenchCloud } from './cloud.js'
import type { ScenarioContext } from './context.js'
import type { Cleanup } from './lifecycle.js'

const DRIVE_BYTES = 64 * 2 ** 20
const CONTACTS = 200
const NOTES = 100
const ACCOUNT = 'bench'

export interface MigrateResult {
  photos: number
  contacts: number
  notes: number
  items: number
  bytes: number
  migrateMs: number
  /** CPU time of this process (both brokers and the migrating console run in it) during the migration. */
  migrateCpuMs: number
  /** tar c | sha256sum of the source's blob directory, before and after the migration: wall and CPU ms. */
  tarMs: [number, number]
  tarCpuMs: [number, number]
  /** Wall time over tar's mean wall time. */
  ratio: number
  /** CPU time over tar's mean CPU time: less at the mercy of a shared machine's load. */
  cpuRatio: number
  summary: string
}

const run = promisify(execFile)

/** Seeds the account on `cloud` as a phone's sync would have left it; answers the item count. */
async function seed(ctx: ScenarioContext, cloud: BenchCloud, dir: string): Promise<number> {
  await cloud.broker.registry.add('bench-phone', ACCOUNT)
  const clock = new SystemClock()
  const phone = new PhoneFiles({ dataDir: dir, clock })
  const counts = { photos: ctx.args.photos, contacts: CONTACTS, notes: NOTES, recordings: 0 }
  await seedPhoneData(phone, { counts, seed: 1, now: clock.now() })
  const { blobs, items, drive } = cloud.broker.cloud
  let n = 0
  for (const category of CATEGORIES)
    for (const item of await phone.list(category)) {
      const sha256 = await blobs.put(await phone.read(category, item.id))
      items.put(ACCOUNT, 'bench-phone', category, item.id, { sha256, size: item.size, meta: item.meta, modifiedAt: item.modifiedAt })
      n++
    }
  const big = randomBytes(DRIVE_BYTES)
  drive.files.put(ACCOUNT, { folder: '/', name: 'big.bin', sha256: await blobs.put(big), size: big.length, uploadedBy: 'console' })
  return n + 1
}

/** Times `tar c DIR | sha256sum`: wall ms, and the CPU ms (user + system) of tar and sha256sum together, from bash's `time`. */
async function tarAndHash(dir: string): Promise<{ ms: number; cpuMs: number }> {
  const started = performance.now()
  const { stderr } = await run('bash', ['-c', `TIMEFORMAT='%3U %3S'; time (tar c -C '${dir}' . | sha256sum >/dev/null)`])
  const ms = performance.now() - started
  const [user, sys] = stderr.trim().split(/\s+/).map(Number)
  return { ms, cpuMs: ((user ?? NaN) + (sys ?? NaN)) * 1000 }
}

export async function runMigrate(ctx: ScenarioContext, cleanup: Cleanup): Promise<MigrateResult> {
  const source = await startCloud(cleanup, ctx.log, 'migrate-from')
  const dest = await startCloud(cleanup, ctx.log, 'migrate-to')
  const work = await tempDir(cleanup, 'migrate-work')
  ctx.progress(`migrate: seeding ${ctx.args.photos} photos, ${CONTACTS} contacts, ${NOTES} notes and a 64 MiB drive file`)
  const items = await seed(ctx, source, join(work, 'phone'))
  const client = (c: BenchCloud): ConsoleClient => new ConsoleClient(c.httpUrl, ensureConsoleToken(join(c.dataDir, 'cloud')))
  const blobDir = join(source.dataDir, 'cloud', 'blobs')
  ctx.progress('migrate: tar c | sha256sum of the same bytes')
  const tar1 = await tarAndHash(blobDir)
  ctx.progress('migrate: migrating and verifying')
  const clock = new SystemClock()
  // FAKEPHONE_PROFILE_DIR: a V8 CPU profile of the migration alone (not the seeding) goes there.
  const profileDir = process.env.FAKEPHONE_PROFILE_DIR
  const session = new Session()
  if (profileDir) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  const started = performance.now()
  const cpu = process.cpuUsage()
  const job = await migrate({
    source: client(source),
    dest: client(dest),
    account: ACCOUNT,
    to: dest.httpUrl,
    toAccount: ACCOUNT,
    jobFile: join(work, 'job.json'),
    signal: ctx.signal,
    now: () => clock.now(),
    progress: (total) => new Progress(null, clock, 'migrate', total),
  })
  const migrateMs = performance.now() - started
  const used = process.cpuUsage(cpu)
  const migrateCpuMs = (used.user + used.system) / 1000
  if (profileDir) {
    const { profile } = await session.post('Profiler.stop')
    const file = join(profileDir, `migrate-${process.pid}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    ctx.progress(`migrate: profile in ${file}`)
    session.disconnect()
  }
  if (job.state !== 'completed') throw new Error(`the migration is ${job.state}: ${job.summary}`)
  ctx.progress('migrate: tar c | sha256sum again')
  const tar2 = await tarAndHash(blobDir)
  const bytes = job.report.reduce((n, r) => n + r.bytes, 0)
  const saved = JSON.parse(readFileSync(join(work, 'job.json'), 'utf8')) as { state: string }
  if (saved.state !== 'completed') throw new Error('the job file does not say completed')
  return {
    photos: ctx.args.photos,
    contacts: CONTACTS,
    notes: NOTES,
    items,
    bytes,
    migrateMs,
    migrateCpuMs,
    tarMs: [tar1.ms, tar2.ms],
    tarCpuMs: [tar1.cpuMs, tar2.cpuMs],
    ratio: migrateMs / ((tar1.ms + tar2.ms) / 2),
    cpuRatio: migrateCpuMs / ((tar1.cpuMs + tar2.cpuMs) / 2),
    summary: job.summary,
  }
}

export function renderMigrate(m: MigrateResult | { error: string }): string {
  const title = 'Migration (M2): an account copied to a second broker and verified, against tar c | sha256sum of the same bytes'
  if ('error' in m) return `${title}\n  failed: ${m.error}`
  const s = (v: number): string => `${(v / 1000).toFixed(2)} s`
  return [
    title,
    `  account: ${m.photos} photos, ${m.contacts} contacts, ${m.notes} notes, one 64 MiB drive file (${m.items} items, ` +
      `${(m.bytes / 2 ** 20).toFixed(1)} MiB)`,
    `  migrate + verify            ${s(m.migrateMs)}, CPU ${s(m.migrateCpuMs)}   (${m.summary})`,
    `  tar c | sha256sum           ${s(m.tarMs[0])} before, ${s(m.tarMs[1])} after; CPU ${s(m.tarCpuMs[0])}, ${s(m.tarCpuMs[1])}`,
    `  ratio                       ${m.ratio.toFixed(2)} x wall, ${m.cpuRatio.toFixed(2)} x CPU (target: at most 1.25 x)`,
  ].join('\n')
}
