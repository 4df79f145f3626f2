/**
 * The fleet ramp's on-CPU split (bench/perf-split.ts, issue 12): samples of `perf script` are told apart by whether
 * fakephone's code is the innermost frame, somewhere on the stack, or not there, and by thread; a window keeps only
 * the samples in it.
 */
import t from 'tap'
import { parsePerfScript, split } from '../../bench/perf-split.js'

const ours = 'JS:^setStatus file:///x/dist/broker/devices/state-store.js:192:13'
const pkg = 'JS:*parse file:///x/node_modules/mqtt-packet/parser.js:37:9'
const sample = (ids: string, time: number, frames: string[]): string =>
  [`${ids}  ${time.toFixed(6)}: `, ...frames.map((f, i) => `\t          ${(0x1000 + i).toString(16)} ${f}`), ''].join('\n')

const text = [
  sample('10/10', 100, [ours, 'uv_run']),
  sample('10/10', 100.5, ['sqlite3VdbeExec', ours, 'uv_run']),
  sample('10/10', 101, [pkg, 'uv_run']),
  sample('10/12', 101.5, ['v8::internal::Scavenger::ScavengeObject']),
  sample('10/10', 103, [ours]),
].join('\n')

t.test('each sample is split by where fakephone code sits on its stack, and by thread', async (t) => {
  const samples = parsePerfScript(text)
  t.equal(samples.length, 5)
  t.same(samples[1]?.frames, ['sqlite3VdbeExec', ours, 'uv_run'])
  const { total, kinds, files } = split(samples, 0, Infinity)
  t.equal(total, 5)
  t.same(Object.fromEntries(kinds), {
    "main: fakephone's own JavaScript": 2,
    'main: libraries, Node and V8 called from fakephone code': 1,
    'main: no fakephone frame (Aedes, mqtt.js, ws, Node on events; GC; JIT)': 1,
    'other threads (GC, JIT compiler, libuv pool)': 1,
  })
  t.same(Object.fromEntries(files), { 'broker/devices/state-store.js': 3 })
})

t.test('a window counts only the samples inside it, in seconds from the first', async (t) => {
  const { total, files } = split(parsePerfScript(text), 0.5, 2)
  t.equal(total, 3)
  t.same(Object.fromEntries(files), { 'broker/devices/state-store.js': 1 })
})
