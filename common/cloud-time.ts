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

/** A phone's clock: follows the cloud's time (over either channel) and records what it learnt in its data directory. */
export class PhoneClock extends FollowingClock {
  constructor(
    private readonly dir: string,
    real: Clock,
  ) {
    super(real, readAhead(dir))
  }

  override follow(cloudNow: number): boolean {
    if (!super.follow(cloudNow)) return false
    writeAhead(this.dir, this.ahead)
    return true
  }
}
