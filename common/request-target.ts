/**
 * The target of a request one of fakephone's HTTP servers received (the broker's APIs and WebSocket upgrades, the web
 * console), as a URL. Node's parser takes any absolute-form target (`GET http://[ HTTP/1.1`), on which `new URL`
 * throws; thrown in a request or upgrade listener, that ended the process -- the whole demo (broker, phone, console)
 * with it -- for one line sent by anyone who could reach the port, before any credentials. Every server reads its
 * targets here and answers such a request 400 instead.
 */
import type { IncomingMessage } from 'node:http'
import { quoted } from './terminal-text.js'

/** The request's target as a URL (relative to `http://localhost`), or undefined when it does not parse. */
export function requestTarget(req: IncomingMessage): URL | undefined {
  try {
    // Node's HTTP server always sets url on a request it received.
    return new URL(req.url as string, 'http://localhost')
  } catch {
    return undefined
  }
}

/** What the 400 for such a request says. */
export const badTarget = (req: IncomingMessage): string => `bad request: ${quoted(req.url as string)} is not a path`
