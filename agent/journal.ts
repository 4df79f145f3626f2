/**
 * F2 exactly once: the agent's command journal, an append-only log
 * (`<data>/commands.jsonl`, one JSON line per step). Each step is on disk
 * before the next one starts, so a command redelivered by MQTT, replayed, or
 * interrupted by a crash runs to completion once. Since issue 14 a command
 * writes `executing` then `done`, or `done` alone when it is answered at once
 * (locate) or refused; agent/remote.ts says what a crash between them leaves
 * and what the next start does. `received`, written first before issue 14, is
 * still read from older logs: an entry at `received` or `executing` is
 * unfinished alike. `lastSeq` is the highest sequence number accepted;
 * anything at or below it is a replay.
 *
 * A step costs one write and one fdatasync at most: steps put while a sync
 * is in flight wait for it to end and then share the next one (group
 * commit), and each step's promise resolves only once a sync covering its
 * line has returned. Replay at start applies the lines in order; a torn last
 * line (a crash in mid-write) is ignored and logged, since its step was
 * never reported durable. At start, and whenever the log grows past a bound,
 * it is compacted: rewritten atomically (temporary file, fsync, rename,
 * directory fsync) as a `lastSeq` line and the entries still kept. A journal from before the log
 * (`commands.json`) is migrated on the first start and then removed. A phone
 * with no journal at all (its first start) writes nothing at start: its first
 * step creates the log, as a compaction (issue 12: the two fsyncs each phone
 * of a fleet paid before its data channel opened queued on libuv's four
 * threads and held the ramp at about 350 phones a second).
 *
 * The log stays open for KEEP_OPEN_MS after an append, so the steps of a
 * command (and the commands that follow soon) append through one descriptor:
 * opening and closing it around each step was two more trips to libuv's
 * threads, the close before the step resolved (issue 14: the command round
 * trip). An idle phone holds none (a fleet of phones in one process counts its
 * descriptors), and a compaction closes it before it replaces the file, so an
 * append never lands in the file a rename took away.
 */
import type { FileHandle } from 'node:fs/promises'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { CommandSchema, UnsignedResultSchema, decodeJson } from '../common/contract.js'
import { JsonFile, JsonFileError, readTextIfExists, writeAtomic } from '../common/json-file.js'
import type { Logger } from '../common/log.js'

export const JournalEntrySchema = z.strictObject({
  step: z.enum(['received', 'executing', 'done']),
  command: CommandSchema,
  /** The final result, once done. */
  result: UnsignedResultSchema.optional(),
  /** True once the broker acknowledged the final receipt. */
  reported: z.boolean(),
})
export type JournalEntry = z.infer<typeof JournalEntrySchema>

export const JournalSchema = z.strictObject({
  lastSeq: z.number().int().nonnegative(),
  entries: z.record(z.string(), JournalEntrySchema),
})

/** The journal an older version left, if any: built once, not at each phone's start (zod takes 10-25 µs to build it). */
const LegacyJournalSchema = JournalSchema.nullable()

/** A line of the log: a step, or the `lastSeq` a compaction kept (older entries are gone). */
const LineSchema = z.union([JournalEntrySchema, z.strictObject({ lastSeq: z.number().int().nonnegative() })])

export const JOURNAL_FILE = 'commands.jsonl'
/** The journal as it was before the log: one JSON document rewritten at every step. */
export const LEGACY_JOURNAL_FILE = 'commands.json'

/** Finished entries kept for answering redeliveries; older ones are covered by lastSeq. */
const KEEP_DONE = 200
/** Lines appended beyond the entries kept before the log is compacted (200 commands of 4 lines before issue 14; 2 or 3 lines now). */
const COMPACT_AFTER = 4 * KEEP_DONE
/** How long the log stays open after an append, ms. */
const KEEP_OPEN_MS = 1000

export interface JournalOptions {
  log: Logger
  /** Lines appended beyond the entries kept before a compaction; COMPACT_AFTER unless a test wants it small. */
  compactAfter?: number
  /** Makes the appended lines durable; tests wrap it to hold or count syncs. */
  datasync?: (file: FileHandle) => Promise<void>
  /** How long the log stays open after an append; KEEP_OPEN_MS unless a test wants it short. */
  keepOpenMs?: number
}

interface Waiter {
  line: string
  resolve: () => void
  reject: (err: unknown) => void
}

/** A finished entry whose receipt the broker acknowledged: KEEP_DONE of them are kept. */
const isReported = (e: JournalEntry): boolean => e.step === 'done' && e.reported

export class CommandJournal {
  private highestSeq = 0
  /** Entries by command id, in the order each id was first put (as the object it replaced kept them). */
  private readonly entries = new Map<string, JournalEntry>()
  /** How many entries are reported (isReported): counted, so that only a put past KEEP_DONE looks for the oldest. */
  private reported = 0
  readonly path: string
  private readonly legacyPath: string
  private readonly compactAfter: number
  private readonly datasync: (file: FileHandle) => Promise<void>
  /** Lines in the log file now. */
  private lines = 0
  /** The log must be replaced whole: none exists yet, its end may be torn, or the last write failed. */
  private rewrite = true
  private waiting: Waiter[] = []
  private flushing: Promise<void> | null = null
  /** The log, open to append, between an append and KEEP_OPEN_MS after the last one. */
  private file: FileHandle | null = null
  private closeTimer: NodeJS.Timeout | null = null
  private readonly keepOpenMs: number
  /** fsyncs and fdatasyncs issued so far (a compaction counts two: the file and its directory). */
  syncs = 0
  /** Compactions so far. */
  compactions = 0

  constructor(
    dataDir: string,
    private readonly opts: JournalOptions,
  ) {
    this.path = join(dataDir, JOURNAL_FILE)
    this.legacyPath = join(dataDir, LEGACY_JOURNAL_FILE)
    this.compactAfter = opts.compactAfter ?? COMPACT_AFTER
    this.datasync = opts.datasync ?? ((file) => file.datasync())
    this.keepOpenMs = opts.keepOpenMs ?? KEEP_OPEN_MS
  }

  /**
   * Replays the log, or migrates the journal an older version left (removed only once the log holds it); an invalid
   * line before the last is an error naming it.
   */
  async load(): Promise<void> {
    this.highestSeq = 0
    this.entries.clear()
    this.reported = 0
    const text = await readTextIfExists(this.path)
    if (text === null) {
      const legacy = await new JsonFile(this.legacyPath, LegacyJournalSchema).load(null)
      // Nothing on disk: nothing to write or remove now. `rewrite` is still true, so the first step creates the log.
      if (!legacy) return
      this.highestSeq = legacy.lastSeq
      for (const [id, entry] of Object.entries(legacy.entries)) {
        this.entries.set(id, entry)
        if (isReported(entry)) this.reported++
      }
      this.opts.log.info({ entries: Object.keys(legacy.entries).length }, `command journal migrated from ${LEGACY_JOURNAL_FILE}`)
    } else this.replay(text)
    // A torn, migrated or overlong log is made whole and compact now, so a command's first step costs one sync like the others.
    if (this.rewrite || this.overBound(0)) {
      try {
        await this.compact()
      } catch (err) {
        // A full disk does not stop the phone: the first step tries again, and fails its command if it cannot (remote.ts).
        this.opts.log.warn({ err, file: this.path }, 'command journal could not be rewritten at start')
        return
      }
    }
    // The log is written before the old file goes, so a crash in between leaves both and the log wins.
    await rm(this.legacyPath, { force: true })
  }

  get lastSeq(): number {
    return this.highestSeq
  }

  entry(id: string): JournalEntry | undefined {
    return this.entries.get(id)
  }

  /** Entries a crash left unfinished, oldest first. */
  unfinished(): JournalEntry[] {
    return this.all().filter((e) => e.step !== 'done')
  }

  /** Finished entries whose receipt the broker has not acknowledged. */
  unreported(): JournalEntry[] {
    return this.all().filter((e) => e.step === 'done' && !e.reported)
  }

  /** Records `entry` (and raises lastSeq to its command's) at once; resolves when a sync has made it durable. */
  put(entry: JournalEntry): Promise<void> {
    this.apply(entry)
    return new Promise((resolve, reject) => {
      this.waiting.push({ line: `${JSON.stringify(entry)}\n`, resolve, reject })
      this.flushing ??= this.drain()
    })
  }

  /** Resolves when no write is in progress (whether the last one worked or not). */
  async flushed(): Promise<void> {
    while (this.flushing) await this.flushing
  }

  /**
   * Puts `entry` in memory; past KEEP_DONE reported entries the oldest (lowest seq, the first put among equals) go. One
   * pass over the entries per entry dropped, only when one must go: the whole list was gathered, filtered and sorted at
   * every receipt's `reported` step before (issue 14: ~0.1 ms of each command round trip with 200 kept).
   */
  private apply(entry: JournalEntry): void {
    const id = entry.command.id
    const before = this.entries.get(id)
    if (before && isReported(before)) this.reported--
    this.entries.set(id, entry)
    this.highestSeq = Math.max(this.highestSeq, entry.command.seq)
    if (!isReported(entry)) return
    this.reported++
    while (this.reported > KEEP_DONE) {
      let oldest: [string, JournalEntry] | undefined
      for (const kept of this.entries) if (isReported(kept[1]) && (!oldest || kept[1].command.seq < oldest[1].command.seq)) oldest = kept
      this.entries.delete((oldest as [string, JournalEntry])[0])
      this.reported--
    }
  }

  private replay(text: string): void {
    const lines = text.split('\n')
    // A log that ends with its newline splits into a last empty string; anything else there is a line cut short.
    const complete = text.endsWith('\n')
    if (complete) lines.pop()
    lines.forEach((line, i) => {
      const decoded = decodeJson(LineSchema, line)
      if (decoded.ok) {
        if ('lastSeq' in decoded.value) this.highestSeq = Math.max(this.highestSeq, decoded.value.lastSeq)
        else this.apply(decoded.value)
      } else if (i === lines.length - 1) {
        // Its step never resolved as durable, so nothing was done on its strength: as if it had never been written.
        this.opts.log.warn({ file: this.path, line: i + 1, bytes: line.length, reason: decoded.reason }, 'torn last journal line ignored')
      } else {
        throw new JsonFileError(this.path, decoded.reason, `${this.path} line ${i + 1}`)
      }
    })
    this.lines = lines.length
    // A cut-short end must not have the next line appended to it: the first write then rewrites the log.
    this.rewrite = !complete
  }

  /** Writes everything put so far, batch after batch: all the lines waiting when a batch starts share its sync. */
  private async drain(): Promise<void> {
    // Steps put in the same turn of the event loop join the first batch.
    await Promise.resolve()
    while (this.waiting.length > 0) {
      const batch = this.waiting
      this.waiting = []
      try {
        // A compaction writes what is in memory, which already holds every line of the batch.
        if (this.rewrite || this.overBound(batch.length)) await this.compact()
        else await this.append(batch.map((w) => w.line).join(''), batch.length)
        for (const w of batch) w.resolve()
      } catch (err) {
        // The end of the log may now be torn: the next write replaces it whole, from memory.
        this.rewrite = true
        for (const w of batch) w.reject(err)
      }
    }
    this.flushing = null
  }

  /** True when `more` lines would take the log past its bound: the entries kept plus compactAfter. */
  private overBound(more: number): boolean {
    return this.lines + more > this.compactAfter + this.entries.size
  }

  private async append(text: string, lines: number): Promise<void> {
    this.cancelClose()
    const file = (this.file ??= await open(this.path, 'a'))
    try {
      await file.writeFile(text)
      await this.datasync(file)
      this.syncs++
    } catch (err) {
      // The next write replaces the log whole (drain): it starts from a fresh descriptor.
      await this.closeFile()
      throw err
    }
    this.lines += lines
    this.closeTimer = setTimeout(() => void this.closeIdle(), this.keepOpenMs).unref()
  }

  /**
   * Closes the log now rather than KEEP_OPEN_MS after its last append, once no write is in flight: the phone's data
   * channel closed, so no step is coming. A later step opens it again.
   */
  async release(): Promise<void> {
    await this.flushed()
    if (!this.flushing) await this.closeIdle()
  }

  /** Whether the log is open now (between an append and KEEP_OPEN_MS after it). */
  get isOpen(): boolean {
    return this.file !== null
  }

  private cancelClose(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer)
    this.closeTimer = null
  }

  /** The log went KEEP_OPEN_MS without an append: closed. Its lines are already durable, so a failure here loses nothing. */
  private async closeIdle(): Promise<void> {
    try {
      await this.closeFile()
      this.opts.log.debug({ file: this.path }, 'command journal closed while idle')
    } catch (err) {
      this.opts.log.warn({ err, file: this.path }, 'command journal could not be closed')
    }
  }

  /** Closes the log if open. Only drain, the timer it set and release call this, never while an append is in flight. */
  private async closeFile(): Promise<void> {
    this.cancelClose()
    const file = this.file
    this.file = null
    await file?.close()
  }

  /** Replaces the log with what memory holds: the lastSeq, then the entries kept, oldest first. */
  private async compact(): Promise<void> {
    // The rename below takes the file away from any descriptor open on it: appends after it must open the new one.
    await this.closeFile()
    const entries = this.all()
    const text = [JSON.stringify({ lastSeq: this.highestSeq }), ...entries.map((e) => JSON.stringify(e))].join('\n') + '\n'
    await writeAtomic(this.path, text)
    this.syncs += 2
    this.compactions++
    this.lines = entries.length + 1
    this.rewrite = false
  }

  private all(): JournalEntry[] {
    return [...this.entries.values()].sort((a, b) => a.command.seq - b.command.seq)
  }
}
