/**
 * The phone's own switches and counters, persisted in `<data>/settings.json`
 * so that they survive a restart like a real phone's settings do.
 */
import { z } from 'zod'
import { NetworkSchema } from '../common/contract.js'
import { JsonFile } from '../common/json-file.js'
import { join } from 'node:path'
import { withChanges } from '../common/with-changes.js'

export const SettingsSchema = z.strictObject({
  /** The whole vendor cloud service (X1). */
  cloudService: z.boolean(),
  /** Find Device (F1, F3). */
  findDevice: z.boolean(),
  /** What the phone is connected through. */
  network: NetworkSchema,
  /**
   * F1: where the next block of heartbeat sequence numbers starts (agent/heartbeat-seq.ts); after a clean stop, the next
   * number itself. A phone without this file starts it at the clock's now in ms (Agent.start), not at the 0 below.
   */
  nextSeq: z.number().int().nonnegative(),
  /** F2: the lock screen set remotely, until unlocked with the PIN. */
  lock: z.strictObject({ message: z.string(), phone: z.string() }).nullable(),
  /** F2: lost mode: locked, more frequent heartbeats carrying the battery level. */
  lostMode: z.boolean(),
  /** F4: when lost mode was last left; Find Device cannot be switched off for 72 h after. */
  lostModeEndedAt: z.number().int().nullable(),
  /** The screen-lock PIN. */
  pin: z.string().regex(/^\d{4,8}$/),
  /** Paired with its owner (factory-reset protection); an unpaired phone refuses remote commands. */
  paired: z.boolean(),
})
export type Settings = z.infer<typeof SettingsSchema>

/** B1: the settings a backup carries and a restore puts back (unknown keys in a package are ignored). */
export const RestorableSettingsSchema = z.object({ pin: SettingsSchema.shape.pin.optional() })

export const DEFAULT_SETTINGS: Settings = {
  cloudService: true,
  findDevice: true,
  network: 'wifi',
  nextSeq: 0,
  lock: null,
  lostMode: false,
  lostModeEndedAt: null,
  pin: '1234',
  paired: true,
}

function settingsFile(dataDir: string): JsonFile<Settings> {
  return new JsonFile(join(dataDir, 'settings.json'), SettingsSchema)
}

/**
 * The phone's settings in memory, each change saved atomically (fsync) to `settings.json` before its promise resolves. A
 * change that cannot be saved (a full disk) is undone in memory too: a user told it failed must not find it in force
 * until the next start reads the file again.
 */
export class PhoneSettings {
  private current: Settings = { ...DEFAULT_SETTINGS }
  private readonly file: JsonFile<Settings>

  constructor(dataDir: string) {
    this.file = settingsFile(dataDir)
  }

  get value(): Settings {
    return this.current
  }

  /** Reads `settings.json`; without one, the defaults with `fresh` over them (the agent: its first heartbeat seq, F1). */
  async load(fresh: Partial<Settings> = {}): Promise<void> {
    this.current = await this.file.load(withChanges(DEFAULT_SETTINGS, fresh))
  }

  /** Changes the settings at once; resolves when the change is on disk, rejects (the change undone) when it cannot be. */
  async update(change: Partial<Settings>): Promise<void> {
    this.current = withChanges(this.current, change)
    try {
      await this.file.save(this.current)
    } catch (err) {
      // Changes waiting on the same save failed with it: the settings go back to the file's.
      /* c8 ignore next -- the settings are loaded (so the file's value known) before any change */
      if (this.file.stored) this.current = this.file.stored
      throw err
    }
  }

  /** Resolves when no save is in progress. */
  flushed(): Promise<void> {
    return this.file.flushed()
  }
}
