/**
 * App data sync on real phones (S1-S4, R1, R3): real agents with real files,
 * a real broker on loopback, a manual clock. A pass runs on every change; the
 * tests wait for it with `sync.idle()` instead of sleeping.
 */
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../broker/cloud/cloud-data.js'
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import jpeg from 'jpeg-js'
import { join } from 'node:path'
import type { Agent } from '../../agent/agent.js'
import type { SyncEngine } from '../../agent/sync/engine.js'
import type { ManualClock } from '../../common/clock.js'
import type { Command } from '../../common/contract.js'
import type { Category } from '../../agent/phone-data/types.js'
import { DEFAULT_SYNC_INTERVAL_MS } from '../../agent/sync/engine.js'
import {
  addDevice,
  reportServiceOff,
  agentConnected,
  startAgent,
  startCloud,
  type Cloud,
  type TestAgentOptions,
} from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'
import { handleControl } from '../../agent/control.js'
import { DEFAULT_ACCOUNT_RULES } from '../../broker/cloud/accounts.js'

const sync = (agent: Agent): SyncEngine => agent.sync as SyncEngine

/** A wipe as the phone runs it once verified (run() is past the signature check). */
const wipeCommand = (device: string): Command =>
  ({
    id: '00000000-0000-4000-8000-000000000000',
    device,
    type: 'wipe',
    args: { eraseSdcard: true, keepFindDevice: true },
    issuedAt: 0,
    expiresAt: 0,
    seq: 1,
    sig: '',
  }) as Command

/** Runs a pass now on each phone, one after the other, and waits for it. */
async function passes(...agents: Agent[]): Promise<void> {
  for (const a of agents) {
    await sync(a).idle()
    sync(a).kick()
    await sync(a).idle()
  }
}

async function phones(t: Test, opts: TestAgentOptions = {}): Promise<{ cloud: Cloud; clock: ManualClock; a: Agent; b: Agent }> {
  const cloud = await startCloud(t)
  const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'), opts)
  const b = await startAgent(t, cloud, 'phone-b', await addDevice(cloud, 'phone-b', 'alice'), opts)
  await agentConnected(a)
  await agentConnected(b)
  await passes(a, b)
  return { cloud, clock: cloud.clock as ManualClock, a, b }
}

const cloudIds = (cloud: Cloud, category?: Category): string[] =>
  cloud.broker.cloud.items.live('alice', category).items.map((i) => `${i.category}/${i.id}`)
const localIds = async (agent: Agent, category: Category): Promise<string[]> => (await agent.data.list(category)).map((i) => i.id)

t.test('S1: a cloud item named as this phone cannot keep it is skipped with the reason; the pull goes on past it', async (t) => {
  const { cloud, a, b } = await phones(t)
  // Another phone's naming, or an imported bag's: a "note" that is not a .txt file, first in the change feed.
  const bytes = Buffer.from('not a note')
  const sha256 = await cloud.broker.cloud.blobs.put(bytes)
  cloud.broker.cloud.items.put('alice', 'phone-x', 'notes', 'evil.jpg', { sha256, size: bytes.length, meta: {}, modifiedAt: 0 })
  const note = await a.data.add({ category: 'notes', title: 'After it', body: 'still arrives' })
  await passes(a, b)
  t.same(await localIds(b, 'notes'), [note.id], 'the note after it arrived; the one the phone cannot keep did not')
  t.ok(cloud.logs.has('a cloud item this phone cannot keep is skipped'), 'the reason is logged')
  t.match(
    cloud.logs.lines.find((l) => l.msg === 'a cloud item this phone cannot keep is skipped'),
    { category: 'notes', id: 'evil.jpg', reason: /bad notes id "evil.jpg"/ },
  )
})

t.test("S1: two phones of one account see each other's items in every category, deletes go to the recycle bin (R1)", async (t) => {
  const { cloud, clock, a, b } = await phones(t)
  const note = await a.data.add({ category: 'notes', title: 'Groceries', body: 'milk' })
  const contact = await a.data.add({ category: 'contacts', name: 'Ada Lovelace', phone: '+44 20 7946 0000' })
  const photo = await a.takePhoto()
  const recording = await a.data.add({ category: 'recordings', durationS: 2 })
  await sync(a).idle()
  t.same(cloudIds(cloud).sort(), [`contacts/${contact.id}`, `notes/${note.id}`, `photos/${photo.id}`, `recordings/${recording.id}`].sort())
  t.ok(a.inCloud('photos', photo.id), 'the photo carries the "in the cloud" marker')

  // The other phone pulls on its schedule.
  clock.advance(DEFAULT_SYNC_INTERVAL_MS)
  await sync(b).idle()
  t.same(await localIds(b, 'notes'), [note.id])
  t.same(await b.data.read('photos', photo.id), await a.data.read('photos', photo.id), 'the same bytes, EXIF and all')
  t.same(await localIds(b, 'contacts'), [contact.id])
  t.same(await localIds(b, 'recordings'), [recording.id])
  t.ok(b.inCloud('notes', note.id))
  t.match(b.status().sync?.categories.notes, { sync: true, local: 1, inCloud: 1, pending: 0, lastSync: clock.now() })

  // An edit on b and a delete on b reach a.
  await b.data.edit('notes', note.id, { category: 'notes', title: 'Groceries', body: 'milk, eggs' })
  t.notOk(b.inCloud('notes', note.id), 'an edit drops the marker until it is uploaded')
  await b.data.delete('contacts', contact.id)
  await passes(b, a)
  t.match((await a.data.read('notes', note.id)).toString(), /milk, eggs/)
  t.same(await localIds(a, 'contacts'), [])
  t.same(
    cloud.broker.cloud.bin.view('alice').entries.map((e) => `${e.category}/${e.id}`),
    [`contacts/${contact.id}`],
    'the deleted contact is in recently deleted',
  )

  // R1: restored from the console, it comes back to both phones.
  cloud.broker.cloud.items.restore('alice', 'console', 'contacts', contact.id)
  await passes(a, b)
  t.same(await localIds(a, 'contacts'), [contact.id])
  t.same(await localIds(b, 'contacts'), [contact.id])
})

t.test('S1: with a category off nothing of it goes up or comes down, and the other phone does not see the newest item', async (t) => {
  const { cloud, a, b } = await phones(t)
  const old = await a.data.add({ category: 'notes', title: 'Synced before' })
  await passes(a, b)
  await sync(a).setCategory('notes', false)
  const newest = await a.data.add({ category: 'notes', title: 'Written with sync off' })
  const fromB = await b.data.add({ category: 'notes', title: 'From the other phone' })
  const photo = await a.takePhoto()
  await passes(a, b, a)
  t.same(
    cloudIds(cloud, 'notes').sort(),
    [`notes/${old.id}`, `notes/${fromB.id}`].sort(),
    'the note written with sync off is not in the cloud',
  )
  t.same(cloudIds(cloud, 'photos'), [`photos/${photo.id}`], 'other categories still sync')
  t.same(await localIds(b, 'notes'), [old.id, fromB.id].sort(), 'the other phone does not see the newest note')
  t.same(await localIds(a, 'notes'), [old.id, newest.id].sort(), "nothing is pulled down: b's note is not on a")
  t.notOk(a.inCloud('notes', newest.id))
  t.match(a.status().sync?.categories.notes, { sync: false, uploads: false, local: 2, inCloud: 1, pending: 1 })

  await sync(a).setCategory('notes', true)
  await passes(a, b)
  t.same(await localIds(b, 'notes'), [old.id, newest.id, fromB.id].sort(), 'switched back on, both directions catch up')
  t.same(await localIds(a, 'notes'), [old.id, newest.id, fromB.id].sort())
})

t.test('S2: sync off keeps the cloud copy: still in the console, still counted in the quota', async (t) => {
  const { cloud, a } = await phones(t)
  const photo = await a.takePhoto()
  await sync(a).idle()
  await sync(a).setCategory('photos', false)
  await a.data.delete('photos', photo.id)
  await passes(a)
  const kept = cloud.broker.cloud.items.live('alice', 'photos')
  t.same(
    kept.items.map((i) => i.id),
    [photo.id],
  )
  t.same(kept.totals.photos, { count: 1, bytes: photo.size })
  t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, photo.size)
})

t.test('S3: each photo switch alone stops photo upload; notes go on', async (t) => {
  const { cloud, a } = await phones(t)
  const stops: [string, (on: boolean) => Promise<unknown>][] = [
    ['the photos entry of the app-data-sync list', (on) => sync(a).setCategory('photos', on)],
    ["the gallery's auto-backup", (on) => sync(a).setPhotoSwitch('galleryBackup', on)],
    ['the album switch on the cloud-service page', (on) => sync(a).setPhotoSwitch('albumSync', on)],
  ]
  for (const [name, flip] of stops) {
    await flip(false)
    const photo = await a.takePhoto()
    const note = await a.data.add({ category: 'notes', title: name })
    await passes(a)
    t.notOk(cloudIds(cloud, 'photos').includes(`photos/${photo.id}`), `${name} off: the photo stays on the phone`)
    t.notOk(a.inCloud('photos', photo.id))
    t.ok(cloudIds(cloud, 'notes').includes(`notes/${note.id}`), `${name} off: notes still go up`)
    t.equal(a.status().sync?.categories.photos.uploads, false)
    await flip(true)
    await passes(a)
    t.ok(a.inCloud('photos', photo.id), `${name} on again: the photo goes up`)
  }
})

t.test(
  'S3: a cut upload halts at once, the cloud keeps no partial object, a restart shows no marker, and the upload resumes from the offset',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a', 'alice')
    const dataDir = tempDir(t, 'fakephone-phone-')
    const opts = { dataDir, uploadChunkBytes: 1024 }
    const a = await startAgent(t, cloud, 'phone-a', secret, opts)
    await agentConnected(a)
    await sync(a).idle()

    // Cut the network after the third chunk.
    let cutAt = -1
    sync(a).on('progress', (_c, _id, sent) => {
      if (sent >= 3 * 1024 && cutAt < 0) {
        cutAt = sent
        void a.setNetwork('none')
      }
    })
    const photo = await a.takePhoto()
    t.ok(photo.size > 8 * 1024, 'a photo of several chunks')
    await sync(a).idle()
    t.equal(cutAt, 3 * 1024)
    const state = await cloud.broker.cloud.blobs.state('alice', photo.sha256, photo.size)
    t.equal(state.stored, false, 'the cloud holds no object for it')
    t.equal(state.offset, cutAt, 'halted at once: not one more chunk went up; the cloud kept what had arrived to resume from')
    t.equal(cloud.broker.cloud.blobs.size(photo.sha256), undefined)
    t.notOk(existsSync(join(cloud.dataDir, 'blobs', photo.sha256.slice(0, 2), photo.sha256)), 'no blob file')
    t.same(cloudIds(cloud), [], 'no item')
    t.notOk(a.inCloud('photos', photo.id), 'no marker')
    t.match(a.status().sync?.categories.photos, { pending: 1, lastError: 'stopped' })

    // A restart mid-upload: the new process shows no marker either.
    await a.stop()
    const again = await startAgent(t, cloud, 'phone-a', secret, opts)
    await sync(again).idle()
    t.notOk(again.inCloud('photos', photo.id), 'after a restart, no marker on the half-uploaded photo')
    t.match(again.status().sync?.categories.photos, { local: 1, inCloud: 0, pending: 1 })

    // The network is back: the upload carries on from the offset the cloud kept.
    const resumedFrom = once(sync(again), 'progress')
    await again.setNetwork('wifi')
    t.same((await resumedFrom).slice(2), [state.offset, photo.size], 'resumed from the offset, not from zero')
    await sync(again).idle()
    t.ok(again.inCloud('photos', photo.id))
    t.equal(cloud.broker.cloud.blobs.size(photo.sha256), photo.size)
    t.same(cloudIds(cloud), [`photos/${photo.id}`])
  },
)

t.test('S3: switching the cloud service off halts an upload at once; on again, it completes', async (t) => {
  const cloud = await startCloud(t)
  const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'), { uploadChunkBytes: 1024 })
  await agentConnected(a)
  await sync(a).idle()
  const serviceOff = once(cloud.broker.cloud.accounts, 'service-off')
  let off: Promise<unknown> | null = null
  sync(a).on('progress', (_c, _id, sent) => {
    if (sent >= 2048 && !off) off = a.setSwitch('cloudService', false)
  })
  const photo = await a.takePhoto()
  await sync(a).idle()
  // The switch-off started inside the progress callback; TypeScript cannot see that `off` was set there.
  t.ok(off, 'the cloud service was switched off part-way through the upload')
  await (off as Promise<unknown> | null)
  await serviceOff
  t.notOk(a.inCloud('photos', photo.id))
  t.equal(cloud.broker.cloud.blobs.size(photo.sha256), undefined, 'nothing half-stored')
  t.equal((await cloud.broker.cloud.blobs.state('alice', photo.sha256, photo.size)).offset, 2048, 'halted at once')
  const serviceOn = once(cloud.broker.cloud.accounts, 'service-on')
  await a.setSwitch('cloudService', true)
  await serviceOn
  await passes(a)
  t.ok(a.inCloud('photos', photo.id))
})

t.test('S4: a contact deleted while contact sync is off never reaches the recycle bin; deleted with sync on, it does', async (t) => {
  const { cloud, a } = await phones(t)
  const kept = await a.data.add({ category: 'contacts', name: 'Deleted while off' })
  const binned = await a.data.add({ category: 'contacts', name: 'Deleted while on' })
  await sync(a).idle()
  await sync(a).setCategory('contacts', false)
  await a.data.delete('contacts', kept.id)
  const neverSynced = await a.data.add({ category: 'contacts', name: 'Never synced' })
  await a.data.delete('contacts', neverSynced.id)
  await passes(a)
  await sync(a).setCategory('contacts', true)
  await passes(a)
  t.same(cloud.broker.cloud.bin.view('alice').entries, [], 'nothing in recently deleted')
  t.ok(cloudIds(cloud, 'contacts').includes(`contacts/${kept.id}`), 'the cloud keeps its copy')
  t.same(await localIds(a, 'contacts'), [binned.id], 'and the phone does not get it back')

  await a.data.delete('contacts', binned.id)
  await sync(a).idle()
  t.same(
    cloud.broker.cloud.bin.view('alice').entries.map((e) => e.id),
    [binned.id],
    'deleted with sync on: in recently deleted',
  )
})

t.test('S4: deletes made while the agent was not running follow the switch at the next start', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const dataDir = tempDir(t, 'fakephone-phone-')
  const a = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  const off = await a.data.add({ category: 'notes', title: 'off' })
  await sync(a).idle()
  await sync(a).setCategory('notes', false)
  await sync(a).idle()
  await a.stop()
  const { rm } = await import('node:fs/promises')
  await rm(join(dataDir, 'notes', off.id))
  const again = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  await passes(again)
  await sync(again).setCategory('notes', true)
  await passes(again)
  t.same(cloudIds(cloud, 'notes'), [`notes/${off.id}`], 'a delete made with sync off stays local')
})

t.test(
  'a wipe switches every category off (a wiped phone pulls nothing back) and does not take the emptied folders for deletes',
  async (t) => {
    const { cloud, a } = await phones(t)
    const note = await a.data.add({ category: 'notes', title: 'Before the wipe' })
    await sync(a).idle()
    await sync(a).setCategory('recordings', false)
    await sync(a).idle()
    const wiping = a.run(wipeCommand('phone-a'))
    sync(a).kick()
    t.equal(sync(a).status().running, false, 'no pass starts while the wipe runs')
    t.match(await wiping, { state: 'succeeded' })
    await sync(a).idle()
    for (const c of ['photos', 'contacts', 'notes', 'recordings'] as const)
      t.equal(sync(a).switches.isOn(c), false, `${c} sync is off after the wipe`)
    t.same(cloudIds(cloud, 'notes'), [`notes/${note.id}`], 'the cloud copy is not deleted')
    t.same(await a.data.list('notes'), [], "the wiped phone did not pull its owner's note back")
    t.same(cloud.broker.cloud.bin.view('alice').entries, [])
  },
)

t.test('A1: over quota a photo is refused with the reason, shown in the sync status, and smaller items still go up', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_ACCOUNT_RULES, freeQuotaBytes: 4096 } },
  })
  const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'))
  const photo = await a.takePhoto()
  const note = await a.data.add({ category: 'notes', title: 'small' })
  await passes(a)
  t.match(a.status().sync?.categories.photos, { pending: 1, lastError: new RegExp(`^${photo.id}: over quota: this upload needs`) })
  t.same(cloudIds(cloud), [`notes/${note.id}`])
})

t.test('A1: an item the cloud had no room for is tried again after 1 min, backing off, never at once; room again ends it', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_ACCOUNT_RULES, freeQuotaBytes: 4096 } },
  })
  const clock = cloud.clock as ManualClock
  const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'))
  let count = 0
  sync(a).on('pass', () => count++)
  const photo = await a.takePhoto()
  await passes(a)
  // The agent's random is 0.5: each wait is 3/4 of its ceiling (1 min, then 2 min, ...).
  t.equal(sync(a).status().retryAt, clock.now() + 45_000, 'the status says when the retry runs')
  t.ok(cloud.logs.has('the cloud has no room for some items (quota or disk full): sync tries them again sooner than its schedule'))
  const passesBefore = count
  clock.advance(44_999)
  t.equal(count, passesBefore, 'not before its time')
  t.equal(sync(a).status().running, false)
  clock.advance(1)
  await sync(a).idle()
  t.equal(count, passesBefore + 1, 'one pass')
  t.equal(sync(a).status().retryAt, clock.now() + 90_000, 'refused again: the wait doubles')
  t.same(cloudIds(cloud, 'photos'), [])

  cloud.broker.cloud.accounts.setMembership('alice', 'premium', null)
  clock.advance(90_000)
  await sync(a).idle()
  t.equal(count, passesBefore + 2)
  t.same(cloudIds(cloud, 'photos'), [`photos/${photo.id}`], 'the photo went up without waiting for the 15-minute schedule')
  t.equal(sync(a).status().retryAt, null, 'nothing waits any more')
  t.equal(sync(a).status().categories.photos.lastError, null)
})

t.test('X1, A3: a cloud that refuses the account (service off there, or frozen) ends the pass with its reason', async (t) => {
  const { cloud, a, b } = await phones(t)
  const photo = await a.takePhoto()
  await sync(a).idle()
  reportServiceOff(cloud, 'phone-a', 'phone-b')
  await a.data.add({ category: 'notes', title: 'refused' })
  await a.data.delete('photos', photo.id)
  await passes(a)
  t.match(a.status().sync?.categories.photos, { lastError: /cloud service is not enabled/ })
  t.match(a.status().sync?.categories.notes, { pending: 1, lastError: /cloud service is not enabled/ })
  t.same(cloudIds(cloud), [`photos/${photo.id}`], 'nothing changed in the cloud')
  await b.stop()
})

t.test('R1: a phone deleting what the console already deleted just forgets it; a phone without a cloud has no sync', async (t) => {
  const { cloud, a } = await phones(t)
  const note = await a.data.add({ category: 'notes', title: 'twice deleted' })
  await sync(a).idle()
  cloud.broker.cloud.items.delete('alice', 'console', 'notes', note.id)
  await a.data.delete('notes', note.id)
  await sync(a).idle()
  t.same(
    cloud.broker.cloud.bin.view('alice').entries.map((e) => e.id),
    [note.id],
    'one bin entry',
  )
  t.match(a.status().sync?.categories.notes, { local: 0, lastError: null })
  await a.stop()
  sync(a).kick()
  t.equal(sync(a).status().running, false, 'a stopped phone does not sync')

  const lone = await startAgent(t, cloud, 'phone-c', await addDevice(cloud, 'phone-c', 'carol'), { cloudUrl: undefined })
  t.equal(lone.sync, null)
  t.equal(lone.status().sync, null)
  t.equal(lone.inCloud('notes', 'x.txt'), null)
  t.match(await handleControl(lone, JSON.stringify({ op: 'sync', category: 'notes', on: false })), {
    ok: false,
    error: /no cloud to sync with/,
  })
  t.match(await handleControl(a, JSON.stringify({ op: 'photo-switch', name: 'albumSync', on: false })), {
    ok: true,
    status: { sync: { switches: { albumSync: false } } },
  })
  t.match(await lone.run(wipeCommand('phone-c')), { state: 'succeeded' })
})

t.test('S1: a pulled item the phone already has takes the marker; a different local file of the same name is kept', async (t) => {
  const { a, b } = await phones(t)
  await sync(b).setPhotoSwitch('galleryBackup', false)
  const same = await a.takePhoto()
  const other = await a.takePhoto()
  await sync(a).idle()
  await b.data.write('photos', same.id, await a.data.read('photos', same.id))
  const mine = Buffer.from(jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 200) }, 80).data)
  await b.data.write('photos', other.id, mine)
  await passes(b)
  t.ok(b.inCloud('photos', same.id), 'the same bytes: marked in the cloud without a download')
  t.notOk(b.inCloud('photos', other.id))
  t.same(await b.data.read('photos', other.id), mine, "b's own file is not overwritten")
})

t.test(
  'S3, X1: switched back on, a phone resumes transfers only once the cloud has its status, so nothing is refused as "not enabled"',
  async (t) => {
    const cloud = await startCloud(t)
    const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'))
    await agentConnected(a)
    await a.setSwitch('cloudService', false)
    const resumed = new Promise<boolean | null>((resolve) =>
      a.on('transfers', (possible) => {
        if (possible) resolve(cloud.broker.store.device('phone-a')?.cloudService ?? null)
      }),
    )
    await a.setSwitch('cloudService', true)
    t.equal(await resumed, true, 'when transfers resume, the cloud already knows the service is on')
    t.equal(cloud.broker.cloud.accounts.need('alice').serviceOn, true)
  },
)
