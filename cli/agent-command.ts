/** `fakephone agent` (one fake phone) and `fakephone phone` (its user's thumbs). */
import { Command, Option } from 'commander'
import type { Server } from 'node:net'
import type { Agent } from '../agent/agent.js'
import { sendControl, serveControl, type ControlRequest } from '../agent/control.js'
import { AGENT_CONFIG, AgentConfigSchema, channelUrls, type AgentConfig } from '../agent/config.js'
import { GpsdSource } from '../agent/gpsd.js'
import { DEMO_ROUTE, FixedSource, RouteSource, readGpx, type LocationSource } from '../agent/location.js'
import { readDeviceSecret } from '../agent/secret.js'
import { loadConfig } from '../common/config.js'
import { NetworkSchema } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import { readPublicKey } from '../common/signing.js'
import { SmallFileError } from '../common/small-file.js'
import type { KeyObject } from 'node:crypto'
import { PhoneClock } from '../common/cloud-time.js'
import { addDrivePhoneCommands } from './drive-commands.js'
import { addBackupPhoneCommands } from './backup-commands.js'
import { addFrameworkPhoneCommands } from './framework-commands.js'
import { addSyncPhoneCommands } from './sync-commands.js'
import { addPhoneDataCommands } from './phone-data-commands.js'
import { addPhoneExportCommand } from './transfer/transfer-commands.js'
import { seedDataCommand } from './seed-data-command.js'
import { renderFrameworkStatus } from './framework-render.js'
import { locationSourceText } from './render.js'
import { givenFlags, type FlagKey } from './config-flags.js'
import { serveUntilAborted } from './daemon.js'
import { lockDataDir, type DataDirLock } from '../common/data-lock.js'
import { UserError, type Io } from './io.js'
import { logger } from './logger.js'
import { checked, duration, fraction, hostPort, latLon, onOff, publicKeyFile } from './options.js'
import { forTerminal, linesForTerminal, quoted } from '../common/terminal-text.js'

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
        throw new UserError((err as Error).message)
      }
  }
}

/** Starts one agent with its control socket; used by `agent` and by `demo`. */
export async function startAgent(c: AgentConfig, io: Io, log: Logger): Promise<RunningAgent> {
  const secret = await readDeviceSecret(c, io.env)
  let ownerKey: KeyObject | undefined
  try {
    ownerKey = c.ownerKey === undefined ? undefined : readPublicKey(c.ownerKey)
  } catch (err) {
    // The small-file reader's refusal names the file already, escaped; Node's words and the key checks are escaped here.
    if (err instanceof SmallFileError) throw new UserError(`cannot read the owner key: ${err.message}`)
    throw new UserError(`cannot read the owner key ${forTerminal(c.ownerKey as string)}: ${forTerminal((err as Error).message)}`)
  }
  if (!ownerKey) log.warn('no owner key (--owner-key, or "ownerKey" in its --config file): this phone will refuse every remote command')
  // One phone per data directory: a second would take this one's MQTT session over and over and share its journal.
  const lock = lockDataDir(c.dataDir, log, 'agent')
  try {
    return await runAgent(c, io, log, secret, ownerKey, lock)
  } catch (err) {
    lock.release()
    throw err
  }
}

async function runAgent(
  c: AgentConfig,
  io: Io,
  log: Logger,
  secret: string,
  ownerKey: KeyObject | undefined,
  lock: DataDirLock,
): Promise<RunningAgent> {
  // One time for the whole system: the phone stamps with the cloud's time (learnt over MQTT, kept in its data directory).
  const clock = new PhoneClock(c.dataDir, io.clock)
  const where = location(c, { ...io, clock }, log)
  const { pushUrl, cloudUrl } = channelUrls(c)
  if (pushUrl === undefined)
    log.warn(
      'no push channel (and, without --cloud, no cloud transfers): an mqtt:// broker URL does not say where the cloud listens; ' +
        'give --push ws://HOST:PORT/push or a ws://HOST:PORT/mqtt broker',
    )
  // The phone's own code loads here, when a phone runs: `fakephone phone ...` only talks to one over its control socket.
  const { Agent } = await import('../agent/agent.js')
  const agent = new Agent({
    id: c.id,
    secret,
    brokerUrl: c.broker,
    dataDir: c.dataDir,
    clock,
    followCloud: (now) => clock.follow(now),
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

/** `phone status`'s data channel while the broker refuses the device: what to check (the agent retries meanwhile). */
const REFUSED =
  'the broker refuses this device (an unknown device id or a wrong secret): check the id (`fakephone device list` on ' +
  'the broker) and the secret file; it keeps retrying'

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
    .description('run one fake phone')
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
      const config = await loadConfig(AGENT_CONFIG, { file: o.config, env: io.env, flags: givenFlags(cmd, AGENT_FLAGS) })
      const log = logger(io, config.logLevel).child({ module: 'agent', device: config.id })
      const running = await startAgent(config, io, log)
      await serveUntilAborted(io, log, `phone ${config.id} running`, () => running.stop())
    })
  cmd.addCommand(seedDataCommand(io, () => cmd.opts<{ data: string }>().data))
  return cmd
}

export function phoneCommand(io: Io): Command {
  const cmd = new Command('phone')
    .description(
      "act as the phone's user on a running agent: flip switches, change network, show status, use its photos, contacts, notes " +
        'and recordings',
    )
    .option('--data <dir>', "the phone's data directory", './phone')
    .option('--json', 'machine-readable output')
  const send = async (req: ControlRequest): Promise<void> => {
    const o = cmd.opts<{ data: string; json?: boolean }>()
    const status = await sendControl(o.data, req)
    if (o.json) return io.out(JSON.stringify(status) + '\n')
    // The lock message and notification titles come from others: shown terminal-safe.
    const lock = status.lock
    io.out(
      linesForTerminal(
        [
          `device        ${status.id}`,
          `data channel  ${status.dataChannel}${status.dataChannelRefused ? `: ${REFUSED}` : ''}`,
          `cloud service ${status.cloudService ? 'on' : 'off'}`,
          `Find Device   ${status.findDevice ? 'on' : 'off'}`,
          `network       ${status.network}`,
          `heartbeats    ${status.heartbeatsSent} sent this run`,
          ...(status.location === null ? [] : [`location      ${locationSourceText(status.location)}`]),
          `lost mode     ${status.lostMode ? 'ON' : 'off'}`,
          `screen        ${lock === null ? 'unlocked' : `LOCKED: ${quoted(lock.message)} -- call ${forTerminal(lock.phone)}`}`,
          ...(status.ringingUntil === null ? [] : [`ringing       until ${new Date(status.ringingUntil).toISOString()}`]),
        ].join('\n') +
          '\n' +
          renderFrameworkStatus(status.framework),
      ),
    )
  }
  cmd
    .command('status')
    .description('show the phone')
    .action(() => send({ op: 'status' }))
  cmd
    .command('find-device <on|off>')
    .description('switch Find Device (off: no more heartbeats, the map position goes offline)')
    .action((v: string) => send({ op: 'switch', name: 'findDevice', on: onOff(v) }))
  cmd
    .command('cloud-service <on|off>')
    .description('switch the whole cloud service')
    .action((v: string) => send({ op: 'switch', name: 'cloudService', on: onOff(v) }))
  cmd
    .command('unlock <pin>')
    .description('unlock a screen locked remotely, with the PIN (default 1234)')
    .action((pin: string) => send({ op: 'unlock', pin }))
  cmd
    .command('network <wifi|mobile|none>')
    .description('what the phone is connected through')
    .action((v: string) => {
      const network = NetworkSchema.safeParse(v)
      if (!network.success) throw new UserError('network must be wifi, mobile or none')
      return send({ op: 'network', network: network.data })
    })
  addFrameworkPhoneCommands(cmd, io, send)
  addDrivePhoneCommands(cmd, io)
  addSyncPhoneCommands(cmd, io)
  addPhoneDataCommands(cmd, io)
  addBackupPhoneCommands(cmd, io)
  addPhoneExportCommand(cmd, io)
  return cmd
}
