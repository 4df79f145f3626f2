/**
 * A request the server cut as it reused a kept-alive connection (nodejs/node#52649: it closed the connection as the
 * request went out) is sent again once, on a fresh connection, when its repeat changes nothing: the phone's S1 sync
 * GET and the console's F2 command list. A B1 backup registration or an F2 command submit (POSTs) is not sent twice:
 * it fails, saying the broker closed the connection mid-request, not that the broker may be down.
 */
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { z } from 'zod'
import { CloudClient, CloudError } from '../../agent/cloud-client.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { ConsoleApiError, ConsoleClient } from '../../cli/console-client.js'
import { BACKUP_PATH } from '../../common/cloud/backup-api.js'
import { SYNC_PATH } from '../../common/cloud/sync-api.js'
import { onEnd } from '../fixtures/scope.js'

/**
 * A server that answers `{}` to a connection's first request and resets the connection, unanswered, at its second: what
 * a client sees when it reuses a connection the server is closing that moment. Counts the requests that arrived.
 */
async function closingServer(t: Test): Promise<{ url: string; arrived: string[]; cut: string[] }> {
  const arrived: string[] = []
  const cut: string[] = []
  const served = new WeakMap<Socket, number>()
  const server = createServer((req: IncomingMessage, res) => {
    const what = `${req.method} ${req.url}`
    arrived.push(what)
    const n = (served.get(req.socket) ?? 0) + 1
    served.set(req.socket, n)
    req.resume()
    req.on('end', () => {
      if (n < 2) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      cut.push(what)
      req.socket.resetAndDestroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onEnd(t, () => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrived, cut }
}

t.test('S1, B1: the phone sends a GET again on a fresh connection when the cloud cut the reused one, a POST never', async (t) => {
  const server = await closingServer(t)
  const cloud = new CloudClient({ baseUrl: server.url, credentials: new DeviceCredentials('phone-a', 's') })
  const changes = `${SYNC_PATH}/photos/changes?since=0`
  t.same(await cloud.call('GET', changes, z.object({})), {}, 'first: a fresh connection, answered, kept')
  t.same(await cloud.call('GET', changes, z.object({})), {}, 'second: its kept connection cut, sent again, answered')
  t.same(server.cut, [`GET ${changes}`], 'the GET on the reused connection was cut')
  t.equal(server.arrived.filter((r) => r === `GET ${changes}`).length, 3, 'and sent again once')

  // The retry's connection was its own; a GET opens the one the registration reuses.
  await cloud.call('GET', changes, z.object({}))
  const err = await cloud.call('POST', BACKUP_PATH, z.object({}), { sha256: 'a'.repeat(64) }).catch((e: unknown) => e)
  t.equal(server.cut.at(-1), `POST ${BACKUP_PATH}`, 'the backup registration was cut on the reused connection')
  t.ok(err instanceof CloudError)
  t.match((err as CloudError).message, /closed the connection mid-request \(read ECONNRESET\): not sent again/)
  t.equal(server.arrived.filter((r) => r === `POST ${BACKUP_PATH}`).length, 1, 'a backup registered once, not twice')
})

t.test('F2: the console sends a GET again on a fresh connection when the broker cut the reused one, a command submit never', async (t) => {
  const server = await closingServer(t)
  const api = new ConsoleClient(server.url, 'token', undefined, { unreachable: '; is the broker running?' })
  const list = '/api/devices/phone-a/commands'
  t.same(await api.request(list), {}, 'first: a fresh connection, answered, kept')
  t.same(await api.request(list), {}, 'second: its kept connection cut, sent again, answered')
  t.same(server.cut, [`GET ${list}`], 'the GET on the reused connection was cut')
  t.equal(server.arrived.filter((r) => r === `GET ${list}`).length, 3, 'and sent again once')

  await api.request(list)
  const err = await api.request(list, { id: 'c1', action: 'ring' }).catch((e: unknown) => e)
  t.equal(server.cut.at(-1), `POST ${list}`, 'the submit was cut on the reused connection')
  t.ok(err instanceof ConsoleApiError)
  const message = (err as ConsoleApiError).message
  t.match(message, /closed the connection mid-request \(read ECONNRESET\)/, message)
  t.match(
    message,
    /one it had answered on before; the request was not sent again, as it may have arrived: check whether it took effect, then retry$/,
  )
  t.notMatch(message, /is the broker running/, 'not said to be down')
  t.equal(server.arrived.filter((r) => r === `POST ${list}`).length, 1, 'the command submitted once, not twice')
})
