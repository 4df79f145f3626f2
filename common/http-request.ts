/**
 * One request over node:http's kept-alive pool (the global agent: the phone's
 * CloudClient for S1 sync, B1 backup and D1 drive, the console's ConsoleClient
 * for F2 commands and the rest), sent again once, on a fresh connection, when
 * the server closed the reused connection as the request went out
 * (nodejs/node#52649: "read ECONNRESET" or EPIPE before any answer byte) and the
 * request is one whose repeat changes nothing. Any other request so cut fails
 * with a ConnectionClosedError: it may have arrived, so it is not sent twice.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'

/**
 * A request cut on a kept-alive connection the server had answered on before, before any answer to it came: the server
 * closed the connection as the request was sent, not (as far as this says) a server that is down.
 */
export class ConnectionClosedError extends Error {
  readonly code: string | undefined
  constructor(cut: NodeJS.ErrnoException) {
    super(cut.message, { cause: cut })
    this.code = cut.code
  }
}

/** The request as node:http has it, and how it is sent. */
export interface Sending {
  /** True for a request whose repeat changes nothing more than it did once (GET, HEAD, a PUT of a whole state). */
  resend: boolean
  /** Sets the request up (its timeouts, its abort) and sends its body; called for each attempt. */
  send(req: ClientRequest): void
}

/** A cut of a reused connection before the answer: what a server closing an idle connection as it was reused does. */
function closedOnReuse(req: ClientRequest, err: NodeJS.ErrnoException, answered: boolean): boolean {
  return req.reusedSocket && !answered && (err.code === 'ECONNRESET' || err.code === 'EPIPE')
}

/** Resolves with the answer (its body unread) whatever its status; see the module comment for when it is sent twice. */
export function requestAnswer(url: URL, options: RequestOptions, sending: Sending): Promise<IncomingMessage> {
  const make = url.protocol === 'https:' ? httpsRequest : httpRequest
  const attempt = (fresh: boolean): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      let answered = false
      // A fresh connection of its own (agent: false): another idle one in the pool may be closing too.
      const req = make(url, fresh ? { ...options, agent: false } : options, (res) => {
        answered = true
        resolve(res)
      })
      req.on('error', (err) => reject(closedOnReuse(req, err, answered) ? new ConnectionClosedError(err) : err))
      sending.send(req)
    })
  return attempt(false).catch((err: unknown) => {
    if (err instanceof ConnectionClosedError && sending.resend) return attempt(true)
    throw err
  })
}
