/**
 * One MQTT client connection as every fakephone part wants it: TCP_NODELAY
 * on each new socket (Nagle otherwise adds 20-40 ms to every round trip),
 * mqtt.js's own fixed one-second reconnect replaced by capped exponential
 * backoff with jitter on the injected clock, and typed state events. A link
 * can be switched off and on again (X1: the cloud service cuts the data
 * channel) without building a new client.
 */
import { EventEmitter, once } from 'node:events'
import { createRequire } from 'node:module'
import type { connect, IClientOptions, MqttClient, Store } from 'mqtt'
import { RetryTimer, type BackoffOptions } from './backoff.js'
import type { Clock } from './clock.js'
import { FakephoneError } from './errors.js'
import type { Logger } from './log.js'
import type { LinkStateSchema } from './phone-status.js'
import type { z } from 'zod'

const require = createRequire(import.meta.url)

/**
 * mqtt.js's `connect`, loaded on first use: mqtt.js takes about a third of a second of CPU to load, which every CLI
 * command that never speaks MQTT (device add, the console's HTTP commands, phone data) paid at start-up.
 */
export function connectMqtt(url: string, options: IClientOptions): MqttClient {
  const mqtt = require('mqtt') as { connect: typeof connect }
  const target = mqttTarget(url)
  // mqtt.js copies and changes the options it is given: each client gets an object of its own.
  return target ? mqtt.connect({ ...target, ...options }) : mqtt.connect(url, options)
}

/**
 * A store for a link's QoS 1 messages not yet acknowledged, kept for the link's whole life: not emptied when the
 * client ends (a `pause()`, X1), so what was in flight is sent again when the link connects again.
 */
function lastingStore(): Store {
  const mqtt = require('mqtt') as { Store: typeof Store }
  return new mqtt.Store({ clean: false })
}

/** A plain broker URL: scheme, host (a name or IPv4 address) and port, nothing else (no user, path or query). */
const PLAIN_URL = /^(mqtts?|tcp):\/\/([\w.-]+):(\d+)\/?$/

/** The last plain URL taken apart: a fleet's thousands of links share one or two. */
let lastTarget: { url: string; target: Pick<IClientOptions, 'protocol' | 'host' | 'port'> } | null = null

/**
 * A plain broker URL as the options mqtt.js would make of it (protocol, host, port), or null for any other URL,
 * which mqtt.js parses itself. Given a URL, mqtt.js runs Node's legacy `url.parse` with its query for every client:
 * ~6 KB of garbage each, a fleet's ramp makes thousands.
 */
export function mqttTarget(url: string): Pick<IClientOptions, 'protocol' | 'host' | 'port'> | null {
  if (lastTarget?.url === url) return lastTarget.target
  const m = PLAIN_URL.exec(url)
  if (!m) return null
  const target = { protocol: m[1] as 'mqtt' | 'mqtts' | 'tcp', host: m[2] as string, port: Number(m[3]) }
  lastTarget = { url, target }
  return target
}

/** `off`: closed on purpose and not retrying until switched on again; `stopped`: closed for good. */
export type LinkState = z.infer<typeof LinkStateSchema>

interface LinkEvents {
  state: [state: LinkState]
  connect: []
  /**
   * A retry after the broker refused the credentials (CREDENTIALS_REFUSED) is about to connect: a listener may put a new
   * secret in the link's `secret` holder first. As often as the backoff retries, never more.
   */
  refusedRetry: []
}

/** Where a link's password is kept when it may change (F1, X1: a device given a new secret): agent/credentials.ts. */
export interface SecretHolder {
  readonly secret: string
}

export interface LinkOptions {
  url: string
  mqtt: IClientOptions
  /** The password, read from here at each connect (in place of `mqtt.password`): a new secret there is the next one's. */
  secret?: SecretHolder
  clock: Clock
  log: Logger
  backoff?: BackoffOptions
  random?: () => number
  /** Start switched off: no connection until `resume()`. */
  startOff?: boolean
}

/** A publish whose connection went away before the broker acknowledged it. */
export class LinkDownError extends FakephoneError {
  constructor(message: string) {
    super('ELINKDOWN', message)
  }
}

/**
 * CONNACK codes that refuse the client's credentials (MQTT 3.1.1: 4 bad user name or password, 5 not authorized; MQTT 5:
 * 134, 135): an unknown device id or a wrong secret. Retried all the same (the device may be registered meanwhile), but
 * said at warn with what to check, as the push channel warns of its own: at info, as any lost connection, a phone with
 * a wrong secret looked merely offline.
 */
const CREDENTIALS_REFUSED: ReadonlySet<unknown> = new Set([4, 5, 134, 135])

/**
 * Why a channel's broker refuses the device and what to do, in the one warning of a run of refusals (this link's, the
 * push channel's): a removed device is refused as an unknown one.
 */
export const REFUSED_WHY = 'removed, unknown or a wrong secret (re-register it with `fakephone device add`); retrying with backoff'

/**
 * mqtt-packet's words for bytes that are no MQTT packet: from a server's first bytes (before its CONNACK), what an HTTP
 * port answers (`HTTP/1.1 400` read as a PUBACK: "Invalid header flag bits, must be 0x0 for puback packet").
 */
const NOT_MQTT = /^(Invalid|Malformed|Cannot parse|Packet too short|Not supported)/

/** What the link says once when the broker URL's server does not speak MQTT (the broker's HTTP port given instead). */
export const NOT_MQTT_WHY =
  'this looks like an HTTP port: give the MQTT port instead (the broker prints `Broker on mqtt://HOST:N and http://HOST:M` ' +
  'at its start)'

/**
 * mqtt.js's own trace: without one of ours each client makes a `debug` instance of its own and calls it two dozen times
 * per connection with its arguments built, to print nothing (a fleet of thousands of links paid for it in its ramp).
 */
const silent = (): void => {}

/** An MQTT 3.1.1 DISCONNECT (MQTT 5 reads the same two bytes as reason 0, "normal disconnection"). */
const DISCONNECT = Buffer.from([0xe0, 0x00])

export class MqttLink extends EventEmitter<LinkEvents> {
  readonly client: MqttClient
  private readonly retry: RetryTimer
  private stateNow: LinkState
  /** False until the client has been told to connect once; mqtt.js cannot end a client that never connected. */
  private opened: boolean
  /** Why the connection failed, said once in the retry's log line (mqtt.js reports a failure as an error, then a close). */
  private lastError: string | null = null
  /** True when that failure was the broker refusing the credentials (CREDENTIALS_REFUSED). */
  private refused = false
  /** True when that failure was the server's first bytes not being MQTT (NOT_MQTT). */
  private notMqtt = false
  /** True once a server that does not speak MQTT has been warned of: said once a run, not once a retry. */
  private warnedNotMqtt = false
  /**
   * True once this run of refusals has been warned of: the retries after it say so at info (a fleet of thousands with
   * a wrong credentials file warns once per phone, not once per phone per retry).
   */
  private warnedRefused = false
  /** True while the retry now waiting follows the broker's refusal of the credentials (`phone status` says so). */
  private refusedNow = false
  /** When the first retry of this run of failures was planned (the link's clock), ms; null while connected or never failed. */
  private waitingSinceNow: number | null = null
  /** True while the retry now waiting follows a server whose first bytes were not MQTT (an HTTP port). */
  private notMqttNow = false
  /** Why the connection the retry now waiting follows failed, as its log line said (null: closed without an error). */
  private failureNow: string | null = null

  constructor(private readonly opts: LinkOptions) {
    super()
    this.retry = new RetryTimer(opts.clock, opts.backoff, opts.random)
    this.opened = !opts.startOff
    this.stateNow = opts.startOff ? 'off' : 'connecting'
    this.client = connectMqtt(opts.url, {
      log: silent,
      ...opts.mqtt,
      password: opts.secret?.secret ?? opts.mqtt.password,
      reconnectPeriod: 0,
      manualConnect: opts.startOff === true,
      incomingStore: lastingStore(),
      outgoingStore: lastingStore(),
    })
    this.client.on('connect', () => {
      const stream = this.client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      this.retry.reset()
      // A device the broker refused and takes again (registered anew, a broker restored with it) is told so once.
      if (this.warnedRefused) opts.log.info('mqtt accepted this device again')
      // After "mqtt disconnected, retrying" (a broker restarted or upgraded, one not up yet at boot), the log says when
      // the phone is back, and after how long: without it the journal's last word was that it was retrying.
      else if (this.waitingSinceNow !== null)
        opts.log.info({ url: opts.url, downMs: opts.clock.now() - this.waitingSinceNow }, 'mqtt connected again')
      this.warnedRefused = false
      this.warnedNotMqtt = false
      this.refusedNow = false
      this.notMqttNow = false
      this.failureNow = null
      this.waitingSinceNow = null
      this.setState('connected')
      this.emit('connect')
    })
    this.client.on('close', () => this.scheduleRetry())
    this.client.on('error', (err) => {
      this.lastError = err.message
      this.refused = CREDENTIALS_REFUSED.has((err as { code?: unknown }).code)
      this.notMqtt = !this.client.connected && NOT_MQTT.test(err.message)
      opts.log.debug({ err: err.message }, 'mqtt connection error')
    })
  }

  get state(): LinkState {
    return this.stateNow
  }

  /** Whether the last connection failed because the broker refused the device id or secret (until one succeeds). */
  get credentialsRefused(): boolean {
    return this.refusedNow
  }

  /** Since when (the link's clock, ms) the link has failed to connect, retry after retry; null once connected. */
  get waitingSince(): number | null {
    return this.waitingSinceNow
  }

  /** Whether the last connection failed because the server's first bytes were not MQTT (until one succeeds). */
  get answersNotMqtt(): boolean {
    return this.notMqttNow
  }

  /** While a retry waits: why the connection before it failed, as mqtt.js said (null: the broker closed it, unsaid). */
  get failure(): string | null {
    return this.failureNow
  }

  /** Delay chosen for the retry now waiting, ms (for status displays and tests). */
  get lastDelayMs(): number {
    return this.retry.lastDelayMs
  }

  get connected(): boolean {
    return this.client.connected
  }

  /**
   * Closes the connection for good; no retry follows. Callers await what must
   * arrive before calling this. The close is forced: an unforced end() waits
   * for mqtt.js's in-flight table to empty, which a broker that is gone never
   * lets happen.
   */
  async stop(): Promise<void> {
    this.setState('stopped')
    await this.close()
  }

  /**
   * As `stop()`, but the session ends with a DISCONNECT first, so the broker drops the last will: the way a client
   * that quits (not one killed or cut off) leaves. `stop()` forces the close, which sends no DISCONNECT.
   */
  async stopCleanly(): Promise<void> {
    this.setState('stopped')
    if (this.client.connected) await new Promise<void>((resolve) => this.client.stream.write(DISCONNECT, () => resolve()))
    await this.close()
  }

  /** Closes the connection and retries no more until `resume()`. Callers await what must arrive first. */
  async pause(): Promise<void> {
    if (this.stateNow === 'off' || this.stateNow === 'stopped') return
    this.setState('off')
    await this.close()
  }

  /** F1, X1: the `secret` holder has a new secret: a retry that waits goes at once, with it. */
  retryNow(): void {
    this.retry.runNow()
  }

  /** Connects again after `pause()` (or a start switched off). */
  resume(): void {
    if (this.stateNow !== 'off') return
    this.opened = true
    this.retry.reset()
    // A run of failures before the pause is over: the next one starts its own "since".
    this.waitingSinceNow = null
    this.connect()
  }

  /** Publishes at QoS 1 and resolves on PUBACK; rejects at once when not connected, or when the connection drops first. */
  async publishAcked(topic: string, payload: string): Promise<void> {
    if (!this.connected) throw new LinkDownError('the data channel is not connected')
    const left = new AbortController()
    const sent = this.client.publishAsync(topic, payload, { qos: 1 })
    // Whatever becomes of the publish after the link went down is mqtt.js's business (it resends after a reconnect).
    sent.catch(() => {})
    const dropped = once(this, 'state', { signal: left.signal }).then(() => {
      throw new LinkDownError('the data channel closed before the broker acknowledged')
    })
    try {
      await Promise.race([sent, dropped])
    } catch (err) {
      // mqtt.js may fail the publish itself as it closes ("Connection closed"): the same event, said once.
      throw err instanceof LinkDownError
        ? err
        : new LinkDownError(`the data channel closed before the broker acknowledged (${(err as Error).message})`)
    } finally {
      left.abort()
      dropped.catch(() => {})
    }
  }

  private async close(): Promise<void> {
    this.retry.cancel()
    if (this.opened) await this.client.endAsync(true)
  }

  private scheduleRetry(): void {
    if (this.stateNow === 'stopped' || this.stateNow === 'off') return
    // mqtt.js may report one loss twice; the timer keeps a single retry waiting either way, and the log says it once.
    const scheduled = this.retry.schedule(() => {
      if (this.refusedNow) this.emit('refusedRetry')
      this.connect()
    })
    if (!scheduled) return
    // Said before the state changes: a listener to 'waiting' asks why (`fakephone agent` on a terminal says it).
    this.refusedNow = this.refused
    this.failureNow = this.lastError
    this.notMqttNow = this.notMqtt
    this.waitingSinceNow ??= this.opts.clock.now()
    this.setState('waiting')
    const fields = { err: this.lastError ?? undefined, delayMs: this.retry.lastDelayMs, attempt: this.retry.attempts }
    if (this.notMqtt && !this.warnedNotMqtt) {
      this.opts.log.warn({ ...fields, url: this.opts.url }, `mqtt: ${this.opts.url} does not answer in MQTT: ${NOT_MQTT_WHY}`)
      this.warnedNotMqtt = true
    } else if (!this.refused) this.opts.log.info(fields, 'mqtt disconnected, retrying')
    else if (this.warnedRefused) this.opts.log.info(fields, 'mqtt refused this device again, retrying')
    else {
      this.opts.log.warn(fields, `mqtt refused this device: ${REFUSED_WHY}`)
      this.warnedRefused = true
    }
    this.lastError = null
    this.refused = false
    this.notMqtt = false
  }

  /** Connects again, with the password the `secret` holder has now (mqtt.js builds each CONNECT from its options). */
  private connect(): void {
    if (this.opts.secret) this.client.options.password = this.opts.secret.secret
    this.setState('connecting')
    // F1: mqtt.js's reconnect() given no stores starts with empty ones, forgetting every QoS 1 message the broker had
    // not acknowledged (a heartbeat sent as the broker restarted: never sent again, its PUBACK never heard). Given the
    // link's own, it sends them again on the new connection before it says it is connected.
    const { incomingStore, outgoingStore } = this.client
    this.client.reconnect({ incomingStore, outgoingStore })
  }

  private setState(state: LinkState): void {
    this.stateNow = state
    this.emit('state', state)
  }
}
