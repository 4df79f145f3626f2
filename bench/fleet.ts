/**
 * Scenario 2, fleet mode: N real `Agent`s in this one process on the
 * system clock, each with its own data directory and a short heartbeat
 * interval, all connected to a real CloudBroker. Measures how many get
 * connected, heartbeats stored per second, the memory each agent costs and
 * the event-loop delay they cause.
 */
import type { Agent } from '../agent/agent.js'
import { DEMO_ROUTE, RouteSource } from '../agent/location.js'
import { SystemClock } from '../common/clock.js'
import { benchAgent, deviceIds, registerDevices, startCloud, type BenchCloud, type Device } from './cloud.js'
import { errorText, inBatches, sleep, waitUntil, type Cleanup } from './lifecycle.js'
import type { ScenarioContext } from './context.js'
import { LoopDelay, MB, PeakRss } from './stats.js'

const JITTER = 0.1
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const START_CONCURRENCY = 50
const CONNECT_LIMIT_MS = 30_000
/** Reconnect backoff if an agent loses its link; short, as the run is short. */

export interface FleetResult {
  agents: number
  connected: number
  /** Skipped before measuring, so every agent is past its first heartbeat. */
  warmupMs: number
  connectMs: number
  heartbeatMs: number
  jitter: number
  seconds: number
  /** Heartbeats the agents sent during the window. */
  sent: number
  stored: number
  storedPerS: number
  /** What N agents at this interval should produce. */
  expectedPerS: number
  rssBeforeMb: number
  rssAfterMb: number
  peakRssMb: number
  rssPerAgentKb: number
  loopDelay: { p99: number; max: number }
}

function makeAgent(ctx: ScenarioContext, cloud: BenchCloud, device: Device, index: number, clock: SystemClock): Agent {
  return benchAgent(ctx, cloud, device, clock, {
    location: new RouteSource(DEMO_ROUTE, 1.4, clock.now() - index * 7_000),
    heartbeatMs: ctx.args.agentHeartbeatMs,
    jitter: JITTER,
  })
}

const dataUp = (a: Agent): boolean => a.status().dataChannel === 'connected'

/** Starts every agent and waits (bounded) until all are up (by default: their data channel); resolves with how many are. */
export async function startAgents(agents: readonly Agent[], signal: AbortSignal, isUp: (a: Agent) => boolean = dataUp): Promise<number> {
  await inBatches(agents, START_CONCURRENCY, signal, (a) => a.start())
  await waitUntil(() => agents.every(isUp), CONNECT_LIMIT_MS, signal, 20)
  return agents.filter(isUp).length
}

export async function stopAgents(agents: readonly Agent[], report: (line: string) => void): Promise<void> {
  const results = await Promise.allSettled(agents.map((a) => a.stop()))
  const failed = results.filter((r) => r.status === 'rejected')
  if (failed[0]?.status === 'rejected') report(`${failed.length} agents did not stop cleanly: ${errorText(failed[0].reason)}`)
}

const sentSoFar = (agents: readonly Agent[]): number => agents.reduce((sum, a) => sum + a.status().heartbeatsSent, 0)

export async function runFleet(ctx: ScenarioContext, cleanup: Cleanup): Promise<FleetResult> {
  const { args } = ctx
  const cloud = await startCloud(cleanup, ctx.log, 'fleet')
  ctx.progress(`fleet: registering ${args.agents} devices`)
  const devices = await registerDevices(cloud, deviceIds('agent', args.agents), ctx.signal)
  const clock = new SystemClock()
  const rssBefore = process.memoryUsage.rss()
  const agents = devices.map((d, i) => makeAgent(ctx, cloud, d, i, clock))
  cleanup.defer(`stop ${agents.length} agents`, () => stopAgents(agents, ctx.progress))
  ctx.progress(`fleet: starting ${args.agents} agents`)
  const connectStart = performance.now()
  const connected = await startAgents(agents, ctx.signal)
  const connectMs = performance.now() - connectStart
  const warmupMs = args.agentHeartbeatMs * (1 + JITTER)
  ctx.progress(
    `fleet: ${connected}/${args.agents} connected; ${secs(warmupMs)} warm-up (one heartbeat each), then ${args.seconds} s measured`,
  )
  await sleep(warmupMs, undefined, { signal: ctx.signal })
  const window = await measureWindow(cloud, agents, args.seconds, ctx.signal)
  const rssAfter = process.memoryUsage.rss()
  return {
    agents: args.agents,
    connected,
    warmupMs,
    connectMs,
    heartbeatMs: args.agentHeartbeatMs,
    jitter: JITTER,
    seconds: args.seconds,
    ...window,
    storedPerS: window.stored / (window.elapsedMs / 1000),
    expectedPerS: (connected * 1000) / args.agentHeartbeatMs,
    rssBeforeMb: rssBefore / MB,
    rssAfterMb: rssAfter / MB,
    rssPerAgentKb: (rssAfter - rssBefore) / args.agents / 1024,
  }
}

interface FleetWindow {
  elapsedMs: number
  sent: number
  stored: number
  peakRssMb: number
  loopDelay: { p99: number; max: number }
}

/** Lets the fleet run for `seconds`, counting what is sent and stored and sampling RSS and loop delay. */
async function measureWindow(cloud: BenchCloud, agents: readonly Agent[], seconds: number, signal: AbortSignal): Promise<FleetWindow> {
  let stored = 0
  const onStored = (n: number): void => {
    stored += n
  }
  const rss = new PeakRss()
  const sentBefore = sentSoFar(agents)
  cloud.broker.store.on('stored', onStored)
  const loop = new LoopDelay().start()
  const started = performance.now()
  try {
    for (let i = 0; i < seconds * 10 + 10 && performance.now() - started < seconds * 1000; i++) {
      await sleep(Math.min(100, started + seconds * 1000 - performance.now()), undefined, { signal })
      rss.sample()
    }
  } finally {
    cloud.broker.store.off('stored', onStored)
  }
  const elapsedMs = performance.now() - started
  return { elapsedMs, sent: sentSoFar(agents) - sentBefore, stored, peakRssMb: rss.peak / MB, loopDelay: loop.stop() }
}
