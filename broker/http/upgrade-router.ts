/**
 * Several WebSocket endpoints on one HTTP server: MQTT at `/mqtt` and the
 * push channel at `/push` (X1). Each endpoint is a `noServer` WebSocketServer;
 * this routes each HTTP upgrade to the one its path names and answers any
 * other path with 404 (a target that is no path, 400), so an unknown path is
 * never left hanging.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocketServer } from 'ws'
import type { Logger } from '../../common/log.js'
import { badTarget, requestTarget } from '../../common/request-target.js'

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

export function routeUpgrades(routes: ReadonlyMap<string, WebSocketServer>, log: Logger): UpgradeHandler {
  return (req, socket, head) => {
    const target = requestTarget(req)
    const wss = target && routes.get(target.pathname)
    if (!wss) {
      const why = target ? 'no such endpoint' : badTarget(req)
      log.warn({ path: target?.pathname ?? req.url, address: req.socket.remoteAddress }, `websocket upgrade refused: ${why}`)
      // Node's HTTP server hands the socket over without an error listener; a peer that resets it must not crash the broker.
      socket.on('error', () => {})
      socket.end(`HTTP/1.1 ${target ? '404 Not Found' : '400 Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  }
}
