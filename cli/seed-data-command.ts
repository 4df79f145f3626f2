/**
 * `fakephone agent seed-data`: fills a phone's data directory with
 * realistic photos, contacts, notes and recordings (S1-S4, M2) to sync,
 * back up and migrate. Deterministic for a seed; adds to what is there,
 * whether or not the phone's agent is running. With no count it adds a
 * realistic mix (DEFAULT_MIX); with any count, only what was asked for.
 */
import { Command, InvalidArgumentError } from 'commander'
import { sendControl } from '../agent/control.js'
import { seedPhoneData, EDINBURGH, type SeedCounts } from '../agent/phone-data/seed.js'
import { PhoneFiles } from '../agent/phone-data/store.js'
import { CATEGORIES } from '../agent/phone-data/types.js'
import { makeDataDirSync } from '../common/make-dirs.js'
import type { Io } from './io.js'
import { latLon } from './options.js'
import { formatBytes } from './phone-data-render.js'
import { plural } from './render.js'
import { syncStopped } from './sync-commands.js'

function count(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new InvalidArgumentError('must be a whole number from 0 to 100000')
  return n
}

function seedNumber(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError('must be a whole number from 0 to 4294967295')
  return n
}

/** What `seed-data` adds when no count is given: a phone's realistic mix. */
const DEFAULT_MIX: SeedCounts = { photos: 200, contacts: 50, notes: 20, recordings: 5 }

/** The counts to seed: the ones given (0 for the others), or the whole DEFAULT_MIX when none is. */
function countsOf(o: Partial<SeedCounts>): SeedCounts {
  const asked = CATEGORIES.some((c) => o[c] !== undefined)
  return Object.fromEntries(CATEGORIES.map((c) => [c, asked ? (o[c] ?? 0) : DEFAULT_MIX[c]])) as SeedCounts
}

interface SeedFlags extends Partial<SeedCounts> {
  data?: string
  seed: number
  near?: { lat: number; lon: number }
  json?: boolean
}

/** `agentData` is `fakephone agent --data`, which commander fills when --data is typed after `seed-data` too. */
export function seedDataCommand(io: Io, agentData: () => string): Command {
  return new Command('seed-data')
    .description(
      "fill a phone's data directory with realistic photos, contacts, notes and recordings (the same seed on the same day gives " +
        'the same files); with no count a realistic mix (' +
        `${DEFAULT_MIX.photos} photos, ${DEFAULT_MIX.contacts} contacts, ${DEFAULT_MIX.notes} notes and ${DEFAULT_MIX.recordings} ` +
        'recordings), with any count only what it asks for',
    )
    .option('--data <dir>', "the phone's data directory (default: the agent's --data)")
    .option('--photos <n>', 'photos to add: EXIF JPEGs taken around --near over the past months', count)
    .option('--contacts <n>', 'contacts to add (vCard 3.0)', count)
    .option('--notes <n>', 'notes to add', count)
    .option('--recordings <n>', 'recordings to add (WAV)', count)
    .option('--seed <n>', 'the random seed', seedNumber, 1)
    .option('--near <lat,lon>', `where the photos were taken around (default ${EDINBURGH.lat},${EDINBURGH.lon}, Edinburgh)`, latLon)
    .option('--json', 'machine-readable output')
    .action(async (o: SeedFlags) => {
      const dataDir = o.data ?? agentData()
      // Made here, each missing folder once: the store's own recursive mkdir spins for ever where a folder refuses new
      // entries (anywhere under /proc: common/make-dirs.ts), so `--data /proc/self/x` hung instead of failing.
      makeDataDirSync(dataDir)
      const data = new PhoneFiles({ dataDir, clock: io.clock })
      const result = await seedPhoneData(data, {
        counts: countsOf(o),
        seed: o.seed,
        now: io.clock.now(),
        near: o.near,
        onProgress: (done, total) => io.err(`photos: ${done}/${total}\n`),
      })
      // A phone running on this folder syncs what was added now, not at its next scheduled pass.
      const phone = await sendControl(dataDir, { op: 'sync-now', wait: false }).then(
        (status) => status,
        () => null,
      )
      // S1, X1: a phone whose cloud service is off (or with no network) keeps them on the phone for now.
      const stopped = phone === null ? null : syncStopped(phone)
      const told = phone !== null && stopped === null
      if (o.json) return io.out(JSON.stringify({ dataDir, seed: o.seed, ...result, syncStarted: told }) + '\n')
      const c = result.counts
      io.out(
        `Seeded ${plural(c.photos, 'photo')}, ${plural(c.contacts, 'contact')}, ${plural(c.notes, 'note')} and ` +
          `${plural(c.recordings, 'recording')} (${formatBytes(result.bytes)}) into ${dataDir} with seed ${o.seed}.\n`,
      )
      if (told) io.out('The phone running on this folder is syncing them now (see: fakephone phone --data DIR sync status).\n')
      if (stopped !== null) io.out(`The phone running on this folder keeps them on the phone for now: ${stopped}.\n`)
    })
}
