/**
 * Retained messages by topic, for subscriptions without wildcards. Aedes'
 * memory persistence answers every SUBSCRIBE by testing each retained
 * message against each topic subscribed: every phone retains its presence
 * and status and subscribes to three topics of its own, so a fleet of N
 * phones connecting cost N × 6N topic matches (at 1,000 phones, about 3 s
 * of the broker's CPU; at 10,000, minutes). A subscription to one exact topic
 * has at most one retained message: this index finds it by its name.
 * Subscriptions with `+` or `#` (a console's watch) go to the persistence as
 * before.
 */
import { Readable } from 'node:stream'

/** What of Aedes' persistence this needs (aedes-persistence's CallBackPersistence). */
export interface RetainedStore {
  storeRetained(packet: { topic: string; payload: Buffer | string }): Promise<void>
  createRetainedStreamCombi(patterns: string[]): Readable
}

const WILDCARD = /[+#]/

export function indexRetained(store: RetainedStore): void {
  const byTopic = new Map<string, object>()
  const storeRetained = store.storeRetained.bind(store)
  const combi = store.createRetainedStreamCombi.bind(store)
  store.storeRetained = (packet) => {
    // A copy, as the persistence keeps one: Aedes may reuse the packet it hands over.
    if (packet.payload.length === 0) byTopic.delete(packet.topic)
    else byTopic.set(packet.topic, { ...packet })
    return storeRetained(packet)
  }
  store.createRetainedStreamCombi = (patterns) =>
    patterns.some((p) => WILDCARD.test(p)) ? combi(patterns) : Readable.from(patterns.flatMap((p) => byTopic.get(p) ?? []))
}
