/**
 * How long this project's HTTP servers (the broker's API, the web console,
 * the fleet's `/metrics`) keep an idle kept-alive connection open: longer than
 * their clients keep one, so the client always drops it first.
 */
import type { Server } from 'node:http'

/**
 * How long a server keeps an idle kept-alive connection open, ms: longer than a Node client keeps one in its pool (the
 * global agent's 5 s, which the phone's CloudClient and the console's ConsoleClient use), a browser's page fetches and
 * a Prometheus scrape every 15 s (its default). With Node's 5 s on both ends the client could send its next request on
 * a connection the server was closing that moment, and the request failed with "read ECONNRESET" (nodejs/node#52649):
 * a phone's sync, upload or backup, or a console call made beside a phone in one process. Now the client drops an idle
 * connection first; the server's close is for clients that never do.
 */
const HTTP_KEEP_ALIVE_MS = 65_000

/** `server`, keeping idle connections HTTP_KEEP_ALIVE_MS (it says so to its clients in `Keep-Alive: timeout=65`). */
export function keepIdleConnections<S extends Server>(server: S): S {
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS
  return server
}
