/** `fakephone fleet provision | run | report`: a fleet of fake phones from one command (issue 12). */
import { Command } from 'commander'
import { DEFAULT_BROKER_OPTIONS } from '../broker/server.js'
import { recordedClock } from '../common/cloud-time.js'
import { writeCredentials } from '../fleet/credentials.js'
import { provision } from '../fleet/provision.js'
import { DEFAULT_KEYS_DIR } from './broker-command.js'
import { UserError, type Io } from './io.js'
import { positiveInt } from './options.js'

interface ProvisionFlags {
  count: number
  accountPrefix: string
  accounts?: number
  data: string
  keys: string
  out: string
}

export function fleetCommand(io: Io): Command {
  const cmd = new Command('fleet').description('a fleet of fake phones in one process: provision them, run a scenario, report')
  cmd
    .command('provision')
    .description('register N devices in one transaction and write their credentials to one file (mode 0600)')
    .requiredOption('--count <n>', 'how many devices', positiveInt)
    .requiredOption('--account-prefix <prefix>', 'device ids are <prefix>-00001...; accounts <prefix>-owner-001...')
    .option('--accounts <n>', 'owner accounts the devices are spread over (default: one per device)', positiveInt)
    .option('--data <dir>', 'broker data directory', DEFAULT_BROKER_OPTIONS.dataDir)
    .option('--keys <dir>', "the owners' keys folder (kept by the console, not the broker)", DEFAULT_KEYS_DIR)
    .option('--out <file>', 'the credentials file to write', 'fleet-credentials.json')
    .action(async (o: ProvisionFlags) => {
      if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(o.accountPrefix))
        throw new UserError(`--account-prefix "${o.accountPrefix}": 1-41 of a-z, 0-9 and "-", not starting with "-"`)
      const started = performance.now()
      const credentials = await provision({
        dataDir: o.data,
        keysDir: o.keys,
        count: o.count,
        prefix: o.accountPrefix,
        accounts: o.accounts,
        clock: recordedClock(o.data, io.clock),
      })
      await writeCredentials(o.out, credentials)
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      io.out(`Registered ${o.count} devices in ${seconds} s; credentials in ${o.out} (mode 0600), owner keys in ${o.keys}.\n`)
    })
  return cmd
}
