/**
 * F1: heartbeat sequence numbers, strictly increasing over the phone's whole
 * life, without a settings write per heartbeat. Numbers are reserved in
 * blocks: `settings.nextSeq` says where the next block starts and is saved
 * (fsync) before the first number of a block is handed out. A crash skips at
 * most the rest of one block and never hands a number out twice; a clean
 * stop gives the rest of the block back, so the next start continues with
 * the very next number. A phone may be told to start no lower than a given
 * number: a fleet phone in a new data directory starts at its run's start
 * time in ms, above every seq an earlier run of the same device sent (it sent
 * fewer heartbeats than milliseconds went by), so the cloud, which stores each
 * (device, seq) once, does not drop its heartbeats as replays.
 */
import type { PhoneSettings } from './settings.js'

/** Heartbeats per settings write: at the default 30 s interval, one write every 50 minutes. */
export const SEQ_BLOCK = 100

export class SeqReserve {
  private next = 0
  /** First number not reserved on disk. */
  private end = 0

  /** `first`: no number below it is handed out, whatever the settings say (AgentOptions.firstSeq). */
  constructor(
    private readonly settings: PhoneSettings,
    private readonly block = SEQ_BLOCK,
    private readonly first = 0,
  ) {}

  /** Takes up where the settings (already loaded) say, or at `first` when that is further. */
  load(): void {
    this.next = Math.max(this.settings.value.nextSeq, this.first)
    this.end = this.settings.value.nextSeq
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
    // Nothing reserved is left (or nothing was taken since a `first` above the settings' number): nothing to give back.
    if (this.next >= this.end) return
    this.end = this.next
    await this.settings.update({ nextSeq: this.next })
  }
}
