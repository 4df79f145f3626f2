/**
 * At most `size` phones coming up or going down at once (issue 12: the
 * fleet's event-loop delay). A phone's start is ~2-3 ms of CPU spread over a
 * dozen steps (files, the MQTT CONNECT and CONNACK, the WebSocket handshake);
 * with every due phone let in at once, each turn of the event loop carried
 * the ready steps of thousands of phones, and the phones already up waited
 * for it with their heartbeats, as they did when a run stopped every phone at
 * once. Who waits goes in first come, first served.
 */
export class Gate {
  private inside = 0
  /** Waiters in arrival order; `head` is the next one in (shift() on thousands of waiters is quadratic). */
  private waiting: ((() => void) | undefined)[] = []
  private head = 0

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`a gate holds at least 1, not ${size}`)
  }

  /** Phones inside now. */
  get holding(): number {
    return this.inside
  }

  /** Phones waiting to go in. */
  get queued(): number {
    return this.waiting.length - this.head
  }

  /** Resolves once there is room; each `enter` needs one `leave`. */
  enter(): Promise<void> {
    if (this.inside < this.size) {
      this.inside++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  /** Makes room: the longest waiter goes in. */
  leave(): void {
    const next = this.waiting[this.head]
    if (!next) {
      this.inside--
      return
    }
    this.waiting[this.head++] = undefined
    if (this.head === this.waiting.length) {
      this.waiting = []
      this.head = 0
    }
    next()
  }
}
