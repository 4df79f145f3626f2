/**
 * MQTT over WebSocket: the stream Aedes is handed for a WebSocket on `/mqtt`.
 * mqtt-packet writes one packet as several small chunks and corks the stream
 * around them; a TCP socket then sends them in one write, but `ws`' stream
 * has no `_writev`, so each chunk would go out as its own WebSocket message.
 * Here the corked chunks of a packet become one message.
 */
import type { Duplex } from 'node:stream'
import { createWebSocketStream, type WebSocket } from 'ws'

export function mqttWebSocketStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws)
  // What ws' own _write does with one chunk (a server-side WebSocket is open from the start).
  stream._writev = (chunks, cb) => ws.send(Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb)
  return stream
}
