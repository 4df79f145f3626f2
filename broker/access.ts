/**
 * Who may connect, publish and subscribe. Two roles:
 *  - a device: username = client id = its device id, password = its secret;
 *    it may publish only the device→cloud kinds under its own topic, each
 *    payload checked against the contract, and subscribe only to the
 *    cloud→device kinds under its own topic;
 *  - the console: username `console`, password = the console token, client
 *    id starting with `console.`; it may watch everything under `fp/v1/`.
 * `$SYS/` stays closed to everyone. Refused subscriptions get a SUBACK
 * failure (0x80); a refused publish closes the connection [MQTT-3.3.5-2].
 */
import type { AuthenticateError, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import { timingSafeEqual, createHash } from 'node:crypto'
import { DEVICE_PUBLISH_KINDS, TOPICS, TOPIC_ROOT, decodePayload, parseTopic, type DeviceKind, type PayloadOf, type TopicKind } from '../common/contract.js'
import type { Logger } from '../common/log.js'
import type { DeviceRegistry } from './registry.js'

export type Principal = { role: 'device'; deviceId: string } | { role: 'console' }

export const CONSOLE_USER = 'console'
export const CONSOLE_CLIENT_PREFIX = 'console.'

/** Return codes of CONNACK in MQTT 3.1.1 [MQTT-3.2.2.3]. */
const IDENTIFIER_REJECTED = 2
const BAD_USERNAME_OR_PASSWORD = 4

export type AcceptedMessage = { [K in DeviceKind]: { deviceId: string; kind: K; value: PayloadOf<K> } }[DeviceKind]

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

const digest = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest()

const DEVICE_SUBSCRIBE_KINDS: ReadonlySet<string> = new Set(
  (Object.keys(TOPICS) as TopicKind[]).filter((k) => TOPICS[k].direction === 'cloud→device'),
)

export class AccessControl {
  private readonly principals = new WeakMap<Client, Principal>()
  /** Clients that sent an empty client id with clean=false; Aedes would otherwise invent an id for them. */
  private readonly emptyPersistent = new WeakSet<Client>()
  private readonly consoleTokenDigest: Buffer

  constructor(
    private readonly registry: DeviceRegistry,
    consoleToken: string,
    private readonly log: Logger,
    private readonly onAccepted: (msg: AcceptedMessage) => void,
  ) {
    this.consoleTokenDigest = digest(consoleToken)
  }

  principal(client: Client): Principal | undefined {
    return this.principals.get(client)
  }

  /** True when `token` is the console token. */
  isConsoleToken(token: string): boolean {
    return timingSafeEqual(digest(token), this.consoleTokenDigest)
  }

  preConnect = (client: Client, packet: ConnectPacket, done: (error: Error | null, success: boolean) => void): void => {
    // [MQTT-3.1.3-8]: an empty client id needs CleanSession=1.
    if (!packet.clientId && !packet.clean) this.emptyPersistent.add(client)
    done(null, true)
  }

  authenticate = (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void => {
    const refuse = (why: string, code = BAD_USERNAME_OR_PASSWORD): void => {
      this.log.warn({ clientId: client.id, username, reason: why }, 'connection refused')
      done(authError(why, code), false)
    }
    if (this.emptyPersistent.has(client)) return refuse('empty client id with a persistent session', IDENTIFIER_REJECTED)
    if (username === undefined || password === undefined) return refuse('no username or password')
    if (username === CONSOLE_USER) {
      if (!client.id.startsWith(CONSOLE_CLIENT_PREFIX)) return refuse(`console client id must start with "${CONSOLE_CLIENT_PREFIX}"`, IDENTIFIER_REJECTED)
      if (!this.isConsoleToken(password.toString())) return refuse('wrong console token')
      this.principals.set(client, { role: 'console' })
      return done(null, true)
    }
    if (client.id !== username) return refuse('a device must use its device id as client id', IDENTIFIER_REJECTED)
    void this.registry.verify(username, password.toString()).then((ok) => {
      if (!ok) return refuse('unknown device or wrong secret')
      this.principals.set(client, { role: 'device', deviceId: username })
      done(null, true)
    })
  }

  authorizePublish = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void => {
    const verdict = this.checkPublish(client, packet)
    if (typeof verdict === 'string') {
      this.log.warn({ clientId: client?.id, topic: packet.topic, reason: verdict }, 'publish refused')
      return done(new Error(verdict))
    }
    this.onAccepted(verdict)
    done(null)
  }

  private checkPublish(client: Client | null, packet: PublishPacket): AcceptedMessage | string {
    if (packet.topic.startsWith('$SYS')) return '$SYS is reserved'
    /* c8 ignore next 2 -- Aedes passes no client only for a last will persisted across a restart, which its in-memory persistence never keeps; such a will is refused */
    if (client === null) return 'a last will without its client'
    const principal = this.principals.get(client) as Principal
    const target = parseTopic(packet.topic)
    if (!target) return 'topic is outside the contract'
    if (principal.role === 'console') return 'the console does not publish over MQTT'
    const deviceId = principal.deviceId
    if (target.deviceId !== deviceId) return `device ${deviceId} may not publish for ${target.deviceId}`
    if (!DEVICE_PUBLISH_KINDS.has(target.kind)) return `devices do not publish "${target.kind}"`
    const kind = target.kind as DeviceKind
    const decoded = decodePayload(kind, packet.payload as Buffer)
    if (!decoded.ok) return `malformed ${kind} payload: ${decoded.reason}`
    return { deviceId, kind, value: decoded.value } as AcceptedMessage
  }

  authorizeSubscribe = (
    client: Client,
    sub: Subscription,
    done: (error: Error | null, subscription?: Subscription | null) => void,
  ): void => {
    const reason = this.checkSubscribe(client, sub.topic)
    if (reason) {
      this.log.warn({ clientId: client.id, topic: sub.topic, reason }, 'subscription refused')
      return done(null, null)
    }
    done(null, sub)
  }

  private checkSubscribe(client: Client, topic: string): string | null {
    const principal = this.principals.get(client) as Principal
    if (topic.startsWith('$')) return '$-topics are reserved'
    if (principal.role === 'console') return topic === `${TOPIC_ROOT}/#` || topic.startsWith(`${TOPIC_ROOT}/`) ? null : 'the console watches fp/v1/ only'
    const target = parseTopic(topic)
    if (!target || target.deviceId !== principal.deviceId) return `device ${principal.deviceId} may subscribe only to its own topics`
    if (!DEVICE_SUBSCRIBE_KINDS.has(target.kind)) return `devices do not subscribe to "${target.kind}"`
    return null
  }
}
