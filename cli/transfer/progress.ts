/**
 * A progress line for transfers that take more than a second (M3): items,
 * bytes, rate and time left, redrawn in place on stderr when it is a
 * terminal; nothing at all under --json or when stderr is not a terminal.
 * Rate and ETA read the injected clock.
 */
import type { Clock } from '../../common/clock.js'
import { formatBytes } from '../../common/format-bytes.js'
import { forTerminal } from '../../common/terminal-text.js'
import type { Io } from '../io.js'
import { plural } from '../render.js'

/** No line before the transfer has run this long, ms. */
const QUIET_MS = 1000
/** At most one redraw this often, ms. */
const REDRAW_MS = 200

export class Progress {
  private readonly start: number
  private items = 0
  private bytes = 0
  private drawnAt: number | null = null
  private readonly label: string

  constructor(
    private readonly write: ((text: string) => void) | null,
    private readonly clock: Clock,
    label: string,
    private readonly total: { items: number; bytes: number },
  ) {
    this.start = clock.now()
    // The label names an account (a legacy name may hold an escape sequence): shown, never obeyed.
    this.label = forTerminal(label)
  }

  item(): void {
    this.items++
    this.draw()
  }

  add(bytes: number): void {
    this.bytes += bytes
    this.draw()
  }

  /** Clears the line, if one was drawn. */
  done(): void {
    if (this.write && this.drawnAt !== null) this.write('\r\x1b[K')
  }

  /** The line as it stands now. */
  line(): string {
    const elapsed = Math.max(1, this.clock.now() - this.start)
    const rate = (this.bytes * 1000) / elapsed
    const left = this.total.bytes - this.bytes
    const eta = rate > 0 ? `${Math.ceil(left / rate)}s` : '?'
    return (
      `${this.label}: ${this.items}/${plural(this.total.items, 'item')}, ${formatBytes(this.bytes)} of ${formatBytes(this.total.bytes)}, ` +
      `${formatBytes(Math.round(rate))}/s, ETA ${eta}`
    )
  }

  private draw(): void {
    const now = this.clock.now()
    if (!this.write || now - this.start < QUIET_MS || (this.drawnAt !== null && now - this.drawnAt < REDRAW_MS)) return
    this.drawnAt = now
    this.write(`\r${this.line()}\x1b[K`)
  }
}

/** A progress line factory: on stderr when it is a terminal and the output is not JSON. */
export const progressOn =
  (io: Io, json: boolean, label: string) =>
  (total: { items: number; bytes: number }): Progress =>
    new Progress(io.errTty === true && !json ? (s) => io.err(s) : null, io.clock, label, total)
