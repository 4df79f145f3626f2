/**
 * The cloud's time, kept across processes and restarts. A data directory
 * (the broker's or a phone's) holds `clock.json`, `{"aheadMs": N}`: how far
 * the cloud's clock runs ahead of real time. The broker writes it on every
 * `console clock advance` and starts from it (a clock never goes backwards);
 * a phone writes what it learnt from the cloud's `time` messages (and its
 * push channel's welcomes and notifications); the CLI
 * commands that open a data directory directly read it, so every process
 * stamps and ages with the same time.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { FollowingClock, SimulatedClock, type Clock } from './clock.js'
import { decodeJson } from './contract.js'
import { FakephoneError } from './errors.js'
import type { Logger } from './log.js'
import { makeDirsSync } from './make-dirs.js'

export const CLOCK_FILE = 'clock.json'

const ClockFileSchema = z.strictObject({ aheadMs: z.number().int().nonnegative() })

/** How far ahead of real time the cloud ran when `dir` last heard; 0 when it never did. An unreadable file is an error naming it. */
export function readAhead(dir: string): number {
  const file = join(dir, CLOCK_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  const decoded = decodeJson(ClockFileSchema, text)
  if (!decoded.ok) throw new FakephoneError('INVALID', `${file} is not a clock file (${decoded.reason}): fix or delete it`)
  return decoded.value.aheadMs
}

/** Records the lead atomically (temporary file, then rename). */
export function writeAhead(dir: string, aheadMs: number): void {
  makeDirsSync(dir)
  const file = join(dir, CLOCK_FILE)
  writeFileSync(`${file}.tmp`, JSON.stringify({ aheadMs: Math.round(aheadMs) }) + '\n')
  renameSync(`${file}.tmp`, file)
}

/** The cloud's simulated clock, starting where the last one in `dir` stopped and recording every jump there. */
export function persistedSimulatedClock(dir: string, real: Clock): SimulatedClock {
  const clock = new SimulatedClock(real, readAhead(dir))
  clock.onJump((ahead) => writeAhead(dir, ahead))
  return clock
}

/** The cloud's time as recorded in `dir`, for commands that open a data directory without a running cloud. */
export function recordedClock(dir: string, real: Clock): Clock {
  return new FollowingClock(real, readAhead(dir))
}

/**
 * A phone's clock: follows the cloud's time (over either channel) and records what it learnt in its data directory,
 * and what is left of it after its wall clock was set forward (common/clock.ts FollowingClock), so a restart does not
 * bring back a lead that was the phone's own clock being behind.
 */
export class PhoneClock extends FollowingClock {
  constructor(
    private readonly dir: string,
    real: Clock,
    private readonly log?: Logger,
  ) {
    super(real, readAhead(dir))
  }

  override follow(cloudNow: number, exact = false): boolean {
    if (!super.follow(cloudNow, exact)) return false
    writeAhead(this.dir, this.offset)
    return true
  }

  /** Said (recorded by `follow`). */
  protected override droppedBack(dropMs: number): void {
    this.log?.warn(
      { dropMs, aheadMs: this.offset },
      "the phone ran ahead of the cloud's time (a lead saved by an older version?): it keeps to the cloud's time again",
    )
  }

  /** Said and recorded; a failure to record is logged (this runs inside any read of the time, which must not fail). */
  protected override stepped(jumpMs: number): void {
    this.log?.info(
      { jumpMs, aheadMs: this.offset },
      "this machine's clock was set forward (an NTP step, a resume): the phone keeps to the cloud's time, not that far ahead of it",
    )
    try {
      writeAhead(this.dir, this.offset)
    } catch (err) {
      this.log?.warn({ err }, 'could not record the cloud time')
    }
  }
}
