/**
 * The cloud broker's composition root: serves MQTT over TCP and over
 * WebSocket (`/mqtt`) plus the console API (`/api/...`), the push channel
 * (`/push`, X1-X3, see framework-services.ts), `/health` and Prometheus's
 * `/metrics` (metrics.ts) on one HTTP port.
 *
 * `start()` locks the data directory, builds every part in one step
 * (`build()`: nothing is optional once built), binds both ports, and only
 * then starts the parts (see parts.ts) -- so a broker that cannot bind its
 * ports changes no shared state (issue 10, item 6). MQTT connections that
 * arrive between binding and the last part's start wait, and are served once
 * the parts are up. `stop()` stops the parts in reverse, each in its own
 * error boundary; it is safe after a failed start and twice.
 *
 * Ingest: `authorizePublish` (AccessControl) authorises and decodes each
 * publish once; the decoded message is stored in Aedes' `published` hook
 * (issue 10, item 3), which Aedes calls once the message is handed on
 * (node_modules/aedes/aedes.js, `publishFuncsQoS`: storeRetained,
 * enqueueOffline, emitPacket, callPublished). Two orders follow, both
 * harmless: in Aedes 1.2 a QoS 1 PUBACK is written before the message is
 * published at all (lib/handlers/publish.js, enqueuePublish), so a PUBACK
 * never meant "stored" -- a command receipt lost to a crash in that moment
 * is answered again from the phone's journal when the cloud resends the
 * unfinished command on reconnect; and a console watching a topic may see a
 * message a moment before the cloud stored it: watching is traffic, the
 * stored state is read from the store (its 'stored', 'status', ... events).
 */
import { Aedes, type Client } from 'aedes'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { PartLifecycle, type BrokerPart } from './parts.js'
import { WebSocketServer } from 'ws'
import { SimulatedClock, type Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import { PUSH_PATH } from '../common/push-protocol.js'
import { AccessControl, type AcceptedMessage } from './mqtt/access.js'
import { skipEmptyQueues, type QueueStore } from './mqtt/lean-queue.js'
import { indexRetained, type RetainedStore } from './mqtt/retained-index.js'
import { OwnTracksIngest } from './mqtt/owntracks-ingest.js'
import { addConsoleRoutes } from './devices/console-api.js'
import { addTransferRoutes } from './transfer/transfer-routes.js'
import { PULL_CONNECT_TIMEOUT_MS } from './transfer/blob-pull-routes.js'
import { ensureConsoleToken } from './console-token.js'
import { DB_FILE, DEFAULT_DATA_DIR, openDb, type Db } from './db.js'
import { lockDataDir, type DataDirLock } from '../common/data-lock.js'
import { connectionRoom, logConnectionRoom } from '../common/open-files.js'
import { closeServer, listen } from './listeners.js'
import { keepIdleConnections } from '../common/http-keep-alive.js'
import { DEFAULT_FRAMEWORK_OPTIONS, FrameworkServices, type FrameworkServicesOptions } from './framework/framework-services.js'
import { mqttWebSocketStream } from './mqtt/ws-connection.js'
import { ConnectionRateLimiter, guardConnection, guardedAddress, type RateLimitOptions } from './mqtt/guard.js'
import { skipUnheard } from './mqtt/unheard.js'
import { DEFAULT_WAL_CHECKPOINT, WalCheckpointer, type WalCheckpointOptions } from './wal-checkpointer.js'
import { DeviceRegistry } from './devices/registry.js'
import { StateStore, type HoldOptions } from './devices/state-store.js'
import { CommandCenter } from './devices/commands.js'
import {
  AccountChangedSchema,
  CommandChangedSchema,
  TOPIC_ROOT,
  accountChangedTopic,
  checked,
  commandChangedTopic,
  encodePayload,
  parseTopic,
  TOPICS,
  topicFor,
  type Heartbeat,
  type TopicKind,
} from '../common/contract.js'
import { routeUpgrades } from './http/upgrade-router.js'
import { BrokerMetrics } from './metrics.js'
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
  /** SQLite's WAL checkpoints in a worker thread, off the event loop (issue 14; default DEFAULT_WAL_CHECKPOINT). */
  walCheckpoint?: WalCheckpointOptions
  /** How stale a message's view of the registry may be, ms (issue 14; default REGISTRY_RECHECK_MS; 0: none, a read per message). */
  registryRecheckMs?: number
  /** Heartbeats held while the database refuses writes, and the retries' waits (default DEFAULT_HOLD, see StateStore). */
  heartbeatHold?: HoldOptions
  /** M2: how long a blob pull waits for its connection to the source, ms (default PULL_CONNECT_TIMEOUT_MS, 5 s). */
  pullConnectTimeoutMs?: number
}

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  dataDir: DEFAULT_DATA_DIR,
  host: '127.0.0.1',
  mqttPort: 1883,
  httpPort: 8080,
  maxPacketBytes: 256 * 1024,
  connectTimeoutMs: 10_000,
  // A token comes back when a connection authenticates (see ConnectionRateLimiter): 1,000 unproven connections at once per address.
  rateLimit: { burst: 1000, perSecond: 100 },
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
  /** Devices' MQTT connections accepted. */
  connects: number
  /** Devices' MQTT connections ended: closed (the device went, or a newer connection of it took over), or it was removed. */
  disconnects: { closed: number; removed: number }
  /** Heartbeats accepted at the door and then not stored: the service was shut down (M1), locating is off (F3). */
  heartbeatsIgnored: { service_shut_down: number; locating_off: number }
}

/**
 * How long the heartbeat batch waits for more before its commit, ms (see StateStore). A commit writes a WAL page per
 * device touched plus the shared ones (device_state's pages, the trees' inner pages): at 1,000 heartbeats/s, 50 ms
 * (about 50 rows a commit) write 5.2 KB of WAL per heartbeat where 20 ms wrote 6.7 KB, and storing one costs about
 * 15 µs of CPU instead of 18-22 (issue 14, measured in-process). Longer waits gain little more and stop the event loop
 * longer per commit (about 0.8 ms at 50 rows), which PUBACKs arriving meanwhile wait for.
 */
const HEARTBEAT_BATCH_MS = 50
/** Largest heartbeat batch. */
const HEARTBEAT_BATCH_MAX = 1000
/**
 * How long a message may be judged on the registry as last read, ms: another process's removal of a device (the CLI)
 * is looked for at most this often, and this long after a message judged without a look (see DeviceRegistry). As
 * long as the heartbeat batch, which reads it before each commit anyway: at 1,000 heartbeats/s that is 40 reads a
 * second instead of 70 at 20 ms (a read transaction each, 8-19 µs under load), and a removal by the CLI still
 * disconnects its device within 50 ms.
 */
const REGISTRY_RECHECK_MS = 50
/**
 * WAL pages between checkpoints on the broker's connection (SQLite's default is 1,000). The heartbeat batches rewrite
 * the same pages (each device's last leaf of `locations`, `device_state`): a checkpoint copies a page once however
 * often it was written since the last one, so checkpoints ten times rarer copy and fsync far less per heartbeat
 * (about 2.5 µs of CPU less each at 1,000 devices; the WAL file grows to about 40 MB between checkpoints).
 */
export const WAL_CHECKPOINT_PAGES = 10_000

/**
 * How often the registry is read for devices another process removed while no message makes the broker look (see
 * DeviceRegistry), ms: an idle phone removed with `fakephone device remove` is disconnected, and its retained presence
 * and status cleared, within this. One read of data_version (8-19 µs) a second.
 */
const REGISTRY_POLL_MS = 1000

/** Publishes handed to Aedes per event-loop turn. */
const OUTBOX_BATCH = 200

/** The kinds the contract retains (presence, status): what the broker hands a later subscriber of a device. */
const RETAINED_KINDS = (Object.keys(TOPICS) as TopicKind[]).filter((kind) => TOPICS[kind].retain)

/** The broker's data parts, built on its database (see buildCore()). */
interface Core {
  readonly db: Db
  readonly checkpointer: WalCheckpointer
  readonly registry: DeviceRegistry
  readonly store: StateStore
  readonly access: AccessControl
  readonly limiter: ConnectionRateLimiter
  readonly framework: FrameworkServices
  readonly cloud: CloudData
  readonly commands: CommandCenter
}

/** What faces the network (see buildNetwork()). */
interface Network {
  readonly aedes: Aedes
  readonly tcp: TcpServer
  readonly http: HttpServer
  readonly wss: WebSocketServer
  /** MQTT connections that arrived before every part was up: they wait, and are served once it is. */
  readonly gate: Gate
}

/** Everything a started broker is made of, built in one step once the data directory is locked (see build()). */
interface Built extends Core, Network {
  readonly lock: DataDirLock
  readonly lifecycle: PartLifecycle
}

interface Gate {
  /** False until every part has started. */
  serving: boolean
  waiting: { stream: Duplex; address: string }[]
}

export class CloudBroker {
  readonly counters: BrokerCounters = {
    rateLimited: 0,
    dropped: 0,
    publishRefused: 0,
    heartbeats: 0,
    handlerFailures: 0,
    connects: 0,
    disconnects: { closed: 0, removed: 0 },
    heartbeatsIgnored: { service_shut_down: 0, locating_off: 0 },
  }
  /** The built broker, from start() until stop(). */
  private built?: Built
  /** Publishes waiting to be handed to Aedes (see drainOutbox); `retain`: an empty one that clears a retained topic. */
  private readonly outbox: { topic: string; payload: Buffer; retain: boolean }[] = []
  /** The live connection of each device, so a session takeover does not mark it offline. */
  private readonly current = new Map<string, Client>()
  /** Numbers OwnTracks locations as heartbeats. */
  private readonly owntracks = new OwnTracksIngest((id) => this.store.lastSeq(id))

  constructor(
    private readonly opts: BrokerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get store(): StateStore {
    return this.parts().store
  }

  get registry(): DeviceRegistry {
    return this.parts().registry
  }

  get commands(): CommandCenter {
    return this.parts().commands
  }

  /** The push gateway, notification queue and behaviour logs (X1-X3). */
  get framework(): FrameworkServices {
    return this.parts().framework
  }

  /** Accounts, storage and the cloud-data rules (S, R, B, D, A). */
  get cloud(): CloudData {
    return this.parts().cloud
  }

  /** The broker's own SQLite connection, for code that embeds the broker (a test limits its size: PRAGMA max_page_count). */
  get db(): Db {
    return this.parts().db
  }

  /** The Aedes instance that speaks MQTT, for code that embeds the broker. */
  get aedes(): Aedes {
    return this.parts().aedes
  }

  /** The HTTP server of the console API and the cloud's routes, for code that embeds the broker (it may count the requests served). */
  get http(): HttpServer {
    return this.parts().http
  }

  /** Starts every part; resolves with the ports actually bound. A failed start leaves nothing open (no port, no database, no lock). */
  async start(): Promise<{ mqttPort: number; httpPort: number }> {
    // First thing: a second broker on this data directory must refuse before it touches any state.
    const lock = lockDataDir(this.opts.dataDir, this.log)
    let b: Built
    try {
      b = this.build(lock)
    } catch (err) {
      lock.release()
      throw err
    }
    this.built = b
    try {
      // Aedes' persistence is set up asynchronously (its createBroker factory is `new Aedes()` plus this).
      await b.aedes.listen()
      // Aedes' types leave out the persistence it sets up in listen(); retained-index.ts says why it is wrapped.
      indexRetained((b.aedes as unknown as { persistence: RetainedStore }).persistence)
      // An empty offline queue answered without streams on each CONNECT (lean-queue.ts).
      skipEmptyQueues((b.aedes as unknown as { persistence: QueueStore }).persistence)
      // Both ports before any part starts: a broker that cannot bind writes nothing (resetPresence is the state part's start).
      const mqttPort = await listen(b.tcp, 'MQTT', this.opts.mqttPort, this.opts.host, this.log)
      const httpPort = await listen(b.http, 'HTTP', this.opts.httpPort, this.opts.host, this.log)
      await b.lifecycle.start()
      b.gate.serving = true
      for (const { stream, address } of b.gate.waiting.splice(0)) this.accept(b.limiter, b.aedes, stream, address)
      this.log.info({ host: this.opts.host, mqttPort, httpPort, dataDir: this.opts.dataDir }, 'broker listening')
      logConnectionRoom(this.log, connectionRoom())
      return { mqttPort, httpPort }
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /** Stops listening, disconnects every client, writes what is queued and closes the database. */
  async stop(): Promise<void> {
    const b = this.built
    if (!b) return
    // The parts stay reachable while they stop: Aedes' late disconnect and publish events still find the store.
    await b.lifecycle.stop()
    this.built = undefined
    b.lock.release()
    this.log.info('broker stopped')
  }

  /**
   * Builds every part of the broker, in one step; nothing here binds a port: the data parts (buildCore), what faces the
   * network (buildNetwork), and the order they start and stop in (partsInOrder), each part's routes on the one router,
   * and the broker events wired to them.
   */
  private build(lock: DataDirLock): Built {
    const core = this.buildCore()
    const network = this.buildNetwork(core)
    const lifecycle = new PartLifecycle(this.partsInOrder(core, network), this.log)
    lifecycle.each((p) => p.routes?.(core.cloud.router))
    this.wire(network.aedes, core.access, core.store, core.registry, core.cloud, lifecycle, core.limiter)
    return { ...core, ...network, lock, lifecycle }
  }

  /**
   * The data parts. It opens the database (its migrations run under the lock start() just took) and creates the
   * console token if there is none yet: the access rules the MQTT hooks need are built from it.
   */
  private buildCore(): Core {
    const log = this.log
    const clock = this.clock
    const now = (): number => clock.now()
    const db = openDb(this.opts.dataDir)
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
    const checkpointer = new WalCheckpointer(
      join(this.opts.dataDir, DB_FILE),
      this.opts.walCheckpoint ?? DEFAULT_WAL_CHECKPOINT,
      log.child({ component: 'wal' }),
    )
    const registry = new DeviceRegistry(db, now, {
      recheckMs: this.opts.registryRecheckMs ?? REGISTRY_RECHECK_MS,
      failed: (err) => {
        this.counters.handlerFailures++
        log.error({ err }, 'looking for devices removed by another process failed')
      },
    })
    // Before a batch is written, a device another process removed is found: its queued rows are dropped, not refused.
    const store = new StateStore(db, HEARTBEAT_BATCH_MAX, HEARTBEAT_BATCH_MS, () => registry.recheck(), this.opts.heartbeatHold)
    const token = ensureConsoleToken(this.opts.dataDir)
    // Past the heartbeats held for a database that refuses writes, new ones are refused before their PUBACK (StateStore).
    const access = new AccessControl(
      registry,
      token,
      log.child({ component: 'access' }),
      (deviceId, topic, reason) => {
        this.counters.publishRefused++
        if (deviceId !== undefined) store.refused(deviceId, { at: now(), topic, reason })
      },
      () => store.holdingBack(),
    )
    const limiter = new ConnectionRateLimiter(this.opts.rateLimit, clock)
    const framework = new FrameworkServices(
      { db, registry, store, clock, log, allow: (a) => limiter.allow(a), authenticated: (a) => limiter.authenticated(a) },
      this.opts.framework,
    )
    const cloud = new CloudData(
      {
        db,
        dataDir: this.opts.dataDir,
        clock,
        log,
        registry,
        push: framework.queue,
        isConsoleToken: (t) => access.isConsoleToken(t),
        sendPlan: (deviceId, plan) => this.publishToDevice(deviceId, 'plan', encodePayload('plan', plan)),
        // Said to the console only: no device may subscribe to an account's topic (AccessControl).
        accountChanged: (change) =>
          this.publish(accountChangedTopic(change.account), JSON.stringify(checked(AccountChangedSchema, change))),
        consoleListening: () => access.consoleListening,
        writeHeartbeats: () => store.flush(),
      },
      this.opts.cloud,
    )
    const commands = new CommandCenter(db, store, clock, log.child({ component: 'commands' }), (deviceId, command) =>
      this.sendToDevice(deviceId, JSON.stringify(command)),
    )
    // F2: every change of a command's state, said to the console only (no device may subscribe to it, AccessControl),
    // and only while a console listens: one small publish per step, none when nobody would hear it.
    commands.on('changed', (view) => {
      if (!access.consoleListening) return
      const change = checked(CommandChangedSchema, { device: view.device, command: view.id, state: view.state })
      this.publish(commandChangedTopic(change.device), JSON.stringify(change))
    })
    return { db, checkpointer, registry, store, access, limiter, framework, cloud, commands }
  }

  /** Aedes with the access hooks, the TCP and HTTP servers and the WebSocket upgrades, and the gate early connections wait at. */
  private buildNetwork({ access, limiter, framework, cloud }: Core): Network {
    const log = this.log
    const hooks = access.hooks()
    const ingest = this.safely('published', (msg: AcceptedMessage, client: Client | null) => this.ingest(msg, client))
    const aedes = new Aedes({
      ...hooks,
      // Stored here, decoded once in authorizePublish; a failure is logged and counted, and the connection stays up.
      published: (packet, client, done) => {
        const msg = access.accepted(packet)
        if (msg) ingest(msg, client)
        done()
      },
      connectTimeout: this.opts.connectTimeoutMs,
      // No cap on messages in flight: with Aedes' default of 100, messages queue behind slow deliveries, and once those
      // finish the queue is drained by recursion, one stack level per queued message that has no subscriber (a
      // heartbeat): a burst of a few thousand overflowed the stack and stopped the broker. The queue it would keep is
      // unbounded either way; without the cap the messages are handled at once.
      concurrency: 0,
    })
    // A device's message goes past Aedes' delivery pipeline unless a console can receive it (issue 14).
    skipUnheard(aedes, (packet) => access.consoleListening && packet.topic.startsWith(`${TOPIC_ROOT}/`))
    const gate: Gate = { serving: false, waiting: [] }
    // A connection that arrives before the parts are up waits for them (see start()).
    const arrived = (stream: Duplex, address: string): void => {
      if (!gate.serving) {
        log.debug({ address }, 'connection waits for the broker to start')
        gate.waiting.push({ stream, address })
      } else this.accept(limiter, aedes, stream, address)
    }
    const tcp = createTcpServer((socket) => {
      socket.setNoDelay(true)
      arrived(socket, socket.remoteAddress as string)
    })
    // The cloud data's router is the broker's one router (item 5); the other parts add their routes to it.
    const router = cloud.router
    // An idle API connection is kept longer than a phone's or a console's pool keeps it (common/http-keep-alive.ts).
    const http = keepIdleConnections(createHttpServer((req, res) => router.handle(req, res)))
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.opts.maxPacketBytes })
    http.on(
      'upgrade',
      routeUpgrades(
        new Map([
          ['/mqtt', wss],
          [PUSH_PATH, framework.gateway.wss],
        ]),
        log,
      ),
    )
    wss.on('connection', (ws, req) => {
      req.socket.setNoDelay(true)
      arrived(mqttWebSocketStream(ws), req.socket.remoteAddress as string)
    })
    return { aedes, tcp, http, wss, gate }
  }

  /** The parts in their start order (stop runs in reverse), each with the broker events it hears and the routes it adds. */
  private partsInOrder(
    { db, checkpointer, registry, store, access, commands, framework, cloud }: Core,
    { aedes, tcp, http, wss, gate }: Network,
  ): BrokerPart[] {
    const log = this.log
    const clock = this.clock
    const now = (): number => clock.now()
    const subscribedTo = (topics: readonly string[], deviceId: string, kind: 'cmd' | 'plan' | 'time'): boolean =>
      topics.includes(topicFor(deviceId, kind))
    let stopJumps: (() => void) | undefined
    let registryPoll: NodeJS.Timeout | undefined
    const metrics = new BrokerMetrics({
      dataDir: this.opts.dataDir,
      clock,
      counters: this.counters,
      dataConnected: () => this.current.size,
      access,
      store,
      commands,
      queue: framework.queue,
      gateway: framework.gateway,
      router: cloud.router,
    })
    // Start order; stop runs in reverse. Placed so that stop keeps the order that works: the parts holding sockets (time,
    // framework, cloud) stop before the network closes; the commands and the heartbeat batch after it, as late messages
    // may still arrive while Aedes closes; the database last.
    return [
      {
        name: 'database',
        stop: () => {
          db.close()
        },
      },
      // GET /metrics for Prometheus, open as /health is (metrics.ts); it hears the due timers from the start.
      { name: 'metrics', start: () => metrics.start(), stop: () => metrics.stop(), routes: (r) => metrics.addRoutes(r) },
      { name: 'checkpoints', start: () => checkpointer.start(), stop: () => checkpointer.stop() },
      {
        name: 'state',
        start: () => store.resetPresence(clock.now()),
        stop: () => {
          const lost = store.close()
          if (lost) log.error(lost, 'broker stopped while the database refuses writes: the heartbeats and statuses it held are not stored')
        },
      },
      {
        name: 'commands',
        start: () => commands.start(),
        stop: () => commands.stop(),
        deviceGone: (id) => commands.deviceGone(id),
        subscribed: (id, topics) => {
          if (subscribedTo(topics, id, 'cmd')) commands.deviceListening(id)
        },
        routes: (r) => addConsoleRoutes(r, { store, commands, now }),
      },
      { name: 'network', stop: () => closeNetwork(gate, aedes, wss, tcp, http) },
      {
        // A removal by another process (the CLI) is found within REGISTRY_POLL_MS even when no message makes the broker
        // look; stopped before the network closes, so what a removal does reaches a broker still up.
        name: 'registry',
        start: () => {
          registryPoll = setInterval(() => registry.recheck(), REGISTRY_POLL_MS)
        },
        stop: () => clearInterval(registryPoll),
      },
      {
        name: 'cloud',
        start: () => cloud.start(),
        stop: () => cloud.stop(),
        deviceRemoved: (id) => cloud.router.forgetDevice(id),
        deviceGone: (id) => cloud.deviceGone(id),
        subscribed: (id, topics) => {
          if (subscribedTo(topics, id, 'plan')) cloud.planListening(id)
        },
      },
      {
        name: 'framework',
        start: () => framework.start(),
        stop: () => framework.stop(),
        routes: (r) => framework.addRoutes(r),
        deviceRemoved: (id) => framework.gateway.removed(id),
      },
      // M2, M3: export, import and migration of whole accounts, on the console API.
      {
        name: 'transfer',
        routes: (r) =>
          addTransferRoutes(r, {
            db,
            clock,
            log: log.child({ component: 'transfer' }),
            cloud,
            store,
            commands,
            queue: framework.queue,
            pullConnectTimeoutMs: this.opts.pullConnectTimeoutMs ?? PULL_CONNECT_TIMEOUT_MS,
          }),
      },
      {
        name: 'time',
        // One time for the whole system: a jump of simulated time reaches every connected phone, ahead of anything sent after it.
        start: () => {
          if (clock instanceof SimulatedClock)
            stopJumps = clock.onJump(() => {
              for (const deviceId of this.current.keys()) this.sendTime(deviceId)
            })
        },
        stop: () => stopJumps?.(),
        subscribed: (id, topics) => {
          // F1, X2: the answer to the subscription says the highest heartbeat and behaviour-log seqs held of the phone,
          // which numbers past them.
          if (subscribedTo(topics, id, 'time')) this.sendTime(id, { heartbeatSeq: store.lastSeq(id), logSeq: framework.lastLogSeq(id) })
        },
      },
    ]
  }

  /** The broker events, each handed to the parts inside a `safely()` boundary. */
  private wire(
    aedes: Aedes,
    access: AccessControl,
    store: StateStore,
    registry: DeviceRegistry,
    cloud: CloudData,
    lifecycle: PartLifecycle,
    limiter: ConnectionRateLimiter,
  ): void {
    const log = this.log
    store.on('refused', (deviceId, seq, reason) => log.warn({ deviceId, seq, reason }, 'heartbeat not stored'))
    store.on('held', (held, reason, retryInMs) =>
      log.error({ held, reason, retryInMs }, 'the database cannot take heartbeats: they are held in memory and written when it can'),
    )
    store.on('statusHeld', (deviceId, reason, retryInMs) =>
      log.error({ deviceId, reason, retryInMs }, "the database cannot take the device's status: it is held and written when it can"),
    )
    store.on('resumed', (stored) => log.info({ stored }, 'the database takes writes again: the held heartbeats are stored'))
    registry.on(
      'removed',
      this.safely('removed', (deviceId) => this.deviceRemoved(deviceId)),
    )
    cloud.retirement.on(
      'purged',
      this.safely('purged', (account) => this.accountPurged(account)),
    )
    aedes.on(
      'client',
      this.safely('client', (client) => {
        // Every connection reaches Aedes through accept(), which guarded it with its address.
        limiter.authenticated(guardedAddress(client.conn) as string)
        const p = access.principal(client)
        if (p?.role !== 'device') return
        this.counters.connects++
        this.current.set(p.deviceId, client)
        store.setPresence(p.deviceId, true, this.clock.now())
      }),
    )
    aedes.on(
      'clientDisconnect',
      this.safely('clientDisconnect', (client) => {
        access.clientGone(client)
        const p = access.principal(client)
        // Not the device's live connection: it was removed (counted there). Aedes closes a connection another of the same
        // device takes over before it announces the new one: that one went while it was live, and is counted here.
        if (p?.role !== 'device' || this.current.get(p.deviceId) !== client) return
        this.counters.disconnects.closed++
        this.current.delete(p.deviceId)
        lifecycle.each((part) => part.deviceGone?.(p.deviceId))
        store.setPresence(p.deviceId, false, this.clock.now())
      }),
    )
    aedes.on(
      'subscribe',
      this.safely('subscribe', (subscriptions, client) => {
        const p = access.principal(client)
        if (p?.role !== 'device') return
        const topics = subscriptions.map((s) => s.topic)
        lifecycle.each((part) => part.subscribed?.(p.deviceId, topics))
      }),
    )
    aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
    aedes.on('connectionError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'connection error'))
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

  /**
   * The cloud's time, for a phone to stamp with (a phone not subscribed to it is not sent it); with the seqs held of it
   * when answering its subscription (F1 heartbeats, X2 behaviour logs: the highest held of each, null: none).
   */
  private sendTime(deviceId: string, held?: { heartbeatSeq: number | null; logSeq: number | null }): void {
    this.publishToDevice(deviceId, 'time', encodePayload('time', { now: this.clock.now(), ...held }))
  }

  /** Queues `payload` for the device's `kind` topic (the caller knows the device is listening). */
  private publishToDevice(deviceId: string, kind: 'cmd' | 'plan' | 'time' | 'cleared', payload: string): boolean {
    this.publish(topicFor(deviceId, kind), payload)
    return true
  }

  /** Queues `payload` for `topic`, handed to Aedes in batches (drainOutbox). */
  private publish(topic: string, payload: string, retain = false): void {
    this.outbox.push({ topic, payload: Buffer.from(payload), retain })
    const { aedes } = this.parts()
    if (this.outbox.length === 1) setImmediate(() => this.drainOutbox(aedes))
  }

  /**
   * Hands queued publishes to Aedes at most OUTBOX_BATCH per event-loop turn:
   * a few thousand publishes in one turn overflow the stack inside Aedes'
   * message queue (mqemitter) and take the process down.
   */
  private drainOutbox(aedes: Aedes): void {
    for (const { topic, payload, retain } of this.outbox.splice(0, OUTBOX_BATCH)) {
      aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, () => {})
    }
    if (this.outbox.length > 0) setImmediate(() => this.drainOutbox(aedes))
  }

  /**
   * A device removed from the registry through this broker: its connection
   * is closed at once (its last will is refused: it is no device any more),
   * so is its push connection, its verified HTTP credentials are forgotten,
   * what is still queued for it or from it is dropped, and its retained
   * presence and status are cleared (clearRetained), all with a logged
   * reason. A removal by another process on the same data directory comes
   * here too, once the registry notices it: within REGISTRY_RECHECK_MS of a
   * message, or REGISTRY_POLL_MS when none comes (see DeviceRegistry).
   */
  private deviceRemoved(deviceId: string): void {
    const before = this.outbox.length
    const kept = this.outbox.filter((m) => parseTopic(m.topic)?.deviceId !== deviceId)
    this.outbox.splice(0, this.outbox.length, ...kept)
    const heartbeats = this.store.forget(deviceId)
    this.owntracks.forget(deviceId)
    this.log.warn(
      { deviceId, heartbeats, toDevice: before - this.outbox.length },
      'device removed: disconnected, its queued messages dropped, its retained presence and status cleared',
    )
    const client = this.current.get(deviceId)
    if (client) this.counters.disconnects.removed++
    this.current.delete(deviceId)
    const { lifecycle } = this.parts()
    lifecycle.each((part) => part.deviceGone?.(deviceId))
    lifecycle.each((part) => part.deviceRemoved?.(deviceId))
    client?.close()
    this.clearRetained(deviceId)
  }

  /**
   * M1: an account's data was purged. Its phones stay registered (a phone that signs in is told the service is gone),
   * but nothing they said before the purge is handed to a later subscriber: their retained presence and status are
   * cleared. A phone connected then is told so (`cleared`) and says both again; one away says them when it connects.
   * What a phone says afterwards is retained again, as its device state keeps them.
   */
  private accountPurged(account: string): void {
    // Its phones by the account's index: a batch of purges is not a read of every device for each account.
    const phones = this.parts().cloud.accounts.devices(account)
    const cleared = encodePayload('cleared', { at: this.clock.now() })
    for (const id of phones) {
      this.clearRetained(id)
      // After the clearing, in the same queue: a phone connected now says both again, its own words (never the broker's).
      if (this.current.has(id)) this.publishToDevice(id, 'cleared', cleared)
    }
    this.log.warn({ account, phones: phones.length }, "M1: the purged account's phones: their retained presence and status cleared")
  }

  /**
   * Clears what the broker retains of a device (presence, status) the MQTT 3.1.1 way, an empty retained publish on each
   * topic [MQTT-3.3.1-10]: Aedes deletes it from its store, so no later subscriber is handed it, and hands the empty
   * message to those already listening (a console's watch; the web console's live feed then rereads the device).
   */
  private clearRetained(deviceId: string): void {
    for (const kind of RETAINED_KINDS) this.publish(topicFor(deviceId, kind), '', true)
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

  /** Hands a new MQTT connection to Aedes, behind the rate limit and the packet guard. */
  private accept(limiter: ConnectionRateLimiter, aedes: Aedes, stream: Duplex, address: string): void {
    const log = this.log
    if (!limiter.allow(address)) {
      this.counters.rateLimited++
      log.warn({ address }, 'connection refused: too many connections from this address')
      stream.destroy()
      return
    }
    guardConnection(
      stream,
      this.opts,
      (reason, detail) => {
        this.counters.dropped++
        log.warn({ address, reason, detail }, 'connection dropped')
      },
      address,
    )
    aedes.handle(stream)
  }

  private ingest(msg: AcceptedMessage, client: Client | null): void {
    const now = this.clock.now()
    switch (msg.kind) {
      case 'heartbeat':
        return this.takeHeartbeat(msg.deviceId, msg.value, now)
      case 'owntracks': {
        // Its last will says no more than the presence will does; only a location is stored.
        if (msg.value._type !== 'location') return
        const hb = this.owntracks.heartbeat(msg.deviceId, msg.value)
        if (!hb.ok) return this.log.warn({ deviceId: msg.deviceId, reason: hb.reason }, 'OwnTracks location not stored')
        return this.takeHeartbeat(msg.deviceId, hb.value, now)
      }
      case 'presence':
        // The last will of a connection a newer one took over says nothing about the device. Aedes 1.x publishes a replaced
        // connection's will before the new one is announced, so this guards against a change of that order in Aedes.
        /* c8 ignore next */
        if (client !== this.current.get(msg.deviceId)) return
        this.store.setPresence(msg.deviceId, msg.value.state === 'online', now)
        return
      case 'status':
        return this.store.setStatus(msg.deviceId, msg.value, now, (before) => this.cloud.deviceStatus(msg.deviceId, msg.value, before))
      case 'result':
        this.commands.onResult(msg.deviceId, msg.value)
        return
      case 'logs':
        // M1: after the shutdown a phone's behaviour logs are not stored, as its heartbeats are not (a purge would leave them).
        if (this.cloud.retirement.shutDown())
          return this.log.warn({ deviceId: msg.deviceId }, 'behaviour logs ignored: the cloud service was shut down (M1)')
        this.framework.ingestLogs(msg.deviceId, msg.value, now)
        return
    }
  }

  /** F1: a heartbeat is stored unless the cloud service was shut down (M1) or the device has locating off (F3). */
  private takeHeartbeat(deviceId: string, hb: Heartbeat, now: number): void {
    if (this.cloud.retirement.shutDown()) {
      this.counters.heartbeatsIgnored.service_shut_down++
      this.log.warn({ deviceId }, 'heartbeat ignored: the cloud service was shut down (M1)')
      return
    }
    if (!this.store.locationEnabled(deviceId)) {
      this.counters.heartbeatsIgnored.locating_off++
      this.log.warn({ deviceId }, 'heartbeat ignored: the device has Find Device or the cloud service off')
      return
    }
    this.counters.heartbeats++
    this.store.recordHeartbeat(deviceId, hb, now)
  }

  private parts(): Built {
    if (!this.built) throw new Error('the broker is not started')
    return this.built
  }
}

/** Closes the WebSocket and MQTT side and both listeners; connections still waiting for the parts are closed too. */
async function closeNetwork(gate: Gate, aedes: Aedes, wss: WebSocketServer, tcp: TcpServer, http: HttpServer): Promise<void> {
  for (const { stream } of gate.waiting.splice(0)) stream.destroy()
  wss.close()
  for (const c of wss.clients) c.terminate()
  await new Promise<void>((resolve) => aedes.close(() => resolve()))
  // Late disconnect events of clients Aedes just closed must not reach a closed database.
  aedes.removeAllListeners()
  await Promise.all([closeServer(tcp), closeServer(http)])
}

export type { Socket }
