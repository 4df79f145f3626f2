/**
 * M2's migration bench (migrate.ts) in the topologies it measures, each in
 * processes of its own so every figure starts cold:
 *   node dist/bench/migrate-child.js broker DATA_DIR
 *     one CloudBroker on DATA_DIR, as `fakephone broker` runs it; prints `{"httpPort":N}` once it listens, then
 *     answers one JSON line per command line on stdin: `{"fresh":DIR}` stops it and starts a broker on DIR in the
 *     same process (a warm destination), `{"profile":"start"}` / `{"profile":"stop","name":X}` (with
 *     FAKEPHONE_PROFILE_DIR) a V8 CPU profile of what ran between; stops on SIGTERM or when stdin ends.
 *   node dist/bench/migrate-child.js one-process SOURCE_DIR DEST_DIR WARM_DEST_DIR WORK_DIR
 *     both brokers and the migrating console in this one process: migrates the account to DEST_DIR (cold), then to a
 *     fresh broker on WARM_DEST_DIR (warm); prints `{"runs":[...]}` (wall and CPU ms of each) and exits.
 * The separate-processes topology (two `broker` children and the console's job in the bench's own process, as a user
 * runs `fakephone broker` twice and `fakephone console migrate`) is driven by migrate.ts with the helpers here.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { ensureConsoleToken } from '../broker/console-token.js'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { ConsoleClient } from '../cli/console-client.js'
import { migrate, type MigrationJob } from '../cli/transfer/migrate.js'
import { Progress } from '../cli/transfer/progress.js'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'

export const ACCOUNT = 'bench'
const LOOPBACK = '127.0.0.1'

/** CPU ms (user + system) and minor page faults (each a fresh page of memory the kernel zeroed and mapped). */
export interface Usage {
  cpuMs: number
  minorFaults: number
}

/** One migration as measured: wall ms, and the CPU ms and page faults of the process that ran it. */
export interface TimedRun extends Usage {
  ms: number
  job: Pick<MigrationJob, 'state' | 'summary'> & { bytes: number }
}

/** A broker as the bench's benches run them: loopback, OS-chosen ports, logs at warn on stderr, the per-address limit lifted. */
async function startBroker(dataDir: string): Promise<Side & { broker: CloudBroker }> {
  const log = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) })
  const options = { ...DEFAULT_BROKER_OPTIONS, dataDir, host: LOOPBACK, mqttPort: 0, httpPort: 0 }
  const broker = new CloudBroker({ ...options, rateLimit: { burst: 1_000_000, perSecond: 1_000_000 } }, new SystemClock(), log)
  const { httpPort } = await broker.start()
  return { broker, dataDir, httpPort }
}

/** A broker as the console sees it: its HTTP port, and its data directory (where its console token is). */
export interface Side {
  dataDir: string
  httpPort: number
}

const urlOf = (side: Side): string => `http://${LOOPBACK}:${side.httpPort}`
const consoleOf = (side: Side): ConsoleClient => new ConsoleClient(urlOf(side), ensureConsoleToken(side.dataDir))

/** `console migrate`'s job, ACCOUNT from `source` to `dest`: wall ms and this process's CPU ms. */
export async function migrateOnce(source: Side, dest: Side, jobFile: string, signal: AbortSignal): Promise<TimedRun> {
  const clock = new SystemClock()
  const started = performance.now()
  const cpu = process.cpuUsage()
  const faults = process.resourceUsage().minorPageFault
  const job = await migrate({
    source: consoleOf(source),
    dest: consoleOf(dest),
    account: ACCOUNT,
    to: urlOf(dest),
    toAccount: ACCOUNT,
    jobFile,
    signal,
    now: () => clock.now(),
    progress: (total) => new Progress(null, clock, 'migrate', total),
    // As `fakephone console migrate` does: the destination pulls the bytes from the source itself.
    pullFrom: urlOf(source),
  })
  const ms = performance.now() - started
  const used = process.cpuUsage(cpu)
  const minorFaults = process.resourceUsage().minorPageFault - faults
  if (job.state !== 'completed') throw new Error(`the migration is ${job.state}: ${job.summary}`)
  if (job.copiedBy !== 'destination') throw new Error(`the destination did not pull the bytes: ${job.relayedBecause}`)
  const saved = JSON.parse(readFileSync(jobFile, 'utf8')) as { state: string }
  if (saved.state !== 'completed') throw new Error('the job file does not say completed')
  const bytes = job.report.reduce((n, r) => n + r.bytes, 0)
  return { ms, cpuMs: (used.user + used.system) / 1000, minorFaults, job: { state: job.state, summary: job.summary, bytes } }
}

/** This process's V8 CPU profiler, on while `FAKEPHONE_PROFILE_DIR` is set; `stop` writes NAME-PID.cpuprofile there. */
export class Profiler {
  private session: Session | null = null
  private readonly dir = process.env['FAKEPHONE_PROFILE_DIR']

  async start(): Promise<void> {
    if (!this.dir || this.session) return
    this.session = new Session()
    this.session.connect()
    await this.session.post('Profiler.enable')
    await this.session.post('Profiler.start')
  }

  /** Answers the file written, or null when not profiling. */
  async stop(name: string): Promise<string | null> {
    if (!this.dir || !this.session) return null
    const { profile } = await this.session.post('Profiler.stop')
    this.session.disconnect()
    this.session = null
    mkdirSync(this.dir, { recursive: true })
    const file = join(this.dir, `${name}-${process.pid}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    return file
  }
}

/** Reads one JSON value per line from a child's stdout. */
async function* jsonLines(out: Readable): AsyncGenerator<Record<string, unknown>> {
  let buf = ''
  for await (const chunk of out) {
    buf += String(chunk)
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      yield JSON.parse(buf.slice(0, i)) as Record<string, unknown>
      buf = buf.slice(i + 1)
    }
  }
}

const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** What a process has used so far, from /proc/PID/stat: CPU ms (user + system: fields 14, 15, in ticks), minor page faults (10). */
export function procUsage(pid: number): Usage {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S, minorFaults: Number(fields[7]) }
}

/** A child of this module: its pid, one request/answer at a time over stdin/stdout, and how to stop it. */
export interface MigrateChild {
  pid: number
  /** The first line it printed. */
  first: Record<string, unknown>
  ask(command: Record<string, unknown>): Promise<Record<string, unknown>>
  stop(): Promise<void>
}

/** Starts `node migrate-child.js ...args` (killed when `signal` trips); resolves once it printed its first line. */
export async function startChild(args: string[], signal: AbortSignal): Promise<MigrateChild> {
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    signal,
    killSignal: 'SIGTERM',
  })
  child.on('error', () => undefined) // an abort: the next read ends and says so
  const lines = jsonLines(child.stdout)
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next()
    if (line.done) throw new Error(`migrate-child ${args[0]} ended (exit ${child.exitCode})`)
    return line.value
  }
  const first = await next()
  return {
    pid: child.pid as number,
    first,
    ask: (command) => {
      child.stdin.write(`${JSON.stringify(command)}\n`)
      return next()
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

/** `broker DATA_DIR`: see the module comment. */
async function brokerRole(dataDir: string): Promise<void> {
  let running = await startBroker(dataDir)
  const profiler = new Profiler()
  const say = (v: unknown): boolean => process.stdout.write(`${JSON.stringify(v)}\n`)
  const stop = (): void => void running.broker.stop().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  say({ httpPort: running.httpPort })
  for await (const command of jsonLines(process.stdin)) {
    if (typeof command['fresh'] === 'string') {
      await running.broker.stop()
      running = await startBroker(command['fresh'])
      say({ httpPort: running.httpPort })
    } else if (command['profile'] === 'start') {
      await profiler.start()
      say({ ok: true })
    } else say({ profiled: await profiler.stop(String(command['name'])) })
  }
  stop()
}

/** `one-process SOURCE_DIR DEST_DIR WARM_DEST_DIR WORK_DIR`: see the module comment. */
async function oneProcessRole(sourceDir: string, destDir: string, warmDir: string, work: string): Promise<void> {
  const source = await startBroker(sourceDir)
  const runs: (TimedRun & { profile: string | null })[] = []
  const profiler = new Profiler()
  for (const [phase, dir] of [
    ['cold', destDir],
    ['warm', warmDir],
  ] as const) {
    const dest = await startBroker(dir)
    await profiler.start()
    const run = await migrateOnce(source, dest, join(work, `job-one-process-${phase}.json`), new AbortController().signal)
    runs.push({ ...run, profile: await profiler.stop(`migrate-one-process-${phase}`) })
    await dest.broker.stop()
  }
  await source.broker.stop()
  process.stdout.write(`${JSON.stringify({ runs })}\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, ...rest] = process.argv.slice(2) as [string, ...string[]]
  const done =
    role === 'broker' && rest.length === 1
      ? brokerRole(rest[0] as string)
      : role === 'one-process' && rest.length === 4
        ? oneProcessRole(...(rest as [string, string, string, string]))
        : Promise.reject(new Error('usage: migrate-child.js broker DATA_DIR | one-process SOURCE_DIR DEST_DIR WARM_DEST_DIR WORK_DIR'))
  await done.catch((err: unknown) => {
    process.stderr.write(`migrate-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  })
}
