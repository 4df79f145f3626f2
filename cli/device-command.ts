/** `fakephone device ...`: registering devices in the broker's data directory, running broker or not. */
import { Command } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import { DB_FILE, DEFAULT_DATA_DIR, openDb, truncateWal, type Db } from '../broker/db.js'
import { DeviceRegistry, newDeviceSecret } from '../broker/devices/registry.js'
import { formatAge, type Clock } from '../common/clock.js'
import { recordedClock } from '../common/cloud-time.js'
import { writeNewSecretFile } from '../common/secret-file.js'
import { OwnerKeys } from '../common/signing.js'
import { UserError, type Io } from './io.js'
import { DEFAULT_KEYS_DIR, accountName } from './options.js'
import { plural, table } from './render.js'
import { forTerminal, quoted } from '../common/terminal-text.js'

/** Opens the data directory's registry, stamping with the cloud's time as recorded there (`clock`). */
async function withRegistry<T>(dataDir: string, clock: Clock, fn: (r: DeviceRegistry, db: Db) => Promise<T> | T): Promise<T> {
  const db = openDb(dataDir)
  try {
    return await fn(new DeviceRegistry(db, () => clock.now()), db)
  } finally {
    db.close()
  }
}

/** Whether `dataDir` holds a cloud's database: one a broker (or an earlier `device add`) made. */
const holdsCloud = (dataDir: string): boolean => existsSync(join(dataDir, DB_FILE))

/**
 * `device list` and `device remove` read the broker's directory: one with no database is another (a typo, or the
 * default ./data while the broker runs with --data DIR), where they made an empty database and said "No devices
 * registered" or that the device is not there.
 */
function mustHoldCloud(dataDir: string): void {
  if (!holdsCloud(dataDir))
    throw new UserError(
      `${forTerminal(dataDir)} holds no broker data (no ${DB_FILE}): give --data the directory the broker runs on ` +
        '(it says it at start: "its console: fakephone console --api … --data DIR"); nothing was made there',
    )
}

export function deviceCommand(io: Io): Command {
  const cmd = new Command('device').description(COMMAND_SUMMARIES.device.description)
  cmd
    .command('add <id>')
    .description('register a device and print its credentials (the secret is shown once)')
    .option('--account <name>', 'owner account: 1-64 of a-z, 0-9, ".", "_", "-", "@" (docs/CONTRACT.md)', accountName, 'default')
    .option('--data <dir>', 'broker data directory', DEFAULT_DATA_DIR)
    .option('--secret-out <file>', 'write the secret to this file (mode 0600) instead of printing it')
    .option('--keys <dir>', "the owner's keys folder (kept by the console, not the broker)", DEFAULT_KEYS_DIR)
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { account: string; data: string; secretOut?: string; keys: string; json?: boolean }) => {
      // Provisioning: the owner's key pair (made once per account) and the device's receipt key. The folder first: one
      // that cannot be made refuses before the device is registered, whose secret would otherwise be shown nowhere.
      const keys = new OwnerKeys(o.keys)
      keys.ensureFolder()
      const secret = newDeviceSecret()
      const newCloud = !holdsCloud(o.data)
      const register = () =>
        withRegistry(o.data, recordedClock(o.data, io.clock), (r) => {
          // A second key pair for an account would split it: its phones obey the key made with the first device, so the
          // owner could command none of the new ones (a keys folder moved to the owner, as the README's services do).
          const others = keys.hasSigningKey(o.account) ? 0 : r.list().filter((d) => d.account === o.account).length
          if (others > 0) {
            const keyFile = `${basename(keys.ownerKeyFile(o.account), '.pub')}.key`
            throw new UserError(
              `account ${o.account} has ${plural(others, 'device')} already, obeying the owner key made with the first, and ` +
                `${o.keys} holds no key of it: give --keys the owner's keys folder (the one with ${keyFile})`,
            )
          }
          // A hobbyist who lost a phone's secret tries to add it again: say how to give it a new one, and what that costs.
          if (r.get(id))
            throw new UserError(
              `device ${quoted(id)} is already registered; for a new secret (the old one lost), remove it with ` +
                `\`fakephone device remove ${forTerminal(id)}\` (its history goes too) and add it again`,
            )
          return r.add(id, o.account, secret)
        })
      // The secret in its file first, durably: one that exists or cannot be written refuses before a device is registered
      // whose secret would be nowhere (common/secret-file).
      const added =
        o.secretOut === undefined
          ? await register()
          : await writeNewSecretFile(o.secretOut, `--secret-out ${o.secretOut}`, secret + '\n', register)
      const { device } = added
      keys.ensureSigningKey(device.account)
      keys.rememberDevice(device.id, secret)
      const ownerKeyFile = keys.ownerKeyFile(device.account)
      if (o.json)
        return io.out(JSON.stringify({ ...device, ownerKeyFile, ...(o.secretOut ? { secretFile: o.secretOut } : { secret }) }) + '\n')
      io.out(`Registered device ${forTerminal(device.id)} (account ${forTerminal(device.account)}).\n`)
      io.out(
        o.secretOut
          ? `Secret written to ${o.secretOut}; it is not stored anywhere else.\n`
          : `Secret (shown once, stored only as a hash): ${secret}\n`,
      )
      io.out(`Owner public key: ${ownerKeyFile} -- give it to the agent with --owner-key so it obeys only you.\n`)
      // A forgotten --data registers the phone in a new ./data that no broker reads: its agent is then refused as unknown.
      if (newCloud)
        io.err(
          `note: ${forTerminal(o.data)} held no broker data, so a new cloud was made there: only a broker started with ` +
            `--data ${forTerminal(o.data)} knows ${forTerminal(device.id)} (a broker already running elsewhere does not)\n`,
        )
    })
  cmd
    .command('list')
    .description('list registered devices')
    .option('--data <dir>', 'broker data directory', DEFAULT_DATA_DIR)
    .option('--json', 'machine-readable output')
    .action(async (o: { data: string; json?: boolean }) => {
      mustHoldCloud(o.data)
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
    .option('--data <dir>', 'broker data directory', DEFAULT_DATA_DIR)
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { data: string; json?: boolean }) => {
      mustHoldCloud(o.data)
      // The rows are zeroed where they lay (secure_delete); the WAL's older copies of them go here too, not at a running
      // broker's next deletion: a TRUNCATE checkpoint from this connection copies every committed frame, the broker's
      // own included, and waits (busy_timeout) for a reader of the WAL to finish; the broker's connection, idle between
      // its reads, sees the WAL start over as SQLite's own shared-memory index tells it. No broker: the database's
      // close removes the WAL anyway.
      const walCut = await withRegistry(o.data, recordedClock(o.data, io.clock), (r, db) => {
        r.remove(id)
        return truncateWal(db)
      })
      if (!walCut)
        io.err(
          `warning: ${DB_FILE}-wal still holds older copies of the device's data (a reader kept it busy); they go at the ` +
            "broker's next deletion or when it stops\n",
        )
      if (o.json) return io.out(JSON.stringify({ removed: id }) + '\n')
      // The broker sees the removal on the database it shares (DeviceRegistry: within a second, however idle).
      io.out(
        `Removed device ${forTerminal(id)}. Its credentials no longer work; a broker running on ${o.data} disconnects ` +
          'it within a second and clears its retained presence and status.\n',
      )
    })
  return cmd
}
