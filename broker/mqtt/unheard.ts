/**
 * Issue 14 (F1 ingest): a client's publish that no subscriber can receive skips Aedes' delivery pipeline. For every
 * QoS 1 message Aedes looks up offline subscriptions in its persistence (a promise), matches the topic in its emitter
 * and queues the deliveries, then calls the `published` hook: about 8 µs of CPU per message. A device's heartbeat has
 * no possible receiver unless a console watches (see AccessControl.consoleListening), so `heard` says when the full
 * pipeline is needed; otherwise the message goes straight to `published` (where the broker stores it), and Aedes'
 * `publish` event is emitted as Aedes would. Retained messages (presence, status) always take the full pipeline, so
 * Aedes keeps them for later subscribers; so do the broker's own publishes (Aedes passes no client for them).
 */
import type { Aedes, Client, PublishPacket } from 'aedes'

type Done = (error?: Error | null) => void
type Publish = (packet: PublishPacket, client: Client | null | Done, done?: Done) => void

export function skipUnheard(aedes: Aedes, heard: (packet: PublishPacket) => boolean): void {
  // Aedes' types declare publish(packet, callback) only; its handlers call publish(packet, client, done).
  const instance = aedes as unknown as { publish: Publish; published: (packet: PublishPacket, client: Client, done: Done) => void }
  const full = instance.publish.bind(aedes)
  instance.publish = (packet, client, done) => {
    const from = typeof client === 'object' ? client : null
    if (from === null || packet.retain || heard(packet)) return full(packet, client, done)
    instance.published(packet, from, done as Done)
    aedes.emit('publish', packet, from)
  }
}
