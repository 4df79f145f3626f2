/**
 * F2 exactly once: the agent's command journal (`<data>/commands.json`).
 * Each step -- received, executing, done -- is on disk before the next one
 * starts, so a command redelivered by MQTT, replayed, or interrupted by a
 * crash runs to completion once. `lastSeq` is the highest sequence number
 * accepted; anything at or below it is a replay.
 */
import { join } from 'node:path'
import { z } from 'zod'
import { CommandSchema, UnsignedResultSchema } from '../common/contract.js'
import { JsonFile } from '../common/json-file.js'

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
export type JournalData = z.infer<typeof JournalSchema>

/** Finished entries kept for answering redeliveries; older ones are covered by lastSeq. */
const KEEP_DONE = 200

export class CommandJournal {
  private data: JournalData = { lastSeq: 0, entries: {} }
  private readonly file: JsonFile<JournalData>

  constructor(dataDir: string) {
    this.file = new JsonFile(join(dataDir, 'commands.json'), JournalSchema)
  }

  async load(): Promise<void> {
    this.data = await this.file.load({ lastSeq: 0, entries: {} })
  }

  get lastSeq(): number {
    return this.data.lastSeq
  }

  entry(id: string): JournalEntry | undefined {
    return this.data.entries[id]
  }

  /** Entries a crash left unfinished, oldest first. */
  unfinished(): JournalEntry[] {
    return this.all().filter((e) => e.step !== 'done')
  }

  /** Finished entries whose receipt the broker has not acknowledged. */
  unreported(): JournalEntry[] {
    return this.all().filter((e) => e.step === 'done' && !e.reported)
  }

  /** Writes `entry` (and raises lastSeq to its command's) durably before resolving. */
  async put(entry: JournalEntry): Promise<void> {
    const entries = { ...this.data.entries, [entry.command.id]: entry }
    const done = Object.values(entries).filter((e) => e.step === 'done' && e.reported)
    for (const old of done.sort((a, b) => a.command.seq - b.command.seq).slice(0, Math.max(0, done.length - KEEP_DONE)))
      delete entries[old.command.id]
    this.data = { lastSeq: Math.max(this.data.lastSeq, entry.command.seq), entries }
    await this.file.save(this.data)
  }

  /** Resolves when no write is in progress. */
  flushed(): Promise<void> {
    return this.file.flushed()
  }

  private all(): JournalEntry[] {
    return Object.values(this.data.entries).sort((a, b) => a.command.seq - b.command.seq)
  }
}
