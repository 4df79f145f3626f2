/**
 * Several WebSocket endpoints on one HTTP server: MQTT at `/mqtt` and the
 * push channel at `/push` (X1). Each endpoint is a `noServer` WebSocketServer;
 * this routes each HTTP upgrade to the one its path names and answers any
 * other path with 404, so an unknown path is never left hanging.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocketServer } from 'ws'
import type { Logger } from '../../common/log.js'

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

export function routeUpgrades(routes: ReadonlyMap<string, WebSocketServer>, log: Logger): UpgradeHandler {
  return (req, socket, head) => {
    // Node's HTTP server always sets url on a request it received.
    const path = new URL(req.url as string, 'http://localhost').pathname
    const wss = routes.get(path)
    if (!wss) {
      log.warn({ path, address: req.socket.remoteAddress }, 'websocket upgrade refused: no such endpoint')
      // Node's HTTP server hands the socket over without an error listener; a peer that resets it must not crash the broker.
      socket.on('error', () => {})
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  }
}
