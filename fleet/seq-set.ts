/**
 * A set of heartbeat sequence numbers kept as ranges (issue 12: a fleet's
 * memory per phone). A phone numbers its heartbeats one after another, so
 * what a run sent or saw acknowledged is one range or a few: `[first, last]`
 * pairs in one array, instead of a `Set` entry per heartbeat, which grew with
 * the run (~100 bytes a heartbeat for a device's two sets at 10,000 phones).
 * Seqs may arrive in any order (a PUBACK after a reconnect): a seq that falls
 * outside the last range is put in its place and joins its neighbours.
 */
export class SeqSet implements Iterable<number> {
  /** Disjoint, ascending, not touching: first0, last0, first1, last1, ... (both ends included). */
  private readonly ranges: number[] = []
  private count = 0

  get size(): number {
    return this.count
  }

  has(seq: number): boolean {
    const i = this.rangeAtOrBefore(seq)
    return i >= 0 && seq <= (this.ranges[i + 1] as number)
  }

  add(seq: number): this {
    const r = this.ranges
    const end = r.length
    // The common case: the next seq after the last one.
    if (end > 0 && seq === (r[end - 1] as number) + 1) r[end - 1] = seq
    else if (end === 0 || seq > (r[end - 1] as number) + 1) r.push(seq, seq)
    else return this.insert(seq)
    this.count++
    return this
  }

  *[Symbol.iterator](): Iterator<number> {
    for (let i = 0; i < this.ranges.length; i += 2)
      for (let seq = this.ranges[i] as number; seq <= (this.ranges[i + 1] as number); seq++) yield seq
  }

  /** A seq before the last range's end: in a range already, or a range of its own, joined to the neighbours it touches. */
  private insert(seq: number): this {
    const r = this.ranges
    const i = this.rangeAtOrBefore(seq)
    if (i >= 0 && seq <= (r[i + 1] as number)) return this
    this.count++
    // The range after it (there is one: seq is before the last range's end) and the one before it, if any.
    const next = i < 0 ? 0 : i + 2
    const joinsBefore = i >= 0 && seq === (r[i + 1] as number) + 1
    const joinsNext = seq === (r[next] as number) - 1
    if (joinsBefore && joinsNext) r.splice(i + 1, 2)
    else if (joinsBefore) r[i + 1] = seq
    else if (joinsNext) r[next] = seq
    else r.splice(next, 0, seq, seq)
    return this
  }

  /** The index of the last range whose first seq is at or before `seq`, or -1. */
  private rangeAtOrBefore(seq: number): number {
    let lo = 0
    let hi = this.ranges.length / 2 - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if ((this.ranges[mid * 2] as number) <= seq) {
        found = mid * 2
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }
}
