/**
 * The cloud broker's composition root: opens the database, builds the access
 * rules and the ingest, and serves MQTT over TCP and over WebSocket (`/mqtt`)
 * plus the console API (`/api/...`) and the push channel (`/push`, X1-X3,
 * see framework-services.ts) on one HTTP port. `start()` brings
 * everything up in order; `stop()` undoes exactly what `start()` did.
 */
import { Aedes, type Client } from 'aedes'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { SimulatedClock, type Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import { PUSH_PATH } from '../common/push-protocol.js'
import { AccessControl, type AcceptedMessage } from './mqtt/access.js'
import { addConsoleRoutes } from './devices/console-api.js'
import { ensureConsoleToken } from './console-token.js'
import { openDb, type Db } from './db.js'
import { lockDataDir, type DataDirLock } from './data-lock.js'
import { DEFAULT_FRAMEWORK_OPTIONS, FrameworkServices, type FrameworkServicesOptions } from './framework/framework-services.js'
import { ConnectionRateLimiter, GuardedConnection, type RateLimitOptions } from './mqtt/guard.js'
import { DeviceRegistry } from './devices/registry.js'
import { StateStore } from './devices/state-store.js'
import { CommandCenter } from './devices/commands.js'
import { encodePayload, parseTopic, topicFor } from '../common/contract.js'
import { routeUpgrades } from './http/upgrade-router.js'
import { CloudData, DEFAULT_CLOUD_DATA_OPTIONS, type CloudDataOptions } from './cloud/cloud-data.js'

export interface BrokerOptions {
  dataDir: string
  /** Address both listeners bind to. Loopback by default: opening the broker to a network is a decision. */
  host: string
  /** MQTT over TCP; 0 lets the OS choose. */
  mqttPort: number
  /** HTTP: MQTT over WebSocket at /mqtt and the console API at /api; 0 lets the OS choose. */
  httpPort: number
  maxPacketBytes: number
  connectTimeoutMs: number
  rateLimit: RateLimitOptions
  /** The push gateway's deadlines and the service notices (X1-X3). */
  framework: FrameworkServicesOptions
  /** Accounts, quota and the cloud-data rules (S, R, B, D, A). */
  cloud: CloudDataOptions
}

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  dataDir: './data',
  host: '127.0.0.1',
  mqttPort: 1883,
  httpPort: 8080,
  maxPacketBytes: 256 * 1024,
  connectTimeoutMs: 10_000,
  rateLimit: { burst: 100, perSecond: 50 },
  framework: DEFAULT_FRAMEWORK_OPTIONS,
  cloud: DEFAULT_CLOUD_DATA_OPTIONS,
}

export interface BrokerCounters {
  /** Connections refused by the per-address rate limit. */
  rateLimited: number
  /** Connections dropped by the packet guard. */
  dropped: number
  /** Publishes refused (wrong topic, malformed payload). */
  publishRefused: number
  /** Heartbeats accepted for storage. */
  heartbeats: number
  /** Exceptions caught in the broker's own event handlers (each logged). */
  handlerFailures: number
}

/** Publishes handed to Aedes per event-loop turn. */
const OUTBOX_BATCH = 200

export class CloudBroker {
  readonly counters: BrokerCounters = { rateLimited: 0, dropped: 0, publishRefused: 0, heartbeats: 0, handlerFailures: 0 }
  private db?: Db
  private lock?: DataDirLock
  private aedes?: Aedes
  private tcp?: TcpServer
  private http?: HttpServer
  private wss?: WebSocketServer
  private storeRef?: StateStore
  private registryRef?: DeviceRegistry
  private commandsRef?: CommandCenter
  private limiter?: ConnectionRateLimiter
  /** Publishes to devices waiting to be handed to Aedes (see drainOutbox). */
  private readonly outbox: { topic: string; payload: Buffer }[] = []
  private frameworkRef?: FrameworkServices
  private cloudRef?: CloudData
  /** The live connection of each device, so a session takeover does not mark it offline. */
  private readonly current = new Map<string, Client>()
  /** Stops telling devices about jumps of simulated time. */
  private stopJumps?: () => void

  constructor(
    private readonly opts: BrokerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get store(): StateStore {
    return this.need(this.storeRef)
  }

  get registry(): DeviceRegistry {
    return this.need(this.registryRef)
  }

  get commands(): CommandCenter {
    return this.need(this.commandsRef)
  }

  /** The push gateway, notification queue and behaviour logs (X1-X3). */
  get framework(): FrameworkServices {
    return this.need(this.frameworkRef)
  }

  /** Accounts, storage and the cloud-data rules (S, R, B, D, A). */
  get cloud(): CloudData {
    return this.need(this.cloudRef)
  }

  /** Starts every part; resolves with the ports actually bound. */
  async start(): Promise<{ mqttPort: number; httpPort: number }> {
    const log = this.log
    // First thing: a second broker on this data directory must refuse before it touches any state.
    this.lock = lockDataDir(this.opts.dataDir, log)
    this.db = openDb(this.opts.dataDir)
    this.registryRef = new DeviceRegistry(this.db, () => this.clock.now())
    this.storeRef = new StateStore(this.db)
    this.store.resetPresence(this.clock.now())
    const token = ensureConsoleToken(this.opts.dataDir)
    const access = new AccessControl(this.registry, token, log.child({ component: 'access' }), (msg, client) => this.ingest(msg, client))
    this.limiter = new ConnectionRateLimiter(this.opts.rateLimit, this.clock)
    const limiter = this.limiter
    const isConsoleToken = (t: string): boolean => access.isConsoleToken(t)
    this.frameworkRef = new FrameworkServices(
      { db: this.db, registry: this.registry, store: this.store, clock: this.clock, log, allow: (a) => limiter.allow(a) },
      this.opts.framework,
    )
    this.framework.start()
    this.cloudRef = new CloudData(
      {
        db: this.db,
        dataDir: this.opts.dataDir,
        clock: this.clock,
        log,
        registry: this.registry,
        push: this.framework.queue,
        isConsoleToken,
        sendPlan: (deviceId, plan) => this.publishToDevice(deviceId, 'plan', encodePayload('plan', plan)),
      },
      this.opts.cloud,
    )
    this.cloud.start()

    const hooks = access.hooks()
    const aedes = await Aedes.createBroker({
      ...hooks,
      authorizePublish: (client, packet, done) =>
        hooks.authorizePublish(client, packet, (err) => {
          if (err) this.counters.publishRefused++
          done(err)
        }),
      connectTimeout: this.opts.connectTimeoutMs,
    })
    this.aedes = aedes
    this.store.on('refused', (deviceId, seq, reason) => log.warn({ deviceId, seq, reason }, 'heartbeat not stored'))
    this.registry.on(
      'removed',
      this.safely('removed', (deviceId) => this.deviceRemoved(deviceId)),
    )
    aedes.on(
      'client',
      this.safely('client', (client) => {
        const p = access.principal(client)
        if (p?.role !== 'device') return
        this.current.set(p.deviceId, client)
        this.store.setPresence(p.deviceId, true, this.clock.now())
      }),
    )
    aedes.on(
      'clientDisconnect',
      this.safely('clientDisconnect', (client) => {
        const p = access.principal(client)
        if (p?.role !== 'device' || this.current.get(p.deviceId) !== client) return
        this.current.delete(p.deviceId)
        this.commands.deviceGone(p.deviceId)
        this.cloud.deviceGone(p.deviceId)
        this.store.setPresence(p.deviceId, false, this.clock.now())
      }),
    )
    this.commandsRef = new CommandCenter(this.db, this.store, this.clock, log.child({ component: 'commands' }), (deviceId, command) =>
      this.sendToDevice(deviceId, JSON.stringify(command)),
    )
    this.commands.start()
    aedes.on(
      'subscribe',
      this.safely('subscribe', (subscriptions, client) => {
        const p = access.principal(client)
        if (p?.role === 'device' && subscriptions.some((s) => s.topic === topicFor(p.deviceId, 'cmd')))
          this.commands.deviceListening(p.deviceId)
        if (p?.role === 'device' && subscriptions.some((s) => s.topic === topicFor(p.deviceId, 'plan')))
          this.cloud.planListening(p.deviceId)
        if (p?.role === 'device' && subscriptions.some((s) => s.topic === topicFor(p.deviceId, 'time'))) this.sendTime(p.deviceId)
      }),
    )
    // One time for the whole system: a jump of simulated time reaches every connected phone, ahead of anything sent after it.
    if (this.clock instanceof SimulatedClock)
      this.stopJumps = this.clock.onJump(() => {
        for (const deviceId of this.current.keys()) this.sendTime(deviceId)
      })
    aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
    aedes.on('connectionError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'connection error'))

    this.tcp = createTcpServer((socket) => {
      socket.setNoDelay(true)
      this.accept(socket, socket.remoteAddress as string)
    })
    const router = this.cloud.router
    addConsoleRoutes(router, { store: this.store, commands: this.commands, now: () => this.clock.now() })
    this.framework.addRoutes(router)
    this.http = createHttpServer((req, res) => router.handle(req, res))
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.opts.maxPacketBytes })
    this.http.on(
      'upgrade',
      routeUpgrades(
        new Map([
          ['/mqtt', this.wss],
          [PUSH_PATH, this.framework.gateway.wss],
        ]),
        log,
      ),
    )
    this.wss.on('connection', (ws, req) => {
      req.socket.setNoDelay(true)
      this.accept(createWebSocketStream(ws), req.socket.remoteAddress as string)
    })
    const mqttPort = await listen(this.tcp, 'MQTT', this.opts.mqttPort, this.opts.host)
    const httpPort = await listen(this.http, 'HTTP', this.opts.httpPort, this.opts.host)
    log.info({ host: this.opts.host, mqttPort, httpPort, dataDir: this.opts.dataDir }, 'broker listening')
    return { mqttPort, httpPort }
  }

  /** Stops listening, disconnects every client, writes what is queued and closes the database. */
  async stop(): Promise<void> {
    this.stopJumps?.()
    this.frameworkRef?.stop()
    this.cloudRef?.stop()
    this.wss?.close()
    for (const c of this.wss?.clients ?? []) c.terminate()
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()))
    // Late disconnect events of clients Aedes just closed must not reach a closed database.
    this.aedes?.removeAllListeners()
    await Promise.all([closeServer(this.tcp), closeServer(this.http)])
    this.commandsRef?.stop()
    this.storeRef?.flush()
    this.db?.close()
    this.db = undefined
    this.lock?.release()
    this.lock = undefined
    this.log.info('broker stopped')
  }

  /** True while the device has a live MQTT connection. */
  isConnected(deviceId: string): boolean {
    return this.current.has(deviceId)
  }

  /**
   * Publishes `payload` on the device's command topic if it is listening.
   * This is all a broker operator can do to a device: the device checks the
   * owner's signature on whatever arrives here.
   */
  sendToDevice(deviceId: string, payload: string): boolean {
    if (!this.commands.isListening(deviceId)) return false
    return this.publishToDevice(deviceId, 'cmd', payload)
  }

  /** The cloud's time, for a phone to stamp with (a phone not subscribed to it is not sent it). */
  private sendTime(deviceId: string): void {
    this.publishToDevice(deviceId, 'time', encodePayload('time', { now: this.clock.now() }))
  }

  /** Queues `payload` for the device's `kind` topic (the caller knows the device is listening). */
  private publishToDevice(deviceId: string, kind: 'cmd' | 'plan' | 'time', payload: string): boolean {
    this.outbox.push({ topic: topicFor(deviceId, kind), payload: Buffer.from(payload) })
    if (this.outbox.length === 1) setImmediate(() => this.drainOutbox())
    return true
  }

  /**
   * Hands queued publishes to Aedes at most OUTBOX_BATCH per event-loop turn:
   * a few thousand publishes in one turn overflow the stack inside Aedes'
   * message queue (mqemitter) and take the process down.
   */
  private drainOutbox(): void {
    for (const { topic, payload } of this.outbox.splice(0, OUTBOX_BATCH)) {
      ;(this.aedes as Aedes).publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => {})
    }
    if (this.outbox.length > 0) setImmediate(() => this.drainOutbox())
  }

  /**
   * A device removed from the registry through this broker: its connection
   * is closed at once, and what is still queued for it or from it is dropped
   * with a logged reason. (A removal by another process on the same data
   * directory is noticed on the device's next message: see AccessControl.)
   */
  private deviceRemoved(deviceId: string): void {
    const before = this.outbox.length
    const kept = this.outbox.filter((m) => parseTopic(m.topic)?.deviceId !== deviceId)
    this.outbox.splice(0, this.outbox.length, ...kept)
    const heartbeats = this.store.forget(deviceId)
    this.log.warn(
      { deviceId, heartbeats, toDevice: before - this.outbox.length },
      'device removed: disconnected, its queued messages dropped',
    )
    const client = this.current.get(deviceId)
    this.current.delete(deviceId)
    this.commands.deviceGone(deviceId)
    this.cloud.deviceGone(deviceId)
    client?.close()
  }

  /** Wraps a broker event handler so that whatever it throws is logged and counted, never passed to the process. */
  private safely<A extends unknown[]>(event: string, handler: (...args: A) => void): (...args: A) => void {
    return (...args) => {
      try {
        handler(...args)
      } catch (err) {
        this.counters.handlerFailures++
        this.log.error({ err, event }, 'broker event handler failed')
      }
    }
  }

  private accept(stream: Duplex, address: string): void {
    const log = this.log
    if (!(this.limiter as ConnectionRateLimiter).allow(address)) {
      this.counters.rateLimited++
      log.warn({ address }, 'connection refused: too many connections from this address')
      stream.destroy()
      return
    }
    const guarded = new GuardedConnection(
      stream,
      this.opts,
      (reason, detail) => {
        this.counters.dropped++
        log.warn({ address, reason, detail }, 'connection dropped')
      },
      address,
    )
    guarded.on('error', () => {})
    ;(this.aedes as Aedes).handle(guarded)
  }

  private ingest(msg: AcceptedMessage, client: Client | null): void {
    const now = this.clock.now()
    switch (msg.kind) {
      case 'heartbeat':
        if (!this.store.locationEnabled(msg.deviceId)) {
          this.log.warn({ deviceId: msg.deviceId }, 'heartbeat ignored: the device has Find Device or the cloud service off')
          return
        }
        this.counters.heartbeats++
        this.store.recordHeartbeat(msg.deviceId, msg.value, now)
        return
      case 'presence':
        // The last will of a connection a newer one took over says nothing about the device.
        if (client !== this.current.get(msg.deviceId)) return
        this.store.setPresence(msg.deviceId, msg.value.state === 'online', now)
        return
      case 'status': {
        const before = this.store.device(msg.deviceId)
        this.store.setStatus(msg.deviceId, msg.value, now)
        this.cloud.deviceStatus(msg.deviceId, msg.value, before)
        return
      }
      case 'result':
        this.commands.onResult(msg.deviceId, msg.value)
        return
      case 'logs':
        this.framework.ingestLogs(msg.deviceId, msg.value, now)
        return
    }
  }

  private need<T>(v: T | undefined): T {
    if (v === undefined) throw new Error('the broker is not started')
    return v
  }
}

/** Binds `server`; a failure names the port and address, e.g. `MQTT port 127.0.0.1:1883 is in use (EADDRINUSE)`. */
function listen(server: TcpServer | HttpServer, label: string, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => reject(listenError(err, label, `${host}:${port}`))
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function listenError(err: NodeJS.ErrnoException, label: string, address: string): NodeJS.ErrnoException {
  const what = err.code === 'EADDRINUSE' ? `is in use (${err.code})` : `cannot be bound: ${err.message}`
  return Object.assign(new Error(`${label} port ${address} ${what}`), { code: err.code })
}

function closeServer(server: TcpServer | HttpServer | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve()
  if ('closeAllConnections' in server) server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

export type { Socket }
