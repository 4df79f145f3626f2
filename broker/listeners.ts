/**
 * The broker's two listeners (MQTT over TCP, HTTP with the WebSocket
 * upgrades): bound with an error that names the port, kept serving after an
 * error of their own, closed with every connection.
 *
 * A listening server emits 'error' when `accept` fails in a way libuv does not
 * absorb: out of open files (EMFILE, ENFILE) when its reserved descriptor could
 * not be reopened, or out of kernel memory. Unheard, that event would end the
 * process and every phone's connection with it; heard, it is one logged line
 * and the connections already open keep their service (the brief's "bad input
 * ... the process keeps running").
 */
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo, Server as TcpServer } from 'node:net'
import type { Logger } from '../common/log.js'

type Listener = TcpServer | HttpServer

/** Binds `server`; a failure names the port and address, e.g. `MQTT port 127.0.0.1:1883 is in use (EADDRINUSE)`. */
export function listen(server: Listener, label: string, port: number, host: string, log: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => reject(listenError(err, label, `${host}:${port}`))
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      server.on('error', (err: NodeJS.ErrnoException) => logServingError(log, label, err))
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** One failed `accept` (or other listener error) in the log, with what it means for new connections. */
function logServingError(log: Logger, label: string, err: NodeJS.ErrnoException): void {
  const outOfFiles = err.code === 'EMFILE' || err.code === 'ENFILE'
  const meaning = outOfFiles
    ? 'out of open files: new connections are refused until some close; raise the hard limit (LimitNOFILE=)'
    : 'a new connection was lost'
  log.error({ err: err.message, code: err.code, listener: label }, `${label} listener: ${err.message}; ${meaning}; still serving`)
}

function listenError(err: NodeJS.ErrnoException, label: string, address: string): NodeJS.ErrnoException {
  const what = err.code === 'EADDRINUSE' ? `is in use (${err.code})` : `cannot be bound: ${err.message}`
  return Object.assign(new Error(`${label} port ${address} ${what}`), { code: err.code })
}

/** Closes `server` and every connection it still has (HTTP keep-alive ones too). */
export function closeServer(server: Listener | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve()
  if ('closeAllConnections' in server) server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}
