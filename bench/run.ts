/**
 * `npm run bench`: measures fakephone's hot paths against a real broker on
 * 127.0.0.1 and prints a table for the README plus a JSON blob (`--json`
 * prints only the JSON). Scenarios: heartbeat ingest over MQTT/TCP, a fleet
 * of in-process agents, remote commands end to end (round trip and
 * fan-out), the ingest load against Mosquitto when it is installed, and
 * push delivery to many agents (X1, X3), app data sync with a resumed upload (S1, S3), and the web console with 1,000
 * phones on its map in Chromium (F1). The load generator shares this
 * process with the broker.
 * Progress and warnings go to stderr; results to stdout. Ctrl-C or an
 * error stops everything started so far.
 */
import { pino } from 'pino'
import { createLogger, type Logger } from '../common/log.js'
import type { ScenarioContext } from './context.js'
import { runCommands, type CommandsResult } from './commands.js'
import { parseBenchArgs, USAGE, type BenchArgs, type Scenario } from './args.js'
import { runFleet, type FleetResult } from './fleet.js'
import { runIngest, type IngestResult } from './ingest.js'
import { Cleanup, errorText, interruptSignal } from './lifecycle.js'
import { runMosquitto, type MosquittoOutcome } from './mosquitto.js'
import { runPush, type PushResult } from './push.js'
import { runSync, type SyncResult } from './sync.js'
import { runCron, type CronResult } from './cron.js'
import { runWeb, runWebCommand, type WebCommandResult, type WebResult } from './web.js'
import { renderMigrate, runMigrate, type MigrateResult } from './migrate.js'
import { renderCompare, runCompare, type CompareResult } from './compare.js'
import { machineInfo, renderReport, type BenchReport } from './report.js'

/** If anything still holds the process open this long after the report, it exits anyway. */
const EXIT_GRACE_MS = 5_000

const progress = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`)
}

/** Runs one scenario with its own clean-up; an error is recorded, not thrown, unless the run was interrupted. */
async function scenario<T>(
  name: Scenario,
  ctx: ScenarioContext,
  body: (ctx: ScenarioContext, cleanup: Cleanup) => Promise<T>,
): Promise<T | { error: string }> {
  const cleanup = new Cleanup()
  const started = performance.now()
  try {
    return await body(ctx, cleanup)
  } catch (err) {
    if (ctx.signal.aborted) throw err
    progress(`${name} failed: ${errorText(err)}`)
    return { error: errorText(err) }
  } finally {
    await cleanup.runAll(progress)
    progress(`${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  }
}

async function runAll(ctx: ScenarioContext): Promise<BenchReport> {
  const report: BenchReport = {
    machine: machineInfo(),
    args: { ...ctx.args, only: [...ctx.args.only] },
    startedAt: new Date().toISOString(),
  }
  const only = ctx.args.only
  if (only.has('compare')) report.compare = await scenario<CompareResult>('compare', ctx, runCompare)
  if (only.has('ingest')) report.ingest = await scenario<IngestResult>('ingest', ctx, runIngest)
  if (only.has('fleet')) report.fleet = await scenario<FleetResult>('fleet', ctx, runFleet)
  if (only.has('commands')) report.commands = await scenario<CommandsResult>('commands', ctx, runCommands)
  if (only.has('mosquitto')) report.mosquitto = await scenario<MosquittoOutcome>('mosquitto', ctx, runMosquitto)
  if (only.has('push')) report.push = await scenario<PushResult>('push', ctx, runPush)
  if (only.has('sync')) report.sync = await scenario<SyncResult>('sync', ctx, runSync)
  if (only.has('cron')) report.cron = await scenario<CronResult>('cron', ctx, runCron)
  if (only.has('web')) report.web = await scenario<WebResult>('web', ctx, runWeb)
  if (only.has('web-command')) report.webCommand = await scenario<WebCommandResult>('web-command', ctx, runWebCommand)
  if (only.has('migrate')) report.migrate = await scenario<MigrateResult>('migrate', ctx, runMigrate)
  return report
}

function benchLogger(): Logger {
  return createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) })
}

const failed = (r: object | undefined): boolean => r !== undefined && 'error' in r

async function main(): Promise<number> {
  let args: BenchArgs | null
  try {
    args = parseBenchArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${errorText(err)}\n${USAGE}\n`)
    return 2
  }
  if (!args) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const ctx: ScenarioContext = { args, log: benchLogger(), signal: interruptSignal(progress), progress }
  try {
    const report = await runAll(ctx)
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report))
    if (!args.json && report.compare && !('error' in report.compare)) process.stdout.write(`\n${renderCompare(report.compare)}\n`)
    if (!args.json && report.migrate) process.stdout.write(`\n${renderMigrate(report.migrate)}\n`)
    return [
      report.ingest,
      report.fleet,
      report.commands,
      report.mosquitto,
      report.push,
      report.web,
      report.webCommand,
      report.migrate,
    ].some(failed)
      ? 1
      : 0
  } catch (err) {
    progress(ctx.signal.aborted ? 'interrupted; everything started was stopped' : `failed: ${errorText(err)}`)
    return ctx.signal.aborted ? 130 : 1
  }
}

const code = await main()
process.exitCode = code
setTimeout(() => {
  progress('something still held the process open; exiting')
  process.exit(code)
}, EXIT_GRACE_MS).unref()
