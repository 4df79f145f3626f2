/**
 * `fakephone demo` (what `npm start` runs): the broker on its embedded
 * database, one registered demo phone walking the built-in route, the
 * live console, and the web console with its sign-in link -- no external server. Logs go to DATA/fakephone.log so the
 * live view stays readable.
 */
import { Command } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { AgentConfigSchema } from '../agent/config.js'
import { ConsoleClient } from './console-client.js'
import { openDb } from '../broker/db.js'
import { lockDataDir } from '../common/data-lock.js'
import { DeviceRegistry } from '../broker/devices/registry.js'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { writeFile } from 'node:fs/promises'
import { pino } from 'pino'
import { CONSOLE_TOKEN_FILE, ensureConsoleToken } from '../broker/console-token.js'
import { OwnerKeys } from '../common/signing.js'
import { startAgent } from './agent-command.js'
import { startOrExplain } from './broker-command.js'
import { watchDevices } from './console-command.js'
import type { Io } from './io.js'
import { logger } from './logger.js'
import type { Clock } from '../common/clock.js'
import { persistedSimulatedClock } from '../common/cloud-time.js'
import { DEFAULT_KEYS_DIR, duration, port } from './options.js'
import { WebConsole } from './web/server.js'
import { linkUsed } from './web/web-command.js'
import { makeDataDirSync } from '../common/make-dirs.js'

const DEMO_DEVICE = 'demo-phone'

/** Registers the demo phone once; one whose secret file or owner keys were lost is registered anew. */
async function ensureDemoDevice(dataDir: string, secretFile: string, keys: OwnerKeys, clock: Clock): Promise<void> {
  if (existsSync(secretFile) && keys.deviceKey(DEMO_DEVICE)) return
  const db = openDb(dataDir)
  try {
    const registry = new DeviceRegistry(db, () => clock.now())
    if (registry.get(DEMO_DEVICE)) registry.remove(DEMO_DEVICE)
    const { secret } = await registry.add(DEMO_DEVICE, 'demo')
    await writeFile(secretFile, secret + '\n', { mode: 0o600 })
    keys.ensureSigningKey('demo')
    keys.rememberDevice(DEMO_DEVICE, secret)
  } finally {
    db.close()
  }
}

/**
 * Under the live table: where the demo keeps what a person needs, and what to try first. The web console's sign-in
 * link while it works; once used, that it is dead and the command that makes another.
 */
/** The broker's addresses, as the line printed before the live table (which the table's first screen clears) says them. */
const brokerLine = (mqttPort: number, httpPort: number): string =>
  `Broker on mqtt://${DEFAULT_BROKER_OPTIONS.host}:${mqttPort} and http://${DEFAULT_BROKER_OPTIONS.host}:${httpPort}`

function demoGuide(
  data: string,
  keys: string,
  { mqttPort, httpPort }: { mqttPort: number; httpPort: number },
  web: Pick<WebConsole, 'url' | 'loginUrl'>,
): string {
  const api = ` --api http://127.0.0.1:${httpPort}`
  const login = web.loginUrl
  return [
    // With `--mqtt-port 0` the port is known only here: the screen keeps saying it.
    `${brokerLine(mqttPort, httpPort)}; logs in ${join(data, 'fakephone.log')}`,
    login !== null
      ? `Web console (map, commands, cloud data, clock): open ${login} once to sign in`
      : `Web console on ${web.url}: ${linkUsed(`--data ${data}`, web.url)}`,
    `Device secret: ${join(data, `${DEMO_DEVICE}.secret`)}   console token: ${join(data, CONSOLE_TOKEN_FILE)}   owner keys: ${keys}`,
    'Try, in another terminal:',
    `  fakephone console${api} --data ${data} locate ${DEMO_DEVICE} --keys ${keys}`,
    `  fakephone console${api} --data ${data} clock advance 73h`,
    `  fakephone phone --data ${join(data, 'phones', DEMO_DEVICE)} status`,
    '',
  ].join('\n')
}

export function demoCommand(io: Io): Command {
  return new Command('demo')
    .description(COMMAND_SUMMARIES.demo.description)
    .option('--data <dir>', 'data directory for the broker and the phone', './data')
    .option('--mqtt-port <port>', 'MQTT over TCP', port, DEFAULT_BROKER_OPTIONS.mqttPort)
    .option('--http-port <port>', 'HTTP (WebSocket MQTT, console API)', port, DEFAULT_BROKER_OPTIONS.httpPort)
    .option('--interval <duration>', 'time between heartbeats', duration, 5000)
    .option('--keys <dir>', "the owner's keys folder, where `fakephone console` finds it", DEFAULT_KEYS_DIR)
    .option('--log-level <level>', 'level of DATA/fakephone.log', 'info')
    .option('--web-port <port>', 'the web console on 127.0.0.1 (0: the OS chooses)', port, 0)
    .option('--real-time', 'run the cloud on real time (default: simulated time, moved with `fakephone console clock advance`)')
    .action(
      async (o: {
        data: string
        keys: string
        mqttPort: number
        httpPort: number
        webPort: number
        interval: number
        logLevel: string
        realTime?: boolean
      }) => {
        makeDataDirSync(o.data)
        const logFile = join(o.data, 'fakephone.log')
        const log = logger({ ...io, logTo: pino.destination({ dest: logFile, sync: true }) }, o.logLevel)
        const secretFile = join(o.data, `${DEMO_DEVICE}.secret`)
        const keys = new OwnerKeys(o.keys)
        const host = DEFAULT_BROKER_OPTIONS.host
        // Simulated time starts where the last demo on this data directory left it.
        const cloudClock = o.realTime ? io.clock : persistedSimulatedClock(o.data, io.clock)
        // Under the data-directory lock: a second demo refuses here, before it touches the registry.
        const lock = lockDataDir(o.data, log)
        try {
          await ensureDemoDevice(o.data, secretFile, keys, cloudClock)
        } finally {
          lock.release()
        }
        const broker = new CloudBroker(
          { ...DEFAULT_BROKER_OPTIONS, dataDir: o.data, mqttPort: o.mqttPort, httpPort: o.httpPort },
          cloudClock,
          log.child({ module: 'broker' }),
        )
        const { mqttPort, httpPort } = await startOrExplain(broker)
        // On a terminal the line shows while the phone starts, until the live table's first screen clears it (the guide
        // under the table says it again). Piped, nothing is cleared: the guide's copy, printed with the first table, is the one.
        if (io.tty === true) io.out(`${brokerLine(mqttPort, httpPort)}; logs in ${logFile}\n`)
        const phone = await startAgent(
          AgentConfigSchema.parse({
            id: DEMO_DEVICE,
            secretFile,
            broker: `mqtt://${host}:${mqttPort}`,
            dataDir: join(o.data, 'phones', DEMO_DEVICE),
            interval: o.interval,
            ownerKey: keys.ownerKeyFile('demo'),
            push: `ws://${host}:${httpPort}/push`,
          }),
          // The phone follows the cloud's time over its data and push channels, as a phone in its own process does.
          io,
          log.child({ module: 'agent', device: DEMO_DEVICE }),
        )
        const consoleToken = ensureConsoleToken(o.data)
        const web = new WebConsole({
          apiUrl: `http://${host}:${httpPort}`,
          consoleToken,
          keysDir: o.keys,
          log: log.child({ module: 'web' }),
          port: o.webPort,
          // Real time: a link `console web-link` makes in another process expires on this machine's clock, not the cloud's.
          clock: io.clock,
        })
        await web.start()
        await watchDevices(new ConsoleClient(`http://${host}:${httpPort}`, consoleToken), io, 1000, () =>
          demoGuide(o.data, o.keys, { mqttPort, httpPort }, web),
        )
        await web.stop()
        await phone.stop()
        await broker.stop()
      },
    )
}
