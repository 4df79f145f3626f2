/**
 * A1, S3: an unfinished upload holds its bytes against the account's quota
 * only until it has had no new bytes for 24 h on the cloud's clock: then its
 * partial file goes, the quota is free again, the cloud log says so, and a
 * resume from the old offset is told to start again. Inside the 24 h an
 * upload resumes as before. The clock is moved, never waited for.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { CloudClient } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import type { AccountView } from '../../../broker/cloud/accounts.js'
import type { CloudLogEntry } from '../../../broker/cloud/cloud-log.js'
import { BlobStore, UPLOAD_IDLE_MS } from '../../../broker/cloud/blob-store.js'
import { openDb } from '../../../broker/db.js'
import { DEFAULT_BROKER_OPTIONS } from '../../../broker/server.js'
import { renderAccount } from '../../../cli/account-commands.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { ManualClock } from '../../../common/clock.js'
import { addDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { LogCapture } from '../../fixtures/logs.js'
import { onEnd, tempDir } from '../../fixtures/scope.js'

const HOUR = 3_600_000
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

const small = {
  cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: 1000 } },
}

const incoming = (cloud: Cloud): string[] => readdirSync(join(cloud.dataDir, 'blobs', 'incoming'))

/** A phone's raw PUT of `body` as the bytes of `whole` from `offset`. */
async function put(cloud: Cloud, secret: string, whole: Buffer, offset: number, body: Buffer): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(`/cloud/v1/blobs/${sha(whole)}?size=${whole.length}&offset=${offset}`, cloud.apiUrl), {
    method: 'PUT',
    headers: { authorization: `Basic ${Buffer.from(`p1:${secret}`).toString('base64')}` },
    body: new Uint8Array(body),
  })
  return { status: res.status, body: await res.json() }
}

/** The account as the console shows it (`fakephone console account alice`). */
async function account(cloud: Cloud): Promise<{ view: AccountView; text: string }> {
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const { now, account: view } = await api.send<{ now: number; account: AccountView }>('GET', '/api/accounts/alice')
  const { log } = await api.send<{ log: CloudLogEntry[] }>('GET', '/api/accounts/alice/log')
  return { view, text: renderAccount(view, log, now) }
}

t.test(
  'A1 S3: an upload left one byte short holds quota until 24 h without new bytes; then it is removed, logged, the quota ' +
    'is free, and a resume is told to start again',
  async (t) => {
    const cloud = await startCloud(t, small)
    const clock = cloud.clock as ManualClock
    const secret = await addDevice(cloud, 'p1')
    const first = randomBytes(600)
    t.match(await put(cloud, secret, first, 0, first.subarray(0, 300)), { status: 200, body: { offset: 300 } })

    // 23 h later the phone resumes: more bytes, still one short. The 24 h count from these.
    clock.advance(23 * HOUR)
    t.match(await put(cloud, secret, first, 300, first.subarray(300, 599)), { status: 200, body: { stored: false, offset: 599 } })
    const before = await account(cloud)
    t.equal(before.view.pendingBytes, 599, 'the console shows what the unfinished upload holds')
    t.match(before.text, /^unfinished {5}599 B held by uploads not finished \(removed after 24 h idle\)$/m)
    t.match(
      await put(cloud, secret, randomBytes(600), 0, Buffer.alloc(0)),
      { status: 507, body: { code: 'QUOTA_EXCEEDED' } },
      'another upload of 600 B does not fit beside it',
    )
    clock.advance(23 * HOUR)
    t.equal(incoming(cloud).length, 1, '46 h after it started, 23 h after its last bytes: still kept')
    t.match(await put(cloud, secret, first, 599, Buffer.alloc(0)), { status: 200, body: { offset: 599 } }, 'a request with no bytes...')

    clock.advance(HOUR)
    t.same(incoming(cloud), [], '...does not keep it: 24 h after its last bytes, its partial file is gone')
    const after = await account(cloud)
    t.equal(after.view.pendingBytes, 0, 'and the quota it held is free')
    t.notMatch(after.text, /^unfinished/m)
    t.match(
      after.text,
      new RegExp(
        `upload-expiry +1 +1 unfinished upload removed after 24 h without new bytes: ${sha(first).slice(0, 12)} \\(599 B\\); ` +
          'the 599 B it held count against the quota no more, and an upload of it starts again from the first byte',
      ),
      "the cloud log says what was removed and why (console account's history)",
    )
    t.match(
      cloud.logs.lines.find((l) => l.rule === 'upload-expiry'),
      { account: 'alice', count: 1 },
      "and so does the broker's log",
    )

    t.match(
      await put(cloud, secret, first, 599, first.subarray(599)),
      {
        status: 409,
        body: {
          code: 'BAD_OFFSET',
          error: /^the partial upload of this blob was removed at .* after 24 h without new bytes; start again from offset 0$/,
        },
      },
      'a resume from the old offset is told to start again',
    )
    const client = new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('p1', secret), chunkBytes: 100 })
    const sent: number[] = []
    t.equal(await client.upload(first, undefined, (n) => sent.push(n)), sha(first), 'the phone starts again and finishes')
    t.equal(sent[0], 0, 'from the first byte')
    t.same(incoming(cloud), [])

    // Started again and cut again: the record of the removal went with the new bytes, so the answer is the plain one.
    const second = randomBytes(300)
    await put(cloud, secret, second, 0, second.subarray(0, 100))
    clock.advance(UPLOAD_IDLE_MS)
    t.same(incoming(cloud), [])
    await put(cloud, secret, second, 0, second.subarray(0, 50))
    t.match(await put(cloud, secret, second, 100, second.subarray(100)), {
      status: 409,
      body: { error: 'the cloud has 50 bytes of this blob; send from offset 50' },
    })
  },
)

t.test(
  'A1: a partial upload the cloud found on disk at start (written before it kept track) is removed 24 h after the start; ' +
    'the record of a removal lasts 24 h',
  async (t) => {
    const cloud = await startCloud(t, small)
    const clock = cloud.clock as ManualClock
    const secret = await addDevice(cloud, 'p1')
    const bytes = randomBytes(400)
    // As an older cloud left them: six partial files, and nothing in the database about them.
    for (const whole of [bytes, ...Array.from({ length: 5 }, () => randomBytes(400))])
      writeFileSync(
        join(cloud.dataDir, 'blobs', 'incoming', `${Buffer.from('alice').toString('hex')}-${sha(whole)}.part`),
        whole.subarray(0, 200),
      )
    writeFileSync(join(cloud.dataDir, 'blobs', 'incoming', 'not-an-upload.part'), 'x')
    await cloud.restart()
    t.equal((await account(cloud)).view.pendingBytes, 1200)
    clock.advance(UPLOAD_IDLE_MS - 1)
    t.equal((await account(cloud)).view.pendingBytes, 1200, 'kept for 24 h from the start')
    clock.advance(1)
    const after = await account(cloud)
    t.equal(after.view.pendingBytes, 0)
    const removed = /6 unfinished uploads removed after 24 h without new bytes: (\w{12} \(200 B\), ){4}\w{12} \(200 B\) and 1 more/
    t.match(after.text, removed, 'one line for the six: five named, and how many more')
    t.same(incoming(cloud), ['not-an-upload.part'], 'a file that is no upload is left alone')
    clock.advance(UPLOAD_IDLE_MS)
    t.match(
      await put(cloud, secret, bytes, 200, bytes.subarray(200)),
      { status: 409, body: { error: 'the cloud has 0 bytes of this blob; send from offset 0' } },
      '24 h after the removal, the cloud no longer remembers it',
    )
  },
)

t.test('A1: an upload being written is never idle; a record whose partial file is gone is dropped without a word', async (t) => {
  const dir = tempDir(t)
  const db = openDb(dir)
  onEnd(t, () => db.close())
  const clock = new ManualClock()
  const store = new BlobStore(dir, db, clock, new LogCapture().logger())
  const bytes = randomBytes(100)
  t.match(await store.append('a', sha(bytes), bytes.length, 0, Readable.from([bytes.subarray(0, 10)])), { offset: 10 })
  const slow = new PassThrough()
  const writing = store.append('a', sha(bytes), bytes.length, 10, slow)
  slow.write(bytes.subarray(10, 20))
  t.same(store.expireIdle(clock.now() + 2 * UPLOAD_IDLE_MS), [], 'a write still going is not removed, however long ago it began')
  slow.end(bytes.subarray(20, 50))
  t.match(await writing, { stored: false, offset: 50 })
  t.equal(store.nextIdleDue(), clock.now() + UPLOAD_IDLE_MS)
  rmSync(join(dir, 'blobs', 'incoming', `${Buffer.from('a').toString('hex')}-${sha(bytes)}.part`))
  t.same(store.expireIdle(clock.now() + UPLOAD_IDLE_MS), [], 'nothing to remove')
  t.equal(store.nextIdleDue(), null, 'and nothing left to look at')

  // Removed idle, then begun again by a request that writes its file before it is recorded (a migration's batch).
  const other = randomBytes(100)
  const start = clock.now()
  await store.append('a', sha(other), other.length, 0, Readable.from([other.subarray(0, 10)]))
  t.match(store.expireIdle(start + UPLOAD_IDLE_MS), [{ account: 'a', sha256: sha(other), bytes: 10 }])
  writeFileSync(join(dir, 'blobs', 'incoming', `${Buffer.from('a').toString('hex')}-${sha(other)}.part`), other.subarray(0, 20))
  t.same(store.expireIdle(start + UPLOAD_IDLE_MS + 1), [], 'the new file is an upload again, idle from now')
  t.equal(store.nextIdleDue(), start + 2 * UPLOAD_IDLE_MS + 1)
  t.match(store.expireIdle(start + 2 * UPLOAD_IDLE_MS + 1), [{ sha256: sha(other), bytes: 20 }])
})
