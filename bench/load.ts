/**
 * The publisher load shared by the fakephone and Mosquitto ingest runs:
 * D raw mqtt.js clients (TCP_NODELAY on), each publishing valid QoS 1
 * heartbeats on its own contract topic, paced open-loop at an aggregate
 * rate. Pacing is by schedule, not by acknowledgement: each tick sends
 * whatever the schedule says is due, so a slow broker shows up as latency
 * and a shortfall in PUBACKs rather than as a slower sender. An in-flight
 * cap bounds memory when the broker falls far behind; sends skipped by it
 * are counted.
 */
import mqtt, { type MqttClient } from 'mqtt'
import type { Socket } from 'node:net'
import { encodePayload, topicFor } from '../common/contract.js'
import { errorText, inBatches, sleep, waitUntil, type Cleanup } from './lifecycle.js'
import { LatencyRecorder, LoopDelay, PeakRss, type LatencySummary } from './stats.js'

/** CONNECTs in flight at once. */
const CONNECT_CONCURRENCY = 64
const CONNECT_TIMEOUT_MS = 10_000
const TICK_MS = 5
const RSS_EVERY_MS = 100
/** After the send window, how long outstanding PUBACKs are waited for. */
const DRAIN_MS = 10_000

export interface Credentials {
  id: string
  /** Omitted for a broker without authentication. */
  secret?: string
}

export interface Publisher {
  id: string
  topic: string
  client: MqttClient
}

export interface Connected {
  publishers: Publisher[]
  failed: number
  firstError: string | null
  connectMs: number
}

export interface LoadPlan {
  rate: number
  seconds: number
  signal: AbortSignal
  /** Called as each heartbeat goes out, with its unique seq and performance.now() time. */
  onSend?: (seq: number, at: number) => void
  /**
   * The seq of this window's first heartbeat (default 0). A later window against the same broker starts where the one
   * before ended: a (device, seq) it already stored is a QoS 1 redelivery to fakephone, ignored without a write.
   */
  firstSeq?: number
}

export interface LoadResult {
  sent: number
  acked: number
  failed: number
  /** Sends the schedule wanted but the in-flight cap refused. */
  skipped: number
  /** Length of the send window, ms. */
  windowMs: number
  /** From the first send to the last PUBACK, ms. */
  spanMs: number
  startedAt: number
  puback: LatencySummary
  peakRss: number
  /** CPU time of this whole process from the first send to the end of the drain, as % of one core. */
  cpuPct: number
  loopDelay: { p99: number; max: number }
}

/** Connects every device with clientId = username = id and clean:false; failures are counted, not fatal. */
export async function connectPublishers(
  url: string,
  creds: readonly Credentials[],
  cleanup: Cleanup,
  signal: AbortSignal,
): Promise<Connected> {
  const clients: MqttClient[] = []
  cleanup.defer(`disconnect ${creds.length} publishers`, () => Promise.all(clients.map((c) => c.endAsync(true))).then(() => {}))
  let firstError: string | null = null
  const started = performance.now()
  const results = await inBatches(creds, CONNECT_CONCURRENCY, signal, async (cred) => {
    const client = mqtt.connect(url, {
      clientId: cred.id,
      username: cred.secret === undefined ? undefined : cred.id,
      password: cred.secret,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepalive: 60,
    })
    clients.push(client)
    try {
      await connected(client)
      return { id: cred.id, topic: topicFor(cred.id, 'heartbeat'), client }
    } catch (err) {
      firstError ??= `${cred.id}: ${errorText(err)}`
      return null
    }
  })
  const publishers = results.filter((p): p is Publisher => p !== null)
  if (publishers.length === 0) throw new Error(`no device could connect to ${url}: ${firstError}`)
  return { publishers, failed: creds.length - publishers.length, firstError, connectMs: performance.now() - started }
}

/** Resolves on CONNACK (and turns Nagle off); rejects on a refusal or a closed socket. */
export function connected(client: MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => {
      client.off('connect', onConnect)
      client.off('error', onError)
      client.off('close', onClose)
      client.on('error', () => {}) // later errors surface as failed publishes
      if (err) reject(err)
      else resolve()
    }
    const onConnect = (): void => {
      ;(client.stream as Socket).setNoDelay(true)
      settle()
    }
    const onError = (err: Error): void => settle(err)
    const onClose = (): void => settle(new Error('connection closed before CONNACK'))
    client.on('connect', onConnect)
    client.on('error', onError)
    client.on('close', onClose)
  })
}

/** A valid heartbeat; `seq` is unique across the whole run so each one can be traced to storage. */
export function heartbeatPayload(seq: number): string {
  return encodePayload('heartbeat', {
    seq,
    at: Date.now(),
    lat: 55.9486,
    lon: -3.1999,
    accuracy: 8,
    speed: 1.4,
    battery: 80,
    charging: false,
    network: 'wifi',
  })
}

/** Tracks the heartbeats of one run: what is out, what came back, and how long it took. */
class Flight {
  sent = 0
  acked = 0
  failed = 0
  skipped = 0
  lastAckAt = 0
  readonly latency: LatencyRecorder

  constructor(
    capacity: number,
    readonly maxInFlight: number,
  ) {
    this.latency = new LatencyRecorder(capacity)
  }

  get inFlight(): number {
    return this.sent - this.acked - this.failed
  }

  send(p: Publisher, seq: number, onSend: LoadPlan['onSend']): void {
    if (this.inFlight >= this.maxInFlight) {
      this.skipped++
      return
    }
    const payload = heartbeatPayload(seq)
    const t0 = performance.now()
    onSend?.(seq, t0)
    this.sent++
    p.client.publish(p.topic, payload, { qos: 1 }, (err) => {
      const t1 = performance.now()
      if (err) {
        this.failed++
        return
      }
      this.acked++
      this.lastAckAt = t1
      this.latency.record(t1 - t0)
    })
  }
}

/** Publishes at `plan.rate` per second, round-robin over `publishers`, for `plan.seconds`; then waits for PUBACKs. */
export async function runLoad(publishers: readonly Publisher[], plan: LoadPlan): Promise<LoadResult> {
  const flight = new Flight(Math.ceil(plan.rate * plan.seconds), Math.max(1000, plan.rate * 5))
  const rss = new PeakRss()
  const loop = new LoopDelay().start()
  const cpuBefore = process.cpuUsage()
  const startedAt = performance.now()
  await pace(publishers, plan, flight, rss)
  const sendEnd = performance.now()
  await waitUntil(() => flight.inFlight === 0, DRAIN_MS, plan.signal)
  const cpu = process.cpuUsage(cpuBefore)
  const endedAt = performance.now()
  rss.sample()
  return {
    sent: flight.sent,
    acked: flight.acked,
    failed: flight.failed,
    skipped: flight.skipped,
    windowMs: sendEnd - startedAt,
    spanMs: Math.max(sendEnd, flight.lastAckAt) - startedAt,
    startedAt,
    puback: flight.latency.summary(),
    peakRss: rss.peak,
    cpuPct: ((cpu.user + cpu.system) / 1000 / (endedAt - startedAt)) * 100,
    loopDelay: loop.stop(),
  }
}

/** The send window: every tick, sends what the schedule says is due by now (heartbeat number n, seq = firstSeq + n). */
async function pace(publishers: readonly Publisher[], plan: LoadPlan, flight: Flight, rss: PeakRss): Promise<void> {
  const total = Math.ceil(plan.rate * plan.seconds)
  const windowMs = plan.seconds * 1000
  const startedAt = performance.now()
  const firstSeq = plan.firstSeq ?? 0
  const sendUpTo = (target: number): void => {
    for (let n = flight.sent + flight.skipped; n < target; n++)
      flight.send(publishers[n % publishers.length] as Publisher, firstSeq + n, plan.onSend)
  }
  let nextRssAt = 0
  // setTimeout never fires sooner than 1 ms, so the tick cap only matters if time misbehaves.
  const maxTicks = Math.ceil(windowMs) + 10
  for (let tick = 0, elapsed = 0; elapsed < windowMs && tick < maxTicks; tick++, elapsed = performance.now() - startedAt) {
    sendUpTo(Math.min(total, Math.floor((elapsed / 1000) * plan.rate) + 1))
    if (elapsed >= nextRssAt) {
      rss.sample()
      nextRssAt = elapsed + RSS_EVERY_MS
    }
    await sleep(TICK_MS, undefined, { signal: plan.signal })
  }
  // The loop can end a tick before the last sends fall due; they belong to this window.
  sendUpTo(total)
}
