/**
 * The offline queue of a client that never had one, answered without reading
 * it (issue 14, the connect ramp). On every CONNECT of a persistent
 * (clean=false) session Aedes pipes `outgoingStream(client)` through a
 * Transform to resend what was queued while the client was away
 * (node_modules/aedes/lib/handlers/connect.js, `emptyQueue`). aedes-persistence's
 * memory store answers it with a Readable over a copy of the client's queue,
 * wrapped in a second Readable by its callback layer: two stream objects and an
 * async iteration per CONNECT, about a sixth of the broker's CPU in a ramp of
 * devices that have nothing queued, which is nearly every device.
 *
 * A message lands in a queue only through `outgoingEnqueue` or
 * `outgoingEnqueueCombi` (`outgoingUpdate` changes an entry already there), so
 * a client id that never passed through them has an empty queue: it gets one
 * Readable that ends at once. Any other client's queue is read as before, by
 * the memory store itself (one Readable layer instead of two). Once a client
 * had something queued it stays on that path for the broker's life (no
 * bookkeeping of when the queue empties), so a command queued for an offline
 * device (QoS 1, clean=false) is still delivered on its next CONNECT.
 */
import { Readable } from 'node:stream'

/** A subscription as Aedes hands it to the enqueue calls. */
interface QueuedFor {
  clientId: string
}

/** What of Aedes' persistence this needs (aedes-persistence's CallBackPersistence, called without callbacks). */
export interface QueueStore {
  outgoingEnqueue(sub: QueuedFor, packet: object): Promise<void>
  outgoingEnqueueCombi(subs: QueuedFor[], packet: object): Promise<void>
  outgoingStream(client: { id: string }): Readable
  /** The memory store the callback layer wraps; its `outgoingStream` is already a Readable. */
  asyncPersistence: { outgoingStream(client: { id: string }): Readable }
}

/** Wraps `store` in place (as retained-index.ts does) before any client connects. */
export function skipEmptyQueues(store: QueueStore): void {
  const queued = new Set<string>()
  const enqueue = store.outgoingEnqueue.bind(store)
  const enqueueCombi = store.outgoingEnqueueCombi.bind(store)
  const memory = store.asyncPersistence
  store.outgoingEnqueue = (sub, packet) => {
    queued.add(sub.clientId)
    return enqueue(sub, packet)
  }
  store.outgoingEnqueueCombi = (subs, packet) => {
    for (const sub of subs) queued.add(sub.clientId)
    return enqueueCombi(subs, packet)
  }
  store.outgoingStream = (client) => (queued.has(client.id) ? memory.outgoingStream(client) : ended())
}

/** An object-mode Readable with nothing in it. */
function ended(): Readable {
  return new Readable({
    objectMode: true,
    read() {
      this.push(null)
    },
  })
}
