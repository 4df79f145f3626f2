/** A running phone's data (S1-S4, F2): the agent's data store, photos taken where the phone is, and what a wipe leaves. */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { wipeData } from '../../agent/wipe.js'
import { PhoneFiles } from '../../agent/phone-data/store.js'
import { cloudWithAgent, startAgent } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

t.test('S1/S3: a phone takes a photo at its location fix and clock time; no fix, no GPS; no cloud marker yet', async (t) => {
  const dataDir = tempDir(t)
  const { cloud, clock, secret, agent } = await cloudWithAgent(t, 'phone-a', { dataDir })
  t.ok(agent.data instanceof PhoneFiles)
  clock.advance(90_000)
  const photo = await agent.takePhoto()
  t.match(photo, { id: 'IMG_20260101_000130_000.jpg', path: join(dataDir, 'sdcard', 'DCIM', 'Camera', 'IMG_20260101_000130_000.jpg') })
  t.same(photo.meta, { takenAt: clock.now(), lat: 55.9486, lon: -3.1999, camera: 'Xiaomi 13' })
  t.equal(agent.inCloud('photos', photo.id), false, 'no cloud marker yet')

  const indoors = await startAgent(t, cloud, 'phone-a', secret, { location: { fix: () => null } })
  t.match((await indoors.takePhoto()).meta, { lat: null, lon: null })
})

t.test('F2: a wipe removes contacts and notes and keeps the sdcard photos and recordings unless asked', async (t) => {
  const dataDir = tempDir(t)
  const data = new PhoneFiles({ dataDir, clock: { now: () => Date.UTC(2026, 0, 1), after: () => ({ cancel: () => {} }) } })
  const contact = await data.add({ category: 'contacts', name: 'Eve' })
  const note = await data.add({ category: 'notes', title: 'Secret' })
  const photo = await data.add({ category: 'photos', lat: 1, lon: 1 })
  const rec = await data.add({ category: 'recordings', durationS: 1 })
  const kept = await wipeData(dataDir, { keepSdcard: true })
  t.equal(kept.files, 2)
  t.equal(kept.bytes, contact.size + note.size)
  t.same(await data.list('contacts'), [])
  t.same(await data.list('notes'), [])
  t.same(
    (await data.list('photos')).map((p) => p.id),
    [photo.id],
    'photos on the sdcard stay',
  )
  t.same(
    (await data.list('recordings')).map((r) => r.id),
    [rec.id],
  )
  const erased = await wipeData(dataDir, { keepSdcard: false })
  t.equal(erased.bytes, photo.size + rec.size)
  t.notOk(existsSync(join(dataDir, 'sdcard')))
  t.same(await data.list('photos'), [])
})
