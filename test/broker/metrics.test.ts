/**
 * The broker's /metrics (broker/metrics.ts), scraped over real HTTP from a
 * real broker after real MQTT: what an operator's Prometheus would see move.
 */
import t from 'tap'
import { once } from 'node:events'
import type { ManualClock } from '../../common/clock.js'
import { encodePayload, topicFor } from '../../common/contract.js'
import { METRICS_PATH } from '../../broker/metrics.js'
import {
  addDevice,
  agentConnected,
  closed,
  connect,
  connectDevice,
  heartbeat,
  startAgent,
  startCloud,
  storedHeartbeats,
  type Cloud,
} from '../fixtures/cloud.js'
import { listening, makeOwner, provision, run, signed } from '../fixtures/owner.js'

interface Scrape {
  text: string
  contentType: string | null
  /** The value of the series written exactly so (`name{label="v"}`), or undefined when the scrape has none. */
  value(series: string): number | undefined
  /** The values of several series, by series. */
  values(...series: string[]): Record<string, number | undefined>
}

/** GET /metrics without credentials, as Prometheus does. */
async function scrape(cloud: Cloud): Promise<Scrape> {
  const res = await fetch(`${cloud.apiUrl}${METRICS_PATH}`)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  const text = await res.text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    values.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  const value = (series: string): number | undefined => values.get(series)
  return {
    text,
    contentType: res.headers.get('content-type'),
    value,
    values: (...series) => Object.fromEntries(series.map((name) => [name, value(name)])),
  }
}

/** Resolves when the store hears `deviceId` go `online` or offline (the broker's connect or disconnect handled). */
async function presence(cloud: Cloud, deviceId: string, online: boolean): Promise<void> {
  for (;;) {
    const [id, now] = (await once(cloud.broker.store, 'presence')) as [string, boolean]
    if (id === deviceId && now === online) return
  }
}

const DATA = 'fakephone_broker_devices_connected{channel="data"}'

t.test('F1: /metrics, open as /health is, counts a phone connecting, going and refused, in its own registry per broker', async (t) => {
  const cloud = await startCloud(t)
  const other = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const before = await scrape(cloud)
  t.match(before.contentType, /^text\/plain; version=0\.0\.4/)
  t.equal(before.value(DATA), 0, 'nobody connected yet')

  const up = presence(cloud, 'phone-a', true)
  const client = await connectDevice(t, cloud, 'phone-a', secret)
  await up
  const on = await scrape(cloud)
  t.equal(on.value(DATA), 1, 'the gauge says one phone is connected')
  t.equal(on.value('fakephone_broker_connects_total{channel="data"}'), 1)
  t.notMatch(on.text, /phone-a|alice/, 'no device id or account in what anyone may read')
  t.equal((await scrape(other)).value(DATA), 0, "another broker in the process counts only its own (the other's registry)")

  const down = presence(cloud, 'phone-a', false)
  await client.endAsync()
  await down
  const off = await scrape(cloud)
  t.equal(off.value(DATA), 0, 'back to none once it went')
  t.equal(off.value('fakephone_broker_disconnects_total{channel="data",reason="closed"}'), 1)

  await t.rejects(connectDevice(t, cloud, 'phone-a', 'not-the-secret'), 'a wrong secret is refused')
  await t.rejects(connect(t, cloud.mqttUrl, { clientId: 'phone-a' }), 'so is a connection without credentials')
  const refused = await scrape(cloud)
  t.equal(refused.value('fakephone_broker_connections_refused_total{channel="data",reason="bad_credentials"}'), 1)
  t.equal(refused.value('fakephone_broker_connections_refused_total{channel="data",reason="no_credentials"}'), 1)
  t.equal(refused.value('fakephone_broker_connects_total{channel="data"}'), 1, 'a refused connection is no connect')
})

t.test('F1: a heartbeat taken shows as accepted, stored and timed; a malformed one as refused with its reason', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const client = await connectDevice(t, cloud, 'phone-a', secret)
  const stored = storedHeartbeats(cloud, 1)
  await client.publishAsync(topicFor('phone-a', 'heartbeat'), encodePayload('heartbeat', heartbeat(1)), { qos: 1 })
  await stored
  const HEARTBEATS = [
    'fakephone_broker_heartbeats_accepted_total',
    'fakephone_broker_heartbeats_stored_total',
    'fakephone_broker_heartbeat_batch_write_seconds_count',
    'fakephone_broker_heartbeats_refused_total{reason="malformed"}',
  ]
  t.same(Object.values((await scrape(cloud)).values(...HEARTBEATS)), [1, 1, 1, 0], 'accepted, stored, its batch timed; none refused')

  // A refused publish closes the connection [MQTT-3.3.5-2].
  const gone = closed(client)
  client.publish(topicFor('phone-a', 'heartbeat'), '{"seq": "two"}', { qos: 1 })
  await gone
  const refused = await scrape(cloud)
  t.equal(refused.value('fakephone_broker_heartbeats_refused_total{reason="malformed"}'), 1, 'refused, with its reason')
  t.equal(refused.value('fakephone_broker_heartbeats_accepted_total'), 1, 'and not accepted')
  t.equal(refused.value('fakephone_broker_publishes_refused_total'), 1)
})

t.test(
  'F2, X3: a locate answered shows in the round-trip histogram and as succeeded; the push channel and a notification are counted',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const owner = makeOwner(t)
    const secret = await provision(cloud, owner, 'phone-a')
    const pushUp = once(cloud.broker.framework.gateway, 'online')
    const agent = await startAgent(t, cloud, 'phone-a', secret, { ownerKey: owner.publicKey })
    await agentConnected(agent)
    await listening(cloud, 'phone-a')
    await pushUp
    const before = await scrape(cloud)
    t.equal(before.value('fakephone_broker_command_receipt_seconds_count'), 0)
    t.equal(before.value('fakephone_broker_devices_connected{channel="push"}'), 1, 'the phone has its push channel up')

    const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))
    t.equal(view.state, 'succeeded')
    const delivered = once(cloud.broker.framework.queue, 'delivered')
    cloud.broker.framework.queue.enqueue('phone-a', { kind: 'message', title: 'hello', body: 'from the cloud' })
    await delivered
    const after = await scrape(cloud)
    t.same(
      after.values(
        'fakephone_broker_commands_submitted_total',
        'fakephone_broker_commands_finished_total{outcome="succeeded"}',
        'fakephone_broker_commands_finished_total{outcome="failed"}',
        'fakephone_broker_command_receipt_seconds_count',
      ),
      {
        fakephone_broker_commands_submitted_total: 1,
        'fakephone_broker_commands_finished_total{outcome="succeeded"}': 1,
        'fakephone_broker_commands_finished_total{outcome="failed"}': 0,
        fakephone_broker_command_receipt_seconds_count: 1,
      },
      'submitted, succeeded (and only that), its round trip from submit to receipt in the histogram',
    )
    t.same(after.values('fakephone_broker_notifications_queued_total', 'fakephone_broker_notifications_delivered_total'), {
      fakephone_broker_notifications_queued_total: 1,
      fakephone_broker_notifications_delivered_total: 1,
    })
  },
)

t.test(
  "X3: the database's files, the cloud's due timers (a failed run too) and the process's own figures are there to scrape",
  async (t) => {
    const cloud = await startCloud(t)
    const s = await scrape(cloud)
    t.ok((s.value('fakephone_broker_database_bytes{file="db"}') as number) > 0, 'the database has a size')
    t.ok((s.value('fakephone_broker_database_bytes{file="wal"}') as number) >= 0, 'so has its WAL (none is 0)')
    // Each due timer that starts with a run (what fell due while the broker was down) ran once.
    t.equal(s.value('fakephone_broker_due_timer_runs_total{timer="notification-expiry",outcome="ok"}'), 1)
    t.equal(s.value('fakephone_broker_due_timer_runs_total{timer="notification-expiry",outcome="failed"}'), 0, 'none failed')
    for (const name of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'process_open_fds',
    ])
      t.ok(s.value(name) !== undefined, name)

    // A rule that throws is logged and tried again (broker/due-timer.ts): its run counts as failed.
    await addDevice(cloud, 'phone-a')
    const queue = cloud.broker.framework.queue
    queue.enqueue('phone-a', { kind: 'message', title: 'soon gone', body: '', ttlMs: 60_000 })
    queue.once('expired', () => {
      throw new Error('a listener broke')
    })
    ;(cloud.clock as ManualClock).advance(60_000)
    const failed = await scrape(cloud)
    t.equal(failed.value('fakephone_broker_due_timer_runs_total{timer="notification-expiry",outcome="failed"}'), 1, 'the failed run')
    t.equal(failed.value('fakephone_broker_notifications_expired_total'), 1, 'the notification did expire')
  },
)
