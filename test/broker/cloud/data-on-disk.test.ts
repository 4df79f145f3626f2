/**
 * What a deletion leaves on the cloud's disk (D1, R2, R3, A3, M1): a real broker with its real files, searched byte by
 * byte for a unique marker put in a drive file, a note's bytes and its title, as someone with the disk would search
 * them (`grep -rlaF`): the blob store, `cloud.sqlite` and its WAL. docs/DATA-LIFECYCLE.md says it to the user.
 */
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { CloudClient } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import type { ManualClock } from '../../../common/clock.js'
import { ItemReplySchema, SYNC_PATH } from '../../../common/cloud/sync-api.js'
import { DB_FILE } from '../../../broker/db.js'
import { addDevice, startCloud, type Cloud } from '../../fixtures/cloud.js'
import { filesHolding } from '../../fixtures/disk-search.js'
import { run } from '../../fixtures/io.js'

const DAY = 86_400_000

/** A marker no other byte on the disk holds. */
const marker = (what: string): string => `${what}-${randomUUID()}`

async function consoleCall(cloud: Cloud, method: string, path: string, body?: Buffer): Promise<{ status: number; json: unknown }> {
  const res = await fetch(new URL(path, cloud.apiUrl), {
    method,
    headers: { authorization: `Bearer ${cloud.consoleToken}` },
    body: body === undefined ? undefined : new Uint8Array(body),
  })
  return { status: res.status, json: await res.json() }
}

/** The console's upload of a drive file of `account`; its id. */
async function driveUpload(t: Test, cloud: Cloud, account: string, name: string, text: string): Promise<string> {
  const up = await consoleCall(cloud, 'POST', `/api/accounts/${account}/drive/files?name=${name}`, Buffer.from(text))
  t.equal(up.status, 201, `${name} uploaded to ${account}'s drive`)
  return (up.json as { file: { id: string } }).file.id
}

const blobsHolding = (cloud: Cloud, m: string): string[] => filesHolding(join(cloud.dataDir, 'blobs'), m)

t.test('D1: a drive file the owner deletes leaves the disk at once, unless another account holds the same bytes', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a', 'alice')
  await addDevice(cloud, 'phone-b', 'bob')
  const secret = marker('TAX')
  const aliceFile = await driveUpload(t, cloud, 'alice', 'tax.txt', `my tax return ${secret}`)
  const bobFile = await driveUpload(t, cloud, 'bob', 'copy.txt', `my tax return ${secret}`)
  t.equal(blobsHolding(cloud, secret).length, 1, 'stored once for both accounts')

  t.equal((await consoleCall(cloud, 'DELETE', `/api/accounts/alice/drive/files/${aliceFile}`)).status, 200)
  t.equal(blobsHolding(cloud, secret).length, 1, "bob's file still holds the bytes")
  const bobs = await fetch(new URL(`/api/accounts/bob/drive/files/${bobFile}/content`, cloud.apiUrl), {
    headers: { authorization: `Bearer ${cloud.consoleToken}` },
  })
  t.equal(await bobs.text(), `my tax return ${secret}`, 'and bob downloads them')

  t.equal((await consoleCall(cloud, 'DELETE', `/api/accounts/bob/drive/files/${bobFile}`)).status, 200)
  t.same(blobsHolding(cloud, secret), [], 'the last holder gone, no file under blobs/ holds the bytes, within the hour of their upload')
  t.same(cloud.broker.db.prepare('SELECT COUNT(*) AS n FROM blobs').get(), { n: 0 }, 'nor does the blobs table name them')
})

t.test('D1: a drive file replaced by one of the same name leaves its old bytes nowhere on the disk', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a', 'alice')
  const first = marker('DRAFT')
  await driveUpload(t, cloud, 'alice', 'letter.txt', `first draft ${first}`)
  const swept = cloud.logs.waitFor((l) => l.msg === 'deleted data erased from disk')
  await driveUpload(t, cloud, 'alice', 'letter.txt', 'final version')
  await swept
  t.same(blobsHolding(cloud, first), [], 'the first draft is gone from blobs/')
})

t.test("R2 R3: a purged note's bytes and its title leave the blob store, cloud.sqlite and its WAL", async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const phone = new CloudClient({
    baseUrl: cloud.apiUrl,
    credentials: new DeviceCredentials('phone-a', await addDevice(cloud, 'phone-a', 'alice')),
  })
  const put = async (id: string, title: string, body: string): Promise<void> => {
    const bytes = Buffer.from(body)
    const sha256 = await phone.upload(bytes)
    const meta = { title }
    await phone.call('PUT', `${SYNC_PATH}/notes/${id}`, ItemReplySchema, { sha256, size: bytes.length, meta, modifiedAt: clock.now() })
  }
  const kept = marker('KEPT')
  await put('kept.txt', kept, `a note that stays ${kept}`)
  const [title, text] = [marker('DIARY'), marker('PIN')]
  await put('diary.txt', title, `${title}\nmy bank pin is 4821 ${text}`)
  const forever = marker('R3')
  await put('r3.txt', forever, `deleted for good by its owner ${forever}`)
  t.ok(filesHolding(cloud.dataDir, title).includes('cloud.sqlite-wal'), 'synced, its title is in the WAL, where the search looks')

  await phone.call('DELETE', `${SYNC_PATH}/notes/diary.txt`, ItemReplySchema)
  await phone.call('DELETE', `${SYNC_PATH}/notes/r3.txt`, ItemReplySchema)
  t.equal((await consoleCall(cloud, 'DELETE', '/api/accounts/alice/bin/notes/r3.txt')).status, 200, 'R3: deleted forever')
  t.same(filesHolding(cloud.dataDir, forever), [], 'R3: nothing on the disk holds it once the owner deleted it forever')
  t.not(filesHolding(cloud.dataDir, text).length, 0, 'R2: in the recycle bin, the note is still there')

  clock.advance(30 * DAY)
  await cloud.broker.cloud.bin.idle()
  t.same(filesHolding(cloud.dataDir, text), [], 'R2: purged, its text is nowhere on the disk')
  t.same(filesHolding(cloud.dataDir, title), [], 'R2: nor its title: not in the blob, the database file or its WAL')
  t.not(filesHolding(cloud.dataDir, kept).length, 0, 'the note that was not deleted is still there')
  t.match(cloud.broker.db.prepare("SELECT meta FROM sync_items WHERE id = 'kept.txt'").get(), { meta: new RegExp(kept) })
})

/** A notification for `deviceId` whose title and body hold `secret`, queued in the cloud through the console API. */
async function notifyWith(t: Test, cloud: Cloud, deviceId: string, secret: string): Promise<void> {
  const req = { kind: 'message', title: `From ${secret}`, body: `Meet at ${secret}` }
  const sent = await consoleCall(cloud, 'POST', `/api/devices/${deviceId}/notifications`, Buffer.from(JSON.stringify(req)))
  t.equal(sent.status, 201, 'a notification queued for the phone')
  t.same(filesHolding(cloud.dataDir, secret), [`${DB_FILE}-wal`], 'it lies in the WAL')
}

t.test("device remove from the CLI, the broker running on the same directory: the device's data leaves the WAL too", async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a', 'alice')
  const secret = marker('FRIEND')
  await notifyWith(t, cloud, 'phone-a', secret)

  // The CLI's own process: another connection to the database the broker holds open.
  const removed = await run(['device', 'remove', 'phone-a', '--data', cloud.dataDir])
  t.equal(removed.code, 0, removed.err)
  t.equal(removed.err, '', 'no warning')
  t.same(filesHolding(cloud.dataDir, secret), [], 'no file of the cloud holds the notification any more, the WAL included')
})

t.test('device remove from the CLI while a reader holds the WAL: the removal stands, and it says where the copies stay', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a', 'alice')
  const secret = marker('FRIEND')
  await notifyWith(t, cloud, 'phone-a', secret)
  // A reader in the middle of a read (a long export, say) keeps the WAL's frames in use: the cut waits busy_timeout.
  const reader = new Database(join(cloud.dataDir, DB_FILE), { readonly: true })
  t.teardown(() => reader.close())
  reader.exec('BEGIN')
  reader.prepare('SELECT COUNT(*) FROM devices').get()

  const removed = await run(['device', 'remove', 'phone-a', '--data', cloud.dataDir])
  t.equal(removed.code, 0, 'removed')
  t.match(removed.err, /^warning: cloud\.sqlite-wal still holds older copies of the device's data \(a reader kept it busy\)/)
  reader.exec('COMMIT')
  t.same(cloud.broker.registry.list(), [], 'the device is gone')
})
