/**
 * Issue 12: where a Node process's CPU goes *on the CPU*, split into fakephone's own JavaScript, the library and Node
 * work fakephone's code called, and the rest (Aedes, mqtt.js, ws and Node driven by events, GC, the JIT), from a
 * `perf record -g` of a process run with `--perf-basic-prof --interpreted-frames-native-stack` (fleet-scale.ts'
 * `--broker-node-flags` / `--fleet-node-flags` give them). V8's own sampling profiler (`--cpu-prof`) is not used for
 * this: under a loaded run queue its samples land where a descheduled thread resumes, so it charged 10.8 % of a ramp's
 * broker samples to the bench's `process.cpuUsage()` (about 1 % on the CPU by perf) and 9.6 % of the fleet's to the
 * binding call of an async `mkdir`.
 *   perf record -F 499 -g -p PID -o FILE
 *   node dist/bench/perf-split.js FILE [--from S] [--to S] [--top N]
 * (--from/--to: seconds after the first sample, e.g. the ramp alone; each sample at 499 Hz is ~2 ms of one thread)
 */
import { execFileSync } from 'node:child_process'
import { looseFlags } from './args.js'

interface Sample {
  main: boolean
  t: number
  /** Innermost first. */
  frames: string[]
}

/** Parses `perf script -F pid,tid,time,ip,sym`: a header line per sample, then one indented line per frame. */
export function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = []
  let cur: Sample | null = null
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur) samples.push(cur)
      cur = null
    } else if (!/^\s/.test(line)) {
      const [ids = '', time = '0'] = line.trim().split(/\s+/)
      const [pid, tid] = ids.split('/')
      cur = { main: pid === tid, t: Number.parseFloat(time), frames: [] }
    } else if (cur) {
      cur.frames.push(line.trim().replace(/^[0-9a-f]+\s+/, ''))
    }
  }
  if (cur) samples.push(cur)
  return samples
}

/** A JavaScript frame of fakephone's compiled code (not a package's: those live under node_modules). */
const isOurs = (frame: string): boolean => /^(JS|Script):/.test(frame) && frame.includes('/dist/') && !frame.includes('node_modules/')
const fileOf = (frame: string): string => (frame.split('/dist/')[1] ?? frame).replace(/:\d+:\d+$/, '')

export function split(
  samples: Sample[],
  from: number,
  to: number,
): { total: number; kinds: Map<string, number>; files: Map<string, number> } {
  const t0 = Math.min(...samples.map((s) => s.t))
  const kinds = new Map<string, number>()
  const files = new Map<string, number>()
  const add = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1)
  let total = 0
  for (const s of samples) {
    if (s.t - t0 < from || s.t - t0 >= to) continue
    total++
    if (!s.main) {
      add(kinds, 'other threads (GC, JIT compiler, libuv pool)')
      continue
    }
    const ours = s.frames.find(isOurs)
    if (ours === undefined) add(kinds, 'main: no fakephone frame (Aedes, mqtt.js, ws, Node on events; GC; JIT)')
    else if (s.frames[0] === ours) add(kinds, "main: fakephone's own JavaScript")
    else add(kinds, 'main: libraries, Node and V8 called from fakephone code')
    if (ours !== undefined) add(files, fileOf(ours))
  }
  return { total, kinds, files }
}

if (process.argv[1]?.endsWith('perf-split.js')) {
  const flags = looseFlags()
  const file = process.argv[2] as string
  const from = Number(flags.value('--from', '0'))
  const to = Number(flags.value('--to', 'Infinity'))
  const top = Number(flags.value('--top', '15'))
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'pid,tid,time,ip,sym'], {
    encoding: 'utf8',
    maxBuffer: 2 ** 30,
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const { total, kinds, files } = split(parsePerfScript(text), from, to)
  const row = (k: string, v: number): string => `| ${k} | ${v} | ${((v / Math.max(total, 1)) * 100).toFixed(1)} % |`
  console.log(`${total} samples\n\n| on the CPU | samples | share |\n|---|---|---|`)
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(row(k, v))
  console.log(`\n| innermost fakephone file on the main thread's stack | samples | share |\n|---|---|---|`)
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(row(k, v))
}
