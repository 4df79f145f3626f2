/**
 * App data sync on the phone (S1-S4): keeps the phone's photos, contacts,
 * notes and recordings (agent.data) and the cloud's copy of them in step.
 *
 * A pass, per category: list the local items (files added while the agent
 * was not running included); send the deletes made while sync was on (they
 * go to the cloud's recycle bin, R1); upload what is new or changed -- the
 * bytes as a resumable blob, then the metadata; pull what other phones
 * changed since the category's cursor. A pass runs when the user changes
 * something, when transfers become possible again, when a switch is
 * flipped, and on a schedule from the agent's clock.
 *
 * - S1: a category switched off is neither uploaded nor pulled.
 * - S3: photos also stop when the gallery's auto-backup or the album switch
 *   is off. Every transfer carries the agent's transfer signal, so cutting
 *   the network or stopping the cloud service halts an upload at once; the
 *   next pass resumes it from the offset the cloud kept. An item carries the
 *   "in the cloud" marker only once the cloud confirmed its metadata.
 * - S4: a delete made while the category does not upload is forgotten, not
 *   sent: the cloud keeps its copy and nothing reaches the recycle bin.
 * - A3: a change feed that says the cloud cleared the account's data since
 *   the phone last looked makes it forget what it took for in the cloud and
 *   upload its items again from its files. A `FROZEN` answer says it too,
 *   while the account is frozen: the status says the cloud holds none of the
 *   items until they are uploaded again, after the owner's sign-in. A phone
 *   with every category off asks once when a `cloud` notice arrives (the
 *   freeze's among them), and at each pass while its account is frozen, with
 *   one page of one item of the feed (checkCleared): no activity, one request.
 * - A1: an item the cloud refused for want of room (507: the account's quota
 *   or the cloud's disk full) is tried again sooner than the schedule: a
 *   pass after 1 minute, doubling with each pass still refused so up to the
 *   schedule's interval, on the agent's clock (never at once: no busy loop).
 *   The status says when (`retryAt`), the log why; a pass without such a
 *   refusal ends the retries.
 */
import { EventEmitter } from 'node:events'
import { RetryTimer } from '../../common/backoff.js'
import type { Clock, Timer } from '../../common/clock.js'
import { ChangesSchema, ItemReplySchema, SYNC_PATH, type CloudItem } from '../../common/cloud/sync-api.js'
import type { Logger } from '../../common/log.js'
import { CloudError, type CloudClient } from '../cloud-client.js'
import { CATEGORIES, type Category, type LocalItem, type PhoneData } from '../phone-data/types.js'
import { checkId } from '../phone-data/store.js'
import { SyncState } from './state.js'
import { SyncSwitches, type PhotoSwitch, type SyncSwitchValues } from './switches.js'

/** What the agent tells the engine about bulk transfers (see Agent.canTransfer / transferSignal). */
export interface TransferGate {
  canTransfer(): boolean
  readonly transferSignal: AbortSignal
  on(event: 'transfers', listener: (possible: boolean) => void): unknown
  off(event: 'transfers', listener: (possible: boolean) => void): unknown
}

export interface SyncEngineOptions {
  dataDir: string
  data: PhoneData
  cloud: CloudClient
  gate: TransferGate
  clock: Clock
  log: Logger
  /** Time between scheduled passes, ms (default 15 minutes). */
  intervalMs?: number
  /** Uploads in flight at once (default 4). */
  parallel?: number
  /** The jitter of the retries after a full cloud (A1; default Math.random). */
  random?: () => number
}

export interface CategorySyncStatus {
  /** S1: the category's switch. */
  sync: boolean
  /** S1, S3: whether its local changes go up (photos: all three photo switches). */
  uploads: boolean
  local: number
  /** Local items whose bytes the cloud confirmed: they carry the "in the cloud" marker. */
  inCloud: number
  /** Local items not (or not yet) in the cloud. */
  pending: number
  lastSync: number | null
  lastError: string | null
}

/** A3: what the phone was told of a clearing of the account's cloud data. */
export interface CloudClearing {
  /** When the cloud last cleared the account's data (a year without activity), ms on its clock; null if never. */
  clearedAt: number | null
  /** The cloud's last answer said the account is frozen: nothing goes up until its owner signs in. */
  frozen: boolean
}

export interface SyncStatus {
  switches: SyncSwitchValues
  running: boolean
  categories: Record<Category, CategorySyncStatus>
  /** A3 (absent from older phones). */
  cloud?: CloudClearing
  /** A1: the cloud refused items for want of room: when the pass that tries them again runs (clock ms); null: none waits. */
  retryAt?: number | null
}

interface SyncEvents {
  /** Bytes of an item's upload the cloud has. */
  progress: [category: Category, id: string, sent: number, size: number]
  /** The cloud acknowledged an item's upload (its metadata answered): it carries the "in the cloud" marker (S3). */
  uploaded: [category: Category, id: string]
  /**
   * A transfer failed: an item's upload or delete (`id`; tried again next pass), or the pass itself, halted at `category`
   * (`id` null: the cloud unreachable or refusing, the transfers stopped; the rest waits for the next pass).
   */
  failed: [category: Category, id: string | null, err: Error]
  /** A pass ended (done, halted or failed). */
  pass: []
  /** A3: the cloud said (its feed, or a FROZEN answer) it cleared the account's data (at, on its clock) since the phone last looked. */
  'cloud-cleared': [at: number]
  /** A3: the account answers again after a clearing or a freeze the phone knows of. */
  'account-back': []
}

export const DEFAULT_SYNC_INTERVAL_MS = 15 * 60_000
/** A1: the first retry after the cloud refused an item for want of room, ms (up to the schedule's interval after). */
export const FULL_RETRY_MS = 60_000
const PAGE = 200

/** A1: the cloud has no room for the item (507: the account's quota, or its disk, full). */
const noRoom = (err: unknown): boolean => err instanceof CloudError && err.status === 507

/**
 * Errors after which the rest of the pass cannot work: transfers halted, the cloud unreachable, or refusing the account (service off,
 * frozen: 403).
 */
function ends(err: unknown): boolean {
  return err instanceof CloudError && (err.status === 0 || err.status === 403)
}

const key = (category: Category, id: string): string => `${category}/${id}`

/** A3: the cloud refuses the account because it is frozen. */
const isFrozen = (err: unknown): err is CloudError => err instanceof CloudError && err.code === 'FROZEN'

export class SyncEngine extends EventEmitter<SyncEvents> {
  readonly switches: SyncSwitches
  private readonly state: SyncState
  /** The bytes each local item had when last listed; an edit or a delete drops its entry. */
  private readonly localSha = new Map<string, string>()
  private readonly counts = new Map<Category, { local: number; inCloud: number }>(CATEGORIES.map((c) => [c, { local: 0, inCloud: 0 }]))
  private readonly errors = new Map<Category, string>()
  private running: Promise<void> | null = null
  private wanted = false
  /** A3: a `cloud` notice arrived: the next pass asks whether the cloud cleared or froze the account (checkCleared). */
  private lookWanted = false
  private started = false
  private paused = false
  private timer: Timer | null = null
  /** A1: the pass after the cloud refused items for want of room, sooner than the schedule. */
  private readonly fullRetry: RetryTimer
  /** A1: when that pass runs (clock ms); null when none waits. */
  private retryAt: number | null = null
  /** A1: an item of this pass was refused for want of room. */
  private refusedFull = false

  private readonly onChanged = (category: Category, id: string, kind: 'added' | 'edited' | 'deleted'): void => {
    this.localSha.delete(key(category, id))
    // S4: a delete made while the category does not upload stays on the phone.
    if (kind === 'deleted' && !this.switches.uploads(category)) this.state.forget(category, id)
    this.kick()
  }

  private readonly onTransfers = (possible: boolean): void => {
    if (possible) this.kick()
  }

  constructor(private readonly opts: SyncEngineOptions) {
    super()
    this.switches = new SyncSwitches(opts.dataDir)
    this.state = new SyncState(opts.dataDir)
    const capMs = Math.max(FULL_RETRY_MS, opts.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS)
    this.fullRetry = new RetryTimer(opts.clock, { baseMs: FULL_RETRY_MS, capMs }, opts.random)
  }

  async start(): Promise<void> {
    await this.switches.load()
    await this.state.load()
    this.started = true
    this.opts.data.on('changed', this.onChanged)
    this.opts.gate.on('transfers', this.onTransfers)
    for (const category of CATEGORIES) await this.scan(category)
    this.schedule()
    this.kick()
  }

  async stop(): Promise<void> {
    this.started = false
    this.timer?.cancel()
    this.timer = null
    this.opts.data.off('changed', this.onChanged)
    this.opts.gate.off('transfers', this.onTransfers)
    await this.settled()
    // After the last pass, which may have asked for a retry (A1).
    this.fullRetry.cancel()
    this.retryAt = null
  }

  /** Asks for a pass soon; passes asked for while one runs are one more pass after it. */
  kick(): void {
    if (!this.started || this.paused) return
    this.wanted = true
    this.running ??= this.loop()
  }

  /** Resolves when no pass runs and none is waiting. */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  /** Resolves when no pass runs or waits and what sync wrote (its state, its switches) is on disk: its writes went quiet. */
  async settled(): Promise<void> {
    await this.idle()
    await this.state.flushed()
    await this.switches.flushed()
  }

  /**
   * Runs `fn` (a wipe) with sync held still and its files on disk, then
   * switches every category off (a wiped phone must not pull its owner's
   * data back) and forgets what was synced, so the emptied folders are not
   * taken for deletes.
   */
  async whilePaused<T>(fn: () => Promise<T>): Promise<T> {
    this.paused = true
    try {
      await this.settled()
      const result = await fn()
      await this.switches.reset()
      await this.state.reset()
      this.localSha.clear()
      return result
    } finally {
      this.paused = false
      this.kick()
    }
  }

  /** M2: the account's cloud moved: its change feed is read from the start once the pass in progress (halted) is over. */
  async cloudMoved(): Promise<void> {
    await this.idle()
    await this.state.restartFeeds()
  }

  /** S1: the user flips a category's switch in the app-data-sync list. */
  async setCategory(category: Category, on: boolean): Promise<SyncStatus> {
    await this.switches.setCategory(category, on)
    this.kick()
    return this.status()
  }

  /** S3: the user flips the gallery's auto-backup or the album switch. */
  async setPhotoSwitch(name: PhotoSwitch, on: boolean): Promise<SyncStatus> {
    await this.switches.setPhotoSwitch(name, on)
    this.kick()
    return this.status()
  }

  /** S3: the "in the cloud" marker -- the cloud confirmed these very bytes. */
  inCloud(category: Category, id: string): boolean {
    const sha = this.localSha.get(key(category, id))
    return sha !== undefined && this.state.link(category, id)?.sha256 === sha
  }

  status(): SyncStatus {
    const categories = Object.fromEntries(
      CATEGORIES.map((c) => {
        const { local, inCloud } = this.counts.get(c) as { local: number; inCloud: number }
        const s: CategorySyncStatus = {
          sync: this.switches.isOn(c),
          uploads: this.switches.uploads(c),
          local,
          inCloud,
          pending: local - inCloud,
          lastSync: this.state.of(c).lastSync,
          lastError: this.errors.get(c) ?? null,
        }
        return [c, s]
      }),
    ) as Record<Category, CategorySyncStatus>
    return { switches: this.switches.current, running: this.running !== null, categories, cloud: this.clearing, retryAt: this.retryAt }
  }

  /** A3: what the phone was told of a clearing of the account's data, and whether its account is frozen. */
  get clearing(): CloudClearing {
    return { clearedAt: this.state.clearedAt, frozen: this.state.frozen }
  }

  /** A3: another part of the phone (its backup) was refused `FROZEN`: the same as a sync refused so. */
  refusedFrozen(clearedAt: number | null | undefined): void {
    this.heard(clearedAt, true)
  }

  /**
   * A3: a `cloud` notice arrived (the freeze's, or another rule's): a phone whose categories are all off reads no feed,
   * so the next pass asks the cloud once whether it cleared or froze the account.
   */
  checkCleared(): void {
    this.lookWanted = true
    this.kick()
  }

  private schedule(): void {
    this.timer = this.opts.clock.after(this.opts.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS, () => {
      this.kick()
      this.schedule()
    })
  }

  private async loop(): Promise<void> {
    while (this.wanted && this.started && !this.paused) {
      this.wanted = false
      this.refusedFull = false
      await this.pass()
      this.afterPass()
      this.emit('pass')
    }
    this.running = null
  }

  /**
   * A1: items refused for want of room are tried again by a pass sooner than the schedule (backing off); a pass that
   * went without such a refusal ends the retries.
   */
  private afterPass(): void {
    if (!this.refusedFull) {
      this.fullRetry.cancel()
      this.fullRetry.reset()
      this.retryAt = null
      return
    }
    if (!this.fullRetry.schedule(() => this.retryFull())) return
    this.retryAt = this.opts.clock.now() + this.fullRetry.lastDelayMs
    this.opts.log.info(
      { retryInMs: this.fullRetry.lastDelayMs, retryAt: new Date(this.retryAt).toISOString() },
      'the cloud has no room for some items (quota or disk full): sync tries them again sooner than its schedule',
    )
  }

  private retryFull(): void {
    this.retryAt = null
    this.kick()
  }

  private async pass(): Promise<void> {
    const signal = this.opts.gate.transferSignal
    const online = (): boolean => this.opts.gate.canTransfer() && !signal.aborted
    // A3: asked to (a cloud notice), or frozen with no category that reads its feed and so would hear the sign-in.
    const look = this.lookWanted || (this.state.frozen && !CATEGORIES.some((c) => this.switches.isOn(c)))
    let category: Category = CATEGORIES[0]
    try {
      if (look && online()) await this.look(signal)
      for (category of CATEGORIES) await this.syncCategory(category, online(), signal)
    } catch (err) {
      if (isFrozen(err)) this.heard(err.clearedAt, true)
      this.emit('failed', category, null, err as Error)
      this.opts.log.info({ category, err: (err as Error).message }, 'sync pass halted')
      // The rest waits for the next pass; still count what is on the phone.
      for (const rest of CATEGORIES.slice(CATEGORIES.indexOf(category))) {
        this.errors.set(rest, (err as Error).message)
        await this.scan(rest)
      }
    }
  }

  /** Lists the category's local items, remembers their bytes and counts what is in the cloud. */
  private async scan(category: Category): Promise<LocalItem[]> {
    const local = await this.opts.data.list(category)
    this.count(category, local)
    return local
  }

  /** Remembers the bytes of `local` (the category's items as last listed) and counts what is in the cloud. */
  private count(category: Category, local: LocalItem[]): void {
    for (const k of this.localSha.keys()) if (k.startsWith(`${category}/`)) this.localSha.delete(k)
    let inCloud = 0
    for (const item of local) {
      this.localSha.set(key(category, item.id), item.sha256)
      if (this.state.link(category, item.id)?.sha256 === item.sha256) inCloud++
    }
    this.counts.set(category, { local: local.length, inCloud })
  }

  private async syncCategory(category: Category, online: boolean, signal: AbortSignal): Promise<void> {
    const local = await this.scan(category)
    if (online) this.errors.delete(category)
    const here = new Set(local.map((i) => i.id))
    const gone = Object.keys(this.state.of(category).links).filter((id) => !here.has(id))
    if (!this.switches.uploads(category)) {
      // S4: deletes made while this category does not upload never reach the cloud.
      for (const id of gone) this.state.forget(category, id)
    } else if (online) {
      for (const id of gone) await this.tryItem(category, id, () => this.sendDelete(category, id, signal))
      const changed = local.filter((item) => this.state.link(category, item.id)?.sha256 !== item.sha256)
      await this.inParallel(changed, (item) => this.tryItem(category, item.id, () => this.upload(item, signal)))
    }
    if (!online) return
    // Only a pull changes the phone's files; otherwise the list above still holds and only the counts moved.
    if (this.switches.isOn(category) && (await this.pull(category, signal))) await this.scan(category)
    else this.count(category, local)
    this.state.synced(category, this.opts.clock.now())
  }

  /** One item's work; an error that ends the pass is thrown, any other is noted and the next item goes on. */
  private async tryItem(category: Category, id: string, work: () => Promise<void>): Promise<void> {
    try {
      await work()
    } catch (err) {
      if (ends(err)) throw err
      if (noRoom(err)) this.refusedFull = true
      this.emit('failed', category, id, err as Error)
      this.errors.set(category, `${id}: ${(err as Error).message}`)
      this.opts.log.warn({ category, id, err: (err as Error).message }, 'sync of an item failed; it is tried again next pass')
    }
  }

  private async inParallel<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0
    let failure: { err: unknown } | null = null
    const worker = async (): Promise<void> => {
      while (failure === null && next < items.length) {
        try {
          await work(items[next++] as T)
        } catch (err) {
          failure ??= { err }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel ?? 4, items.length) }, worker))
    if (failure !== null) throw (failure as { err: unknown }).err
  }

  /** The bytes as a resumable blob, then the metadata; the link (and so the marker) only after the cloud answered. */
  private async upload(item: LocalItem, signal: AbortSignal): Promise<void> {
    const { category, id } = item
    const bytes = await this.opts.data.read(category, id)
    const sha256 = await this.opts.cloud.upload(bytes, signal, (sent, size) => this.emit('progress', category, id, sent, size))
    const body = { sha256, size: bytes.length, meta: item.meta, modifiedAt: item.modifiedAt }
    await this.opts.cloud.call('PUT', `${SYNC_PATH}/${category}/${encodeURIComponent(id)}`, ItemReplySchema, body, signal)
    this.state.setLink(category, id, { sha256, size: bytes.length })
    this.emit('uploaded', category, id)
  }

  /** R1: a delete made while sync was on goes to the cloud's recycle bin. */
  private async sendDelete(category: Category, id: string, signal: AbortSignal): Promise<void> {
    try {
      await this.opts.cloud.call('DELETE', `${SYNC_PATH}/${category}/${encodeURIComponent(id)}`, ItemReplySchema, undefined, signal)
    } catch (err) {
      // Already deleted in the cloud (from the console or another phone): nothing left to do.
      if (!(err instanceof CloudError && err.status === 404)) throw err
    }
    this.state.forget(category, id)
  }

  /** S1: what other phones changed, from the category's cursor; true when a file on the phone was written or removed. */
  private async pull(category: Category, signal: AbortSignal): Promise<boolean> {
    let touched = false
    for (;;) {
      const since = this.state.of(category).cursor
      const page = await this.opts.cloud.call(
        'GET',
        `${SYNC_PATH}/${category}/changes?since=${since}&limit=${PAGE}`,
        ChangesSchema,
        undefined,
        signal,
      )
      this.heard(page.clearedAt, false)
      for (const change of page.changes) if (await this.apply(category, change, signal)) touched = true
      this.state.setCursor(category, page.cursor)
      if (!page.more) return touched
    }
  }

  /**
   * A3: one page of one item of the feed, to hear whether the cloud cleared or froze the account: not an activity (a
   * read), one request; its page moves no cursor. A refusal (FROZEN among them) ends the pass as a pull's would; asked
   * for by a notice, it is asked again at each pass until a page comes (a cut network does not lose the notice).
   */
  private async look(signal: AbortSignal): Promise<void> {
    const since = this.state.of('photos').cursor
    const page = await this.opts.cloud.call('GET', `${SYNC_PATH}/photos/changes?since=${since}&limit=1`, ChangesSchema, undefined, signal)
    this.lookWanted = false
    this.heard(page.clearedAt, false)
  }

  /**
   * A3: what the cloud said of the account: when it last cleared its data, and whether it is frozen (a FROZEN answer)
   * or not (a page of the feed). The same clearing heard twice -- while frozen, then from the feed once the account is
   * back -- changes the links once, so each item goes up once.
   */
  private heard(clearedAt: number | null | undefined, frozen: boolean): void {
    const wasFrozen = this.state.frozen
    const cleared = this.state.cloudCleared(clearedAt)
    this.state.setFrozen(frozen)
    if (cleared) this.cloudWasCleared(clearedAt as number, frozen)
    if (!frozen && (cleared || wasFrozen)) this.emit('account-back')
  }

  /**
   * A3: the cloud cleared the account's data (a freeze) after this phone last synced: its items are no longer there.
   * The links are gone (SyncState.cloudCleared); unless the account is still frozen, another pass uploads every local
   * item again, the categories this pass already went through included. A delete made meanwhile stays one: the item is
   * no longer on the phone to upload.
   */
  private cloudWasCleared(at: number, frozen: boolean): void {
    this.opts.log.warn(
      { clearedAt: new Date(at).toISOString(), frozen },
      "the cloud cleared the account's data (A3: a year without activity): the phone's items are uploaded again",
    )
    if (!frozen) this.kick()
    this.emit('cloud-cleared', at)
  }

  /** Brings one cloud change to the phone; true when it wrote or removed a file. */
  private async apply(category: Category, change: CloudItem, signal: AbortSignal): Promise<boolean> {
    const { id } = change
    // An id this phone cannot keep as a file of the category (another phone's naming, an imported bag) is passed over with
    // the reason: thrown, it would stop every pull at this change, for good.
    try {
      checkId(category, id)
    } catch (err) {
      this.opts.log.warn({ category, id, reason: (err as Error).message }, 'a cloud item this phone cannot keep is skipped')
      return false
    }
    const link = this.state.link(category, id)
    const local = await this.opts.data.get(category, id)
    // A local change not yet uploaded wins: it goes up next pass.
    const editedHere = local !== undefined && local.sha256 !== link?.sha256
    if (change.deletedAt !== null) {
      if (!link) return false
      const removed = local !== undefined && !editedHere && (await this.opts.data.remove(category, id))
      this.state.forget(category, id)
      return removed
    }
    if (link?.sha256 === change.sha256) return false
    if (local?.sha256 === change.sha256) {
      this.state.setLink(category, id, { sha256: change.sha256, size: change.size })
      return false
    }
    if (editedHere) return false
    const bytes = await this.opts.cloud.download(change.sha256, signal)
    await this.opts.data.write(category, id, bytes, { modifiedAt: change.modifiedAt })
    this.state.setLink(category, id, { sha256: change.sha256, size: change.size })
    return true
  }
}
