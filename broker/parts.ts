/**
 * The broker's parts and their lifecycle (issue 10, item 3). A part is one
 * piece of the broker -- the database, the device state, the commands, the
 * network, the framework services, the cloud data -- seen through one small
 * interface: how it starts and stops, and the broker events it cares about.
 * `PartLifecycle` starts the parts in order and stops them in reverse, each
 * inside its own error boundary.
 */
import type { Logger } from '../common/log.js'
import type { HttpRouter } from './http/router.js'

export interface BrokerPart {
  /** Names the part in logs and errors. */
  readonly name: string
  start?(): void | Promise<void>
  stop?(): void | Promise<void>
  /** A device's connection ended, or the device was removed. */
  deviceGone?(deviceId: string): void
  /** The device was removed from the registry (after deviceGone): whatever still lets it in is closed or forgotten. */
  deviceRemoved?(deviceId: string): void
  /** A device subscribed to these topics (only the ones it was allowed). */
  subscribed?(deviceId: string, topics: readonly string[]): void
  /** Adds the part's HTTP routes to the broker's one router. */
  routes?(router: HttpRouter): void
}

/** A part whose start threw: names it, and keeps what it threw as the cause. */
export class PartStartError extends Error {
  readonly code = 'PART_START_FAILED'
  constructor(
    readonly part: string,
    cause: unknown,
  ) {
    super(`the broker's ${part} part failed to start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

export class PartLifecycle {
  /** The parts that are up: those without a start, which are up once built, and those whose start returned. */
  private readonly up = new Set<BrokerPart>()

  constructor(
    readonly parts: readonly BrokerPart[],
    private readonly log: Logger,
  ) {
    for (const p of parts) if (!p.start) this.up.add(p)
  }

  /** Starts the parts in order; when one throws, stops those already up (in reverse) and rejects with a PartStartError. */
  async start(): Promise<void> {
    for (const part of this.parts) {
      if (!part.start) continue
      try {
        await part.start()
      } catch (err) {
        this.log.error({ err, part: part.name }, 'broker part failed to start')
        await this.stop()
        throw new PartStartError(part.name, err)
      }
      this.up.add(part)
    }
  }

  /** Stops the parts that are up, in reverse order; one that throws is logged and the rest still stop. Safe to call twice. */
  async stop(): Promise<void> {
    for (const part of [...this.parts].reverse()) {
      if (!this.up.delete(part)) continue
      try {
        await part.stop?.()
      } catch (err) {
        this.log.error({ err, part: part.name }, 'broker part failed to stop')
      }
    }
  }

  /** Hands a broker event to every part, in order (the caller's `safely()` boundary logs and counts what one throws). */
  each(call: (part: BrokerPart) => void): void {
    for (const part of this.parts) call(part)
  }
}
