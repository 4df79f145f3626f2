/**
 * F1: heartbeat sequence numbers, strictly increasing over the phone's whole
 * life, without a settings write per heartbeat. Numbers are reserved in
 * blocks: `settings.nextSeq` says where the next block starts and is saved
 * (fsync) before the first number of a block is handed out. A crash skips at
 * most the rest of one block and never hands a number out twice; a clean
 * stop gives the rest of the block back, so the next start continues with
 * the very next number.
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

  /** Takes up where the settings (already loaded) say. */
  load(): void {
    this.next = this.settings.value.nextSeq
    this.end = this.next
  }

  /** The next number; reserves (and saves) a new block first when this one is used up. Not to be called again before it resolves. */
  async take(): Promise<number> {
    if (this.next >= this.end) {
      const end = this.next + this.block
      await this.settings.update({ nextSeq: end })
      this.end = end
    }
    return this.next++
  }

  /** A clean stop: the rest of the block is given back on disk. */
  async release(): Promise<void> {
    if (this.next === this.end) return
    this.end = this.next
    await this.settings.update({ nextSeq: this.next })
  }
}
