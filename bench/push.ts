/**
 * Scenario 4, push delivery (X1, X3): N real `Agent`s in this process, each
 * with its push channel up to a real CloudBroker. Two measurements:
 *  - live: notifications queued at the cloud at a steady aggregate rate,
 *    round-robin over the agents; latency is from queuing to the phone
 *    showing it (after writing its id to disk), p50/p99/max;
 *  - delayed: every agent revokes its network permission, K notifications
 *    each are queued, the permission comes back; how long until the cloud
 *    has every one delivered, and that each was shown once, in order.
 * Each agent's data channel is up too (heartbeats every minute), as on a phone.
 */
import type { Agent } from '../agent/agent.js'
import { FixedSource } from '../agent/location.js'
import { SystemClock } from '../common/clock.js'
import { benchAgent, deviceIds, registerDevices, startCloud, type BenchCloud, type Device } from './cloud.js'
import type { ScenarioContext } from './context.js'
import { startAgents, stopAgents } from './fleet.js'
import { sleep, waitUntil, type Cleanup } from './lifecycle.js'
import { LatencyRecorder, LoopDelay, type LatencySummary } from './stats.js'

const DRAIN_LIMIT_MS = 30_000
const TICK_MS = 10
/** Notifications each agent gets while its permission is revoked. */
const DELAYED_PER_AGENT = 5

export interface PushResult {
  agents: number
  connected: number
  connectMs: number
  rate: number
  seconds: number
  sent: number
  shown: number
  latency: LatencySummary
  loopDelay: { p99: number; max: number }
  delayed: { queued: number; delivered: number; drainMs: number; duplicates: number; outOfOrder: number }
}

function makeAgent(ctx: ScenarioContext, cloud: BenchCloud, device: Device, clock: SystemClock): Agent {
  return benchAgent(ctx, cloud, device, clock, {
    location: new FixedSource({ lat: 55.95, lon: -3.19 }),
    heartbeatMs: 60_000,
    jitter: 0.1,
    pushUrl: cloud.pushUrl,
  })
}

const pushUp = (a: Agent): boolean => a.status().framework.pushChannel === 'connected'

export async function runPush(ctx: ScenarioContext, cleanup: Cleanup): Promise<PushResult> {
  const { args } = ctx
  const cloud = await startCloud(cleanup, ctx.log, 'push')
  ctx.progress(`push: registering ${args.agents} devices`)
  const devices = await registerDevices(cloud, deviceIds('push', args.agents), ctx.signal)
  const clock = new SystemClock()
  const agents = devices.map((d) => makeAgent(ctx, cloud, d, clock))
  cleanup.defer(`stop ${agents.length} agents`, () => stopAgents(agents, ctx.progress))
  ctx.progress(`push: starting ${args.agents} agents`)
  const connectStart = performance.now()
  const connected = await startAgents(agents, ctx.signal, pushUp)
  const connectMs = performance.now() - connectStart
  ctx.progress(`push: ${connected}/${args.agents} push channels up; ${args.pushRate}/s for ${args.seconds} s`)
  const live = await measureLive(cloud, agents, args.pushRate, args.seconds, ctx.signal)
  ctx.progress(`push: revoking the permission on every agent, ${DELAYED_PER_AGENT} notifications each, then restoring it`)
  const delayed = await measureDelayed(cloud, agents, ctx.signal)
  return { agents: args.agents, connected, connectMs, rate: args.pushRate, seconds: args.seconds, ...live, delayed }
}

/** Queues at `rate`/s round-robin for `seconds`, then waits (bounded) for the phones to show them. */
async function measureLive(cloud: BenchCloud, agents: readonly Agent[], rate: number, seconds: number, signal: AbortSignal) {
  const queue = cloud.broker.framework.queue
  const queuedAt = new Map<string, number>()
  const latency = new LatencyRecorder(Math.ceil(rate * seconds))
  let shown = 0
  const onShown = (n: { id: string }): void => {
    const at = queuedAt.get(n.id)
    if (at === undefined) return
    queuedAt.delete(n.id)
    latency.record(performance.now() - at)
    shown++
  }
  for (const a of agents) a.framework.on('notification', onShown)
  const loop = new LoopDelay().start()
  const started = performance.now()
  let sent = 0
  try {
    for (let tick = 0; tick < seconds * (1000 / TICK_MS) + 100 && performance.now() - started < seconds * 1000; tick++) {
      const due = Math.min(rate * seconds, Math.floor(((performance.now() - started) / 1000) * rate))
      for (; sent < due; sent++) {
        const agent = agents[sent % agents.length] as Agent
        const at = performance.now()
        const record = queue.enqueue(agent.status().id, { kind: 'message', title: `bench ${sent}`, body: '', ttlMs: 3_600_000 })
        queuedAt.set(record.id, at)
      }
      await sleep(TICK_MS, undefined, { signal })
    }
    await waitUntil(() => shown >= sent, DRAIN_LIMIT_MS, signal, 20)
  } finally {
    for (const a of agents) a.framework.off('notification', onShown)
  }
  return { sent, shown, latency: latency.summary(), loopDelay: loop.stop() }
}

/** X3 at scale: everything queued while the permission is revoked arrives once, in order, when it returns. */
async function measureDelayed(cloud: BenchCloud, agents: readonly Agent[], signal: AbortSignal): Promise<PushResult['delayed']> {
  const queue = cloud.broker.framework.queue
  await Promise.all(agents.map((a) => a.framework.setNetworkPermission(false)))
  await waitUntil(() => agents.every((a) => !cloud.broker.framework.gateway.connected(a.status().id)), DRAIN_LIMIT_MS, signal, 20)
  const expected = new Map<string, string[]>()
  for (const a of agents) {
    const id = a.status().id
    expected.set(
      id,
      Array.from({ length: DELAYED_PER_AGENT }, (_, i) => queue.enqueue(id, { kind: 'weather', title: `delayed ${i}`, body: '' }).id),
    )
  }
  const seen = new Map<string, string[]>()
  const listeners = agents.map((a) => {
    const got: string[] = []
    seen.set(a.status().id, got)
    const listener = (n: { id: string }): void => void got.push(n.id)
    a.framework.on('notification', listener)
    return () => a.framework.off('notification', listener)
  })
  const queued = agents.length * DELAYED_PER_AGENT
  const before = cloud.broker.framework.gateway.counters.delivered
  const started = performance.now()
  await Promise.all(agents.map((a) => a.framework.setNetworkPermission(true)))
  await waitUntil(() => cloud.broker.framework.gateway.counters.delivered - before >= queued, DRAIN_LIMIT_MS, signal, 10)
  const drainMs = performance.now() - started
  for (const off of listeners) off()
  let duplicates = 0
  let outOfOrder = 0
  for (const [id, want] of expected) {
    const got = seen.get(id) ?? []
    duplicates += got.length - new Set(got).size
    if (got.join() !== want.join()) outOfOrder++
  }
  return { queued, delivered: cloud.broker.framework.gateway.counters.delivered - before, drainMs, duplicates, outOfOrder }
}
