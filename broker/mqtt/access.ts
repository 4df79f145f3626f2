/**
 * Who may connect, publish and subscribe. Two roles:
 *  - a device: username = client id = its device id, password = its secret;
 *    it may publish only the device→cloud kinds under its own topic, each
 *    payload checked against the contract, and subscribe only to the
 *    cloud→device kinds under its own topic;
 *  - the console: username `console`, password = the console token, client
 *    id starting with `console.`; it may watch everything under `fp/v1/`.
 * A device retains only the kinds the contract retains (presence, status).
 * `$SYS/` stays closed to everyone. Refused subscriptions get a SUBACK
 * failure (0x80); a refused publish closes the connection [MQTT-3.3.5-2].
 * A client without an authenticated principal -- Aedes still hands on what
 * arrives while it answers a refused CONNECT -- is refused everywhere, and
 * so is a device removed from the registry since it connected. A heartbeat
 * is refused, before its PUBACK, while the database refuses writes and the
 * heartbeats held for it reached their bound (StateStore.holdingBack): the
 * device keeps it and sends it again. Every hook
 * runs inside an error boundary: whatever it throws is logged and the
 * client refused, never passed to the process.
 */
import type { AedesOptions, AuthenticateError, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import { timingSafeEqual, createHash } from 'node:crypto'
import {
  DEVICE_PUBLISH_KINDS,
  TOPICS,
  TOPIC_ROOT,
  decodeJson,
  decodePayload,
  payloadDecoder,
  parseTopic,
  topicFor,
  type DeviceKind,
  type PayloadOf,
  type TopicKind,
} from '../../common/contract.js'
import type { Logger } from '../../common/log.js'
import { OWNTRACKS_ROOT, OwnTracksBaseSchema, owntracksTopic, parseOwnTracksTopic, type OwnTracksBase } from '../../common/owntracks.js'
import type { DeviceRegistry } from '../devices/registry.js'
import { quoted } from '../../common/terminal-text.js'

/**
 * A device's account is its OwnTracks user (owntracks/<account>/<device id>). `heartbeatTopic` is the one topic a device
 * publishes on every second, `fp/v1/<its id>/heartbeat`, kept so that checkPublish knows it by one string comparison
 * (null where the contract would not parse that topic as the device's, which a registered id never is).
 */
export type Principal = { role: 'device'; deviceId: string; account: string; heartbeatTopic: string | null } | { role: 'console' }

export const CONSOLE_USER = 'console'
const CONSOLE_CLIENT_PREFIX = 'console.'

/** Return codes of CONNACK in MQTT 3.1.1 [MQTT-3.2.2.3]. */
const IDENTIFIER_REJECTED = 2
const BAD_USERNAME_OR_PASSWORD = 4

export type AcceptedMessage =
  | { [K in DeviceKind]: { deviceId: string; kind: K; value: PayloadOf<K> } }[DeviceKind]
  | { deviceId: string; kind: 'owntracks'; value: OwnTracksBase }

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

const digest = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest()

/** Refused subscriptions logged one by one per connection; the rest are summed up in one line. */
export const LOGGED_SUBSCRIBE_REFUSALS = 10

/** The refusal reason of a retained publish on a kind the contract never retains. */
const neverRetained = (kind: string): string => `"${kind}" is never retained`

/** The refusal reason of a client that never authenticated. */
const NOT_AUTHENTICATED = 'not authenticated'
/** The refusal reason of a device removed from the registry while connected. */
const DEVICE_REMOVED = 'the device was removed'

/** Why a connection was refused, as /metrics counts it: no username or password, a client id not allowed, wrong credentials. */
export type ConnectRefusal = 'no_credentials' | 'bad_client_id' | 'bad_credentials'
/** Why a heartbeat was refused at the door, as /metrics counts it (see AccessControl.refusedHeartbeats). */
export type HeartbeatRefusal = 'device_removed' | 'retained' | 'database_full' | 'malformed'

/** The hooks AccessControl gives Aedes. */
export type AccessHooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>>

/** Remembers whether `done` was called: a hook that answered and then threw must not answer twice. */
function answerOnce<A extends unknown[]>(done: (...args: A) => void): { answer: (...args: A) => void; answered: () => boolean } {
  let called = false
  return {
    answer: (...args) => {
      called = true
      done(...args)
    },
    answered: () => called,
  }
}

/**
 * Each publish authorised here carries its message, decoded once, on the packet object Aedes hands on to its `published`
 * hook (see accepted()), under a symbol only this module holds: no packet off the wire can carry it (mqtt-packet builds
 * packets with string keys only), and it goes with the packet, so a packet Aedes drops before publishing it (its PUBACK
 * could not be written) leaves nothing behind. (Until issue 14's eighth part a WeakMap keyed by the packet held them: one
 * ephemeron per message for the collector to trace.)
 */
const DECODED: unique symbol = Symbol('fakephone.accepted')
type Decorated = PublishPacket & { [DECODED]?: AcceptedMessage }

/** The heartbeat's decode, its compiled check looked up once rather than per message. */
const decodeHeartbeat = payloadDecoder('heartbeat')

/** The topic `fp/v1/<deviceId>/heartbeat` when the contract parses it as that device's heartbeat topic, else null. */
function heartbeatTopicOf(deviceId: string): string | null {
  const topic = topicFor(deviceId, 'heartbeat')
  const target = parseTopic(topic)
  // A registered id is always one topic level (DeviceIdSchema): the null only keeps the two paths' verdicts equal by
  // construction.
  /* c8 ignore next */
  return target?.deviceId === deviceId && target.kind === 'heartbeat' ? topic : null
}

const DEVICE_SUBSCRIBE_KINDS: ReadonlySet<string> = new Set(
  (Object.keys(TOPICS) as TopicKind[]).filter((k) => TOPICS[k].direction === 'cloud→device'),
)

export class AccessControl {
  private readonly principals = new WeakMap<Client, Principal>()
  /** Clients that sent an empty client id with clean=false; Aedes would otherwise invent an id for them. */
  private readonly emptyPersistent = new WeakSet<Client>()
  private readonly consoleTokenDigest: Buffer
  /** Console clients with a clean session that were granted a subscription: their subscriptions end with them. */
  private readonly listeners = new WeakSet<Client>()
  private listenerCount = 0
  /** A console with a persistent session was granted a subscription: Aedes keeps it, and queues for it, after it leaves. */
  private persistentListener = false
  /** Hook failures caught by the error boundary. */
  hookFailures = 0
  /** Connections refused, by kind of reason (read by /metrics, broker/metrics.ts). */
  readonly refusedConnects: Record<ConnectRefusal, number> = { no_credentials: 0, bad_client_id: 0, bad_credentials: 0 }
  /**
   * Heartbeats refused before their PUBACK, by kind of reason (read by /metrics): a device removed while connected, a
   * retained one, one past the heartbeats held while the database refuses writes, a malformed one. OwnTracks locations
   * are stored as heartbeats, and counted as them.
   */
  readonly refusedHeartbeats: Record<HeartbeatRefusal, number> = { device_removed: 0, retained: 0, database_full: 0, malformed: 0 }
  /** Subscriptions refused per connection, for the log's cap (LOGGED_SUBSCRIBE_REFUSALS). */
  private readonly refusedSubscriptions = new WeakMap<Client, number>()

  constructor(
    private readonly registry: DeviceRegistry,
    consoleToken: string,
    private readonly log: Logger,
    /**
     * Called for each publish refused (the broker counts them), with the device that sent it (undefined for anyone else)
     * and why, in the words of the log.
     */
    private readonly onPublishRefused: (deviceId: string | undefined, topic: string, reason: string) => void = () => {},
    /** Why heartbeats are refused for now (the database refuses writes and holds too many, see StateStore), or null. */
    private readonly heartbeatsHeldBack: () => string | null = () => null,
  ) {
    this.consoleTokenDigest = digest(consoleToken)
  }

  principal(client: Client): Principal | undefined {
    return this.principals.get(client)
  }

  /**
   * The decoded message of a publish this access control authorised, for the store to take in Aedes' `published` path
   * (the same packet object reaches both hooks); undefined for anything it did not authorise ($SYS, the broker's own).
   */
  accepted(packet: PublishPacket): AcceptedMessage | undefined {
    return (packet as Decorated)[DECODED]
  }

  /**
   * True while a console may receive what devices publish: devices subscribe only to their own cloud→device topics, so a
   * device's message has no other possible receiver (see server.ts, skipUnheard). Counted as Aedes grants subscriptions;
   * a console with a persistent session counts for good, as its subscriptions outlive it.
   */
  get consoleListening(): boolean {
    return this.persistentListener || this.listenerCount > 0
  }

  /** A client is gone (Aedes' clientDisconnect): a clean console takes its subscriptions along. */
  clientGone(client: Client): void {
    if (this.listeners.delete(client)) this.listenerCount--
  }

  /** True when `token` is the console token. */
  isConsoleToken(token: string): boolean {
    return timingSafeEqual(digest(token), this.consoleTokenDigest)
  }

  /** The hooks for Aedes, each inside an error boundary that logs what it throws and refuses the client. */
  hooks(): AccessHooks {
    return {
      preConnect: (client, packet, done) => {
        const { answer, answered } = answerOnce(done)
        this.boundary(
          'preConnect',
          client,
          answered,
          () => this.preConnect(client, packet, answer),
          () => answer(new Error('refused'), false),
        )
      },
      authenticate: (client, username, password, done) => {
        const { answer, answered } = answerOnce(done)
        const refuse = (): void => answer(authError('refused', BAD_USERNAME_OR_PASSWORD), false)
        this.boundary('authenticate', client, answered, () => this.authenticate(client, username, password, answer, refuse), refuse)
      },
      // Called for every message: its own boundary, without the closures the others build (see authorizePublish).
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => {
        const { answer, answered } = answerOnce(done)
        this.boundary(
          'authorizeSubscribe',
          client,
          answered,
          () => this.authorizeSubscribe(client, sub, answer),
          () => answer(null, null),
        )
      },
    }
  }

  /** Runs `body`; when it throws, logs and counts the failure and, unless the hook already answered, refuses. */
  private boundary(hook: string, client: Client | null, answered: () => boolean, body: () => void, refuse: () => void): void {
    try {
      body()
    } catch (err) {
      this.failed(hook, client, err)
      if (!answered()) refuse()
    }
  }

  private failed(hook: string, client: Client | null, err: unknown): void {
    this.hookFailures++
    this.log.error({ err, hook, clientId: client?.id }, 'broker hook failed; the client is refused')
  }

  private preConnect(client: Client, packet: ConnectPacket, done: (error: Error | null, success: boolean) => void): void {
    // [MQTT-3.1.3-8]: an empty client id needs CleanSession=1.
    if (!packet.clientId && !packet.clean) this.emptyPersistent.add(client)
    done(null, true)
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
    refuseOnFailure: () => void,
  ): void {
    const refuse = (why: string, kind: ConnectRefusal, code = BAD_USERNAME_OR_PASSWORD): void => {
      this.log.warn({ clientId: client.id, username, reason: why }, 'connection refused')
      this.refusedConnects[kind]++
      done(authError(why, code), false)
    }
    if (this.emptyPersistent.has(client)) return refuse('empty client id with a persistent session', 'bad_client_id', IDENTIFIER_REJECTED)
    if (username === undefined || password === undefined) return refuse('no username or password', 'no_credentials')
    if (username === CONSOLE_USER) {
      if (!client.id.startsWith(CONSOLE_CLIENT_PREFIX))
        return refuse(`console client id must start with "${CONSOLE_CLIENT_PREFIX}"`, 'bad_client_id', IDENTIFIER_REJECTED)
      if (!this.isConsoleToken(password.toString())) return refuse('wrong console token', 'bad_credentials')
      this.principals.set(client, { role: 'console' })
      return done(null, true)
    }
    if (client.id !== username) return refuse('a device must use its device id as client id', 'bad_client_id', IDENTIFIER_REJECTED)
    const verified = (account: string | undefined): void => {
      if (account === undefined) return refuse('unknown device or wrong secret', 'bad_credentials')
      this.principals.set(client, { role: 'device', deviceId: username, account, heartbeatTopic: heartbeatTopicOf(username) })
      done(null, true)
    }
    // Answered at once for a current verifier (issue 14: Aedes goes on with the CONNECT in the same turn); a promise only
    // for a device whose older scrypt verifier is still to be checked and upgraded.
    const account = this.registry.verifiedAccountNow(username, password.toString())
    if (!(account instanceof Promise)) return verified(account)
    account.then(verified, (err: unknown) => {
      this.failed('authenticate', client, err)
      refuseOnFailure()
    })
  }

  /**
   * The error boundary of the other hooks, written out: whatever the check throws is logged and counted and the publish
   * refused; whatever `done` throws is logged and counted, and not answered twice.
   */
  private authorizePublish(client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    let answer: Error | null = null
    let accepted: AcceptedMessage | undefined
    let reason = 'the broker could not check it (its log says why)'
    try {
      const verdict = this.checkPublish(client, packet)
      if (typeof verdict === 'string') {
        this.log.warn({ clientId: client?.id, topic: packet.topic, reason: verdict }, 'publish refused')
        answer = new Error(verdict)
        reason = verdict
      } else accepted = verdict
    } catch (err) {
      this.failed('authorizePublish', client, err)
      answer = new Error('refused')
    }
    // Every packet judged here carries its own verdict, a refused one none: an object spread copies symbol keys too, so a
    // copy of an accepted packet that is then refused must not keep the message it was copied with.
    ;(packet as Decorated)[DECODED] = accepted
    if (answer) {
      // No client: a last will persisted across a restart, which the in-memory persistence never keeps (checkPublish).
      const principal = client && this.principals.get(client)
      this.onPublishRefused(principal?.role === 'device' ? principal.deviceId : undefined, packet.topic, reason)
    }
    try {
      done(answer)
    } catch (err) {
      this.failed('authorizePublish', client, err)
    }
  }

  private checkPublish(client: Client | null, packet: PublishPacket): AcceptedMessage | string {
    if (packet.topic.startsWith('$SYS')) return '$SYS is reserved'
    // Aedes passes no client only for a last will persisted across a restart, which its in-memory persistence never keeps;
    // such a will is refused.
    /* c8 ignore next 2 */
    if (client === null) return 'a last will without its client'
    const principal = this.principals.get(client)
    if (!principal) return NOT_AUTHENTICATED
    // A device's own heartbeat, nearly every message: the verdict the general path below comes to for it (the topic is
    // the device's own, its kind one devices publish), without parsing the topic (issue 14).
    if (principal.role === 'device' && packet.topic === principal.heartbeatTopic) {
      if (!this.registry.exists(principal.deviceId)) return this.refuseHeartbeat('device_removed', DEVICE_REMOVED)
      if (packet.retain) return this.refuseHeartbeat('retained', neverRetained('heartbeat'))
      const heldBack = this.heartbeatsHeldBack()
      if (heldBack) return this.refuseHeartbeat('database_full', heldBack)
      const decoded = decodeHeartbeat(packet.payload as Buffer)
      if (!decoded.ok) return this.refuseHeartbeat('malformed', `malformed heartbeat payload: ${decoded.reason}`)
      return { deviceId: principal.deviceId, kind: 'heartbeat', value: decoded.value }
    }
    const owntracks = packet.topic.startsWith(`${OWNTRACKS_ROOT}/`)
    const target = parseTopic(packet.topic)
    if (!target && !owntracks) return 'topic is outside the contract'
    if (principal.role === 'console') return 'the console does not publish over MQTT'
    const deviceId = principal.deviceId
    if (!this.registry.exists(deviceId)) return DEVICE_REMOVED
    if (!target) return this.checkOwnTracks(principal, packet)
    if (target.deviceId !== deviceId) return `device ${deviceId} may not publish for ${quoted(target.deviceId)}`
    if (!DEVICE_PUBLISH_KINDS.has(target.kind)) return `devices do not publish ${quoted(target.kind)}`
    const kind = target.kind as DeviceKind
    // Retained only where the contract says so: a stale heartbeat, receipt or log batch is not handed to every later subscriber.
    if (packet.retain && !TOPICS[kind].retain) return neverRetained(kind)
    const decoded = decodePayload(kind, packet.payload as Buffer)
    if (!decoded.ok) return `malformed ${kind} payload: ${decoded.reason}`
    return { deviceId, kind, value: decoded.value } as AcceptedMessage
  }

  /** Counts a heartbeat refused at the door (refusedHeartbeats) and gives the refusal's reason back. */
  private refuseHeartbeat(kind: HeartbeatRefusal, why: string): string {
    this.refusedHeartbeats[kind]++
    return why
  }

  /** A device speaking OwnTracks may publish its location and its last will on owntracks/<its account>/<its id>, nothing else. */
  private checkOwnTracks(principal: { deviceId: string; account: string }, packet: PublishPacket): AcceptedMessage | string {
    const own = owntracksTopic(principal.account, principal.deviceId)
    if (packet.topic !== own) return `device ${principal.deviceId} may publish OwnTracks only on ${own}`
    const decoded = decodeJson(OwnTracksBaseSchema, packet.payload as Buffer)
    if (!decoded.ok) return `malformed OwnTracks payload: ${decoded.reason}`
    // A location is stored as a heartbeat: past the bound of heartbeats held for a full database it is refused before
    // its PUBACK, as a heartbeat is, and the device sends it again.
    const heldBack = decoded.value._type === 'location' ? this.heartbeatsHeldBack() : null
    if (heldBack) return this.refuseHeartbeat('database_full', heldBack)
    return { deviceId: principal.deviceId, kind: 'owntracks', value: decoded.value }
  }

  private authorizeSubscribe(
    client: Client,
    sub: Subscription,
    done: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const reason = this.checkSubscribe(client, sub.topic)
    if (reason) {
      // A refusal keeps the connection, so one SUBSCRIBE of 256 KiB could ask for 65,000 topics: a line for each would turn
      // a packet into megabytes of log. The first few of a connection are logged, then that the rest are not.
      const refused = (this.refusedSubscriptions.get(client) ?? 0) + 1
      this.refusedSubscriptions.set(client, refused)
      if (refused <= LOGGED_SUBSCRIBE_REFUSALS) this.log.warn({ clientId: client.id, topic: sub.topic, reason }, 'subscription refused')
      else if (refused === LOGGED_SUBSCRIBE_REFUSALS + 1)
        this.log.warn({ clientId: client.id, reason }, 'more subscriptions refused on this connection; they are not logged')
      return done(null, null)
    }
    if (this.principals.get(client)?.role === 'console') this.consoleGranted(client)
    done(null, sub)
  }

  private consoleGranted(client: Client): void {
    if (!client.clean) this.persistentListener = true
    else if (!this.listeners.has(client)) {
      this.listeners.add(client)
      this.listenerCount++
    }
  }

  private checkSubscribe(client: Client, topic: string): string | null {
    const principal = this.principals.get(client)
    if (!principal) return NOT_AUTHENTICATED
    if (topic.startsWith('$')) return '$-topics are reserved'
    if (principal.role === 'console')
      return topic === `${TOPIC_ROOT}/#` || topic.startsWith(`${TOPIC_ROOT}/`) ? null : 'the console watches fp/v1/ only'
    if (!this.registry.exists(principal.deviceId)) return DEVICE_REMOVED
    if (parseOwnTracksTopic(topic)) {
      const cmd = owntracksTopic(principal.account, principal.deviceId, 'cmd')
      return topic === cmd ? null : `device ${principal.deviceId} may subscribe only to ${cmd} in owntracks/`
    }
    const target = parseTopic(topic)
    if (!target || target.deviceId !== principal.deviceId) return `device ${principal.deviceId} may subscribe only to its own topics`
    if (!DEVICE_SUBSCRIBE_KINDS.has(target.kind)) return `devices do not subscribe to ${quoted(target.kind)}`
    return null
  }
}
