/** `fakephone fleet provision | run | report merge`: a fleet of fake phones from one command (issue 12). */
import { Command, InvalidArgumentError, Option } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { DEFAULT_DATA_DIR } from '../broker/db.js'
import { recordedClock } from '../common/cloud-time.js'
import { connectionRoom } from '../common/open-files.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { anonymousDevices, readCredentials, writeCredentialsOf } from '../fleet/credentials.js'
import { FleetPrefixSchema, fleetCredentials, provision } from '../fleet/provision.js'
import { mergeReports, readReport } from '../fleet/merge.js'
import { liveLine } from '../fleet/progress.js'
import { failedWhy, missingWhy, nothingLost, renderReport, type FleetReport } from '../fleet/report.js'
import { checkScenario, loadScenario, syncingGroups, type LoadedScenario } from '../fleet/scenario.js'
import type { RemoteBroker } from '../fleet/session.js'
import { parseShard, shardSize, WHOLE, type Shard } from '../fleet/shard.js'
import { PHONES_AT_ONCE } from '../fleet/runner.js'
import { autoWorkers, brokerRoomWarning, runFleet } from '../fleet/workers.js'
import { readConsoleTokenFile } from './console-token-file.js'
import { EXIT_INCOMPLETE, UserError, type Io } from './io.js'
import { createLogger } from '../common/log.js'
import { DEFAULT_KEYS_DIR, duration, httpUrl, port, positiveInt } from './options.js'
import { quoted } from '../common/terminal-text.js'
import { plural } from './render.js'

interface RunFlags {
  count: number
  scenario?: string
  seed: string
  duration?: number
  broker?: string
  credentials?: string
  api?: string
  consoleToken?: string
  consoleTokenFile?: string
  push: boolean
  work?: string
  report?: string
  metricsPort: number
  profile?: string
  json?: boolean
  logLevel: string
  workers: number | 'auto'
  shard?: Shard
  phonesAtOnce: number
}

function workers(value: string): number | 'auto' {
  return value === 'auto' ? value : positiveInt(value)
}

function shard(value: string): Shard {
  try {
    return parseShard(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

/** Prints the report (summary or JSON), writes it to `file` when asked; exit 1 when it lost anything, 3 when a merge lacks shards. */
async function putReport(io: Io, report: FleetReport, o: { json?: boolean; file?: string }): Promise<void> {
  if (o.file) await writeFile(o.file, JSON.stringify(report, null, 2) + '\n')
  io.out(o.json ? JSON.stringify(report) + '\n' : renderReport(report))
  if (report.apiError !== undefined) throw new UserError(`${failedWhy(report)}: ${report.apiError} (see the report)`)
  if (report.ok) return
  const missing = report.missingShards?.length ? missingWhy(report) : undefined
  // Not OK with nothing lost: only shards are missing (reportOk), whose phones no report counted.
  if (nothingLost(report)) throw new UserError(`the merged report is incomplete: ${missing as string}, not counted`, EXIT_INCOMPLETE)
  throw new UserError(`the fleet lost messages or phones${missing === undefined ? '' : `; also ${missing}`} (see the report)`)
}

/**
 * The flags of a running broker go together: without --broker the run starts a broker of its own and provisions its
 * own phones, so a --credentials file (or --api) given alone was ignored and the run looked like the fleet's; an --api
 * without its token (or a token without --api) left the console and the reconciliation out, unsaid.
 */
function checkRemoteFlags(o: RunFlags): void {
  const given = (
    [
      ['--credentials', o.credentials],
      ['--api', o.api],
      ['--console-token', o.consoleToken],
      ['--console-token-file', o.consoleTokenFile],
    ] as const
  )
    .filter(([, value]) => value !== undefined)
    .map(([flag]) => flag)
  if (!o.broker && given.length > 0)
    throw new UserError(
      `${given.join(', ')} ${given.length > 1 ? 'go' : 'goes'} with --broker mqtt://HOST:PORT (a running broker's MQTT address): ` +
        'without it the run starts a broker of its own and provisions phones of its own',
    )
  if (o.api && o.consoleToken === undefined && o.consoleTokenFile === undefined)
    throw new UserError("--api needs the broker's console token: --console-token-file DIR/console.token (the broker's --data DIR)")
  if (!o.api && (o.consoleToken !== undefined || o.consoleTokenFile !== undefined))
    throw new UserError("the console token goes with --api http://HOST:PORT, the broker's HTTP address")
}

/**
 * S1, B1: a scenario whose groups sync needs phones that can (no OwnTracks profile) and the cloud's HTTP side to upload
 * to: the broker's own, or with --broker its --api. Refused before the run, naming the groups: without it their phones
 * would start and never sync, and the report would count every item lost.
 */
function checkSyncing(syncing: string[], o: RunFlags, profile: string | undefined): void {
  if (syncing.length === 0) return
  // The default scenario syncs nothing: a scenario that does came from --scenario.
  const groups = `the phones of ${syncing.join(', ')} in ${o.scenario as string} sync (data, sync, a sync or backup switch)`
  if (profile !== undefined) throw new UserError(`${groups}: OwnTracks phones (--profile owntracks) have no sync`)
  if (o.broker && !o.api)
    throw new UserError(`${groups}: with --broker it needs --api http://HOST:PORT, the broker's HTTP side its phones upload to`)
}

/**
 * `fleet run`'s flags checked together, before anything starts: the profile (OwnTracks, or none) and the running broker
 * the fleet goes to (--broker, with its credentials and console), or none for a broker of the run's own; warns when the
 * scenario's console would be skipped for want of --api and its token.
 */
function runTarget(o: RunFlags, loaded: LoadedScenario, io: Io): { profile: 'owntracks' | undefined; remote: RemoteBroker | undefined } {
  if (o.profile !== undefined && o.profile !== 'owntracks')
    throw new UserError(`--profile ${quoted(o.profile)}: the one profile is owntracks`)
  const profile = o.profile
  if (o.broker && !o.credentials && !profile)
    throw new UserError('--broker needs --credentials: the devices from `fakephone fleet provision`')
  checkRemoteFlags(o)
  const consoleToken =
    o.consoleTokenFile === undefined
      ? o.consoleToken
      : readConsoleTokenFile(o.consoleTokenFile, {
          flag: '--console-token-file: ',
          unreadable: ": give the broker's DIR/console.token",
          empty: ": give the broker's DIR/console.token",
        })
  const remote = o.broker
    ? {
        brokerUrl: o.broker,
        pushUrl: o.api ? o.api.replace(/^http/, 'ws') + '/push' : undefined,
        apiUrl: o.api,
        consoleToken,
        credentials: o.credentials ? readCredentials(o.credentials) : anonymousDevices(o.count, 'owntracks', 'fleet'),
      }
    : undefined
  // The scenario's console signs and submits through the console API: without it the run would skip it unsaid.
  const { commands, notifications } = loaded.scenario.console
  if (remote && !profile && (commands || notifications) && !(o.api && consoleToken))
    io.err("warning: the scenario's console (commands, notifications) is skipped: with --broker it needs --api and --console-token-file\n")
  checkSyncing(syncingGroups(loaded.scenario), o, profile)
  return { profile, remote }
}

interface ProvisionFlags {
  count: number
  accountPrefix: string
  accounts?: number
  data: string
  keys: string
  out: string
}

export function fleetCommand(io: Io): Command {
  const cmd = new Command('fleet').description(COMMAND_SUMMARIES.fleet.description)
  addProvisionCommand(cmd, io)
  addRunCommand(cmd, io)
  addReportCommand(cmd, io)
  return cmd
}

/** `fleet provision`: N devices registered in one transaction, their credentials in one file. */
function addProvisionCommand(cmd: Command, io: Io): void {
  cmd
    .command('provision')
    .description('register N devices in one transaction and write their credentials to one file (mode 0600)')
    .requiredOption('--count <n>', 'how many devices', positiveInt)
    .requiredOption('--account-prefix <prefix>', 'device ids are <prefix>-00001...; accounts <prefix>-owner-001...')
    .option('--accounts <n>', 'owner accounts the devices are spread over (default: one per device)', positiveInt)
    .option('--data <dir>', 'broker data directory', DEFAULT_DATA_DIR)
    .option('--keys <dir>', "the owners' keys folder (kept by the console, not the broker)", DEFAULT_KEYS_DIR)
    .option('--out <file>', 'the credentials file to write', 'fleet-credentials.json')
    .action(async (o: ProvisionFlags) => {
      const badPrefix = FleetPrefixSchema.safeParse(o.accountPrefix).error
      if (badPrefix) throw new UserError(`--account-prefix ${quoted(o.accountPrefix)}: ${badPrefix.issues[0]?.message}`)
      const started = performance.now()
      // The secrets in their file first, durably: one that exists or cannot be written refuses before a device is
      // registered whose secret would be nowhere (common/secret-file).
      const opts = {
        dataDir: o.data,
        keysDir: o.keys,
        count: o.count,
        prefix: o.accountPrefix,
        accounts: o.accounts,
        clock: recordedClock(o.data, io.clock),
      }
      const credentials = fleetCredentials(opts)
      await writeCredentialsOf(o.out, credentials, () => provision(opts, credentials), `--out ${o.out}`)
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      io.out(`Registered ${plural(o.count, 'device')} in ${seconds} s; credentials in ${o.out} (mode 0600), owner keys in ${o.keys}.\n`)
    })
}

/** `fleet run`: N phones following a scenario, here or in worker processes, and the reconciled report. */
function addRunCommand(cmd: Command, io: Io): void {
  cmd
    .command('run')
    .description(
      'run N complete phones following a scenario, here or in --workers processes; prints a reconciled report (exit 1 if any was lost)',
    )
    .requiredOption('--count <n>', 'how many phones', positiveInt)
    .option('--scenario <file>', 'a scenario file, YAML or JSON (docs/SCENARIOS.md); default: stationary phones, 30 s heartbeats')
    .option('--seed <text>', 'the same seed and scenario give the same ids, routes, battery curves and event times', '1')
    .option('--duration <duration>', 'end the run after this long (default: when its stages end, or Ctrl-C)', duration)
    .option('--broker <url>', 'a running broker (mqtt://host:port); default: one started in this process')
    .option('--credentials <file>', 'the devices to run, from `fleet provision` (with --broker)')
    .option('--api <url>', "the broker's HTTP side, http://host:port: push channel, the fleet's console and the reconciliation", httpUrl)
    .option('--console-token <token>', "the broker's console token (with --api); --console-token-file keeps it out of `ps`")
    .addOption(
      new Option('--console-token-file <file>', "the file holding the broker's console token, DIR/console.token (with --api)").conflicts(
        'consoleToken',
      ),
    )
    .option('--no-push', 'data channel only: no push channel per phone')
    .option('--work <dir>', "where the phones' data directories go (default: a temporary directory, removed after)")
    .option('--metrics-port <port>', 'Prometheus metrics at http://127.0.0.1:PORT/metrics while it runs (0: a port the OS picks)', port, 0)
    .option('--report <file>', 'also write the report as JSON to this file')
    .option(
      '--profile <name>',
      'owntracks: publish OwnTracks JSON to owntracks/USER/DEVICE on any MQTT broker (anonymous without --credentials)',
    )
    .option('--json', 'print the report as JSON instead of the summary')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'warn')
    .option(
      '--workers <k>',
      'child processes to run the phones in; auto: as the open-file limit and the cores need (README)',
      workers,
      'auto',
    )
    .option(
      '--shard <I/N>',
      "run the I-th of N deterministic slices of the fleet (every N-th phone); merge the shards' reports after",
      shard,
    )
    .option(
      '--phones-at-once <n>',
      'per process, at most this many phones coming up (until connected or failed), and as many going down, at once',
      positiveInt,
      PHONES_AT_ONCE,
    )
    .action(async (o: RunFlags) => {
      const loaded = o.scenario ? await loadScenario(o.scenario) : checkScenario({}, 'default scenario', '.')
      for (const warning of loaded.warnings) io.err(`warning: ${o.scenario}: ${warning}\n`)
      const { profile, remote } = runTarget(o, loaded, io)
      const slice = o.shard ?? WHOLE
      const here = shardSize(o.count, slice)
      // An OwnTracks phone has no push channel: one socket.
      const socketsPerPhone = o.push && !profile ? 2 : 1
      const room = (io.connectionRoom ?? connectionRoom)()
      let k = o.workers
      if (k === 'auto') {
        const auto = autoWorkers(here, socketsPerPhone, room)
        io.err(`${auto.why}\n`)
        k = auto.workers
      }
      const short = remote ? undefined : brokerRoomWarning(here, socketsPerPhone, k, room)
      if (short) io.err(`${short}\n`)
      // Human-readable on a terminal, as every command's log; JSON lines otherwise and with --json. On stderr either way,
      // workers' too: stdout is the report (JSON lines there made `fleet run --json > report.json` unreadable).
      const prettyLog = io.tty === true && !o.json
      const log = createLogger({ level: o.logLevel, pretty: prettyLog, destination: io.logTo, jsonFd: 2 })
      const work = o.work ?? (await mkdtemp(join(tmpdir(), 'fakephone-fleet-')))
      // The live line is drawn in place, without a newline: cleared once the run is over, so the report (or an error)
      // starts on a line of its own.
      let drawn = false
      const clearLiveLine = (): void => {
        if (drawn) io.out('\r\x1b[K')
        drawn = false
      }
      try {
        const report = await runFleet({
          count: o.count,
          shard: slice,
          workers: k,
          logLevel: o.logLevel,
          loaded,
          seed: o.seed,
          durationMs: o.duration,
          push: o.push,
          clock: io.clock,
          log,
          prettyLog,
          signal: io.signal,
          workDir: work,
          remote,
          tick: io.tty
            ? (p) => {
                drawn = true
                io.out(liveLine(p))
              }
            : undefined,
          metricsPort: o.metricsPort,
          profile,
          phonesAtOnce: o.phonesAtOnce,
          serving: (url) => io.err(`metrics: ${url}\n`),
          // On a terminal the live line goes on while the report waits; elsewhere one line says so (not with --json).
          waiting: io.tty || o.json ? undefined : (line) => io.err(`${line}\n`),
        })
        clearLiveLine()
        await putReport(io, report, { json: o.json, file: o.report })
      } finally {
        clearLiveLine()
        if (!o.work) await rm(work, { recursive: true, force: true, maxRetries: 3 })
      }
    })
}

/** `fleet report merge`: shard reports joined into one. */
function addReportCommand(cmd: Command, io: Io): void {
  cmd
    .command('report')
    .description("fleet reports: `merge` joins shards' reports")
    .command('merge')
    .description(
      "join the reports of one fleet run's shards (`fleet run --shard I/N --report FILE`) into one; " +
        'exit 1 when it lost anything, 3 when shards are missing',
    )
    .argument('<reports...>', 'report files (JSON)')
    .option('--out <file>', 'also write the merged report here (JSON); without it, nothing is written')
    .option('--json', 'print the merged report as JSON instead of the summary (to stdout, with or without --out)')
    .action(async (files: string[], o: { out?: string; json?: boolean }) => {
      const merged = mergeReports(await Promise.all(files.map(readReport)), files)
      await putReport(io, merged, { json: o.json, file: o.out })
    })
}
