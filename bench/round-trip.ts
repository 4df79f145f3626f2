/**
 * The command round-trip probe of the three-way comparison (issue 14, F2),
 * run while the heartbeat load goes on, one request at a time at a fixed
 * pace:
 *  - fakephone: an owner-signed `locate` submitted through the console API
 *    (POST /api/devices/:id/commands?wait=, one request that answers with the
 *    command once final, as the CLI's remote commands submit),
 *    run by a real Agent (its executor, its journal) and answered with the
 *    device's signed receipt, which the probe verifies with the device key;
 *    one round trip is submit → verified receipt;
 *  - stock Aedes and Mosquitto: a raw MQTT request/response through the
 *    broker: a requester publishes a request (QoS 1) on the device's `cmd`
 *    topic, a responder subscribed there answers it on `result` (QoS 1), and
 *    one round trip is publish → answer received.
 * Both sides of each probe live in the bench process, like the load.
 */
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { Agent } from '../agent/agent.js'
import { FixedSource } from '../agent/location.js'
import { ConsoleClient } from '../cli/console-client.js'
import { SystemClock } from '../common/clock.js'
import { topicFor } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import { verifyPayload } from '../common/signing.js'
import { BENCH_BACKOFF } from './cloud.js'
import { JournalTimer } from './command-probe.js'
import type { Owner } from './commands.js'
import { errorText, sleep, withTimeout } from './lifecycle.js'
import { connected } from './load.js'
import { LatencyRecorder } from './stats.js'

/** Time between the starts of two probes, ms: 40 a second, a small share of the broker's load. */
const PROBE_EVERY_MS = 25
/** One round trip's limit, ms. */
const PROBE_LIMIT_MS = 10_000
/** Round trips run before the measured ones: JIT, the agent's first journal writes, subscriptions settling. */
const PROBE_WARMUP = 5
const FIX = { lat: 55.9486, lon: -3.1999 }
/** The probe agent sends no heartbeats of its own during a run. */
const AGENT_HEARTBEAT_MS = 3_600_000

export interface RoundTripSummary {
  /** What one round trip is: 'signed command' (fakephone) or 'raw MQTT' (the others). */
  kind: 'signed command' | 'raw MQTT'
  count: number
  failed: number
  firstFailure: string | null
  p50: number | null
  p99: number | null
  /** fakephone: mean time per round trip the agent spent on journal steps before its receipt (each durable: fdatasync). */
  journalMs: number | null
}

/** One request/response, resolved when the answer is in and checked; rejects with the reason it failed. */
export interface RoundTripProbe {
  readonly kind: RoundTripSummary['kind']
  /** The agent's journal writes, timed (fakephone). */
  readonly journal?: JournalTimer
  once(): Promise<void>
  close(): Promise<void>
}

/** Runs `probe` one at a time, a start every PROBE_EVERY_MS (or right after a slower one), until `stop` says so. */
export async function probeRoundTrips(probe: RoundTripProbe, stop: () => boolean, signal: AbortSignal): Promise<RoundTripSummary> {
  const latency = new LatencyRecorder(4096)
  let failed = 0
  let firstFailure: string | null = null
  probe.journal?.reset()
  while (!stop()) {
    signal.throwIfAborted()
    const started = performance.now()
    try {
      await probe.once()
      latency.record(performance.now() - started)
    } catch (err) {
      failed++
      firstFailure ??= errorText(err)
    }
    const rest = PROBE_EVERY_MS - (performance.now() - started)
    if (rest > 0) await sleep(rest, undefined, { signal })
  }
  const s = latency.summary()
  const journalMs = probe.journal ? probe.journal.inPath.totalMs / Math.max(1, s.count + failed) : null
  return { kind: probe.kind, count: s.count, failed, firstFailure, p50: s.p50, p99: s.p99, journalMs }
}

/** PROBE_WARMUP round trips, not measured; the first also waits for the responder to be listening. */
export async function warmUp(probe: RoundTripProbe): Promise<void> {
  for (let i = 0; i < PROBE_WARMUP; i++) await probe.once()
}

async function connectClient(url: string, clientId: string, username?: string, password?: string): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId, username, password, clean: true, protocolVersion: 4, reconnectPeriod: 0 })
  try {
    await connected(client)
  } catch (err) {
    await client.endAsync(true)
    throw err
  }
  return client
}

export interface RawEndpoints {
  url: string
  /** The responder's credentials (a device); its `cmd` and `result` topics carry the requests and answers. */
  responder: { id: string; secret?: string }
  /** The requester's credentials: a user the broker lets publish on the responder's `cmd` topic. */
  requester: { id: string; secret?: string }
}

/** A raw MQTT request/response pair (stock Aedes, Mosquitto). */
export async function rawProbe(ends: RawEndpoints): Promise<RoundTripProbe> {
  const { responder: r, requester: q } = ends
  const request = topicFor(r.id, 'cmd')
  const answer = topicFor(r.id, 'result')
  const clients: MqttClient[] = []
  const close = async (): Promise<void> => {
    await Promise.all(clients.map((c) => c.endAsync(true)))
  }
  try {
    const responder = await connectClient(ends.url, r.id, r.secret === undefined ? undefined : r.id, r.secret)
    clients.push(responder)
    const requester = await connectClient(ends.url, `${q.id}-rt`, q.secret === undefined ? undefined : q.id, q.secret)
    clients.push(requester)
    responder.on('message', (_topic, payload) => responder.publish(answer, payload, { qos: 1 }))
    await responder.subscribeAsync(request, { qos: 1 })
    await requester.subscribeAsync(answer, { qos: 1 })
    const waiting = new Map<string, () => void>()
    requester.on('message', (_topic, payload) => waiting.get(payload.toString())?.())
    let n = 0
    const once = (): Promise<void> => {
      const id = String(++n)
      const answered = new Promise<void>((resolve) => waiting.set(id, resolve))
      requester.publish(request, id, { qos: 1 })
      return withTimeout(answered, PROBE_LIMIT_MS, `answer ${id}`).finally(() => waiting.delete(id))
    }
    return { kind: 'raw MQTT', once, close }
  } catch (err) {
    await close()
    throw err
  }
}

export interface CommandEndpoints {
  mqttUrl: string
  apiUrl: string
  consoleToken: string
  /** A registered device the owner provisioned (its receipt key is in `owner.keys`). */
  device: { id: string; secret: string }
  owner: Owner
  /** The probe agent's data directory. */
  dataDir: string
  log: Logger
}

/** fakephone's round trip: a signed command through the console API to a real Agent, and its verified receipt. */
export async function commandProbe(ends: CommandEndpoints): Promise<RoundTripProbe> {
  const { device, owner } = ends
  const agent = new Agent({
    id: device.id,
    secret: device.secret,
    brokerUrl: ends.mqttUrl,
    dataDir: join(ends.dataDir, device.id),
    clock: new SystemClock(),
    log: ends.log.child({ module: 'agent', device: device.id }),
    backoff: BENCH_BACKOFF,
    location: new FixedSource(FIX),
    heartbeatMs: AGENT_HEARTBEAT_MS,
    jitter: 0,
    ownerKey: owner.publicKey,
  })
  const journal = new JournalTimer()
  const detach = journal.attach(agent.remote.journal)
  await agent.start()
  const api = new ConsoleClient(ends.apiUrl, ends.consoleToken)
  const once = async (): Promise<void> => {
    const command = owner.sign(device.id, 'locate', {})
    const { command: view } = await api.submitAndWait(command, PROBE_LIMIT_MS)
    if (view.state !== 'succeeded') throw new Error(`${view.state}: ${view.reason ?? 'no final state in time'}`)
    // As the console does (cli/remote-commands.ts): the device key the keys folder holds now.
    const deviceKey = owner.keys.deviceKey(device.id)
    if (!view.receipt || !deviceKey || !verifyPayload(view.receipt, deviceKey)) throw new Error('the receipt is not signed by the device')
  }
  return {
    kind: 'signed command',
    journal,
    once,
    close: async () => {
      await agent.stop()
      detach()
    },
  }
}
