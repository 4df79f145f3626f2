/**
 * The web console's live feed (F1): one MQTT connection to the broker as the
 * console (it may watch everything under fp/v1/), whatever number of pages
 * are open. A heartbeat, presence or status message marks its device changed;
 * a command or its receipt marks the device's command list changed (a receipt
 * marks the device changed too: lost mode is part of its state). Changes
 * are gathered for `coalesceMs` and then sent to every open page as
 * server-sent events -- the devices that changed, read once from the console
 * API -- so 1,000 phones beating at once cost one read, not 1,000, and the
 * pages never poll. When the connection to the broker drops, every page is
 * told at once (and a page that opens meanwhile as soon as it attaches), so
 * nobody takes a stale "online" for the truth; when it is back, the pages are
 * told again and reread what they show. The broker's word that an account's cloud data changed (a phone synced, an
 * item went to the recycle bin or was purged, a backup, the quota, a retirement step) is gathered the same way and
 * passed on as the accounts it names, so a page rereads its data panel once however many changes there were.
 * A command or a receipt of any phone is also passed on as where that phone's commands now stand (outcomes.ts: its
 * newest command, and the fix of its newest verified locate), read once per burst from its command list and verified
 * here with the owner's keys, so the list and the map follow every phone, not only the one whose page is open (F2).
 * The broker's word that a command's state changed (its console-only topic, contract.ts CommandChangedSchema) is passed
 * on the same way: a command queued for a phone that is away, or cancelled, goes out on no device topic, whether a page
 * or a terminal (`fakephone console ring`) issued it. The feed remembers each phone's last outcome and tells a page that
 * opens (or reopens its stream) at once; a move of the clock (a queued command may expire) is recalled (below) too. What it
 * remembers it first recalls from the broker's command history (recall(): every phone's newest command and newest
 * succeeded locate in one read, GET /api/commands/latest, not one read per phone): when it starts, so a console that restarts
 * shows every phone's last command as before, and when it finds the broker again (a queued command the broker expired
 * as it started went out while the feed was away).
 * A receipt's signature it verified once is not checked again (cli/verified-receipts.ts, sized to the fleet and shared with
 * the device pages' command lists): a recall again checks only receipts that are new or changed.
 *   event: devices   {now, devices: DeviceView[], gone: string[]}
 *                                                   the devices that changed; `gone`: those of them no longer registered
 *                                                   (removed: the broker cleared their retained presence and status),
 *                                                   which a page drops from its list and map
 *   event: commands  {devices: string[]}            devices whose commands moved
 *   event: outcomes  {outcomes: DeviceOutcome[]}    where those devices' commands stand (outcomes.ts); on attach,
 *                                                   every device's the feed has read
 *   event: accounts  {accounts: string[] | null}    accounts whose cloud data changed (null: every account)
 *   event: clock     {}                             the cloud clock was moved
 *   event: broker    {connected: true} | {connected: false, state, text, detail, lastContactAt}
 *                                                   the feed found the broker again, or lost it: why in words a person
 *                                                   acts on (broker-trouble.ts), the technical reason, and when the feed
 *                                                   last had it (this machine's time, ms); said again when the reason
 *                                                   changes (closed, then refused while it is down)
 */
import type { ServerResponse } from 'node:http'
import type { MqttClient } from 'mqtt'
import { randomBytes } from 'node:crypto'
import {
  ACCOUNT_CHANGES_FILTER,
  AccountChangedSchema,
  COMMAND_CHANGES_FILTER,
  CommandChangedSchema,
  decodeJson,
  isAccountChangedTopic,
  isCommandChangedTopic,
  parseTopic,
} from '../../common/contract.js'
import { FakephoneError } from '../../common/errors.js'
import { connectMqtt } from '../../common/mqtt.js'
import type { Logger } from '../../common/log.js'
import type { OwnerKeys } from '../../common/signing.js'
import type { ConsoleClient } from '../console-client.js'
import { brokerClosed, brokerTrouble, type BrokerTrouble } from './broker-trouble.js'
import { eachAtOnce } from '../transfer/each-at-once.js'
import { outcomeOf, type DeviceOutcome } from './outcomes.js'
import { VerifiedReceipts } from '../verified-receipts.js'

export interface LiveFeedOptions {
  /** The broker's MQTT over WebSocket address (ws://host:port/mqtt). */
  mqttUrl: string
  consoleToken: string
  /** The owner's keys: a receipt is said verified only when this console can check its signature. */
  keys: OwnerKeys
  /** The receipts already verified (cli/verified-receipts.ts), sized here to the fleet; the feed's own unless given. */
  receipts?: VerifiedReceipts
  log: Logger
  /** How long changes are gathered before the pages hear of them. */
  coalesceMs?: number
  /**
   * How long the feed waits between attempts to reach a broker that went away, and a page between attempts to reopen
   * its event stream (the `retry:` the stream sends): 1 s unless given (tests give less, so a stop is heard sooner).
   */
  retryMs?: number
}

const DEVICE_KINDS = new Set(['heartbeat', 'presence', 'status'])
const COMMAND_KINDS = new Set(['cmd', 'result'])
/** Command lists read at once when many phones' commands moved in one burst. */
const OUTCOME_READS = 8

export class LiveFeed {
  private readonly pages = new Set<ServerResponse>()
  private readonly devices = new Set<string>()
  private readonly commands = new Set<string>()
  private readonly accounts = new Set<string>()
  /** Each device's outcome as last read: a page that attaches hears them all at once. */
  private readonly outcomes = new Map<string, DeviceOutcome>()
  /** Each device's latest read of its commands (a count): an answer overtaken by a later read's is dropped. */
  private readonly latestRead = new Map<string, number>()
  private reads = 0
  /** Set while the last recall could not read the phones' latest commands: the next page that attaches tries again. */
  private unrecalled = false
  /** Stops a recall's reads when the feed stops. */
  private readonly stopping = new AbortController()
  private everyAccount = false
  private clock = false
  /** Whether the feed's MQTT connection to the broker is up (it is once start() resolves). */
  private connected = true
  /** Why the broker cannot be reached, while it cannot (what it was the last time, while it can). */
  private trouble: BrokerTrouble
  private lastContactAt = 0
  private timer: NodeJS.Timeout | undefined
  private client: MqttClient | undefined
  private readonly receipts: VerifiedReceipts

  constructor(
    private readonly api: ConsoleClient,
    private readonly opts: LiveFeedOptions,
  ) {
    this.trouble = brokerClosed(opts.mqttUrl)
    this.receipts = opts.receipts ?? new VerifiedReceipts()
  }

  /** Connects to the broker; rejects with the reason when it refuses or cannot be reached. */
  async start(): Promise<void> {
    const client = connectMqtt(this.opts.mqttUrl, {
      clientId: `console.web-${randomBytes(6).toString('hex')}`,
      username: 'console',
      password: this.opts.consoleToken,
      reconnectPeriod: this.opts.retryMs ?? 1000,
      connectTimeout: 5000,
    })
    this.client = client
    client.on('message', (topic, payload) => this.onMessage(topic, payload))
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve())
        client.once('error', reject)
      })
      await client.subscribeAsync(['fp/v1/+/+', ACCOUNT_CHANGES_FILTER, COMMAND_CHANGES_FILTER], { qos: 0 })
    } catch (err) {
      await client.endAsync(true)
      // A wrong console token or no broker: the person's to fix, one line as the CLI says a FakephoneError, not a stack.
      throw new FakephoneError('ELIVEFEED', `the live feed cannot watch ${this.opts.mqttUrl}: ${(err as Error).message}`)
    }
    // MQTT.js says 'error' when a connection or an attempt to make one fails (a lost connection closes after it), 'close'
    // once per lost connection and per failed attempt to reconnect, 'connect' when one succeeds.
    client.on('error', this.onError)
    client.on('close', this.onClose)
    client.on('connect', this.onConnect)
    void this.recall()
  }

  /**
   * Fills every phone's last outcome from the broker's command history and tells the pages: what the pages showed before
   * a restart of the console shows again without a command moving. One read of every phone's newest command and newest
   * succeeded locate (GET /api/commands/latest, a page per 1,000 phones), not one of each phone's command list; a phone
   * whose newest succeeded locate this console cannot vouch for, though it has the phone's key, has its list read (an
   * older locate's may be verified, as outcomeOf takes it). A phone that never had a command is left out. When the read
   * fails, the next page that attaches tries again.
   */
  async recall(): Promise<void> {
    const read = ++this.reads
    const unvouched: string[] = []
    const seen = new Set<string>()
    let phones = 0
    try {
      for (let after: string | null = ''; after !== null;) {
        const page = await this.api.latestCommands(after)
        if (this.stopping.signal.aborted) return
        // Room for every phone's receipts read so far: the next recall finds them all still verified.
        phones += page.latest.length
        this.receipts.fitFleet(Math.max(phones, this.outcomes.size))
        const outcomes: DeviceOutcome[] = []
        for (const { device, newest, locate } of page.latest) {
          seen.add(device)
          // A later read of the device (a command moved while the recall read it) answered first, or will.
          if ((this.latestRead.get(device) ?? 0) > read) continue
          this.latestRead.set(device, read)
          const outcome = outcomeOf(device, locate && locate.id !== newest.id ? [newest, locate] : [newest], this.opts.keys, this.receipts)
          // Its list says which fix is the map's: this outcome is not said, so a page never sees a fix go and come back.
          if (locate && !outcome.located && this.opts.keys.deviceKey(device)) {
            unvouched.push(device)
            continue
          }
          this.outcomes.set(device, outcome)
          outcomes.push(outcome)
        }
        if (outcomes.length > 0) this.send('outcomes', { outcomes })
        after = page.next
      }
    } catch (err) {
      this.unrecalled = true
      return this.opts.log.warn({ err: (err as Error).message }, "live feed: could not read the phones' latest commands to recall them")
    }
    this.unrecalled = false
    this.forgetCleared(seen, read)
    if (unvouched.length > 0) await this.readOutcomes(unvouched)
  }

  /**
   * A phone whose command the pages were told of but that the broker no longer has (a year without activity cleared the
   * account's commands, A3) is said to have none: its row and its dot forget them, as a console that starts would not
   * know them. Not one read since the recall's (its own answer stands).
   */
  private forgetCleared(seen: ReadonlySet<string>, read: number): void {
    const cleared: DeviceOutcome[] = []
    for (const [device, outcome] of this.outcomes) {
      // Every outcome kept was read under a count (latestRead) set before its read began.
      if (seen.has(device) || outcome.command === null || (this.latestRead.get(device) as number) > read) continue
      this.outcomes.delete(device)
      cleared.push({ device, command: null, located: null })
    }
    if (cleared.length > 0) this.send('outcomes', { outcomes: cleared })
  }

  /**
   * Warned of once per reason, the attempts after it that fail the same way at debug: the feed tries again every second
   * while the broker is away, and a console left open on a stopped broker filled its terminal with one line a second.
   */
  private readonly onError = (err: Error): void => {
    const trouble = brokerTrouble(err, this.opts.mqttUrl)
    if (this.connected || trouble.text !== this.trouble.text) this.opts.log.warn({ err: err.message }, 'live feed: MQTT error')
    else this.opts.log.debug({ err: err.message }, 'live feed: MQTT error again')
    this.troubleIs(trouble)
  }

  /** A close without an error first: the broker closed the connection (a failed attempt's close says nothing new). */
  private readonly onClose = (): void => {
    if (this.connected) this.troubleIs(brokerClosed(this.opts.mqttUrl))
  }

  /** Tells the pages the broker is back (MQTT.js says 'connect' once per connection made after one was lost). */
  private readonly onConnect = (): void => {
    this.connected = true
    this.opts.log.warn({ connected: true }, 'live feed: the broker is back')
    this.send('broker', { connected: true })
    void this.recall()
  }

  /** Tells the pages the broker went away, and why; again when the reason changes while it is away. */
  private troubleIs(trouble: BrokerTrouble): void {
    if (this.connected) {
      this.connected = false
      // This machine's time, said to the person ("last contact 14:02:31"): no rule reads it, and the cloud's clock may
      // run days ahead of the wall clock.
      this.lastContactAt = Date.now()
      this.opts.log.warn({ connected: false }, 'live feed: lost the broker')
    } else if (trouble.text === this.trouble.text) return
    this.trouble = trouble
    this.send('broker', this.away())
  }

  private away(): unknown {
    return { connected: false, ...this.trouble, lastContactAt: this.lastContactAt }
  }

  /** Turns `res` into an event stream for one page. */
  attach(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(`retry: ${this.opts.retryMs ?? 1000}\n\n`)
    if (!this.connected) res.write(frame('broker', this.away()))
    if (this.outcomes.size > 0) res.write(frame('outcomes', { outcomes: [...this.outcomes.values()] }))
    this.pages.add(res)
    res.on('close', () => this.pages.delete(res))
    if (this.unrecalled) void this.recall()
  }

  get listeners(): number {
    return this.pages.size
  }

  /** One of `device`'s commands moved: its outcome is read again with the next flush. */
  commandsMoved(device: string): void {
    this.commands.add(device)
    this.schedule()
  }

  onMessage(topic: string, payload: Buffer | string = ''): void {
    if (isAccountChangedTopic(topic)) return this.accountChanged(payload)
    if (isCommandChangedTopic(topic)) return this.commandChanged(payload)
    const parsed = parseTopic(topic)
    if (!parsed) return
    if (DEVICE_KINDS.has(parsed.kind)) this.devices.add(parsed.deviceId)
    else if (COMMAND_KINDS.has(parsed.kind)) {
      this.commands.add(parsed.deviceId)
      // A lost-mode receipt moves the device's lost mode: its row is sent again.
      if (parsed.kind === 'result') this.devices.add(parsed.deviceId)
    } else if (parsed.kind === 'time') this.clock = true
    else return
    this.schedule()
  }

  /** The broker said an account's data changed (contract.ts, AccountChangedSchema). */
  private accountChanged(payload: Buffer | string): void {
    const decoded = decodeJson(AccountChangedSchema, payload)
    if (!decoded.ok) return this.opts.log.warn({ reason: decoded.reason }, 'live feed: a malformed account change')
    const { account, clock } = decoded.value
    if (clock) this.clock = true
    else if (account === null) this.everyAccount = true
    else this.accounts.add(account)
    this.schedule()
  }

  /**
   * The broker said a command's state changed (contract.ts, CommandChangedSchema): how a command queued for a phone that
   * is away, or cancelled before it was sent, from this console's pages or from a terminal, reaches the pages (F2).
   */
  private commandChanged(payload: Buffer | string): void {
    const decoded = decodeJson(CommandChangedSchema, payload)
    if (!decoded.ok) return this.opts.log.warn({ reason: decoded.reason }, 'live feed: a malformed command change')
    this.commandsMoved(decoded.value.device)
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => void this.flush(), this.opts.coalesceMs ?? 150)
  }

  /** Sends what changed since the last flush. */
  async flush(): Promise<void> {
    this.timer = undefined
    const changed = [...this.devices]
    const commands = [...this.commands]
    const clock = this.clock
    const accounts = this.everyAccount ? null : [...this.accounts]
    this.devices.clear()
    this.commands.clear()
    this.accounts.clear()
    this.everyAccount = false
    this.clock = false
    if (changed.length > 0) {
      try {
        const { now, devices } = await this.api.devices()
        const wanted = new Set(changed)
        const registered = new Set(devices.map((d) => d.id))
        const gone = changed.filter((id) => !registered.has(id))
        // A removed phone's last outcome is not told to a page that attaches later, nor kept.
        for (const id of gone) this.outcomes.delete(id)
        this.send('devices', { now, devices: devices.filter((d) => wanted.has(d.id)), gone })
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'live feed: could not read the devices')
      }
    }
    if (commands.length > 0) this.send('commands', { devices: commands })
    // A page rereads everything it shows when the clock moved (the cloud's time, the devices' ages, the accounts' data):
    // told at once, not after the feed's own reads, which for a fleet take a while.
    if (clock) this.send('clock', {})
    else if (accounts === null || accounts.length > 0) this.send('accounts', { accounts })
    // A move of the clock may have expired queued commands, or cleared accounts' commands (A3): one recall of every
    // phone's newest command finds both, and so also reads the phones whose commands moved meanwhile -- each phone read
    // once, not its list first and then the recall's read again.
    if (clock) await this.recall()
    else if (commands.length > 0) await this.readOutcomes(commands)
  }

  /**
   * Reads where each device's commands stand and tells the pages: one read per device, however many steps it took, a
   * few at once (a fleet's burst of commands is not a thousand requests to the broker at the same moment).
   */
  private async readOutcomes(devices: string[]): Promise<void> {
    const outcomes: DeviceOutcome[] = []
    const failed: string[] = []
    try {
      await eachAtOnce(
        devices,
        OUTCOME_READS,
        async (id) => {
          const read = ++this.reads
          this.latestRead.set(id, read)
          try {
            const outcome = outcomeOf(id, (await this.api.commands(id)).commands, this.opts.keys, this.receipts)
            // A later read of the device (a command moved while a recall read it) answered first, or will: this answer
            // may be older than what the pages were told.
            if (this.latestRead.get(id) !== read) return
            this.outcomes.set(id, outcome)
            outcomes.push(outcome)
          } catch (err) {
            // A device removed meanwhile, or the broker away (said to the pages on its own): nothing to tell of it.
            failed.push((err as Error).message)
          }
        },
        this.stopping.signal,
      )
    } catch {
      // The feed stopped: no page is left to tell.
      return
    }
    // One line however many failed: a recall of a fleet while the broker goes away is not a thousand.
    if (failed.length > 0) this.opts.log.warn({ err: failed[0], devices: failed.length }, 'live feed: could not read the commands')
    if (outcomes.length > 0) this.send('outcomes', { outcomes })
  }

  private send(event: string, data: unknown): void {
    const text = frame(event, data)
    for (const page of this.pages) page.write(text)
  }

  async stop(): Promise<void> {
    // Its own end is not the broker going away: nothing more is said, nothing logged.
    this.client
      ?.off('error', this.onError)
      .off('close', this.onClose)
      .off('connect', this.onConnect)
      .on('error', () => {})
    clearTimeout(this.timer)
    this.timer = undefined
    this.stopping.abort()
    for (const page of this.pages) page.end()
    this.pages.clear()
    await this.client?.endAsync(true)
  }
}

/** One server-sent event. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}
