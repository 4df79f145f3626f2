/**
 * The compare bench's round-trip probe (bench/round-trip.ts, issue 14, F2) on real sockets: a signed locate through the
 * console API to a real agent with its receipt verified, a raw request/response through stock Aedes, and the pacing
 * loop's counts.
 */
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { Owner } from '../../bench/commands.js'
import { commandProbe, probeRoundTrips, rawProbe, warmUp, type RoundTripProbe } from '../../bench/round-trip.js'
import { SystemClock } from '../../common/clock.js'
import { startAedes } from '../fixtures/aedes.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

const never = new AbortController().signal

/** Stops the probe loop after `n` checks. */
const after = (n: number): (() => boolean) => {
  let left = n
  return () => left-- <= 0
}

t.test('F2: a signed command through the console API to a real agent, its receipt verified, is one round trip', async (t) => {
  // The agent and the owner's signatures run on the system clock: the broker does too.
  const cloud = await startCloud(t, {}, new SystemClock())
  const owner = new Owner(tempDir(t, 'fakephone-owner-'))
  const secret = await addDevice(cloud, 'probe-a', 'bench')
  owner.keys.rememberDevice('probe-a', secret)
  const probe = await commandProbe({
    mqttUrl: cloud.mqttUrl,
    apiUrl: cloud.apiUrl,
    consoleToken: cloud.consoleToken,
    device: { id: 'probe-a', secret },
    owner,
    dataDir: tempDir(t, 'fakephone-phone-'),
    log: cloud.logs.logger(),
  })
  onEnd(t, () => probe.close())
  t.equal(probe.kind, 'signed command')
  await warmUp(probe)
  const summary = await probeRoundTrips(probe, after(3), never)
  t.match(summary, { kind: 'signed command', count: 3, failed: 0, firstFailure: null })
  t.ok((summary.p99 ?? 0) >= (summary.p50 ?? Infinity), 'p99 is at least p50')
  t.ok((summary.journalMs ?? 0) > 0, "the agent's journal writes are timed")
  t.equal(cloud.broker.commands.list('probe-a').filter((c) => c.state === 'succeeded').length, 3 + 5, 'every command succeeded')

  // A receipt the owner cannot verify (the owner holds another device key) fails the round trip, with its reason.
  owner.keys.rememberDevice('probe-a', 'not-the-secret')
  const forged = await probeRoundTrips(probe, after(1), never)
  t.match(forged, { count: 0, failed: 1, firstFailure: /not signed by the device/ })
})

t.test('a raw MQTT request/response through stock Aedes is one round trip', async (t) => {
  const { url } = await startAedes(t)
  const probe = await rawProbe({ url, responder: { id: 'dev-a' }, requester: { id: 'cloud', secret: 'x' } })
  onEnd(t, () => probe.close())
  const summary = await probeRoundTrips(probe, after(4), never)
  t.match(summary, { kind: 'raw MQTT', count: 4, failed: 0, firstFailure: null })
  t.ok(summary.p50 !== null && summary.p50 > 0)
  t.equal(summary.journalMs, null, 'no journal on a raw round trip')
})

t.test('a raw probe that cannot connect says why', async (t) => {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onEnd(t, () => new Promise<void>((resolve) => server.close(() => resolve())))
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
  await t.rejects(rawProbe({ url, responder: { id: 'dev-a' }, requester: { id: 'cloud' } }))
})

t.test('the loop counts failures, keeps the first reason, and stops on abort', async (t) => {
  let calls = 0
  const flaky: RoundTripProbe = {
    kind: 'raw MQTT',
    once: () => (++calls % 2 ? Promise.reject(new Error(`no answer ${calls}`)) : Promise.resolve()),
    close: () => Promise.resolve(),
  }
  const summary = await probeRoundTrips(flaky, after(4), never)
  t.match(summary, { count: 2, failed: 2, firstFailure: 'no answer 1' })
  const aborted = new AbortController()
  aborted.abort(new Error('stop'))
  await t.rejects(
    probeRoundTrips(flaky, () => false, aborted.signal),
    /stop/,
  )
})
