/** `fakephone agent` (one fake phone) and `fakephone phone` (its user's thumbs). */
import { Command, Option } from 'commander'
import { readFile } from 'node:fs/promises'
import type { Server } from 'node:net'
import { Agent } from '../agent/agent.js'
import { sendControl, serveControl, type ControlRequest } from '../agent/control.js'
import { defaultPushUrl } from '../agent/push-channel.js'
import { DEMO_ROUTE, FixedSource, RouteSource, readGpx, type LocationSource, type Point } from '../agent/location.js'
import { DeviceIdSchema, NetworkSchema } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import { addFrameworkPhoneCommands, pushUrl } from './framework-commands.js'
import { renderFrameworkStatus } from './framework-render.js'
import { logger, untilAborted, UserError, type Io } from './io.js'
import { duration, fraction, latLon, onOff } from './options.js'

export interface AgentCliOptions {
  id: string
  secretFile: string
  broker: string
  /** The push channel (X1); by default the broker host's HTTP port. */
  push?: string
  data: string
  gpx?: string
  fixed?: Point
  speed: number
  interval: number
  jitter: number
}

export interface RunningAgent {
  agent: Agent
  stop(): Promise<void>
}

function locationSource(o: AgentCliOptions, now: number): LocationSource {
  if (o.fixed) return new FixedSource(o.fixed)
  const points = o.gpx ? readGpx(o.gpx) : DEMO_ROUTE
  return new RouteSource(points, o.speed, now)
}

/** Starts one agent with its control socket; used by `agent` and by `demo`. */
export async function startAgent(o: AgentCliOptions, io: Io, log: Logger): Promise<RunningAgent> {
  const id = DeviceIdSchema.safeParse(o.id)
  if (!id.success) throw new UserError(`invalid device id "${o.id}"`)
  let secret: string
  try {
    secret = (await readFile(o.secretFile, 'utf8')).trim()
  } catch (err) {
    throw new UserError(`cannot read the secret file ${o.secretFile}: ${(err as NodeJS.ErrnoException).code}`)
  }
  let location: LocationSource
  try {
    location = locationSource(o, io.clock.now())
  } catch (err) {
    throw new UserError((err as Error).message)
  }
  const agent = new Agent({
    id: o.id,
    secret,
    brokerUrl: o.broker,
    dataDir: o.data,
    clock: io.clock,
    log,
    location,
    heartbeatMs: o.interval,
    jitter: o.jitter,
    pushUrl: o.push ?? defaultPushUrl(o.broker),
  })
  await agent.start()
  const control: Server = await serveControl(agent, o.data, log)
  log.info({ id: o.id, broker: o.broker, dataDir: o.data }, 'agent started')
  return {
    agent,
    stop: async () => {
      control.close()
      await agent.stop()
    },
  }
}

export function agentCommand(io: Io): Command {
  return new Command('agent')
    .description('run one fake phone')
    .requiredOption('--id <id>', 'device id (as registered with `fakephone device add`)')
    .requiredOption('--secret-file <file>', 'file holding the device secret')
    .option('--broker <url>', 'mqtt://host:port or ws://host:port/mqtt', 'mqtt://127.0.0.1:1883')
    .option('--push <url>', "the push channel, ws://host:port/push (default: the broker host's port 8080)", pushUrl)
    .option('--data <dir>', "the phone's data directory (settings, control socket)", './phone')
    .addOption(new Option('--gpx <file>', 'walk the track of a GPX file instead of the built-in route').conflicts('fixed'))
    .option('--fixed <lat,lon>', 'stay at one point', latLon)
    .option('--speed <m/s>', 'walking speed along the route', Number, 1.4)
    .option('--interval <duration>', 'time between heartbeats, e.g. 30s', duration, 30_000)
    .option('--jitter <fraction>', 'heartbeat interval varies by ± this fraction', fraction, 0.1)
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .action(async (o: AgentCliOptions & { logLevel: string }) => {
      const running = await startAgent(o, io, logger(io, o.logLevel).child({ module: 'agent', device: o.id }))
      await untilAborted(io.signal)
      await running.stop()
    })
}

export function phoneCommand(io: Io): Command {
  const cmd = new Command('phone')
    .description("act as the phone's user on a running agent: flip switches, change network, show status")
    .option('--data <dir>', "the phone's data directory", './phone')
    .option('--json', 'machine-readable output')
  const send = async (req: ControlRequest): Promise<void> => {
    const o = cmd.opts<{ data: string; json?: boolean }>()
    const status = await sendControl(o.data, req)
    if (o.json) return io.out(JSON.stringify(status) + '\n')
    io.out(
      [
        `device        ${status.id}`,
        `data channel  ${status.dataChannel}`,
        `cloud service ${status.cloudService ? 'on' : 'off'}`,
        `Find Device   ${status.findDevice ? 'on' : 'off'}`,
        `network       ${status.network}`,
        `heartbeats    ${status.heartbeatsSent} sent this run`,
      ].join('\n') + '\n' + renderFrameworkStatus(status.framework),
    )
  }
  cmd.command('status').description('show the phone').action(() => send({ op: 'status' }))
  cmd
    .command('find-device <on|off>')
    .description('switch Find Device (off: no more heartbeats, the map position goes offline)')
    .action((v: string) => send({ op: 'switch', name: 'findDevice', on: onOff(v) }))
  cmd
    .command('cloud-service <on|off>')
    .description('switch the whole cloud service')
    .action((v: string) => send({ op: 'switch', name: 'cloudService', on: onOff(v) }))
  cmd
    .command('network <wifi|mobile|none>')
    .description('what the phone is connected through')
    .action((v: string) => {
      const network = NetworkSchema.safeParse(v)
      if (!network.success) throw new UserError('network must be wifi, mobile or none')
      return send({ op: 'network', network: network.data })
    })
  addFrameworkPhoneCommands(cmd, io, send)
  return cmd
}
