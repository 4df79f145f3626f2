/**
 * Issue 14 (F1 ingest): a client's publish that no subscriber can receive skips Aedes' delivery pipeline. For every
 * QoS 1 message Aedes looks up offline subscriptions in its persistence (a promise), matches the topic in its emitter
 * and queues the deliveries, then calls the `published` hook: about 8 µs of CPU per message. A device's heartbeat has
 * no possible receiver unless a console watches (see AccessControl.consoleListening), so `heard` says when the full
 * pipeline is needed; otherwise the message goes straight to `published` (where the broker stores it), and Aedes'
 * `publish` event is emitted as Aedes would. Retained messages (presence, status) always take the full pipeline, so
 * Aedes keeps them for later subscribers; so do the broker's own publishes (Aedes passes no client for them).
 *
 * Issue 14 (connect ramp): the broker's own announcements of each connect, disconnect, SUBSCRIBE and UNSUBSCRIBE
 * (`$SYS/<broker id>/new/clients` and the like, one full publish each, the SUBSCRIBE one a JSON text of the
 * subscriptions) are not published at all. No one can receive them: fakephone refuses every `$SYS` subscription
 * (AccessControl), and the only listener Aedes itself keeps, for `new/clients`, acts on another broker's announcements
 * only (a cluster sharing one emitter; fakephone is one broker). Its heartbeat and birth still go out: Aedes keeps its
 * record of live brokers, which decides whose stored last wills to publish, on them.
 */
import type { Aedes, Client, PublishPacket } from 'aedes'

type Done = (error?: Error | null) => void
type Publish = (packet: PublishPacket, client: Client | null | Done, done?: Done) => void

/** What Aedes announces under `$SYS/<its id>/` that no one can hear (see the module comment). */
const UNHEARD_ANNOUNCEMENTS: ReadonlySet<string> = new Set(['new/clients', 'disconnect/clients', 'new/subscribes', 'new/unsubscribes'])

export function skipUnheard(aedes: Aedes, heard: (packet: PublishPacket) => boolean): void {
  // Aedes' types declare publish(packet, callback) only; its handlers call publish(packet, client, done).
  const instance = aedes as unknown as { publish: Publish; published: (packet: PublishPacket, client: Client, done: Done) => void }
  const full = instance.publish.bind(aedes)
  const own = `$SYS/${aedes.id}/`
  instance.publish = (packet, client, done) => {
    // Aedes makes its announcements as publish(packet, callback).
    if (typeof client === 'function' && packet.topic.startsWith(own) && UNHEARD_ANNOUNCEMENTS.has(packet.topic.slice(own.length)))
      return client()
    const from = typeof client === 'object' ? client : null
    if (from === null || packet.retain || heard(packet)) return full(packet, client, done)
    instance.published(packet, from, done as Done)
    aedes.emit('publish', packet, from)
  }
}
