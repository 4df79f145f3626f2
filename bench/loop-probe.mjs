/**
 * Where a process's event-loop delay comes from (issue 12): a preload that, every ~10 ms tick of the loop (what
 * `monitorEventLoopDelay` samples), notes the tick's delay, the main thread's own run time and its wait in the run
 * queue (Linux, /proc/thread-self/schedstat), and every GC; at exit it says, on stderr, the delay p99, the own-run
 * p99 (about the delay an idle machine would have shown), how the p99 ticks' wall time splits into own run, run-queue
 * wait and the rest, and the same per phase of the run. It runs in `fleet run`'s workers, or in any process with
 * LOOP_PROBE=1; LOOP_PROBE_PHASES=15,40 splits at 15 s and 40 s from the process's start.
 *   node dist/bench/fleet-scale.js 2000 --every 2000 --seconds 40 --fleet-node-flags "--import ./bench/loop-probe.mjs"
 */
import { Buffer } from 'node:buffer'
import { openSync, readSync } from 'node:fs'
import { constants, performance, PerformanceObserver } from 'node:perf_hooks'
import { setInterval } from 'node:timers'
import { getHeapSpaceStatistics } from 'node:v8'

const on = process.env.LOOP_PROBE === '1' || /fleet[/\\]worker\.[jt]s$/.test(process.argv[1] ?? '')
if (on) {
  const fd = openSync('/proc/thread-self/schedstat', 'r')
  const buf = Buffer.alloc(128)
  /** ns on the CPU, ns waiting in the run queue. */
  const sched = () =>
    buf
      .toString('latin1', 0, readSync(fd, buf, 0, 128, 0))
      .split(' ')
      .slice(0, 2)
      .map(Number)
  const t0 = performance.now()
  /** [ms since start, delay ms, own run ms, run-queue wait ms] */
  const ticks = []
  let last = t0
  let [run0, wait0] = sched()
  setInterval(() => {
    const now = performance.now()
    const [run, wait] = sched()
    ticks.push([now - t0, now - last - 10, (run - run0) / 1e6, (wait - wait0) / 1e6])
    last = now
    run0 = run
    wait0 = wait
  }, 10).unref()
  /** [ms since start, duration ms, major?] */
  const gcs = []
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime - t0, e.duration, e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR])
  }).observe({ entryTypes: ['gc'] })

  const p99 = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)] ?? 0
  const ms = (n) => n.toFixed(1)
  const summary = (from, to) => {
    const mine = ticks.filter(([t]) => t >= from && t < to)
    if (mine.length === 0) return null
    const delay = p99(mine.map(([, d]) => Math.max(0, d)))
    const top = mine.filter(([, d]) => d >= delay)
    const sum = (i) => top.reduce((s, x) => s + x[i], 0)
    const wall = top.reduce((s, [, d]) => s + d + 10, 0)
    const gc = gcs.filter(([t]) => t >= from && t < to)
    const gcOf = (major) => gc.filter(([, , m]) => m === major)
    const gcMs = (list) => list.reduce((s, [, d]) => s + d, 0).toFixed(0)
    const span = `${(from / 1000).toFixed(1)}-${to === Infinity ? 'end' : `${(to / 1000).toFixed(1)} s`}`
    const split = `own run ${((100 * sum(2)) / wall).toFixed(0)} %, run-queue wait ${((100 * sum(3)) / wall).toFixed(0)} %`
    return (
      `${span}: ${mine.length} ticks, delay p99 ${ms(delay)} ms, own run p99 ${ms(p99(mine.map(([, , r]) => r)))} ms; ` +
      `the p99 ticks' wall time: ${split}; ` +
      `GC: ${gcOf(false).length} scavenges ${gcMs(gcOf(false))} ms, ${gcOf(true).length} mark-compacts ${gcMs(gcOf(true))} ms`
    )
  }
  process.on('exit', () => {
    const cuts = (process.env.LOOP_PROBE_PHASES ?? '')
      .split(',')
      .filter(Boolean)
      .map((s) => Number(s) * 1000)
    const edges = [0, ...cuts, Infinity]
    // The young generation as it ended (what --max-semi-space-size allowed it to grow to) and the flags it ran with.
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
    const youngMb = young ? (young.space_size / 2 ** 20).toFixed(1) : '?'
    const lines = [
      `loop-probe pid ${process.pid}, flags ${process.execArgv.join(' ')}, new space ${youngMb} MB`,
      `  all of it, ${summary(0, Infinity)}`,
    ]
    if (cuts.length > 0) for (let i = 0; i + 1 < edges.length; i++) lines.push(`  ${summary(edges[i], edges[i + 1]) ?? 'no ticks'}`)
    process.stderr.write(lines.join('\n') + '\n')
  })
}
