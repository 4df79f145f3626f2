/**
 * One phone of `fakephone fleet run --profile owntracks`: instead of
 * fakephone's own contract it speaks OwnTracks (common/owntracks.ts) on any
 * MQTT broker, as the OwnTracks app in MQTT mode does. It publishes a
 * location to `owntracks/USER/DEVICE` (QoS 1, retained) on its heartbeat pace
 * (F1), sets `{"_type":"lwt","tst":<first connect>}` as its last will on the
 * same topic (QoS 1, not retained), and answers a `reportLocation` cmd on
 * `owntracks/USER/DEVICE/cmd` with a location whose `t` is `r`. Locations are
 * sent only while connected, as an agent's heartbeats are; a heartbeat counts
 * as acknowledged on its PUBACK. One MQTT connection, one clock timer and a
 * battery: nothing else per phone.
 */
import { EventEmitter, once } from 'node:events'
import { Battery, type BatteryModel } from '../agent/battery.js'
import { readingOf } from '../agent/heartbeat.js'
import type { LocationSource } from '../agent/location.js'
import type { BackoffOptions } from '../common/backoff.js'
import type { Clock, Timer } from '../common/clock.js'
import { decodeJson, type Heartbeat } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import { MqttLink, type LinkState } from '../common/mqtt.js'
import { locationPayload, OwnTracksCmdSchema, owntracksTopic } from '../common/owntracks.js'

export interface OwnTracksPhoneOptions {
  brokerUrl: string
  /** The OwnTracks user (fakephone: the device's account) and device (its id). */
  user: string
  device: string
  /** The broker's credentials for this phone; none: anonymous (a plain Mosquitto with `allow_anonymous true`). */
  password?: string
  clock: Clock
  log: Logger
  location: LocationSource
  heartbeatMs: number
  jitter: number
  random: () => number
  /** Its level at `at` (default: the start), and its model. */
  battery: { level: number; model: BatteryModel; at?: number }
  backoff?: BackoffOptions
}

interface OwnTracksPhoneEvents {
  heartbeat: [hb: Heartbeat]
  heartbeatAcked: [hb: Heartbeat]
  channel: [state: LinkState]
  /** A cmd arrived: its action, and whether the phone answered it. */
  command: [action: string, answered: boolean]
}

export class OwnTracksPhone extends EventEmitter<OwnTracksPhoneEvents> {
  private readonly link: MqttLink
  private readonly battery: Battery
  private readonly topic: string
  private timer: Timer | null = null
  /**
   * The next location's number, for the run's tally only (the cloud numbers OwnTracks locations itself). It starts at
   * the clock's now in ms, as an agent's seq does without settings (agent/heartbeat-seq.ts): a phone back from an outage
   * is a new OwnTracksPhone of the same device, and one that counted from 0 again had its locations tallied as
   * duplicates of the life before (none lost, some duplicated, acked below sent).
   */
  private seq: number
  /** The locations published and not acknowledged (or failed) yet. */
  private readonly inflight = new Set<Promise<void>>()

  constructor(private readonly opts: OwnTracksPhoneOptions) {
    super()
    const now = opts.clock.now()
    this.seq = now
    this.battery = new Battery({ level: opts.battery.level, at: opts.battery.at ?? now }, opts.battery.model)
    this.topic = owntracksTopic(opts.user, opts.device)
    this.link = new MqttLink({
      url: opts.brokerUrl,
      clock: opts.clock,
      log: opts.log,
      backoff: opts.backoff,
      random: opts.random,
      startOff: true,
      mqtt: {
        clientId: opts.device,
        ...(opts.password === undefined ? {} : { username: opts.device, password: opts.password }),
        clean: true,
        // The booklet: the lwt's tst is when the app first connected.
        will: {
          topic: this.topic,
          payload: Buffer.from(JSON.stringify({ _type: 'lwt', tst: Math.floor(now / 1000) })),
          qos: 1,
          retain: false,
        },
      },
    })
    this.link.on('state', (state) => this.emit('channel', state))
    this.link.on('connect', () => {
      this.link.client.subscribe(owntracksTopic(opts.user, opts.device, 'cmd'), { qos: 1 }, (err, granted) => {
        if (err || granted?.[0]?.qos === 128) opts.log.warn({ err: err?.message }, 'owntracks: the broker refused the cmd subscription')
      })
    })
    this.link.client.on('message', (_topic, payload) => this.onCmd(payload))
  }

  status(): { dataChannel: LinkState; cloudService: boolean } {
    return { dataChannel: this.dataChannelState, cloudService: this.cloudServiceOn }
  }

  get dataChannelState(): LinkState {
    return this.link.state
  }

  /** An OwnTracks phone has no cloud-service switch: always on. */
  readonly cloudServiceOn = true

  /** F1: an OwnTracks location carries no seq (the cloud numbers them): nothing to wait for before sending one. */
  readonly heartbeatsReady = true

  /** Connects and starts the location pace; resolves once connected (or retrying: the link keeps trying on the clock). */
  async start(): Promise<void> {
    this.link.resume()
    this.schedule()
    // resume() said `connecting`; the next state is `connected` or `waiting` (a retry on the clock).
    await once(this.link, 'state')
  }

  /**
   * A clean stop: the locations in flight acknowledged first (as an agent's goodbye waits for its heartbeats' PUBACKs),
   * then DISCONNECT, so the broker does not publish the last will. A connection that drops meanwhile fails them at once.
   */
  async stop(): Promise<void> {
    this.timer?.cancel()
    this.timer = null
    if (this.link.connected) await Promise.all(this.inflight)
    await this.link.stopCleanly()
  }

  /** An abrupt end (the app killed, the network gone): the socket is dropped without DISCONNECT, so the broker publishes the last will. */
  async kill(): Promise<void> {
    this.timer?.cancel()
    this.timer = null
    this.link.client.stream.destroy()
    await this.link.stop()
  }

  private schedule(): void {
    const { heartbeatMs, jitter, random } = this.opts
    this.timer = this.opts.clock.after(heartbeatMs * (1 + jitter * (2 * random() - 1)), () => {
      this.schedule()
      this.publishLocation()
    })
  }

  private onCmd(payload: Buffer): void {
    const cmd = decodeJson(OwnTracksCmdSchema, payload)
    if (!cmd.ok) {
      this.opts.log.warn({ reason: cmd.reason }, 'owntracks: cmd ignored')
      return
    }
    const answered = cmd.value.action === 'reportLocation'
    if (answered) this.publishLocation('r')
    else this.opts.log.info({ action: cmd.value.action }, 'owntracks: cmd action not supported, ignored')
    this.emit('command', cmd.value.action, answered)
  }

  /** One location, when connected and there is a fix: `t` is `r` for an answer to reportLocation, none for the regular pace. */
  private publishLocation(t?: 'r'): void {
    const now = this.opts.clock.now()
    const fix = this.opts.location.fix(now)
    if (!this.link.connected || !fix) return
    const hb: Heartbeat = { seq: this.seq++, ...readingOf(now, fix, this.battery.read(now), 'wifi') }
    const payload = JSON.stringify(locationPayload(hb, this.opts.device, t))
    this.emit('heartbeat', hb)
    const acked = new Promise<void>((resolve) =>
      this.link.client.publish(this.topic, payload, { qos: 1, retain: true }, (err) => {
        if (err) this.opts.log.warn({ err: err.message }, 'owntracks: location not acknowledged')
        else this.emit('heartbeatAcked', hb)
        resolve()
      }),
    )
    this.inflight.add(acked)
    void acked.then(() => this.inflight.delete(acked))
  }
}
