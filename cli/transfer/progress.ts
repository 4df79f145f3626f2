/**
 * A progress line for transfers that take more than a second (M3): items,
 * bytes, rate and time left, redrawn in place on stderr when it is a
 * terminal; nothing at all under --json or when stderr is not a terminal.
 * Rate and ETA read the injected clock. What is held back by the quiet
 * second or the redraw limit is drawn when they end (a timer on that clock):
 * a migration's blobs are told stored a batch at a time, and the line showed
 * the first of a batch (and a rate and ETA from it) until the next batch.
 */
import type { Clock, Timer } from '../../common/clock.js'
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
  /** The redraw due when the quiet second or the redraw limit ends. */
  private pending: Timer | null = null
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

  /** Clears the line, if one was drawn; nothing is drawn after. */
  done(): void {
    this.pending?.cancel()
    this.pending = null
    if (this.write && this.drawnAt !== null) this.write('\r\x1b[K')
  }

  /** The line as it stands now. */
  line(): string {
    const elapsed = Math.max(1, this.clock.now() - this.start)
    const rate = (this.bytes * 1000) / elapsed
    const left = this.total.bytes - this.bytes
    const eta = rate > 0 ? `${Math.ceil(left / rate)}s` : '?'
    // Bytes only (a bag's validation counts no items): "0/0 items" said nothing.
    const items = this.total.items > 0 ? `${this.items}/${plural(this.total.items, 'item')}, ` : ''
    const bytes = `${formatBytes(this.bytes)} of ${formatBytes(this.total.bytes)}`
    return `${this.label}: ${items}${bytes}, ${formatBytes(Math.round(rate))}/s, ETA ${eta}`
  }

  private draw(): void {
    const write = this.write
    if (!write || this.pending !== null) return
    const at = Math.max(this.start + QUIET_MS, this.drawnAt === null ? 0 : this.drawnAt + REDRAW_MS)
    const redraw = (): void => {
      this.pending = null
      this.drawnAt = this.clock.now()
      write(`\r${this.line()}\x1b[K`)
    }
    const wait = at - this.clock.now()
    if (wait <= 0) redraw()
    else this.pending = this.clock.after(wait, redraw)
  }
}

/** A progress line factory: on stderr when it is a terminal and the output is not JSON. */
export const progressOn =
  (io: Io, json: boolean, label: string) =>
  (total: { items: number; bytes: number }): Progress =>
    new Progress(io.errTty === true && !json ? (s) => io.err(s) : null, io.clock, label, total)
