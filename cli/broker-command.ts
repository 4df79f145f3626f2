/** `fakephone broker` and `fakephone device ...`: the cloud side. */
import { Command } from 'commander'
import { writeFile } from 'node:fs/promises'
import { openDb } from '../broker/db.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import { BROKER_CONFIG, BrokerConfigSchema, brokerOptions } from '../broker/config.js'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { loadConfig } from '../common/config.js'
import { formatAge, type Clock } from '../common/clock.js'
import { persistedSimulatedClock, recordedClock } from '../common/cloud-time.js'
import { OwnerKeys } from '../common/signing.js'
import { givenFlags } from './config-flags.js'
import { serveUntilAborted } from './daemon.js'
import { logger, UserError, type Io } from './io.js'
import { duration, port, positiveInt } from './options.js'
import { table } from './render.js'

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
    .description('run the cloud: MQTT over TCP and WebSocket, the console API and the embedded database')
    .option('--config <file>', 'JSON config file; FAKEPHONE_BROKER_* variables override it, flags override both')
    .option('--data <dir>', 'data directory (database, console token)', d.dataDir)
    .option('--host <address>', 'address to listen on (use 0.0.0.0 to serve a network)', d.host)
    .option('--mqtt-port <port>', 'MQTT over TCP', port, d.mqttPort)
    .option('--http-port <port>', 'HTTP: MQTT over WebSocket at /mqtt, the push channel at /push, console API at /api', port, d.httpPort)
    .option('--max-packet-bytes <n>', 'largest MQTT packet a client may send', positiveInt, d.maxPacketBytes)
    .option(
      '--service-notices <duration>',
      'queue a weather warning or a system-update reminder for every device this often, e.g. 1h (default: never)',
      duration,
      d.serviceNotices,
    )
    .option(
      '--simulated-time',
      'run the cloud on simulated time: `fakephone console clock advance 73h` jumps it forward, running every rule that falls due',
    )
    .option('--free-quota <size>', 'what a free account may store, e.g. 500MB (default 5GB)')
    .option('--backup-cron <expression>', 'when the cloud plans backups (B1), a cron expression in UTC', d.backupCron)
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', d.logLevel)
    .action(async (o: { config?: string }) => {
      const config = await loadConfig(BROKER_CONFIG, { file: o.config, env: io.env, flags: givenFlags(cmd, BROKER_FLAGS) })
      const log = logger(io, config.logLevel).child({ module: 'broker' })
      const clock = config.simulatedTime ? persistedSimulatedClock(config.dataDir, io.clock) : io.clock
      if (config.simulatedTime) log.warn('simulated time: the cloud clock moves with `fakephone console clock advance`')
      const broker = new CloudBroker(brokerOptions(config), clock, log)
      const ports = await startOrExplain(broker)
      await serveUntilAborted(io, log, `listening on ${config.host}, MQTT ${ports.mqttPort}, HTTP ${ports.httpPort}`, () => broker.stop())
    })
  return cmd
}

/** Start-up failures a person can fix (a port in use) are said in one line. */
export async function startOrExplain(broker: CloudBroker): Promise<{ mqttPort: number; httpPort: number }> {
  try {
    return await broker.start()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    await broker.stop()
    throw new UserError(
      e.code === 'EADDRINUSE'
        ? `${e.message}: another broker running? pick other ports with --mqtt-port/--http-port`
        : `cannot start the broker: ${e.message}`,
    )
  }
}

/** Opens the data directory's registry, stamping with the cloud's time as recorded there (`clock`). */
async function withRegistry<T>(dataDir: string, clock: Clock, fn: (r: DeviceRegistry) => Promise<T> | T): Promise<T> {
  const db = openDb(dataDir)
  try {
    return await fn(new DeviceRegistry(db, () => clock.now()))
  } finally {
    db.close()
  }
}

/** Where the console keeps owner keys unless told otherwise. */
export const DEFAULT_KEYS_DIR = './keys'

export function deviceCommand(io: Io): Command {
  const cmd = new Command('device').description('register, list and remove devices (works on the data directory, running broker or not)')
  cmd
    .command('add <id>')
    .description('register a device and print its credentials (the secret is shown once)')
    .option('--account <name>', 'owner account', 'default')
    .option('--data <dir>', 'broker data directory', DEFAULT_BROKER_OPTIONS.dataDir)
    .option('--secret-out <file>', 'write the secret to this file (mode 0600) instead of printing it')
    .option('--keys <dir>', "the owner's keys folder (kept by the console, not the broker)", DEFAULT_KEYS_DIR)
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { account: string; data: string; secretOut?: string; keys: string; json?: boolean }) => {
      const { device, secret } = await withRegistry(o.data, recordedClock(o.data, io.clock), (r) => r.add(id, o.account))
      // Provisioning: the owner's key pair (made once per account) and the device's receipt key.
      const keys = new OwnerKeys(o.keys)
      keys.signingKey(device.account)
      keys.rememberDevice(device.id, secret)
      const ownerKeyFile = keys.ownerKeyFile(device.account)
      if (o.secretOut) await writeFile(o.secretOut, secret + '\n', { mode: 0o600, flag: 'wx' })
      if (o.json)
        return io.out(JSON.stringify({ ...device, ownerKeyFile, ...(o.secretOut ? { secretFile: o.secretOut } : { secret }) }) + '\n')
      io.out(`Registered device ${device.id} (account ${device.account}).\n`)
      io.out(
        o.secretOut
          ? `Secret written to ${o.secretOut}; it is not stored anywhere else.\n`
          : `Secret (shown once, stored only as a hash): ${secret}\n`,
      )
      io.out(`Owner public key: ${ownerKeyFile} -- give it to the agent with --owner-key so it obeys only you.\n`)
    })
  cmd
    .command('list')
    .description('list registered devices')
    .option('--data <dir>', 'broker data directory', DEFAULT_BROKER_OPTIONS.dataDir)
    .option('--json', 'machine-readable output')
    .action(async (o: { data: string; json?: boolean }) => {
      const clock = recordedClock(o.data, io.clock)
      const devices = await withRegistry(o.data, clock, (r) => r.list())
      if (o.json) return io.out(JSON.stringify({ devices }) + '\n')
      if (devices.length === 0) return io.out('No devices registered.\n')
      const now = clock.now()
      io.out(
        table(
          ['DEVICE', 'ACCOUNT', 'REGISTERED'],
          devices.map((x) => [x.id, x.account, `${formatAge(now - x.createdAt)} ago`]),
        ),
      )
    })
  cmd
    .command('remove <id>')
    .description('remove a device, its state and its location history')
    .option('--data <dir>', 'broker data directory', DEFAULT_BROKER_OPTIONS.dataDir)
    .action(async (id: string, o: { data: string }) => {
      await withRegistry(o.data, recordedClock(o.data, io.clock), (r) => r.remove(id))
      io.out(`Removed device ${id}. Its credentials no longer work.\n`)
    })
  return cmd
}
