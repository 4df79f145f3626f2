/** `fakephone broker`: the cloud side (`fakephone device ...` is device-command.ts). */
import { Command, Option } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { BROKER_CONFIG, BrokerConfigSchema, brokerOptions } from '../broker/config.js'
import { CloudBroker } from '../broker/server.js'
import { ConfigError, loadConfigWithOrigins } from '../common/config.js'
import { FakephoneError } from '../common/errors.js'
import { ConsoleTokenError } from '../broker/console-token.js'
import { persistedSimulatedClock } from '../common/cloud-time.js'
import { storageFailure } from '../common/storage-errors.js'
import { givenFlags } from './config-flags.js'
import { serveUntilAborted } from './daemon.js'
import { UserError, type Io } from './io.js'
import { logger } from './logger.js'
import { sayConfigWarnings } from './config-warnings.js'
import { duration, port, positiveInt } from './options.js'
import { urlHost } from './web/server.js'

/** Commander option → broker config key. */
const BROKER_FLAGS = {
  data: 'dataDir',
  host: 'host',
  mqttPort: 'mqttPort',
  httpPort: 'httpPort',
  maxPacketBytes: 'maxPacketBytes',
  serviceNotices: 'serviceNotices',
  simulatedTime: 'simulatedTime',
  freeQuota: 'freeQuota',
  backupCron: 'backupCron',
  logLevel: 'logLevel',
}

export function brokerCommand(io: Io): Command {
  const d = BrokerConfigSchema.parse({})
  const cmd: Command = new Command('broker')
    .description(COMMAND_SUMMARIES.broker.description)
    .option('--config <file>', 'JSON config file; FAKEPHONE_BROKER_* variables override it, flags override both')
    .option('--data <dir>', 'data directory (database, console token)', d.dataDir)
    .option('--host <address>', 'address to listen on (use 0.0.0.0 to serve a network)', d.host)
    .option('--mqtt-port <port>', 'MQTT over TCP', port, d.mqttPort)
    .option(
      '--http-port <port>',
      'HTTP: MQTT over WebSocket at /mqtt, the push channel at /push, console API at /api, health for monitors at /health, ' +
        'Prometheus metrics at /metrics',
      port,
      d.httpPort,
    )
    .option('--max-packet-bytes <n>', 'largest MQTT packet a client may send', positiveInt, d.maxPacketBytes)
    .addOption(
      new Option('--service-notices <duration>', 'queue a weather warning or a system-update reminder for every device this often, e.g. 1h')
        .argParser(duration)
        .default(d.serviceNotices, 'never'),
    )
    .option(
      '--simulated-time',
      'run the cloud on simulated time: `fakephone console clock advance 73h` jumps it forward, running every rule that falls due',
    )
    .option('--free-quota <size>', 'what a free account may store, e.g. 500MB (default: 5GB)')
    .option('--backup-cron <expression>', 'when the cloud plans backups (B1), a cron expression in UTC', d.backupCron)
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', d.logLevel)
    .action(async (o: { config?: string }) => {
      const { config, notes } = await loadConfigWithOrigins(BROKER_CONFIG, {
        file: o.config,
        env: io.env,
        flags: givenFlags(cmd, BROKER_FLAGS),
      })
      const log = logger(io, config.logLevel).child({ module: 'broker' })
      sayConfigWarnings(io, notes, log)
      const clock = config.simulatedTime ? persistedSimulatedClock(config.dataDir, io.clock) : io.clock
      if (config.simulatedTime) log.warn('simulated time: the cloud clock moves with `fakephone console clock advance`')
      const broker = new CloudBroker(brokerOptions(config), clock, log)
      const ports = await startOrExplain(broker)
      // With --mqtt-port 0 or --http-port 0 the ports are known only now: one line to copy, beside the log's fields.
      const host = urlHost(config.host)
      io.err(
        `Broker on mqtt://${host}:${ports.mqttPort} and http://${host}:${ports.httpPort}; its console: ` +
          `fakephone console --api http://${host}:${ports.httpPort} --data ${config.dataDir} …\n`,
      )
      await serveUntilAborted(io, log, `listening on ${config.host}, MQTT ${ports.mqttPort}, HTTP ${ports.httpPort}`, () => broker.stop())
    })
  return cmd
}

/** Start-up failures a person can fix (a port in use, a full or read-only disk) are said in one line. */
export async function startOrExplain(broker: CloudBroker): Promise<{ mqttPort: number; httpPort: number }> {
  try {
    return await broker.start()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    await broker.stop()
    // A console token the broker cannot use is a file of its config's data directory to fix (the message says how): exit
    // 78, a config the daemon cannot use (cli/main.ts), which systemd does not start again every 5 s.
    if (err instanceof ConsoleTokenError) {
      const said = `cannot start the broker: ${err.message}`
      throw new ConfigError('broker', [said], said)
    }
    if (e.code === 'EADDRINUSE') throw new UserError(`${e.message}: another broker running? pick other ports with --mqtt-port/--http-port`)
    // A data directory on a full or read-only disk (a Pi's SD card remounted read-only): Node's words alone said no way out.
    const storage = storageFailure(err)
    if (storage)
      throw new UserError(
        `cannot start the broker: ${storage}: ${e.message}; ` +
          'its data directory needs a disk it can write: make room, mount it read-write, or give another --data',
      )
    // Its code is kept: for one a restart cannot mend (a newer fakephone's database) the daemon exits EX_CONFIG (main.ts).
    if (err instanceof FakephoneError) throw new FakephoneError(err.code, `cannot start the broker: ${err.message}`)
    throw new UserError(`cannot start the broker: ${e.message}`)
  }
}
