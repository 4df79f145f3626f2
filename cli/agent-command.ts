/** `fakephone agent`: one fake phone (`fakephone phone`, its user's thumbs, is phone-command.ts). */
import { Command, Option } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import type { Server } from 'node:net'
import type { Agent } from '../agent/agent.js'
import { serveControl } from '../agent/control.js'
import { AGENT_CONFIG, AgentConfigSchema, channelUrls, NO_PUSH_WHY, type AgentConfig } from '../agent/config.js'
import { GpsdSource } from '../agent/gpsd.js'
import { DEMO_ROUTE, FixedSource, RouteSource, readGpx, type LocationSource } from '../agent/location.js'
import { deviceSecretFile, readSecretFile, type SecretError } from '../agent/secret.js'
import { ConfigError, loadConfigWithOrigins } from '../common/config.js'
import type { Logger } from '../common/log.js'
import { readPublicKey } from '../common/signing.js'
import { SmallFileError } from '../common/small-file.js'
import type { KeyObject } from 'node:crypto'
import { PhoneClock } from '../common/cloud-time.js'
import { seedDataCommand } from './seed-data-command.js'
import { givenFlags, type FlagKey } from './config-flags.js'
import { serveUntilAborted } from './daemon.js'
import { lockDataDir, type DataDirLock } from '../common/data-lock.js'
import type { Io } from './io.js'
import { logger } from './logger.js'
import { sayConnection, startUpLines } from './agent-screen.js'
import { besideConfig } from './config-paths.js'
import { missingOwnerKey, openToAll } from './config-files.js'
import { sayConfigWarnings } from './config-warnings.js'
import { checked, duration, fraction, hostPort, latLon, publicKeyFile } from './options.js'
import { forTerminal } from '../common/terminal-text.js'

export interface RunningAgent {
  agent: Agent
  stop(): Promise<void>
}

interface Location {
  source: LocationSource
  stop(): void
}

function location(c: AgentConfig, io: Io, log: Logger): Location {
  const spec = c.location
  switch (spec.kind) {
    case 'fixed':
      return { source: new FixedSource(spec.point), stop: () => {} }
    case 'gpsd': {
      const gpsd = new GpsdSource({
        host: spec.host,
        port: spec.port,
        clock: io.clock,
        log: log.child({ component: 'gpsd' }),
        maxAgeMs: c.gpsdMaxAge,
      })
      gpsd.start()
      return { source: gpsd, stop: () => gpsd.stop() }
    }
    default:
      try {
        const [points, gpx] = spec.kind === 'gpx' ? [readGpx(spec.file), spec.file] : [DEMO_ROUTE, null]
        return { source: new RouteSource(points, c.speed, io.clock.now(), undefined, gpx), stop: () => {} }
      } catch (err) {
        throw unusable((err as Error).message)
      }
  }
}

/**
 * A file the agent's config names that it cannot use (its secret, its owner key, its GPX track), said in one line (escaped where it
 * was built): a config the daemon cannot use, exit 78 (cli/main.ts).
 */
const unusable = (said: string): ConfigError => new ConfigError('agent', [said], said)

/** Starts one agent with its control socket; used by `agent` and by `demo`. */
export async function startAgent(c: AgentConfig, io: Io, log: Logger): Promise<RunningAgent> {
  // Read again by the phone when the broker refuses it (F1, X1): a device added anew gets its new secret there.
  // A secret or owner key the config names that cannot be used is a config the daemon cannot use (exit 78, cli/main.ts).
  let secretFile: string
  let secret: string
  try {
    secretFile = deviceSecretFile(c, io.env)
    secret = readSecretFile(secretFile)
  } catch (err) {
    throw unusable((err as SecretError).message)
  }
  // A secret file every user can read starts the phone (as before) with a warning, in `config check`'s words; a systemd
  // credential is the service manager's to guard.
  const open = c.secretFile === undefined ? undefined : openToAll(secretFile)
  if (open) sayConfigWarnings(io, [open], log)
  let ownerKey: KeyObject | undefined
  try {
    ownerKey = c.ownerKey === undefined ? undefined : readPublicKey(c.ownerKey)
  } catch (err) {
    // The small-file reader's refusal names the file already, escaped; Node's words and the key checks are escaped here.
    if (err instanceof SmallFileError) throw unusable(`cannot read the owner key: ${err.message}`)
    // A missing one as `config check` says it: the file of a similar name beside it, and where owner keys come from.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw unusable(`cannot read the owner key ${forTerminal(missingOwnerKey(c.ownerKey as string))}`)
    throw unusable(
      `cannot read the owner key ${forTerminal(c.ownerKey as string)}: ${forTerminal((err as Error).message)}; ` +
        "give it the owner's public key (ACCOUNT.pub of `fakephone device add`), readable by the agent's user",
    )
  }
  if (!ownerKey) log.warn('no owner key (--owner-key, or "ownerKey" in its --config file): this phone will refuse every remote command')
  // One phone per data directory: a second would take this one's MQTT session over and over and share its journal.
  const lock = lockDataDir(c.dataDir, log, 'agent')
  try {
    return await runAgent(c, io, log, { secret, secretFile }, ownerKey, lock)
  } catch (err) {
    lock.release()
    throw err
  }
}

async function runAgent(
  c: AgentConfig,
  io: Io,
  log: Logger,
  secret: { secret: string; secretFile: string },
  ownerKey: KeyObject | undefined,
  lock: DataDirLock,
): Promise<RunningAgent> {
  // One time for the whole system: the phone stamps with the cloud's time (learnt over MQTT, kept in its data directory).
  const clock = new PhoneClock(c.dataDir, io.clock, log)
  const where = location(c, { ...io, clock }, log)
  const { pushUrl, cloudUrl } = channelUrls(c)
  if (pushUrl === undefined) log.warn(`no push channel (and, without --cloud, no cloud transfers): ${NO_PUSH_WHY}`)
  // The phone's own code loads here, when a phone runs: `fakephone phone ...` only talks to one over its control socket.
  const { Agent } = await import('../agent/agent.js')
  const agent = new Agent({
    id: c.id,
    ...secret,
    brokerUrl: c.broker,
    dataDir: c.dataDir,
    clock,
    followCloud: (now, exact) => clock.follow(now, exact),
    log,
    location: where.source,
    heartbeatMs: c.interval,
    jitter: c.jitter,
    ownerKey,
    pushUrl,
    cloudUrl,
    systemProfile: true,
  })
  await agent.start()
  const control: Server = await serveControl(agent, c.dataDir, log)
  log.info({ id: c.id, broker: c.broker, dataDir: c.dataDir, location: c.location.kind }, 'agent started')
  return {
    agent,
    stop: async () => {
      control.close()
      where.stop()
      await agent.stop()
      lock.release()
    },
  }
}

/** Commander option → agent config key; the location flags all set `location`. */
const AGENT_FLAGS: Readonly<Record<string, FlagKey>> = {
  id: 'id',
  secretFile: 'secretFile',
  broker: 'broker',
  push: 'push',
  cloud: 'cloud',
  data: 'dataDir',
  gpx: { key: 'location', value: (v) => `gpx:${String(v)}` },
  fixed: { key: 'location', value: (v) => `fixed:${String(v)}` },
  gpsd: { key: 'location', value: (v) => (v === true ? 'gpsd' : `gpsd:${String(v)}`) },
  speed: 'speed',
  gpsdMaxAge: 'gpsdMaxAge',
  interval: 'interval',
  jitter: 'jitter',
  ownerKey: 'ownerKey',
  logLevel: 'logLevel',
}

export function agentCommand(io: Io): Command {
  const d = AgentConfigSchema.omit({ id: true }).parse({})
  const cmd: Command = new Command('agent')
    .description(COMMAND_SUMMARIES.agent.description)
    .option('--config <file>', 'JSON config file; FAKEPHONE_AGENT_* variables override it, flags override both')
    .option('--id <id>', 'device id (as registered with `fakephone device add`)')
    .option('--secret-file <file>', 'file holding the device secret (default: the systemd credential device-secret)')
    .option('--broker <url>', 'mqtt://host:port or ws://host:port/mqtt', d.broker)
    .option(
      '--push <url>',
      "the push channel, ws://host:port/push (default: the ws:// broker's host and port; none with an mqtt:// broker)",
    )
    .option(
      '--cloud <url>',
      "the cloud's HTTP side for sync, backup and drive, http://host:port (default: the push URL's host and port; none without one)",
    )
    .option('--data <dir>', "the phone's data directory (settings, control socket)", d.dataDir)
    .addOption(new Option('--gpx <file>', 'walk the track of a GPX file instead of the built-in route').conflicts(['fixed', 'gpsd']))
    .addOption(new Option('--fixed <lat,lon>', 'stay at one point').argParser(checked(latLon)).conflicts('gpsd'))
    .option('--gpsd [host:port]', 'where a real GPS receiver says, through gpsd (default 127.0.0.1:2947)', checked(hostPort))
    .option('--gpsd-max-age <duration>', 'a gpsd fix older than this is no fix', duration, d.gpsdMaxAge)
    .option('--speed <m/s>', 'walking speed along the route', Number, d.speed)
    .option('--interval <duration>', 'time between heartbeats, e.g. 30s', duration, d.interval)
    .option('--jitter <fraction>', 'heartbeat interval varies by ± this fraction', fraction, d.jitter)
    .option(
      '--owner-key <file>',
      "the owner's public key, ACCOUNT.pub (printed by `fakephone device add`; never the private ACCOUNT.key); remote commands need it",
      publicKeyFile,
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', d.logLevel)
    .action(async (o: { config?: string }) => {
      const { config, notes } = await loadConfigWithOrigins(AGENT_CONFIG, {
        file: o.config,
        env: io.env,
        flags: givenFlags(cmd, AGENT_FLAGS),
      })
      const log = logger(io, config.logLevel).child({ module: 'agent', device: config.id })
      // Said before it starts, on stderr as `config check` says it and in the log: `"interval": 30` runs, a heartbeat every
      // 30 ms, but it was not 30 seconds (F1).
      sayConfigWarnings(io, notes, log)
      // On a terminal, as the log is human-readable there (cli/logger.ts): what starts, then whether it connected.
      if (io.tty === true) io.err(startUpLines(config))
      const running = await startAgent(config, io, log).catch((err: unknown) => {
        // A secret or owner key missing where a relative path in the config file points: said as `config check` says it.
        const from = o.config
        if (!(err instanceof ConfigError) || from === undefined) throw err
        const hint = [config.secretFile, config.ownerKey].map((f) => (f ? besideConfig(f, from) : '')).find(Boolean)
        throw hint ? unusable(`${err.message}${hint}`) : err
      })
      const quiet = io.tty === true ? sayConnection(io, running.agent, config) : () => {}
      await serveUntilAborted(io, log, `phone ${config.id} running`, () => {
        quiet()
        return running.stop()
      })
    })
  cmd.addCommand(seedDataCommand(io, () => cmd.opts<{ data: string }>().data))
  return cmd
}
