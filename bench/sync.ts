/**
 * Scenario 6, app data sync (S1, S3) and the blob store: one real Agent
 * with N small EXIF photos put in its camera folder while it was down
 * syncs them to a real CloudBroker; a second phone of the same account
 * pulls them all; then one 32 MiB blob goes up in 256 KiB chunks, is cut
 * half-way and resumed. Everything over loopback HTTP, fsync'd on commit.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import jpeg from 'jpeg-js'
import { CloudClient } from '../agent/cloud-client.js'
import { DeviceCredentials } from '../agent/credentials.js'
import { FixedSource } from '../agent/location.js'
import { withExif } from '../agent/phone-data/exif.js'
import type { Agent } from '../agent/agent.js'
import { SystemClock } from '../common/clock.js'
import { benchAgent, registerDevices, startCloud } from './cloud.js'
import type { ScenarioContext } from './context.js'
import type { Cleanup } from './lifecycle.js'

const BIG_BLOB_BYTES = 32 * 1024 * 1024

export interface SyncResult {
  photos: number
  photoBytes: number
  uploadMs: number
  pullMs: number
  bigBlob: { bytes: number; uploadMs: number; cutAt: number; resumeMs: number; resumedFrom: number }
}

function writePhotos(dataDir: string, count: number): number {
  const camera = join(dataDir, 'sdcard', 'DCIM', 'Camera')
  mkdirSync(camera, { recursive: true })
  const pixels = Buffer.from(jpeg.encode({ width: 32, height: 24, data: Buffer.alloc(32 * 24 * 4, 128) }, 80).data)
  const base = Date.UTC(2026, 0, 1)
  let bytes = 0
  for (let i = 0; i < count; i++) {
    const photo = withExif(pixels, { takenAt: base + i * 1000, lat: 55.95, lon: -3.19, make: 'Fake', model: 'Phone' })
    const t = new Date(base + i * 1000).toISOString()
    writeFileSync(
      join(
        camera,
        `IMG_${t.slice(0, 10).replaceAll('-', '')}_${t.slice(11, 19).replaceAll(':', '')}_${String(i % 1000).padStart(3, '0')}.jpg`,
      ),
      photo,
    )
    bytes += photo.length
  }
  return bytes
}

async function synced(agent: Agent): Promise<void> {
  // The engine is there: the agent was given a cloud URL.
  await (agent.sync as NonNullable<Agent['sync']>).idle()
}

export async function runSync(ctx: ScenarioContext, cleanup: Cleanup): Promise<SyncResult> {
  const cloud = await startCloud(cleanup, ctx.log, 'sync')
  const [first, second] = await registerDevices(cloud, ['sync-a', 'sync-b'], ctx.signal)
  if (!first || !second) throw new Error('registration failed')
  const clock = new SystemClock()
  const make = (d: typeof first): Agent =>
    benchAgent(ctx, cloud, d, clock, {
      location: new FixedSource({ lat: 55.95, lon: -3.19 }),
      heartbeatMs: 60_000,
      jitter: 0.1,
      cloudUrl: cloud.httpUrl,
      pushUrl: cloud.pushUrl,
    })
  const a = make(first)
  ctx.progress(`sync: writing ${ctx.args.photos} photos`)
  const photoBytes = writePhotos(join(cloud.dataDir, 'agents', first.id), ctx.args.photos)
  const b = make(second)
  cleanup.defer('stop the phones', async () => {
    await a.stop()
    await b.stop()
  })
  ctx.progress('sync: phone A uploads')
  let started = performance.now()
  await a.start()
  await synced(a)
  const uploadMs = performance.now() - started
  ctx.progress('sync: phone B pulls')
  started = performance.now()
  await b.start()
  await synced(b)
  const pullMs = performance.now() - started
  const bigBlob = await resumedUpload(cloud.httpUrl, first.id, first.secret)
  return { photos: ctx.args.photos, photoBytes, uploadMs, pullMs, bigBlob }
}

/** One big upload cut half-way (the abort of a cloud service switched off) and resumed. */
async function resumedUpload(baseUrl: string, deviceId: string, secret: string): Promise<SyncResult['bigBlob']> {
  const client = new CloudClient({ baseUrl, credentials: new DeviceCredentials(deviceId, secret) })
  const bytes = randomBytes(BIG_BLOB_BYTES)
  const stop = new AbortController()
  let cutAt = 0
  const started = performance.now()
  await client
    .upload(bytes, stop.signal, (sent) => {
      if (sent >= BIG_BLOB_BYTES / 2 && cutAt === 0) {
        cutAt = sent
        stop.abort()
      }
    })
    .catch(() => undefined)
  const cutMs = performance.now() - started
  let resumedFrom = -1
  const resumeStart = performance.now()
  const sha = await client.upload(bytes, undefined, (sent) => {
    if (resumedFrom < 0) resumedFrom = sent
  })
  const resumeMs = performance.now() - resumeStart
  if (sha !== createHash('sha256').update(bytes).digest('hex')) throw new Error('the resumed blob has the wrong checksum')
  return { bytes: BIG_BLOB_BYTES, uploadMs: cutMs + resumeMs, cutAt, resumeMs, resumedFrom }
}
