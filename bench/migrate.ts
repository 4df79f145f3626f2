/**
 * Scenario: M2's migration against `tar c DIR | sha256sum`. One account on
 * a real CloudBroker is seeded with the phone's own seeded data (S1's
 * seedPhoneData: 1,000 EXIF photos, contacts, notes) and a 64 MiB drive
 * file; `console migrate`'s job (cli/transfer/migrate.ts) copies it to a
 * second broker over loopback HTTP through the batch blob routes and
 * verifies it (the destination pulling the blobs from the source itself
 * with a transfer grant per batch, as the command does; every blob read back in batches and hashed, every record
 * and each photo's EXIF compared). Two topologies, each in fresh processes
 * (migrate-child.ts), each migrated twice: cold (the processes' first
 * migration) and warm (a second one, to a fresh destination, in the same
 * processes): all in one process, and as a user runs it, each broker in a
 * process of its own and the console's job in this one (CPU summed over
 * the three). Then, once, the command itself: `fakephone console migrate`
 * (the built CLI) in a fresh process of its own against the same two
 * brokers, to a fresh destination, its start-up (loading the command's
 * modules) included, its CPU from GNU time. In the same run, on the same
 * disk, `tar c` of the source's blob directory (the same bytes) piped into
 * `sha256sum` is timed before and after; the ratios are migration / tar-and-hash (the mean of the two).
 * FAKEPHONE_PROFILE_DIR: a V8 CPU profile of each migration in each process (the command's own from its start).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cp, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { CONSOLE_TOKEN_FILE } from '../broker/console-token.js'
import { seedPhoneData } from '../agent/phone-data/seed.js'
import { PhoneFiles } from '../agent/phone-data/store.js'
import { CATEGORIES } from '../agent/phone-data/types.js'
import { SystemClock } from '../common/clock.js'
import { startCloud, tempDir, type BenchCloud } from './cloud.js'
import type { ScenarioContext } from './context.js'
import type { Cleanup } from './lifecycle.js'
import type { MigrationJob } from '../cli/transfer/migrate.js'
import { ACCOUNT, migrateOnce, procUsage, Profiler, type Usage, startChild, type Side, type TimedRun } from './migrate-child.js'

const DRIVE_BYTES = 64 * 2 ** 20
const CONTACTS = 200
const NOTES = 100

export type Topology = 'one process' | 'separate processes' | 'the command'

/** One measured migration: where it ran, whether its processes had run one before, and its times. */
export interface MigrateRun {
  topology: Topology
  /**
   * cold: the first migration in fresh processes; warm: a second one, to a fresh destination, in the same processes
   * (the command: its process is fresh, the brokers have run the two migrations before it).
   */
  phase: 'cold' | 'warm'
  ms: number
  /** CPU time (user + system) of every process taking part, summed. */
  cpuMs: number
  /** Over tar's mean wall time. */
  ratio: number
  /** Over tar's mean CPU time: less at the mercy of a shared machine's load. */
  cpuRatio: number
  /** Separate processes: each one's share of cpuMs, and its minor page faults. */
  byProcess?: { source: Usage; dest: Usage; console: Usage }
}

export interface MigrateResult {
  photos: number
  contacts: number
  notes: number
  items: number
  bytes: number
  /** The one-process cold run's figures (the bench's figure before the topologies; kept for comparison). */
  migrateMs: number
  migrateCpuMs: number
  /** tar c | sha256sum of the source's blob directory, before and after the migrations: wall and CPU ms. */
  tarMs: [number, number]
  tarCpuMs: [number, number]
  ratio: number
  cpuRatio: number
  runs: MigrateRun[]
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

/** The console's `migration` as separate processes measure it: with what the two brokers' processes used meanwhile. */
async function withBrokers(
  fromPid: number,
  toPid: number,
  migration: () => Promise<TimedRun>,
): Promise<Pick<MigrateRun, 'ms' | 'cpuMs' | 'byProcess'>> {
  const [fromAt, toAt] = [procUsage(fromPid), procUsage(toPid)]
  const r = await migration()
  const since = (pid: number, at: Usage): Usage => {
    const now = procUsage(pid)
    return { cpuMs: now.cpuMs - at.cpuMs, minorFaults: now.minorFaults - at.minorFaults }
  }
  const byProcess = { source: since(fromPid, fromAt), dest: since(toPid, toAt), console: { cpuMs: r.cpuMs, minorFaults: r.minorFaults } }
  return { ms: r.ms, cpuMs: byProcess.source.cpuMs + byProcess.dest.cpuMs + byProcess.console.cpuMs, byProcess }
}

/** The built CLI, beside this bench in dist/. */
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))

/**
 * `fakephone console migrate` of ACCOUNT from `source` to `dest` as a user runs it, in a fresh process: its wall ms,
 * and its CPU ms and minor page faults from GNU time (`/usr/bin/time`: the process's whole life, start-up included).
 */
async function migrateCommand(source: Side, dest: Side, work: string, signal: AbortSignal): Promise<TimedRun> {
  const url = (side: Side): string => `http://127.0.0.1:${side.httpPort}`
  const times = join(work, 'command.time')
  const job = join(work, 'job-command.json')
  const argv = ['console', '--api', url(source), '--data', source.dataDir, 'migrate', ACCOUNT, '--to', url(dest)]
  argv.push('--to-token-file', join(dest.dataDir, CONSOLE_TOKEN_FILE), '--job', job)
  // FAKEPHONE_PROFILE_DIR: its main thread's V8 CPU profile, its start-up included (migrate-command-console.cpuprofile).
  const dir = process.env['FAKEPHONE_PROFILE_DIR']
  const profile = dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-name=migrate-command-console.cpuprofile'] : []
  const started = performance.now()
  await run('/usr/bin/time', ['-f', '%U %S %R', '-o', times, process.execPath, ...profile, CLI, ...argv], { signal })
  const ms = performance.now() - started
  const [user, sys, faults] = (await readFile(times, 'utf8')).trim().split(/\s+/).map(Number)
  // The job as the command saved it last (its output is a summary line; the exit code already said completed).
  const done = JSON.parse(await readFile(job, 'utf8')) as MigrationJob
  if (done.state !== 'completed') throw new Error(`the command's migration is ${done.state}: ${done.summary}`)
  if (done.copiedBy !== 'destination') throw new Error(`the command's destination did not pull the bytes: ${done.relayedBecause}`)
  const bytes = done.report.reduce((n, r) => n + r.bytes, 0)
  const cpuMs = ((user ?? NaN) + (sys ?? NaN)) * 1000
  return { ms, cpuMs, minorFaults: faults ?? NaN, job: { state: done.state, summary: done.summary, bytes } }
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
  const seeded = await startCloud(cleanup, ctx.log, 'migrate-from')
  const work = await tempDir(cleanup, 'migrate-work')
  ctx.progress(`migrate: seeding ${ctx.args.photos} photos, ${CONTACTS} contacts, ${NOTES} notes and a 64 MiB drive file`)
  const items = await seed(ctx, seeded, join(work, 'phone'))
  // The seeded cloud is stopped, and copied so that each topology migrates an account no migration has touched.
  await seeded.broker.stop()
  const sourceDir = join(seeded.dataDir, 'cloud')
  const sourceCopy = join(work, 'source-copy')
  await cp(sourceDir, sourceCopy, { recursive: true })
  const blobDir = join(sourceDir, 'blobs')
  ctx.progress('migrate: tar c | sha256sum of the same bytes')
  const tar1 = await tarAndHash(blobDir)
  const raw: Omit<MigrateRun, 'ratio' | 'cpuRatio'>[] = []
  let summary = ''
  let bytes = 0

  // Both brokers and the console in one fresh process (migrate-child.ts one-process): cold, then warm.
  ctx.progress('migrate: one process (both brokers and the console): cold, then warm')
  const one = await startChild(['one-process', sourceDir, join(work, 'one-dest'), join(work, 'one-dest-warm'), work], ctx.signal)
  for (const [i, r] of (one.first['runs'] as (TimedRun & { profile: string | null })[]).entries()) {
    raw.push({ topology: 'one process', phase: i === 0 ? 'cold' : 'warm', ms: r.ms, cpuMs: r.cpuMs })
    if (r.profile) ctx.progress(`migrate: profile in ${r.profile}`)
    ;({ summary, bytes } = r.job)
  }
  await one.stop()

  // As a user runs it: `fakephone broker` twice, `fakephone console migrate` (this process).
  ctx.progress('migrate: separate processes (two brokers, the console here): cold, then warm')
  const from = await startChild(['broker', sourceCopy], ctx.signal)
  cleanup.defer('stop the source broker', () => from.stop())
  const to = await startChild(['broker', join(work, 'sep-dest')], ctx.signal)
  cleanup.defer('stop the destination broker', () => to.stop())
  const source: Side = { dataDir: sourceCopy, httpPort: from.first['httpPort'] as number }
  let dest: Side = { dataDir: join(work, 'sep-dest'), httpPort: to.first['httpPort'] as number }
  const profiler = new Profiler()
  for (const phase of ['cold', 'warm'] as const) {
    if (phase === 'warm') {
      const dataDir = join(work, 'sep-dest-warm')
      dest = { dataDir, httpPort: (await to.ask({ fresh: dataDir }))['httpPort'] as number }
    }
    if (process.env['FAKEPHONE_PROFILE_DIR'])
      await Promise.all([from.ask({ profile: 'start' }), to.ask({ profile: 'start' }), profiler.start()])
    const r = await withBrokers(from.pid, to.pid, () => migrateOnce(source, dest, join(work, `job-separate-${phase}.json`), ctx.signal))
    raw.push({ topology: 'separate processes', phase, ...r })
    if (process.env['FAKEPHONE_PROFILE_DIR'])
      for (const file of [
        (await from.ask({ profile: 'stop', name: `migrate-source-${phase}` }))['profiled'],
        (await to.ask({ profile: 'stop', name: `migrate-dest-${phase}` }))['profiled'],
        await profiler.stop(`migrate-console-${phase}`),
      ])
        ctx.progress(`migrate: profile in ${String(file)}`)
  }

  // As a user runs it, start-up included: `fakephone console migrate` in a fresh process, to a fresh destination.
  ctx.progress('migrate: the command, `fakephone console migrate`, in a fresh process')
  const dataDir = join(work, 'command-dest')
  dest = { dataDir, httpPort: (await to.ask({ fresh: dataDir }))['httpPort'] as number }
  if (process.env['FAKEPHONE_PROFILE_DIR']) await Promise.all([from.ask({ profile: 'start' }), to.ask({ profile: 'start' })])
  raw.push({
    topology: 'the command',
    phase: 'cold',
    ...(await withBrokers(from.pid, to.pid, () => migrateCommand(source, dest, work, ctx.signal))),
  })
  if (process.env['FAKEPHONE_PROFILE_DIR'])
    for (const [name, side] of [
      ['source', from],
      ['dest', to],
    ] as const)
      ctx.progress(`migrate: profile in ${String((await side.ask({ profile: 'stop', name: `migrate-${name}-command` }))['profiled'])}`)

  ctx.progress('migrate: tar c | sha256sum again')
  const tar2 = await tarAndHash(blobDir)
  const tarMs = (tar1.ms + tar2.ms) / 2
  const tarCpuMs = (tar1.cpuMs + tar2.cpuMs) / 2
  const runs = raw.map((r) => ({ ...r, ratio: r.ms / tarMs, cpuRatio: r.cpuMs / tarCpuMs }))
  const first = runs[0] as MigrateRun
  return {
    photos: ctx.args.photos,
    contacts: CONTACTS,
    notes: NOTES,
    items,
    bytes,
    migrateMs: first.ms,
    migrateCpuMs: first.cpuMs,
    tarMs: [tar1.ms, tar2.ms],
    tarCpuMs: [tar1.cpuMs, tar2.cpuMs],
    ratio: first.ratio,
    cpuRatio: first.cpuRatio,
    runs,
    summary,
  }
}

/** Each process's CPU and page faults, on one line. */
function perProcess(by: NonNullable<MigrateRun['byProcess']>): string {
  const name = { source: 'source', dest: 'destination', console: 'console' } as const
  const one = (p: keyof typeof name): string => `${name[p]} ${(by[p].cpuMs / 1000).toFixed(2)} s CPU, ${by[p].minorFaults} page faults`
  return (['source', 'dest', 'console'] as const).map(one).join('; ')
}

export function renderMigrate(m: MigrateResult | { error: string }): string {
  const title = 'Migration (M2): an account copied to a second broker and verified, against tar c | sha256sum of the same bytes'
  if ('error' in m) return `${title}\n  failed: ${m.error}`
  const s = (v: number): string => `${(v / 1000).toFixed(2)} s`
  return [
    title,
    `  account: ${m.photos} photos, ${m.contacts} contacts, ${m.notes} notes, one 64 MiB drive file (${m.items} items, ` +
      `${(m.bytes / 2 ** 20).toFixed(1)} MiB)`,
    `  every run: ${m.summary}`,
    `  tar c | sha256sum           ${s(m.tarMs[0])} before, ${s(m.tarMs[1])} after; CPU ${s(m.tarCpuMs[0])}, ${s(m.tarCpuMs[1])}`,
    '  migrate + verify (CPU of every process taking part; ratios to tar c | sha256sum, target: at most 1.25 x wall)',
    ...m.runs.map(
      (r) =>
        `  ${`${r.topology}, ${r.phase}`.padEnd(28)}${s(r.ms)}, CPU ${s(r.cpuMs)}   ratio ${r.ratio.toFixed(2)} x wall, ` +
        `${r.cpuRatio.toFixed(2)} x CPU` +
        (r.byProcess ? `\n${' '.repeat(30)}${perProcess(r.byProcess)}` : ''),
    ),
  ].join('\n')
}
