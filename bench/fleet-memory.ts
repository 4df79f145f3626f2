/**
 * Where a fleet phone's memory goes (issue 12): the fakephone broker in a
 * process of its own (fleet-broker.ts), then in this one (run with --expose-gc) N phones
 * brought up and connected, then N more; after each step a full GC, the
 * heap/external/RSS figures and a heap snapshot summed by object kind
 * (constructor name for objects; closures, strings, arrays, code by type).
 * Per phone = (after 2N - after N) / N, so the fixed costs (modules, the
 * first-use caches, the JIT) fall out. A heartbeat every 10 minutes: what a
 * run records per message (its event log, the seqs it reconciles) is not a
 * phone's, and would grow with the time the steps take. Also times the connect ramp of each
 * step (phones connected per second).
 *   npm run build && node --expose-gc dist/bench/fleet-memory.js [N] [--no-push] [--owntracks] [--snapshot] [--top K] [--broker-prof DIR]
 *     [--prof DIR] [--accounts K] [--sync]
 * (--sync: the phones' group syncs, each seeded with one contact it uploads: what a syncing group costs beside a plain one)
 * (--accounts K: the 2N devices spread over K owner accounts, as `fleet provision --accounts`; one per device by default)
 * (--prof: a CPU profile of this process during each step's ramp only, DIR/fleet-step1.cpuprofile and -step2: not the
 * provisioning, GCs or clean-up around them; `node dist/bench/cpu-top.js` lists them)
 * (--alloc-prof DIR: V8's sampling heap profiler over the second step's ramp, garbage included,
 * DIR/fleet-step2.heapprofile, and the allocation sites that made the most bytes per phone)
 * (RSS figures are taken before each snapshot, but a snapshot's own allocations stay in RSS: read RSS from a run without --snapshot)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { Session, type HeapProfiler } from 'node:inspector/promises'
import { startBrokerChild } from './fleet-broker.js'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { OwnerKeys, readPublicKey } from '../common/signing.js'
import { provision } from '../fleet/provision.js'
import { planFleet } from '../fleet/plan.js'
import { Rng } from '../fleet/prng.js'
import { FleetRun } from '../fleet/runner.js'
import { checkScenario } from '../fleet/scenario.js'

const LOOPBACK = '127.0.0.1'

interface Sample {
  heap: number
  external: number
  arrayBuffers: number
  rss: number
  /** The snapshot's kinds (kindsOf), kept in a file: held in this heap, their tens of thousands of keys were in the next snapshot. */
  kinds: string | null
}

type Kinds = Map<string, { count: number; bytes: number }>

function readKinds(file: string | null): Kinds {
  return new Map(file === null ? [] : (JSON.parse(readFileSync(file, 'utf8')) as [string, { count: number; bytes: number }][]))
}

/**
 * Heap snapshot summed by kind: objects by constructor name, the rest by node
 * type; arrays, plain Objects, strings and contexts also by who holds them
 * (the first holder's kind and the property: `(array) <- Foo.bar`), which says
 * whose they are.
 */
function kindsOf(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } }
    nodes: number[]
    edges: number[]
    strings: string[]
  }
  const meta = snap.snapshot.meta
  const fields = meta.node_fields
  const types = meta.node_types[0]
  const width = fields.length
  const ewidth = meta.edge_fields.length
  const etypes = meta.edge_types[0]
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
    number,
  ]
  const nodeCount = snap.nodes.length / width
  const keyOf = (node: number): string => {
    const type = types[snap.nodes[node * width + iType] as number] as string
    const name = snap.strings[snap.nodes[node * width + iName] as number] as string
    return type === 'object' ? name : type === 'closure' ? `closure ${name || '(anonymous)'}` : `(${type})`
  }
  const holder = new Int32Array(nodeCount).fill(-1)
  const via = new Array<string>(nodeCount)
  for (let node = 0, e = 0; node < nodeCount; node++) {
    const edges = snap.nodes[node * width + iEdges] as number
    for (let k = 0; k < edges; k++, e += ewidth) {
      const etype = etypes[snap.edges[e] as number] as string
      if (etype === 'weak' || etype === 'shortcut') continue
      const to = (snap.edges[e + 2] as number) / width
      if (holder[to] !== -1) continue
      holder[to] = node
      via[to] = etype === 'element' || etype === 'hidden' ? `[${etype}]` : (snap.strings[snap.edges[e + 1] as number] ?? '?')
    }
  }
  const kinds = new Map<string, { count: number; bytes: number }>()
  const add = (key: string, bytes: number): void => {
    const k = kinds.get(key) ?? { count: 0, bytes: 0 }
    k.count++
    k.bytes += bytes
    kinds.set(key, k)
  }
  const detailed = new Set(['(array)', 'Object', '(string)', '(concatenated string)', 'system / Context', 'Array', '(hidden)'])
  for (let node = 0; node < nodeCount; node++) {
    const key = keyOf(node)
    const bytes = snap.nodes[node * width + iSize] as number
    add(key, bytes)
    // A string's holder is often another string (a concatenation): the first holder that is not one says whose it is.
    let h = holder[node] as number
    let at = node
    for (let up = 0; up < 1000 && h !== -1 && keyOf(h).endsWith('string)'); up++) [at, h] = [h, holder[h] as number]
    if (detailed.has(key) && h !== -1) add(`  ${key} <- ${keyOf(h)}.${via[at] as string}`, bytes)
  }
  return kinds
}

/** The sampling heap profile's allocation sites (function, file and line) by bytes per phone, most first. */
function printAllocationSites(profile: HeapProfiler.SamplingHeapProfile, n: number, top: number): void {
  const sites = new Map<string, number>()
  let total = 0
  const walk = (node: HeapProfiler.SamplingHeapProfileNode): void => {
    const f = node.callFrame
    const where = f.url ? `${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '')}:${f.lineNumber + 1}` : ''
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim()
    sites.set(key, (sites.get(key) ?? 0) + node.selfSize)
    total += node.selfSize
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  console.log(`allocated during the second step's ramp: ${(total / n / 1024).toFixed(1)} KB per phone`)
  console.log('| allocation site | bytes per phone |\n|---|---|')
  for (const [key, bytes] of [...sites.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`| \`${key}\` | ${(bytes / n).toFixed(0)} |`)
}

function sample(dir: string, label: string, snapshot: boolean): Sample {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with node --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  const m = process.memoryUsage()
  let kinds: string | null = null
  if (snapshot) {
    const file = writeHeapSnapshot(join(dir, `${label}.heapsnapshot`))
    kinds = join(dir, `${label}.kinds.json`)
    writeFileSync(kinds, JSON.stringify([...kindsOf(file).entries()]))
    rmSync(file)
    gc()
  }
  return { heap: getHeapStatistics().used_heap_size, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, kinds }
}

async function main(argv: string[]): Promise<void> {
  const n = Number(argv.find((x) => /^\d+$/.test(x)) ?? 500)
  const push = !argv.includes('--no-push') && !argv.includes('--owntracks')
  const profile = argv.includes('--owntracks') ? ('owntracks' as const) : undefined
  const snapshot = argv.includes('--snapshot')
  const topIdx = argv.indexOf('--top')
  const top = topIdx >= 0 ? Number(argv[topIdx + 1]) : 40
  const dir = mkdtempSync(join(tmpdir(), 'fakephone-fleet-memory-'))
  const clock = new SystemClock()
  const log = createLogger({ level: 'error' })
  const cloud = join(dir, 'cloud')
  const accountsIdx = argv.indexOf('--accounts')
  const accounts = accountsIdx >= 0 ? Number(argv[accountsIdx + 1]) : undefined
  const credentials = provision({ dataDir: cloud, keysDir: join(dir, 'keys'), count: 2 * n, accounts, prefix: 'fm', clock })
  const profIdx = argv.indexOf('--broker-prof')
  const prof = profIdx >= 0 ? ['--cpu-prof', `--cpu-prof-dir=${argv[profIdx + 1] as string}`] : []
  const broker = await startBrokerChild(cloud, 2 * n, prof)
  const { mqttPort, httpPort } = broker
  const keys = new OwnerKeys(credentials.keysDir)
  // --sync: a syncing group (issue 12; S1, B1), each phone seeded with one contact that it uploads, its sync engine and
  // backup talking to the broker's HTTP side.
  const sync = argv.includes('--sync')
  const group = { name: 'g', heartbeat: { every: 600_000, jitter: 0.1 }, ...(sync && { data: { contacts: 1 } }) }
  const loaded = checkScenario({ groups: [group] }, 'memory', '.')
  const ownerKeys = new Map<string, ReturnType<typeof readPublicKey>>()
  const ownerKey = (account: string): ReturnType<typeof readPublicKey> => {
    if (!ownerKeys.has(account)) ownerKeys.set(account, readPublicKey(keys.ownerKeyFile(account)))
    return ownerKeys.get(account) as ReturnType<typeof readPublicKey>
  }
  const runs: FleetRun[] = []
  const fleetProfIdx = argv.indexOf('--prof')
  const fleetProf = fleetProfIdx >= 0 ? (argv[fleetProfIdx + 1] as string) : null
  const session = fleetProf === null ? null : new Session()
  session?.connect()
  await session?.post('Profiler.enable')
  const allocIdx = argv.indexOf('--alloc-prof')
  const allocProf = allocIdx >= 0 ? (argv[allocIdx + 1] as string) : null
  const heapSession = allocProf === null ? null : new Session()
  heapSession?.connect()
  /** This process's CPU per phone brought up, ms, by step. */
  const cpuPerPhoneMs: number[] = []
  const bringUp = async (from: number): Promise<number> => {
    const devices = credentials.devices.slice(from, from + n)
    const run = new FleetRun({
      plan: planFleet(
        loaded,
        'memory',
        devices.map((d) => d.id),
        600_000,
      ),
      devices,
      ownerKey,
      brokerUrl: `mqtt://${LOOPBACK}:${mqttPort}`,
      pushUrl: push ? `ws://${LOOPBACK}:${httpPort}/push` : undefined,
      cloudUrl: sync ? `http://${LOOPBACK}:${httpPort}` : undefined,
      dataDir: join(dir, 'phones'),
      clock,
      log,
      backoff: { baseMs: 500, capMs: 10_000 },
      random: (index) => Rng.stream('memory', index, 'agent').next,
      profile,
    })
    runs.push(run)
    const started = performance.now()
    const cpu = process.cpuUsage()
    await session?.post('Profiler.start')
    // Every 1 KB allocated, on average; objects a GC collected stay in the profile, so it shows the garbage of the ramp too.
    const sampling = from > 0 ? heapSession : null
    await sampling?.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
    run.start()
    while (run.phonesUp().connected < n) await new Promise((resolve) => setTimeout(resolve, 20))
    const used = process.cpuUsage(cpu)
    const prof = await session?.post('Profiler.stop')
    const heapProf = await sampling?.post('HeapProfiler.stopSampling')
    if (heapProf) {
      writeFileSync(join(allocProf as string, 'fleet-step2.heapprofile'), JSON.stringify(heapProf.profile))
      printAllocationSites(heapProf.profile, n, top)
    }
    if (prof) writeFileSync(join(fleetProf as string, `fleet-step${runs.length}.cpuprofile`), JSON.stringify(prof.profile))
    cpuPerPhoneMs.push(Math.round(((used.user + used.system) / 1000 / n) * 100) / 100)
    return n / ((performance.now() - started) / 1000)
  }
  let peak = 0
  const peaks = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100)
  try {
    const s0 = sample(dir, 's0', snapshot)
    const ramp1 = await bringUp(0)
    const s1 = sample(dir, 's1', snapshot)
    const ramp2 = await bringUp(n)
    const s2 = sample(dir, 's2', snapshot)
    const kb = (a: number, b: number): string => ((b - a) / n / 1024).toFixed(1)
    const out = {
      phones: n,
      push,
      profile: profile ?? 'agent',
      sync,
      rampPerSecond: [Math.round(ramp1), Math.round(ramp2)],
      cpuPerPhoneMs,
      brokerCpuPerPhoneMs: (await broker.ramp).cpuPerPhoneMs,
      peakRssMb: Math.round(peak / 2 ** 20),
      events: runs.reduce((sum, r) => sum + r.events.length, 0),
      firstN: { heapKb: kb(s0.heap, s1.heap), externalKb: kb(s0.external, s1.external), rssKb: kb(s0.rss, s1.rss) },
      secondN: {
        heapKb: kb(s1.heap, s2.heap),
        externalKb: kb(s1.external, s2.external),
        arrayBuffersKb: kb(s1.arrayBuffers, s2.arrayBuffers),
        rssKb: kb(s1.rss, s2.rss),
      },
    }
    console.log(JSON.stringify(out))
    const kinds1 = readKinds(s1.kinds)
    const rows = [...readKinds(s2.kinds).entries()]
      .map(([key, k]) => {
        const before = kinds1.get(key) ?? { count: 0, bytes: 0 }
        return { key, perPhone: (k.count - before.count) / n, bytesPerPhone: (k.bytes - before.bytes) / n }
      })
      .sort((a, b) => b.bytesPerPhone - a.bytesPerPhone)
    console.log('| kind | objects per phone | bytes per phone |')
    console.log('|---|---|---|')
    for (const r of rows.slice(0, top)) console.log(`| ${r.key.slice(0, 60)} | ${r.perPhone.toFixed(1)} | ${r.bytesPerPhone.toFixed(0)} |`)
    writeFileSync(
      join(tmpdir(), `fakephone-fleet-memory-${push ? 'full' : (profile ?? 'no-push')}.json`),
      JSON.stringify({ out, rows }, null, 1),
    )
  } finally {
    clearInterval(peaks)
    for (const run of runs) await run.stop()
    await broker.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main(process.argv.slice(2))
process.exit(0)
