/**
 * M2: the destination pulls a migration's blobs from the source itself
 * (broker/transfer/blob-pull-routes.ts) with a transfer grant of the
 * source's (broker/transfer/transfer-grants.ts), on two real clouds over
 * real HTTP. The grant: its account's batch read and nothing else, not
 * another account's, not after its minute on the source's clock, not once
 * revoked. The pull: stores what it read with a batch upload's checks
 * (resumed from the offset kept after a cut answer, idempotent), fetches
 * only from the address it was given (http or https, no credentials of its
 * own, no redirect followed), and says why it could not: the source out of
 * reach, cut before answering, refusing the grant, or without the blob.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConsoleClient } from '../../../cli/console-client.js'
import { partHeader, TransferGrantSchema, type TransferGrant } from '../../../common/cloud/blob-batch.js'
import { ManualClock } from '../../../common/clock.js'
import { GRANT_TTL_MS } from '../../../broker/transfer/transfer-grants.js'
import { addDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { startProxy } from '../../fixtures/proxy.js'
import { blackHolePort } from '../../fixtures/ports.js'
import { onEnd } from '../../fixtures/scope.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const SMALL = Buffer.from('a small note\n')
const LARGE = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251))

/** `bytes` as a note of `account` on `cloud` (its device made first). */
async function hold(cloud: Cloud, account: string, id: string, bytes: Buffer): Promise<string> {
  const { blobs, items } = cloud.broker.cloud
  if (cloud.broker.cloud.accounts.get(account) === undefined) await addDevice(cloud, `phone-${account}`, account)
  items.put(account, `phone-${account}`, 'notes', id, {
    sha256: await blobs.put(bytes),
    size: bytes.length,
    meta: { title: id },
    modifiedAt: 0,
  })
  return sha(bytes)
}

const json = (body: unknown): Buffer => Buffer.from(JSON.stringify(body))
const answer = async (api: ConsoleClient, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => {
  const res = await api.call(method, path, body === undefined ? undefined : json(body), body === undefined ? undefined : 'application/json')
  const text = res.body.toString()
  return { status: res.status, text, body: res.headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : text }
}

t.test('M2: a transfer grant reads its account’s blobs, nothing else, and not for long', async (t) => {
  const source = await startCloud(t)
  const clock = source.clock as ManualClock
  const console = new ConsoleClient(source.apiUrl, source.consoleToken)
  const small = await hold(source, 'anna', 'n1', SMALL)
  await hold(source, 'bert', 'n2', Buffer.from("bert's note\n"))
  const issued = await answer(console, 'POST', '/api/accounts/anna/transfer-grants', {})
  t.equal(issued.status, 201)
  const grant: TransferGrant = TransferGrantSchema.parse(issued.body)
  t.match(grant, { account: 'anna', token: /^fpg_[\w-]{32}$/, expiresAt: clock.now() + GRANT_TTL_MS })
  const holder = new ConsoleClient(source.apiUrl, grant.token)
  const read = (account: string) => answer(holder, 'POST', `/api/accounts/${account}/blobs/read`, { sha256: [small] })

  const ok = await read('anna')
  t.same([ok.status, ok.text], [200, partHeader('blob', small, SMALL.length, 0).toString() + SMALL.toString()], 'its account’s batch read')
  t.match(await read('bert'), { status: 403, body: { code: 'FORBIDDEN', error: 'this transfer grant is for another account, not "bert"' } })
  for (const [method, path] of [
    ['GET', '/api/accounts/anna/export'],
    ['POST', '/api/accounts/anna/blobs/state'],
    ['POST', '/api/accounts/anna/blobs/batch'],
    ['POST', '/api/accounts/anna/blobs/verify'],
    ['POST', '/api/accounts/anna/blobs/pull'],
    ['POST', '/api/accounts/anna/transfer-grants'],
    ['POST', '/api/accounts/anna/import'],
    ['GET', `/api/accounts/anna/blobs/${small}/content`],
    ['GET', '/api/devices'],
  ] as const)
    t.match(await answer(holder, method, path, method === 'GET' ? undefined : {}), { status: 401 }, `${method} ${path}: refused`)

  clock.advance(GRANT_TTL_MS - 1)
  t.equal((await read('anna')).status, 200, 'a millisecond before it expires, it reads')
  clock.advance(1)
  t.match(await read('anna'), { status: 401, body: { error: /transfer grant \(expired or revoked\?\)/ } }, 'at its expiry, it does not')

  // A new grant sweeps the expired one; revoked, a grant reads nothing more.
  const next = TransferGrantSchema.parse((await answer(console, 'POST', '/api/accounts/anna/transfer-grants', {})).body)
  t.match(await answer(console, 'DELETE', `/api/accounts/anna/transfer-grants/${grant.id}`), { status: 404, body: { code: 'NOT_FOUND' } })
  t.match(
    await answer(console, 'DELETE', `/api/accounts/bert/transfer-grants/${next.id}`),
    { status: 404 },
    'not by another account’s page',
  )
  t.match(await answer(console, 'DELETE', `/api/accounts/anna/transfer-grants/${next.id}`), { status: 200, body: { revoked: next.id } })
  t.equal(
    (await answer(new ConsoleClient(source.apiUrl, next.token), 'POST', '/api/accounts/anna/blobs/read', { sha256: [small] })).status,
    401,
  )
  t.ok(
    source.logs.lines.some((l) => l.msg === 'transfer grant issued' && l.grant === next.id && l.token === undefined),
    'logged, without its token',
  )
})

t.test('M2: the destination pulls from the source with a grant', async (t) => {
  const source = await startCloud(t)
  // A connection to the source not made in half a second is one to a source out of reach (5 s by default).
  const dest = await startCloud(t, { pullConnectTimeoutMs: 500 }, new ManualClock(source.clock.now()))
  await addDevice(dest, 'phone-d', 'anna')
  const small = await hold(source, 'anna', 'n1', SMALL)
  const large = await hold(source, 'anna', 'n2', LARGE)
  const console = new ConsoleClient(source.apiUrl, source.consoleToken)
  const grant = async (): Promise<string> =>
    TransferGrantSchema.parse((await answer(console, 'POST', '/api/accounts/anna/transfer-grants', {})).body).token
  const destApi = new ConsoleClient(dest.apiUrl, dest.consoleToken)
  const blob = (b: Buffer, offset = 0) => ({ sha256: sha(b), size: b.length, offset })
  const pull = async (url: string, blobs = [blob(SMALL), blob(LARGE)], token?: string, account = 'anna') =>
    answer(destApi, 'POST', '/api/accounts/anna/blobs/pull', { from: { url, account, grant: token ?? (await grant()) }, blobs })

  await t.test('M2: the source’s address is untrusted input: http or https, no credentials of its own', async (t) => {
    t.match(await pull('not a url'), { status: 400, body: { error: 'bad source address "not a url": not a URL' } })
    t.match(await pull('file:///etc/passwd'), { status: 400, body: { error: /an http:\/\/ or https:\/\/ address only$/ } })
    t.match(await pull('http://me:secret@127.0.0.1:9/'), { status: 400, body: { error: /the transfer grant is the only credential/ } })
    t.equal(dest.broker.cloud.blobs.size(small), undefined, 'nothing stored')
  })

  await t.test('M2: a pull stores each blob as an upload would, once', async (t) => {
    const first = await pull(source.apiUrl)
    t.same(first, {
      status: 200,
      text: first.text,
      body: { blobs: [small, large].map((s, i) => ({ sha256: s, stored: true, offset: [SMALL, LARGE][i]?.length })) },
    })
    t.same([dest.broker.cloud.blobs.size(small), dest.broker.cloud.blobs.size(large)], [SMALL.length, LARGE.length])
    t.match(await pull(source.apiUrl), { status: 200, body: { blobs: [{ stored: true }, { stored: true }] } }, 'again: nothing twice')
    t.match(await pull(source.apiUrl, [blob(Buffer.from('not at the source'))]), {
      status: 502,
      body: { code: 'SOURCE_GONE', sha256: sha(Buffer.from('not at the source')), stored: [] },
    })
  })

  await t.test('M2: a pull cut mid-blob keeps what came, and resumes from there', async (t) => {
    const other = Buffer.from(LARGE.map((b) => 255 - b))
    const otherSha = await hold(source, 'anna', 'n3', other)
    const proxy = await startProxy(t, source.apiUrl)
    const cut = proxy.arm({ marker: `blob ${otherSha} `, bodyOffset: 100_000, action: 'cut', in: 'answer' })
    const broke = await pull(proxy.url, [blob(other)])
    await cut
    t.match(broke, { status: 502, body: { code: 'SOURCE_CUT', error: "the source's answer broke off: aborted", stored: [] } })
    const state = await answer(destApi, 'POST', '/api/accounts/anna/blobs/state', { blobs: [{ sha256: otherSha, size: other.length }] })
    const kept = (state.body as { blobs: { offset: number }[] }).blobs[0]?.offset as number
    t.ok(kept > 0 && kept <= 100_000, `the destination kept ${kept} bytes`)
    // The source sends the blob from its first byte; the bytes before the offset are not taken again: one flipped among
    // them on the way does not matter.
    const flip = proxy.arm({ marker: `blob ${otherSha} `, bodyOffset: 1000, action: 'flip', in: 'answer' })
    t.match(await pull(proxy.url, [blob(other, kept)]), { status: 200, body: { blobs: [{ sha256: otherSha, stored: true }] } })
    await flip
    t.equal(dest.broker.cloud.blobs.size(otherSha), other.length)
  })

  await t.test('M2: why a pull could not read the source', async (t) => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
    await new Promise((resolve) => closed.close(resolve))
    t.match(await pull(gone), {
      status: 502,
      body: { code: 'SOURCE_UNREACHABLE', error: new RegExp(`^this cloud cannot reach the source at ${gone}: connect ECONNREFUSED`) },
    })
    // An address that drops the connection attempt: said when the pull's own connect time runs out, not the OS's
    // (minutes), so the console relays at once.
    const hole = `http://127.0.0.1:${await blackHolePort(t)}`
    t.match(await pull(hole), {
      status: 502,
      body: {
        code: 'SOURCE_UNREACHABLE',
        error: `this cloud cannot reach the source at ${hole}: connect ETIMEDOUT: no connection in 0.5 s`,
      },
    })
    const proxy = await startProxy(t, source.apiUrl)
    proxy.away()
    t.match(await pull(proxy.url), { status: 502, body: { code: 'SOURCE_CUT', error: /broke off before it answered/ } })
    proxy.back()
    const expired = await grant()
    ;(source.clock as ManualClock).advance(GRANT_TTL_MS)
    t.match(await pull(source.apiUrl, undefined, expired), {
      status: 502,
      body: { code: 'SOURCE_REFUSED', error: /refused the read \(HTTP 401\): missing or wrong console token or transfer grant/ },
    })
  })

  await t.test('M2: a pull reads only from the address named, with the grant and nothing else', async (t) => {
    const elsewhere: string[] = []
    const other = createServer((req, res) => {
      elsewhere.push(req.url as string)
      res.end()
    })
    const heard: IncomingMessage['headers'][] = []
    const standIn = createServer((req, res) => {
      heard.push(req.headers)
      req.resume()
      if (req.url?.startsWith('/api/accounts/text/')) res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance')
      else if (req.url?.startsWith('/api/accounts/huge/')) res.writeHead(503).end('x'.repeat(100 * 1024))
      else if (req.url?.startsWith('/api/accounts/cut/')) res.writeHead(503, { 'content-length': '100' }).end('cut', () => res.destroy())
      else res.writeHead(307, { location: `${url(other)}${req.url}` }).end()
    })
    const url = (s: typeof other): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`
    for (const s of [other, standIn]) {
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
      onEnd(t, () => new Promise((resolve) => s.close(resolve)))
    }
    t.match(await pull(url(standIn), undefined, 'fpg_the-grant'), {
      status: 502,
      body: {
        code: 'SOURCE_REFUSED',
        error: new RegExp(
          String.raw`answered HTTP 307 \(to "http://127\.0\.0\.1:\d+/api/accounts/anna/blobs/read"\): ` +
            'a pull reads only from the address the console named and follows no redirect$',
        ),
      },
    })
    t.same(elsewhere, [], 'the address it was sent to heard nothing')
    t.match(heard, [{ authorization: 'Bearer fpg_the-grant' }], 'the grant is the credential sent, the only one')
    t.notOk(JSON.stringify(heard).includes(dest.consoleToken), "nor does the destination's own token go")
    t.match(await pull(url(standIn), undefined, 'fpg_x', 'text'), {
      status: 502,
      body: { code: 'SOURCE_REFUSED', error: /refused the read \(HTTP 503\): "down for maintenance"$/ },
    })
    // A refusal too long to be one, or cut short: the status is all it said.
    for (const account of ['huge', 'cut'])
      t.match(await pull(url(standIn), undefined, 'fpg_x', account), {
        status: 502,
        body: { code: 'SOURCE_REFUSED', error: /refused the read \(HTTP 503\): ""$/ },
      })
  })
})
