/**
 * Command-line flags of `npm run bench`. Every number is bounded, so no
 * combination of flags makes a run unbounded in time or memory.
 */
import { parseArgs } from 'node:util'

export const SCENARIOS = [
  'compare',
  'ingest',
  'fleet',
  'commands',
  'mosquitto',
  'push',
  'sync',
  'cron',
  'web',
  'web-command',
  'migrate',
] as const
export type Scenario = (typeof SCENARIOS)[number]

export interface BenchArgs {
  devices: number
  /** Aggregate heartbeats per second across all devices. */
  rate: number
  seconds: number
  agents: number
  /** Fleet mode: mean time between one agent's heartbeats, ms. */
  agentHeartbeatMs: number
  /** Commands mode: sequential locate commands measured on one agent (after a warm-up). */
  commands: number
  /** Commands mode: agents that each get one ring, all submitted at once. */
  fanout: number
  /** Push mode: notifications queued per second across all agents. */
  pushRate: number
  /** Sync mode: photos on the first phone. */
  photos: number
  /** Compare mode: device counts, each measured on every broker. */
  compareDevices: readonly number[]
  /** Compare mode: interleaved rounds (the table shows medians). */
  rounds: number
  /** Compare mode: length of each measured load, s. */
  compareSeconds: number
  /** Compare mode: which brokers run (all by default; Mosquitto only when installed). */
  brokers: ReadonlySet<string>
  /** Compare mode: write the fakephone and stock Aedes brokers' CPU profiles (V8 profiler, measured window only) here. */
  profile: string | null
  only: ReadonlySet<Scenario>
  json: boolean
}

export const USAGE = `usage: node dist/bench/run.js [options]   (after npm run build; or npm run bench -- [options])
  --devices <n>          MQTT devices publishing in the ingest scenarios; phones on the web console's map (default 1000, 1-10000)
  --rate <n>             aggregate heartbeats per second (default 1000, 1-50000)
  --seconds <n>          length of each measured run (default 10, 1-120)
  --agents <n>           Agent instances in fleet mode (default 200, 1-2000)
  --agent-interval <ms>  fleet mode: mean time between an agent's heartbeats (default 1000, 100-60000)
  --commands <n>         commands mode: sequential locate round trips on one agent (default 500, 1-10000)
  --fanout <n>           commands mode: agents that each get one ring at once (default 200, 1-1000)
  --push-rate <n>        push mode: notifications per second across the agents (default 200, 1-5000)
  --photos <n>           sync and migrate modes: photos one phone syncs and another pulls, or the migrated account holds
                         (default 1000, 1-20000)
  --compare-devices <l>  compare mode: comma-separated device counts (default 1000; each 1-10000)
  --big                  compare mode: 1000,5000,10000 devices
  --rounds <n>           compare mode: interleaved rounds, medians shown (default 3, 1-9)
  --compare-seconds <n>  compare mode: length of each broker's load (default 5, 1-120)
  --brokers <list>       compare mode: comma-separated: fakephone, aedes, mosquitto (default: all)
  --profile <dir>        compare mode: write CPU profiles of fakephone and stock Aedes during the measured load to <dir>
  --only <list>          comma-separated: compare, ingest, fleet, commands, mosquitto, push, sync, cron, web, web-command,
                         migrate (default: all)
  --json                 print only the JSON result
  --help                 this text`

interface Bound {
  name: string
  min: number
  max: number
}

function intFlag(text: string | undefined, fallback: number, b: Bound): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < b.min || n > b.max)
    throw new Error(`--${b.name} must be a whole number from ${b.min} to ${b.max}, got "${text}"`)
  return n
}

function scenarios(text: string | undefined): Set<Scenario> {
  if (text === undefined) return new Set(SCENARIOS)
  const names = text.split(',').map((s) => s.trim())
  for (const n of names) {
    if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`--only takes ${SCENARIOS.join(', ')}; got "${n}"`)
  }
  return new Set(names as Scenario[])
}

/** Parses argv; null when --help was asked for. Throws with a readable message on a bad flag. */
export function parseBenchArgs(argv: string[]): BenchArgs | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      devices: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      agents: { type: 'string' },
      'agent-interval': { type: 'string' },
      commands: { type: 'string' },
      fanout: { type: 'string' },
      'push-rate': { type: 'string' },
      photos: { type: 'string' },
      'compare-devices': { type: 'string' },
      big: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'compare-seconds': { type: 'string' },
      profile: { type: 'string' },
      brokers: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return null
  return {
    devices: intFlag(values.devices, 1000, { name: 'devices', min: 1, max: 10_000 }),
    rate: intFlag(values.rate, 1000, { name: 'rate', min: 1, max: 50_000 }),
    seconds: intFlag(values.seconds, 10, { name: 'seconds', min: 1, max: 120 }),
    agents: intFlag(values.agents, 200, { name: 'agents', min: 1, max: 2000 }),
    agentHeartbeatMs: intFlag(values['agent-interval'], 1000, { name: 'agent-interval', min: 100, max: 60_000 }),
    commands: intFlag(values.commands, 500, { name: 'commands', min: 1, max: 10_000 }),
    // Capped at 1000: at about 2000 publishes in one tick Aedes' mqemitter (concurrency 100) drains its queue
    // recursively and overflows the stack, killing the process (seen 2 runs in 5 at 2000; none at 1500).
    fanout: intFlag(values.fanout, 200, { name: 'fanout', min: 1, max: 1000 }),
    pushRate: intFlag(values['push-rate'], 200, { name: 'push-rate', min: 1, max: 5000 }),
    photos: intFlag(values.photos, 1000, { name: 'photos', min: 1, max: 20_000 }),
    compareDevices: values.big
      ? [1000, 5000, 10_000]
      : (values['compare-devices'] ?? '1000')
          .split(',')
          .map((n) => intFlag(n.trim(), 1000, { name: 'compare-devices', min: 1, max: 10_000 })),
    rounds: intFlag(values.rounds, 3, { name: 'rounds', min: 1, max: 9 }),
    compareSeconds: intFlag(values['compare-seconds'], 5, { name: 'compare-seconds', min: 1, max: 120 }),
    profile: values.profile ?? null,
    brokers: new Set((values.brokers ?? 'fakephone,aedes,mosquitto').split(',').map((b) => b.trim())),
    only: scenarios(values.only),
    json: values.json ?? false,
  }
}

/** The flags of a standalone bench script (`node dist/bench/fleet-scale.js 10000 --every 5000 ...`): no usage, no bounds. */
export interface LooseFlags {
  /** The first bare number, or `dflt`: the phone count. */
  count(dflt: number): number
  /** The word after `name`, or `dflt`. */
  value(name: string, dflt: string): string
  has(name: string): boolean
}

export function looseFlags(argv: readonly string[] = process.argv.slice(2)): LooseFlags {
  return {
    count: (dflt) => Number(argv.find((x) => /^\d+$/.test(x)) ?? dflt),
    value: (name, dflt) => {
      const i = argv.indexOf(name)
      return i >= 0 ? (argv[i + 1] as string) : dflt
    },
    has: (name) => argv.includes(name),
  }
}
