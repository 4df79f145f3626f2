/**
 * F1: heartbeat sequence numbers, strictly increasing over the phone's whole
 * life, without a settings write per heartbeat. Numbers are reserved in
 * blocks: `settings.nextSeq` says where the next block starts and is saved
 * (fsync) before the first number of a block is handed out. A crash skips at
 * most the rest of one block and never hands a number out twice; a clean
 * stop gives the rest of the block back, so the next start continues with
 * the very next number. A phone without a settings file (a first start, a
 * fleet phone in a new data directory, a Pi whose SD card was reflashed, a
 * damaged file moved away) does not start at 0: the same device may have
 * lived before, and the cloud, which stores each (device, seq) once, would
 * drop every heartbeat below its old count as a replay. It starts at the
 * clock's now in ms instead, above every seq an earlier life sent (that life
 * started no later, and sent fewer heartbeats, or skipped fewer numbers, than
 * milliseconds went by). The number is in the settings from their load, so
 * any settings write (a switch, a wipe, which keeps nextSeq: agent/executor.ts)
 * saves it before the first heartbeat. An existing settings file is counted on
 * from, whatever it holds -- and may be older than what the phone sent since (a
 * settings.json restored from a backup): the cloud says the highest seq it holds
 * of the phone in its answer to each subscription, and the numbers move past
 * it (`skipPast`) before a heartbeat goes out on that connection.
 */
import type { PhoneSettings } from './settings.js'

/** Heartbeats per settings write: at the default 30 s interval, one write every 50 minutes. */
export const SEQ_BLOCK = 100

export class SeqReserve {
  private next = 0
  /** First number not reserved on disk. */
  private end = 0

  constructor(
    private readonly settings: PhoneSettings,
    private readonly block = SEQ_BLOCK,
  ) {}

  /** Takes up where the settings (already loaded; without a file, at the clock's now in ms: Agent.start) say. */
  load(): void {
    this.next = this.settings.value.nextSeq
    this.end = this.next
  }

  /** The next number; reserves (and saves) a new block first when this one is used up. Not to be called again before it resolves. */
  async take(): Promise<number> {
    // A loop: a skipPast while the block was being saved may have moved past it.
    while (this.next >= this.end) {
      const end = this.next + this.block
      await this.settings.update({ nextSeq: end })
      this.end = end
    }
    return this.next++
  }

  /**
   * The cloud holds heartbeats up to `seq`: the next number is above it. Answers whether the numbers moved (the
   * phone's settings were older than what it sent); the new block is reserved (and saved) by the next `take`.
   */
  skipPast(seq: number): boolean {
    if (seq < this.next) return false
    this.next = seq + 1
    return true
  }

  /** A clean stop: the rest of the block is given back on disk. */
  async release(): Promise<void> {
    // Nothing reserved is left: nothing to give back.
    if (this.next >= this.end) return
    this.end = this.next
    await this.settings.update({ nextSeq: this.next })
  }
}
