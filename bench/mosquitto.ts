/**
 * Scenario 3, the same publisher load against Mosquitto, for a yardstick.
 * Runs only when a `mosquitto` binary is on PATH. Mosquitto gets a minimal
 * config (one listener on 127.0.0.1 at a free port, anonymous access, no
 * persistence, TCP_NODELAY like the fakephone broker) and runs as its own
 * process: unlike the fakephone broker it does not share an event loop
 * with the load generator.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { constants } from 'node:fs'
import { access, readFile, writeFile } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { LOOPBACK, deviceIds, tempDir } from './cloud.js'
import { loadFigures, type IngestResult } from './ingest.js'
import { errorText, sleep, withTimeout, type Cleanup } from './lifecycle.js'
import { connectPublishers, runLoad } from './load.js'
import type { ScenarioContext } from './context.js'

const READY_TIMEOUT_MS = 5_000
const STOP_TIMEOUT_MS = 5_000

/** The first executable `name` on PATH, or null. */
export async function findOnPath(name: string): Promise<string | null> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return null
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, LOOPBACK)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function mosquittoConfig(port: number): string {
  return [
    `listener ${port} ${LOOPBACK}`,
    'allow_anonymous true',
    'persistence false',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    '',
  ].join('\n')
}

/** Resolves once something accepts TCP connections on the port; rejects if `child` exits first or time runs out. */
export async function waitForListener(port: number, child: ChildProcess, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: LOOPBACK, port }, () => s.end(() => resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await sleep(50, undefined, { signal })
  }
  throw new Error(`mosquitto did not listen on ${LOOPBACK}:${port} within ${READY_TIMEOUT_MS} ms`)
}

/** Stops the child we started, by its own pid: SIGTERM, then SIGKILL if it lingers. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  try {
    await withTimeout(exited, STOP_TIMEOUT_MS, 'mosquitto exit')
  } catch {
    child.kill('SIGKILL')
    await exited
  }
}

export interface ProcessSample {
  rssMb: number
  peakRssMb: number
  /** User + system CPU time so far, ms. */
  cpuMs: number
  /** The same for the process's main thread alone (a Node broker's event loop: JS, SQLite, syscalls; not GC helpers or workers). */
  mainCpuMs: number
}

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_S = 100

/** User + system CPU ms of a /proc `stat` line: fields 14 and 15 of the whole line, counted after the parenthesised name. */
function cpuMsOf(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S
}

/** Memory and CPU time of a process from Linux's /proc; null elsewhere. */
export async function sampleProcess(pid: number): Promise<ProcessSample | null> {
  try {
    const [status, stat, main] = await Promise.all(
      [`/proc/${pid}/status`, `/proc/${pid}/stat`, `/proc/${pid}/task/${pid}/stat`].map((f) => readFile(f, 'utf8')),
    )
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status as string)?.[1] ?? NaN)
    return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, cpuMs: cpuMsOf(stat as string), mainCpuMs: cpuMsOf(main as string) }
  } catch {
    return null
  }
}

export async function mosquittoVersion(bin: string): Promise<string> {
  const child = spawn(bin, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout.on('data', (d: Buffer) => (text += d.toString()))
  await withTimeout(once(child, 'close'), STOP_TIMEOUT_MS, 'mosquitto -h')
  return /mosquitto version (\S+)/.exec(text)?.[1] ?? 'unknown'
}

export interface Mosquitto {
  child: ChildProcess
  url: string
  /** The tail of what it wrote to stderr. */
  stderr: () => string
}

async function startMosquitto(bin: string, cleanup: Cleanup, signal: AbortSignal): Promise<Mosquitto> {
  const dir = await tempDir(cleanup, 'mosquitto')
  return launchMosquitto(bin, dir, signal, (child) => cleanup.defer('stop mosquitto', () => stopChild(child)))
}

/**
 * Starts `bin` on a free port of 127.0.0.1 with the config above, its files in `dir` (the bench and the tests' fixture,
 * test/fixtures/mosquitto.ts); `started` gets the child at once, so the caller can stop it whatever happens next.
 */
export async function launchMosquitto(
  bin: string,
  dir: string,
  signal: AbortSignal,
  started: (child: ChildProcess) => void,
): Promise<Mosquitto> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(conf, mosquittoConfig(port))
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  started(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
  child.on('error', () => {}) // a failed spawn shows as an exit code below
  try {
    await waitForListener(port, child, signal)
  } catch (err) {
    throw new Error(`${errorText(err)}${stderr ? `; it said: ${stderr.trim()}` : ''}`, { cause: err })
  }
  return { child, url: `mqtt://${LOOPBACK}:${port}`, stderr: () => stderr }
}

export type MosquittoOutcome = { ran: true; version: string; result: IngestResult } | { ran: false; reason: string }

export async function runMosquitto(ctx: ScenarioContext, cleanup: Cleanup): Promise<MosquittoOutcome> {
  const bin = await findOnPath('mosquitto')
  if (!bin) return { ran: false, reason: 'no `mosquitto` binary on PATH (e.g. apt-get install mosquitto)' }
  const version = await mosquittoVersion(bin)
  const broker = await startMosquitto(bin, cleanup, ctx.signal)
  const result = await measure(ctx, cleanup, broker, `mosquitto ${version}`)
  if (broker.child.exitCode !== null) throw new Error(`mosquitto exited during the run: ${broker.stderr()}`)
  return { ran: true, version, result }
}

/** The scenario 1 load, without credentials, plus Mosquitto's own memory and CPU. */
async function measure(ctx: ScenarioContext, cleanup: Cleanup, broker: Mosquitto, name: string): Promise<IngestResult> {
  const { args } = ctx
  const pid = broker.child.pid as number
  const idleRss = process.memoryUsage.rss()
  const idle = await sampleProcess(pid)
  ctx.progress(`${name}: connecting ${args.devices} devices`)
  const conn = await connectPublishers(
    broker.url,
    deviceIds('bench', args.devices).map((id) => ({ id })),
    cleanup,
    ctx.signal,
  )
  const before = await sampleProcess(pid)
  ctx.progress(`${name}: publishing ${args.rate}/s for ${args.seconds} s`)
  const started = performance.now()
  const load = await runLoad(conn.publishers, { rate: args.rate, seconds: args.seconds, signal: ctx.signal })
  const after = await sampleProcess(pid)
  const spanMs = performance.now() - started
  const separateBroker = {
    rssMb: idle && after ? { idle: idle.rssMb, peak: after.peakRssMb } : null,
    cpuPct: before && after ? ((after.cpuMs - before.cpuMs) / spanMs) * 100 : null,
  }
  return { ...loadFigures(name, args, conn, load, idleRss), registerMs: null, stored: null, separateBroker }
}
