/**
 * Uploads on a full disk (S3, D1): the caller is answered 507 with the reason,
 * the log says why, nothing part-written is stored as a blob or an item, the
 * broker goes on, and the same upload succeeds once there is room. The
 * failures are real: a file write goes to /dev/full (a symlink where the
 * cloud writes the upload: every write fails with ENOSPC), and the database
 * is limited to its current size (`PRAGMA max_page_count`: SQLITE_FULL).
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { CloudClient, CloudError } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import { ItemReplySchema } from '../../../common/cloud/sync-api.js'
import { fillDatabase, freeDatabase } from '../../fixtures/db-full.js'
import { addDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Where the cloud writes `account`'s upload of `sha256` before it is whole (blob-store.ts). */
const partialPath = (cloud: Cloud, account: string, sha256: string): string =>
  join(cloud.dataDir, 'blobs', 'incoming', `${Buffer.from(account).toString('hex')}-${sha256}.part`)

const notStored = (l: { msg: string }): boolean => l.msg === 'HTTP request not stored: the cloud cannot write now'

async function phone(cloud: Cloud): Promise<CloudClient> {
  const secret = await addDevice(cloud, 'p1')
  return new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('p1', secret) })
}

t.test('S3 a blob upload to a full disk is answered 507 with the reason; once there is room it is stored whole', async (t) => {
  const cloud = await startCloud(t)
  const client = await phone(cloud)
  const bytes = randomBytes(50_000)
  const partial = partialPath(cloud, 'alice', sha(bytes))
  symlinkSync('/dev/full', partial)
  const refused = await client.upload(bytes).then(
    () => null,
    (err: unknown) => err,
  )
  t.ok(refused instanceof CloudError)
  t.match(refused, { status: 507, code: 'INSUFFICIENT_STORAGE', message: /^the cloud cannot store this now: the disk is full \(ENOSPC\)/ })
  t.match(cloud.logs.lines.find(notStored), { level: 50, reason: 'the disk is full (ENOSPC)', method: 'PUT' }, 'the log says why')
  t.equal(cloud.broker.cloud.blobs.size(sha(bytes)), undefined, 'no blob is stored')

  rmSync(partial) // room again
  t.equal(await client.upload(bytes), sha(bytes))
  t.equal(cloud.broker.cloud.blobs.size(sha(bytes)), 50_000, 'stored whole once there is room')
  t.same(await client.download(sha(bytes)).catch(() => null), null, 'held by no item yet: not served')
})

t.test('D1 a drive file the cloud writes in one go, to a full disk: 507, no part-written file left; then stored', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'p1')
  const bytes = randomBytes(20_000)
  const tmp = join(cloud.dataDir, 'blobs', 'incoming', `local-${sha(bytes)}.part`)
  symlinkSync('/dev/full', tmp)
  const post = (): Promise<Response> =>
    fetch(`${cloud.apiUrl}/api/accounts/alice/drive/files?name=report.pdf`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cloud.consoleToken}` },
      body: bytes,
    })
  const full = await post()
  t.equal(full.status, 507)
  t.match(await full.json(), { code: 'INSUFFICIENT_STORAGE', error: /the disk is full \(ENOSPC\)/ })
  t.notOk(existsSync(tmp), 'what was part-written is removed')
  t.same(cloud.broker.cloud.drive.files.list('alice'), [], 'no drive file')
  const stored = await post()
  t.equal(stored.status, 201, 'the same upload succeeds once there is room')
  t.equal(cloud.broker.cloud.blobs.size(sha(bytes)), 20_000)
})

t.test('S1 an item put while the database is full is answered 507 with the reason and not stored; then stored', async (t) => {
  const cloud = await startCloud(t)
  const client = await phone(cloud)
  const bytes = randomBytes(1000)
  const sha256 = await client.upload(bytes)
  // Metadata larger than a database page: its row needs new pages, which a full database cannot give.
  const meta = Object.fromEntries([...Array(10).keys()].map((i) => [`k${i}`, 'x'.repeat(1000)]))
  const put = (): Promise<unknown> =>
    client.call('PUT', '/cloud/v1/sync/photos/IMG_1.jpg', ItemReplySchema, { sha256, size: 1000, meta, modifiedAt: 1 })
  fillDatabase(cloud.broker.db)
  await t.rejects(put(), { status: 507, code: 'INSUFFICIENT_STORAGE', message: /database or the disk it is on is full \(SQLITE_FULL\)/ })
  t.match(cloud.logs.lines.find(notStored), { reason: /SQLITE_FULL/ })
  t.same(cloud.broker.cloud.items.live('alice').items, [], 'nothing half-written: no item')
  freeDatabase(cloud.broker.db)
  t.match(await put(), { item: { id: 'IMG_1.jpg', sha256 } }, 'the same put succeeds once there is room')
})
