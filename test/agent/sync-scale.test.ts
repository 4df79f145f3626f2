/**
 * S1-S3 at scale, in a file of its own so its minute of CPU under a loaded CI
 * does not eat the time budget of the other sync tests: a sync of 1,000
 * photos completes, uploaded by one phone and pulled by the other.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import jpeg from 'jpeg-js'
import { join } from 'node:path'
import type { Agent } from '../../agent/agent.js'
import type { SyncEngine } from '../../agent/sync/engine.js'
import { withExif } from '../../agent/phone-data/exif.js'
import { addDevice, startAgent, startCloud } from '../fixtures/cloud.js'
import { tempDir } from '../fixtures/scope.js'

const sync = (agent: Agent): SyncEngine => agent.sync as SyncEngine

// Alone this file takes about 20 s; with the rest of the suite on two cores and coverage on, it can take over a minute.
t.setTimeout(240_000)

t.test('a sync of 1,000 photos completes: put on the phone while the agent was down, uploaded, pulled by the other phone', async (t) => {
  const cloud = await startCloud(t)
  const dataDir = tempDir(t, 'fakephone-phone-')
  // Small photos, as seed data puts them: a 16×12 JPEG with its own EXIF capture time each.
  const camera = join(dataDir, 'sdcard', 'DCIM', 'Camera')
  mkdirSync(camera, { recursive: true })
  const tiny = Buffer.from(jpeg.encode({ width: 16, height: 12, data: Buffer.alloc(16 * 12 * 4, 128) }, 80).data)
  const base = Date.UTC(2026, 0, 1)
  for (let i = 0; i < 1000; i++) {
    const takenAt = base + i * 1000
    writeFileSync(
      join(camera, `IMG_20260101_${String(Math.floor(i / 60)).padStart(4, '0')}${String(i % 60).padStart(2, '0')}_000.jpg`),
      withExif(tiny, { takenAt, lat: 55.95, lon: -3.19, make: 'Fake', model: 'Phone' }),
    )
  }
  const started = Date.now()
  const a = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a', 'alice'), { dataDir })
  await sync(a).idle()
  const uploaded = Date.now()
  t.equal(cloud.broker.cloud.items.live('alice').totals.photos?.count, 1000)
  t.match(a.status().sync?.categories.photos, { local: 1000, inCloud: 1000, pending: 0 })
  const b = await startAgent(t, cloud, 'phone-b', await addDevice(cloud, 'phone-b', 'alice'))
  await sync(b).idle()
  t.equal((await b.data.list('photos')).length, 1000, 'the other phone pulled them all')
  t.comment(`1,000 photos: uploaded in ${uploaded - started} ms, pulled in ${Date.now() - uploaded} ms`)
})
