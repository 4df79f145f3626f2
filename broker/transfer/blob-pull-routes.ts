/**
 * M2: a migration's bytes from cloud to cloud without the console in the
 * middle. On the source, the console asks for a transfer grant of the
 * account (transfer-grants.ts) and revokes it once its batch is done:
 *   POST   /api/accounts/:account/transfer-grants       a grant: {id, account, token, expiresAt}
 *   DELETE /api/accounts/:account/transfer-grants/:id   revoked
 * On the destination, behind its own console token:
 *   POST   /api/accounts/:account/blobs/pull            {from: {url, account, grant}, blobs: [{sha256, size, offset}]}
 * reads the blobs from the source's batch read at `from.url` (and nowhere
 * else: http or https only, no user or password in it, no redirect
 * followed) with the grant as its only credential, checks each part's
 * header as it passes (`Relay`, as the console does when it relays) and
 * stores them exactly as a batch upload (`storeBatch`: hashed as they
 * arrive, quota, idempotent per blob, a resume from the offset kept). It
 * answers like a batch upload; a source it cannot reach is 502
 * SOURCE_UNREACHABLE (the console then relays), also one that does not take
 * the connection within PULL_CONNECT_TIMEOUT_MS (5 s), one that refuses the read
 * 502 SOURCE_REFUSED, an answer that breaks off 502 SOURCE_CUT and a blob
 * the source cannot give 502 SOURCE_GONE, each with the blobs stored before.
 */
import type { IncomingMessage } from 'node:http'
import { pipeline } from 'node:stream'
import { BlobPullRequestSchema, type BlobPullRequest } from '../../common/cloud/blob-batch.js'
import { Relay } from '../../common/cloud/blob-relay.js'
import { readBodyText } from '../../common/http-body.js'
import { requestAnswer } from '../../common/http-request.js'
import { quoted } from '../../common/terminal-text.js'
import { HttpError, type HttpRouter } from '../http/router.js'
import { storeBatch } from './blob-batch-routes.js'
import type { TransferDeps } from './deps.js'

/** How long the source may say nothing, before its answer or within it, before the pull gives up on it. */
const PULL_SILENCE_MS = 60_000

/**
 * How long the pull waits for its connection to the source, ms: an address that drops the connection attempt (a
 * firewall, a host gone) is then SOURCE_UNREACHABLE and the console relays at once. Without it the only limit was the
 * socket's idle timeout -- Node's global agent's 5 s, else the OS's connect timeout, minutes -- said as a source that
 * broke off (SOURCE_CUT), which the console does not relay. BrokerOptions.pullConnectTimeoutMs overrides it (the tests'
 * black-holed address).
 */
export const PULL_CONNECT_TIMEOUT_MS = 5_000

/** Errors of a connection that never reached the source: the console relays instead. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EADDRNOTAVAIL'])

/** The source's address as the console named it: untrusted input, so http(s) only and no credentials of its own. */
function sourceAddress(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `bad source address ${quoted(text)}: not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new HttpError(400, 'BAD_REQUEST', `bad source address ${quoted(text)}: a pull reads from an http:// or https:// address only`)
  if (url.username !== '' || url.password !== '')
    throw new HttpError(400, 'BAD_REQUEST', `bad source address ${quoted(text)}: the transfer grant is the only credential a pull sends`)
  return url
}

/** The source's batch read answer for `from` (status 200, its body unread), or the HttpError that says why not. */
async function openSource(from: BlobPullRequest['from'], sha256s: string[], connectMs: number): Promise<IncomingMessage> {
  const base = sourceAddress(from.url)
  const where = base.origin
  const body = Buffer.from(JSON.stringify({ sha256: sha256s }))
  const headers = { authorization: `Bearer ${from.grant}`, 'content-type': 'application/json', 'content-length': String(body.length) }
  let res: IncomingMessage
  try {
    res = await requestAnswer(
      new URL(`/api/accounts/${encodeURIComponent(from.account)}/blobs/read`, base),
      { method: 'POST', headers },
      {
        resend: false,
        send: (req) => {
          // One socket timeout: `connectMs` while the connection is being made (Node's own is its agent's 5 s, said as
          // silence), then the silence rule once it is made.
          req.setTimeout(PULL_SILENCE_MS, () =>
            req.destroy(
              req.socket?.connecting
                ? notConnected(connectMs)
                : /* c8 ignore next -- a source silent for a minute; the console client's own silence rule has its test */
                  new Error(`the source said nothing for ${PULL_SILENCE_MS / 1000} s`),
            ),
          )
          req.once('socket', (socket) => void (socket.connecting && socket.setTimeout(connectMs)))
          req.end(body)
        },
      },
    )
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (UNREACHABLE.has(String(e.code)))
      throw new HttpError(502, 'SOURCE_UNREACHABLE', `this cloud cannot reach the source at ${where}: ${e.message}`)
    throw new HttpError(502, 'SOURCE_CUT', `the source at ${where} broke off before it answered: ${e.message}`)
  }
  const status = res.statusCode as number
  if (status === 200) return res
  // What it said, if it said it whole in at most 64 KiB: a refusal's reason, not a download.
  const text = (await readBodyText(res, 64 * 1024).catch(() => null)) ?? ''
  if (status >= 300 && status < 400)
    throw new HttpError(
      502,
      'SOURCE_REFUSED',
      `the source at ${where} answered HTTP ${status} (to ${quoted(String(res.headers.location))}): a pull reads only from the ` +
        'address the console named and follows no redirect',
    )
  const said = errorOf(text)
  throw new HttpError(502, 'SOURCE_REFUSED', `the source at ${where} refused the read (HTTP ${status}): ${said}`)
}

/** Why a connection to the source was not made within `ms`: ETIMEDOUT, the source out of reach. */
function notConnected(ms: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`connect ETIMEDOUT: no connection in ${ms / 1000} s`)
  err.code = 'ETIMEDOUT'
  return err
}

/** What a refusal says: a fakephone cloud's `error`, or the start of whatever else answered. */
function errorOf(text: string): string {
  try {
    return String((JSON.parse(text) as { error: unknown }).error)
  } catch {
    return quoted(text.slice(0, 200))
  }
}

export function addBlobPullRoutes(router: HttpRouter, deps: TransferDeps): void {
  const { accounts, blobs, grants } = deps.cloud
  const CONSOLE = ['console'] as const

  router.add('POST', '/api/accounts/:account/transfer-grants', CONSOLE, (ctx) => {
    const grant = grants.issue(accounts.need(ctx.params.account as string).id)
    deps.log.info({ account: grant.account, grant: grant.id, expiresAt: grant.expiresAt }, 'transfer grant issued')
    return { status: 201, body: grant }
  })

  router.add('DELETE', '/api/accounts/:account/transfer-grants/:id', CONSOLE, (ctx) => {
    const account = accounts.need(ctx.params.account as string).id
    const id = ctx.params.id as string
    if (!grants.revoke(account, id))
      throw new HttpError(404, 'NOT_FOUND', `no transfer grant ${quoted(id)} of account ${quoted(account)} (revoked or expired)`)
    return { status: 200, body: { revoked: id } }
  })

  router.add('POST', '/api/accounts/:account/blobs/pull', CONSOLE, async (ctx) => {
    const a = accounts.need(ctx.params.account as string)
    const { from, blobs: list } = await ctx.json(BlobPullRequestSchema, { what: 'blob pull' })
    const answer = await openSource(
      from,
      list.map((b) => b.sha256),
      deps.pullConnectTimeoutMs,
    )
    let gone: string | undefined
    const relay = new Relay(
      list.map(({ sha256, size, offset }) => ({ sha256, size, from: offset })),
      (b) => (gone = b.sha256),
    )
    // An answer cut ends the relay with its error (the blob in transit keeps its partial file); a relay left ends the answer.
    pipeline(answer, relay, () => undefined)
    const { out, stored, broken } = await storeBatch(blobs, a, relay)
    if (broken === undefined) return { status: 200, body: { blobs: out } }
    deps.log.warn({ account: a.id, from: from.url, err: broken.message, stored: stored.length }, 'blob pull broke off')
    if (gone !== undefined) throw new HttpError(502, 'SOURCE_GONE', `the source cannot read blob ${gone}`, { sha256: gone, stored })
    throw new HttpError(502, 'SOURCE_CUT', `the source's answer broke off: ${broken.message}`, { stored })
  })
}
