/**
 * The cloud side of app data sync and the recycle bin (S1, S2, R1-R3, A1-A3)
 * against a real broker, through the phone's CloudClient and the console API,
 * with the clock moved across every boundary.
 */
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { z } from 'zod'
import { CloudClient } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { DEFAULT_ACCOUNT_RULES } from '../../../broker/cloud/accounts.js'
import type { ManualClock } from '../../../common/clock.js'
import {
  BinViewSchema,
  ChangesSchema,
  ItemReplySchema,
  ItemsViewSchema,
  PurgedSchema,
  SYNC_PATH,
  type BinView,
  type ItemsView,
  type SyncCategory,
} from '../../../common/cloud/sync-api.js'
import { utcDate } from '../../../common/format-time.js'
import { addDevice, reportServiceOff, startCloud, type Cloud } from '../../fixtures/cloud.js'

const DAY = 86_400_000
const HOUR = 3_600_000

interface Setup {
  cloud: Cloud
  clock: ManualClock
  phone: CloudClient
  other: CloudClient
  api: ConsoleClient
}

async function setup(t: Test, quota = DEFAULT_ACCOUNT_RULES.freeQuotaBytes): Promise<Setup> {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_ACCOUNT_RULES, freeQuotaBytes: quota } },
  })
  const client = async (id: string): Promise<CloudClient> =>
    new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials(id, await addDevice(cloud, id, 'alice')) })
  return {
    cloud,
    clock: cloud.clock as ManualClock,
    phone: await client('phone-a'),
    other: await client('phone-b'),
    api: new ConsoleClient(cloud.apiUrl, cloud.consoleToken),
  }
}

async function put(
  s: Setup,
  category: SyncCategory,
  id: string,
  bytes: Buffer,
  client = s.phone,
): Promise<z.infer<typeof ItemReplySchema>['item']> {
  const sha256 = await client.upload(bytes)
  const { item } = await client.call('PUT', `${SYNC_PATH}/${category}/${id}`, ItemReplySchema, {
    sha256,
    size: bytes.length,
    meta: { title: id },
    modifiedAt: s.clock.now(),
  })
  return item
}

const items = (s: Setup, query = ''): Promise<ItemsView> =>
  s.api.send('GET', `/api/accounts/alice/items${query}`).then((b) => ItemsViewSchema.parse(b))
const bin = (s: Setup): Promise<BinView> => s.api.send('GET', '/api/accounts/alice/bin').then((b) => BinViewSchema.parse(b))
const used = (s: Setup): number => s.cloud.broker.cloud.accounts.need('alice').usedBytes
const log = (s: Setup, rule: string): string[] =>
  s.cloud.broker.cloud.cloudLog
    .list('alice', 100)
    .filter((e) => e.rule === rule)
    .map((e) => e.message)

t.test("S1, S2: an item put by one phone is in the other phone's change feed and in the console, counted in the quota", async (t) => {
  const s = await setup(t)
  const item = await put(s, 'notes', 'n1.txt', Buffer.from('groceries\nmilk'))
  t.match(item, { category: 'notes', id: 'n1.txt', size: 14, changedBy: 'phone-a', deletedAt: null, meta: { title: 'n1.txt' } })
  const again = await put(s, 'notes', 'n1.txt', Buffer.from('groceries\nmilk'))
  t.equal(again.seq, item.seq, 'the same put twice is no new change')
  await put(s, 'photos', 'IMG_1.jpg', Buffer.alloc(100, 1))
  const feed = await s.other.call('GET', `${SYNC_PATH}/notes/changes?since=0`, ChangesSchema)
  t.same(
    feed.changes.map((c) => c.id),
    ['n1.txt'],
    "a category's feed carries that category only",
  )
  t.equal(feed.more, false)
  const after = await s.other.call('GET', `${SYNC_PATH}/notes/changes?since=${feed.cursor}`, ChangesSchema)
  t.same(after, { changes: [], cursor: feed.cursor, more: false, clearedAt: null }, 'nothing new after the cursor; never cleared (A3)')
  const view = await items(s)
  t.same(view.totals.notes, { count: 1, bytes: 14 })
  t.same(view.totals.photos, { count: 1, bytes: 100 })
  t.same(view.totals.contacts, { count: 0, bytes: 0 })
  t.same(
    (await items(s, '?category=photos')).items.map((i) => i.id),
    ['IMG_1.jpg'],
  )
  t.equal(used(s), 114, 'A1: both items count against the quota')
  t.equal(s.cloud.broker.cloud.accounts.need('alice').lastActivity, 'sync', 'A3: a sync is activity')

  // A new version replaces the old one's bytes in the quota.
  const edited = await put(s, 'notes', 'n1.txt', Buffer.from('groceries\nmilk, eggs'), s.other)
  t.equal(edited.changedBy, 'phone-b')
  t.equal(used(s), 120)
  const pulled = await s.phone.call('GET', `${SYNC_PATH}/notes/changes?since=${item.seq}`, ChangesSchema)
  t.same(
    pulled.changes.map((c) => [c.id, c.changedBy, c.size]),
    [['n1.txt', 'phone-b', 20]],
  )
})

t.test('A1: over quota a new item is refused with the reason and nothing stored is touched', async (t) => {
  const s = await setup(t, 150)
  await put(s, 'photos', 'IMG_1.jpg', Buffer.alloc(100, 1))
  const sha256 = await s.phone.upload(Buffer.alloc(100, 1))
  await t.rejects(s.phone.call('PUT', `${SYNC_PATH}/photos/IMG_2.jpg`, ItemReplySchema, { sha256, size: 100, meta: {}, modifiedAt: 1 }), {
    code: 'QUOTA_EXCEEDED',
    status: 507,
    message: /over quota: photos\/IMG_2.jpg .*needs 100 B but 50 B of 150 B is free; nothing stored was touched/,
  })
  t.equal(used(s), 100)
  t.same(
    (await items(s)).items.map((i) => i.id),
    ['IMG_1.jpg'],
    'the stored item is untouched and the refused one is not there',
  )
})

t.test('a put needs its blob first and the right size; bad names and categories are refused clearly', async (t) => {
  const s = await setup(t)
  const body = { sha256: 'a'.repeat(64), size: 3, meta: {}, modifiedAt: 1 }
  await t.rejects(s.phone.call('PUT', `${SYNC_PATH}/notes/x.txt`, ItemReplySchema, body), {
    status: 409,
    message: /upload the bytes of notes\/x.txt first/,
  })
  const sha256 = await s.phone.upload(Buffer.from('abcd'))
  await t.rejects(s.phone.call('PUT', `${SYNC_PATH}/notes/x.txt`, ItemReplySchema, { ...body, sha256 }), {
    status: 400,
    message: 'notes/x.txt says 3 bytes but blob ' + sha256 + ' has 4',
  })
  await t.rejects(s.phone.call('PUT', `${SYNC_PATH}/music/x.mp3`, ItemReplySchema, body), {
    status: 400,
    message: /unknown category "music": use photos, contacts, notes, recordings/,
  })
  await t.rejects(s.phone.call('PUT', `${SYNC_PATH}/notes/..x`, ItemReplySchema, body), { status: 400, message: /bad item id "..x"/ })
  await t.rejects(s.phone.call('DELETE', `${SYNC_PATH}/notes/none.txt`, ItemReplySchema), {
    status: 404,
    message: 'notes/none.txt is not in the cloud (already deleted?)',
  })
  await t.rejects(s.api.send('GET', '/api/accounts/nobody/bin'), { status: 404, message: 'account "nobody" not found' })
  await t.rejects(s.api.send('GET', '/api/accounts/alice/items?category=music'), { status: 400, message: /unknown category/ })
  const page = await s.phone.call('GET', `${SYNC_PATH}/notes/changes?limit=0`, ChangesSchema).catch((err: Error) => err)
  t.match(page, { status: 400, message: 'limit must be a whole number from 1 to 1000' })
})

t.test('the change feed comes in pages from the cursor', async (t) => {
  const s = await setup(t)
  for (let i = 0; i < 5; i++) await put(s, 'contacts', `c${i}.vcf`, Buffer.from(`BEGIN:VCARD ${i}`))
  const first = await s.other.call('GET', `${SYNC_PATH}/contacts/changes?since=0&limit=2`, ChangesSchema)
  t.same(
    first.changes.map((c) => c.id),
    ['c0.vcf', 'c1.vcf'],
  )
  t.equal(first.more, true)
  const rest = await s.other.call('GET', `${SYNC_PATH}/contacts/changes?since=${first.cursor}&limit=3`, ChangesSchema)
  t.same(
    rest.changes.map((c) => c.id),
    ['c2.vcf', 'c3.vcf', 'c4.vcf'],
  )
  t.equal(rest.more, false)
})

t.test("X1: with the account's cloud service off, the phone cannot sync, and the console still sees what is kept (S2)", async (t) => {
  const s = await setup(t)
  await put(s, 'notes', 'n1.txt', Buffer.from('kept'))
  reportServiceOff(s.cloud, 'phone-a', 'phone-b')
  t.equal(s.cloud.broker.cloud.accounts.need('alice').serviceOn, false)
  await t.rejects(s.phone.call('GET', `${SYNC_PATH}/notes/changes`, ChangesSchema), { status: 403, code: 'SERVICE_NOT_ENABLED' })
  await t.rejects(s.phone.call('DELETE', `${SYNC_PATH}/notes/n1.txt`, ItemReplySchema), { status: 403, code: 'SERVICE_NOT_ENABLED' })
  t.same(
    (await items(s)).items.map((i) => i.id),
    ['n1.txt'],
  )
  t.equal(used(s), 4)
})

t.test('R1: a deleted item goes to recently deleted with its days left, and a restore brings it back to the phones', async (t) => {
  const s = await setup(t)
  const first = await put(s, 'photos', 'IMG_1.jpg', Buffer.alloc(64, 7))
  const { item: gone } = await s.phone.call('DELETE', `${SYNC_PATH}/photos/IMG_1.jpg`, ItemReplySchema)
  t.equal(gone.deletedAt, s.clock.now())
  t.equal(s.cloud.broker.cloud.accounts.need('alice').lastActivity, 'delete', 'A3: a delete is activity')
  const feed = await s.other.call('GET', `${SYNC_PATH}/photos/changes?since=${first.seq}`, ChangesSchema)
  t.same(
    feed.changes.map((c) => [c.id, c.deletedAt !== null]),
    [['IMG_1.jpg', true]],
    'the other phone hears of the delete',
  )
  t.same((await items(s)).totals.photos, { count: 0, bytes: 0 }, 'no longer among the items')
  t.equal(used(s), 64, 'an entry in the bin still counts')

  s.clock.advance(DAY + HOUR)
  let view = await bin(s)
  t.equal(view.windowDays, 30)
  t.match(view.entries, [
    {
      category: 'photos',
      id: 'IMG_1.jpg',
      size: 64,
      deletedAt: gone.deletedAt,
      purgeAt: (gone.deletedAt as number) + 30 * DAY,
      daysLeft: 29,
    },
  ])
  s.clock.advance(12 * HOUR)
  t.equal((await bin(s)).entries[0]?.daysLeft, 29, 'days left round up')

  const restored = ItemReplySchema.parse(await s.api.send('POST', '/api/accounts/alice/bin/photos/IMG_1.jpg/restore'))
  t.match(restored.item, { deletedAt: null, changedBy: 'console' })
  view = await bin(s)
  t.same(view.entries, [])
  const back = await s.other.call('GET', `${SYNC_PATH}/photos/changes?since=${feed.cursor}`, ChangesSchema)
  t.same(
    back.changes.map((c) => [c.id, c.deletedAt]),
    [['IMG_1.jpg', null]],
    'the phones pull the restored item again',
  )
  await t.rejects(s.api.send('POST', '/api/accounts/alice/bin/photos/IMG_1.jpg/restore'), {
    status: 404,
    message: 'photos/IMG_1.jpg is not in recently deleted',
  })

  // The console deletes a cloud item too; putting it again from a phone brings it back as the new version.
  await s.api.send('DELETE', '/api/accounts/alice/items/photos/IMG_1.jpg')
  t.equal((await bin(s)).entries.length, 1)
  await put(s, 'photos', 'IMG_1.jpg', Buffer.alloc(64, 7))
  t.equal((await bin(s)).entries.length, 0)
  t.equal(used(s), 64)
})

t.test("R2: a free account's bin entry is purged after 30 days, not a second before, with a notice the day before", async (t) => {
  const s = await setup(t)
  await put(s, 'notes', 'n1.txt', Buffer.from('old note'))
  await s.phone.call('DELETE', `${SYNC_PATH}/notes/n1.txt`, ItemReplySchema)
  s.clock.advance(29 * DAY - 1)
  t.same(log(s, 'bin-purge-notice'), [], 'no notice before the day before')
  s.clock.advance(1)
  t.same(log(s, 'bin-purge-notice'), ['notice sent: Recently deleted items will be removed'], 'the owner is told a day before')
  const queued = s.cloud.broker.framework.queue.list('phone-a', 10)
  t.match(queued[0], {
    kind: 'cloud',
    title: 'Recently deleted items will be removed',
    body: /1 item in recently deleted will be permanently deleted on 2026-01-31 00:00 UTC \(kept 30 days\)/,
  })
  s.clock.advance(DAY - 1)
  t.equal((await bin(s)).entries.length, 1, 'still there a millisecond before 30 days')
  t.equal((await bin(s)).entries[0]?.daysLeft, 1)
  s.clock.advance(1)
  t.same((await bin(s)).entries, [], 'gone at 30 days')
  t.same(log(s, 'bin-purge'), ['1 item purged from recently deleted after 30 days: notes/n1.txt'])
  t.equal(log(s, 'bin-purge-notice').length, 1, 'one notice only')
  t.equal(used(s), 0, 'its bytes are given back')
})

t.test("R2: a premium member's entries stay 180 days; A2: when the membership ends the window shrinks to 30 days", async (t) => {
  const s = await setup(t)
  await s.api.send('PUT', '/api/accounts/alice/membership', { tier: 'premium' })
  await put(s, 'photos', 'IMG_1.jpg', Buffer.alloc(10, 1))
  await put(s, 'photos', 'IMG_2.jpg', Buffer.alloc(10, 2))
  await s.phone.call('DELETE', `${SYNC_PATH}/photos/IMG_1.jpg`, ItemReplySchema)
  t.equal((await bin(s)).entries[0]?.daysLeft, 180)
  s.clock.advance(180 * DAY - 1)
  t.equal((await bin(s)).entries.length, 1, 'there a millisecond before 180 days')
  s.clock.advance(1)
  t.same((await bin(s)).entries, [], 'purged at 180 days')
  t.same(log(s, 'bin-purge'), ['1 item purged from recently deleted after 180 days: photos/IMG_1.jpg'])

  // A2: 40 days into the bin, the membership ends: the 30-day window applies at once, and R2's notice a day before the
  // purge still holds: the entry goes a day after the notice its end sent, not with it.
  await s.phone.call('DELETE', `${SYNC_PATH}/photos/IMG_2.jpg`, ItemReplySchema)
  await s.api.send('PUT', '/api/accounts/alice/membership', { tier: 'premium', days: 40 })
  s.clock.advance(40 * DAY - 1)
  t.equal((await bin(s)).entries.length, 1, 'kept while the membership lasts')
  s.clock.advance(1)
  const ended = s.clock.now()
  t.equal(s.cloud.broker.cloud.accounts.need('alice').tier, 'free')
  t.match((await bin(s)).entries, [{ id: 'IMG_2.jpg', purgeAt: ended + DAY, daysLeft: 1 }], 'past the 30-day window: it goes in a day')
  await put(s, 'photos', 'IMG_3.jpg', Buffer.alloc(10, 3))
  const exported = (await s.api.send('GET', '/api/accounts/alice/export')) as { items: { id: string; purgeAt: number | null }[] }
  t.match(
    exported.items,
    [
      { id: 'IMG_3.jpg', purgeAt: null, daysLeft: null },
      { id: 'IMG_2.jpg', purgeAt: ended + DAY, daysLeft: 1 },
    ],
    'M3: an export says the same purge date, none for a live item',
  )
  t.equal(log(s, 'bin-purge-notice').length, 2, 'the owner was told before each purge')
  t.match(s.cloud.broker.framework.queue.list('phone-a', 10).at(-1), {
    body:
      `1 item in recently deleted will be permanently deleted on ${utcDate(ended + DAY)} (kept 30 days). ` +
      'Restore it from the console before then to keep it.',
  })
  s.clock.advance(DAY - 1)
  t.equal((await bin(s)).entries.length, 1, 'there a millisecond before a day after the notice')
  s.clock.advance(1)
  t.same((await bin(s)).entries, [], 'gone a day after the notice')
  t.match(log(s, 'bin-purge')[0], /after 30 days: photos\/IMG_2.jpg/)
})

t.test('R2: entries deleted minutes apart share one notice, each goes at its own 30 days, none sooner than a day after it', async (t) => {
  const s = await setup(t)
  const deleted: number[] = []
  for (let i = 0; i < 3; i++) {
    await put(s, 'notes', `n${i}.txt`, Buffer.from(`note ${i}`))
    await s.phone.call('DELETE', `${SYNC_PATH}/notes/n${i}.txt`, ItemReplySchema)
    deleted.push(s.clock.now())
    s.clock.advance(10 * 60_000)
  }
  const first = deleted[0] as number
  s.clock.advance(first + 29 * DAY - s.clock.now())
  t.same(log(s, 'bin-purge-notice').length, 1, 'told a day before the first goes')
  const bodies = s.cloud.broker.framework.queue.list('phone-a', 10).map((n) => n.body)
  t.same(bodies, [
    `3 items in recently deleted will be permanently deleted from ${utcDate(first + 30 * DAY)} to ` +
      `${utcDate((deleted[2] as number) + 30 * DAY)} (kept 30 days). Restore them from the console before then to keep them.`,
  ])
  for (const [i, at] of deleted.entries()) {
    s.clock.advance(at + 30 * DAY - 1 - s.clock.now())
    t.equal((await bin(s)).entries.length, 3 - i, `n${i}.txt is there a millisecond before its 30 days`)
    s.clock.advance(1)
    t.equal((await bin(s)).entries.length, 2 - i, `n${i}.txt goes at its 30 days`)
  }
  t.equal(log(s, 'bin-purge-notice').length, 1, 'one notice for the three')
})

t.test('R2: a membership that begins after the notice keeps the entry 180 days, and the owner is told again before', async (t) => {
  const s = await setup(t)
  await put(s, 'notes', 'n.txt', Buffer.from('note'))
  await s.phone.call('DELETE', `${SYNC_PATH}/notes/n.txt`, ItemReplySchema)
  const deletedAt = s.clock.now()
  s.clock.advance(29 * DAY)
  t.equal(log(s, 'bin-purge-notice').length, 1)
  await s.api.send('PUT', '/api/accounts/alice/membership', { tier: 'premium' })
  s.clock.advance(DAY)
  t.match((await bin(s)).entries, [{ id: 'n.txt', purgeAt: deletedAt + 180 * DAY }], 'kept: the window is 180 days now')
  s.clock.advance(deletedAt + 179 * DAY - 1 - s.clock.now())
  t.equal(log(s, 'bin-purge-notice').length, 1)
  s.clock.advance(1)
  t.equal(log(s, 'bin-purge-notice').length, 2, 'told again a day before the 180 days end')
  s.clock.advance(DAY)
  t.same((await bin(s)).entries, [], 'gone at 180 days')
})

t.test('R2: entries deleted on different days go on their own days; one notice covers a day', async (t) => {
  const s = await setup(t)
  for (let i = 0; i < 12; i++) await put(s, 'contacts', `c${i}.vcf`, Buffer.from(`card ${i}`))
  for (let i = 0; i < 11; i++) await s.phone.call('DELETE', `${SYNC_PATH}/contacts/c${i}.vcf`, ItemReplySchema)
  // Another account's bin runs on its own days.
  const bob = new CloudClient({
    baseUrl: s.cloud.apiUrl,
    credentials: new DeviceCredentials('bob-phone', await addDevice(s.cloud, 'bob-phone', 'bob')),
  })
  await put(s, 'notes', 'b.txt', Buffer.from('bob'), bob)
  s.clock.advance(DAY)
  await bob.call('DELETE', `${SYNC_PATH}/notes/b.txt`, ItemReplySchema)
  s.clock.advance(DAY)
  await s.phone.call('DELETE', `${SYNC_PATH}/contacts/c11.vcf`, ItemReplySchema)
  s.clock.advance(28 * DAY)
  t.equal((await bin(s)).entries.length, 1)
  t.match(log(s, 'bin-purge')[0], /^11 items purged from recently deleted after 30 days: contacts\/c0.vcf, .* and 1 more$/)
  t.equal(s.cloud.broker.cloud.items.bin('bob').length, 1, "bob's entry is a day younger")
  s.clock.advance(DAY)
  t.equal(s.cloud.broker.cloud.items.bin('bob').length, 0)
  t.equal((await bin(s)).entries.length, 1)
  s.clock.advance(DAY)
  t.equal((await bin(s)).entries.length, 0)
  t.equal(log(s, 'bin-purge-notice').length, 2)
})

t.test('R3: an entry deleted from recently deleted is gone for good: row, quota and the blob on disk', async (t) => {
  const s = await setup(t)
  const item = await put(s, 'recordings', 'REC_1.wav', Buffer.alloc(300, 3))
  await s.phone.call('DELETE', `${SYNC_PATH}/recordings/REC_1.wav`, ItemReplySchema)
  await t.rejects(s.api.send('DELETE', '/api/accounts/alice/items/recordings/REC_1.wav'), { status: 404, message: /not in the cloud/ })
  s.clock.advance(2 * HOUR)
  const file = join(s.cloud.dataDir, 'blobs', item.sha256.slice(0, 2), item.sha256)
  t.ok(existsSync(file), 'the blob is on disk while the entry is in the bin')
  const purged = PurgedSchema.parse(await s.api.send('DELETE', '/api/accounts/alice/bin/recordings/REC_1.wav'))
  t.same(purged.purged, { category: 'recordings', id: 'REC_1.wav', size: 300 })
  t.notOk(existsSync(file), 'the blob file is deleted')
  t.equal(s.cloud.broker.cloud.blobs.size(item.sha256), undefined)
  t.equal(used(s), 0)
  await t.rejects(
    s.api.send('POST', '/api/accounts/alice/bin/recordings/REC_1.wav/restore'),
    { status: 404, message: /not in recently deleted/ },
    'no restore',
  )
  await t.rejects(s.phone.download(item.sha256), { status: 404, message: /is not in this account/ }, 'no download')
  t.same(log(s, 'bin-delete-forever'), ['recordings/REC_1.wav deleted from recently deleted by its owner: gone for good'])
  await t.rejects(s.api.send('DELETE', '/api/accounts/alice/bin/recordings/REC_1.wav'), { status: 404, message: /not in recently deleted/ })
  await s.cloud.broker.cloud.bin.idle()
})

t.test("A3: a frozen account's items are cleared with it and its quota given back", async (t) => {
  const s = await setup(t)
  await put(s, 'notes', 'n1.txt', Buffer.from('one'))
  await put(s, 'notes', 'n2.txt', Buffer.from('two'))
  await s.phone.call('DELETE', `${SYNC_PATH}/notes/n2.txt`, ItemReplySchema)
  s.clock.advance(29 * DAY)
  await s.api.send('POST', '/api/accounts/alice/bin/notes/n2.txt/restore')
  await s.phone.call('DELETE', `${SYNC_PATH}/notes/n2.txt`, ItemReplySchema)
  s.clock.advance(DEFAULT_ACCOUNT_RULES.inactivityMs)
  t.ok(s.cloud.broker.cloud.accounts.need('alice').frozenAt !== null)
  t.same(s.cloud.broker.cloud.items.live('alice').items, [])
  t.same(s.cloud.broker.cloud.items.bin('alice'), [])
  t.equal(used(s), 0)
  await s.cloud.broker.cloud.bin.idle()
})
