/**
 * M2: the batch blob routes (broker/transfer/blob-batch-routes.ts) and their
 * framing (common/cloud/blob-batch.ts) on a real cloud over real HTTP: many
 * blobs in one upload, each refused on its own (a checksum mismatch inside
 * a batch, over quota, a wrong offset, the same blob twice), a resume from
 * the cloud's partial file, a batch cut off mid-blob (what arrived is kept),
 * the batch's own limits (malformed framing, a body too large, too many
 * parts), and the streamed read-back (a blob gone or damaged on disk is
 * `gone`). And the verification route: each blob re-read from the cloud's
 * own disk (pack or file) and hashed there, a photo's EXIF read there; a
 * byte flipped on disk shows in the hash, a file gone or cut short is
 * UNREADABLE; bad input refused whole.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_BROKER_OPTIONS } from '../../../broker/server.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { MAX_BATCH_BYTES, MAX_BATCH_PARTS, partHeader, readParts, type Part } from '../../../common/cloud/blob-batch.js'
import type { BlobFile } from '../../../broker/cloud/blob-store.js'
import { makePhoto } from '../../../agent/phone-data/photo.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const frame = (b: Buffer, offset = 0, claim = sha(b)): Buffer =>
  Buffer.concat([partHeader('blob', claim, b.length, offset), b.subarray(offset)])
const gather = async (parts: AsyncIterable<Part>): Promise<[string, string, Buffer][]> => {
  const out: [string, string, Buffer][] = []
  for await (const p of parts) {
    const chunks: Buffer[] = []
    for await (const c of p.body) chunks.push(c)
    out.push([p.kind, p.sha256, Buffer.concat(chunks)])
  }
  return out
}
async function* chunks(...bufs: Buffer[]): AsyncGenerator<Buffer> {
  yield* bufs
}

t.test('M2: the batch framing: parts as they arrive, each refusal said', async (t) => {
  const a = Buffer.from('alpha')
  const b = Buffer.from('bravo bravo')
  const body = Buffer.concat([frame(a), frame(b, 6)])
  // Split at every byte boundary a header or a body can be split at: the parts are the same.
  for (const at of [1, 20, 90, 100])
    t.same(
      await gather(readParts(chunks(body.subarray(0, at), body.subarray(at)), 1000, 100)),
      [
        ['blob', sha(a), a],
        ['blob', sha(b), b.subarray(6)],
      ],
      `split at ${at}`,
    )
  // A part whose body is not read is skipped.
  const heads = []
  for await (const p of readParts(chunks(body), 1000, 100)) heads.push(p.size)
  t.same(heads, [5, 11])
  await t.rejects(gather(readParts(chunks(Buffer.from('blob nothex 1 0\r\n\r\nx')), 1000, 100)), {
    code: 'BAD_REQUEST',
    message: 'a part header is "blob SHA256 SIZE OFFSET", not "blob nothex 1 0"',
  })
  await t.rejects(gather(readParts(chunks(Buffer.alloc(300, 'a')), 1000, 100)), { code: 'BAD_REQUEST', message: /at most 256 bytes/ })
  await t.rejects(gather(readParts(chunks(frame(a).subarray(0, 30)), 1000, 100)), { code: 'CUT', message: /inside a part header/ })
  await t.rejects(gather(readParts(chunks(frame(a).subarray(0, frame(a).length - 2)), 1000, 100)), {
    code: 'CUT',
    message: 'the batch ended 2 bytes before the end of a part',
  })
  await t.rejects(gather(readParts(chunks(body), 50, 100)), { code: 'TOO_LARGE', message: 'a batch may be at most 50 bytes' })
  await t.rejects(gather(readParts(chunks(frame(Buffer.alloc(200))), 1000, 100)), { code: 'TOO_LARGE', message: /at most 100 bytes/ })
  await t.rejects(gather(readParts(chunks(partHeader('blob', sha(a), 5, 6)), 1000, 100)), { message: /offset 6 is past its size 5/ })
})

t.test('M2: the batch blob routes on a real cloud', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: 200_000 } },
  })
  await addDevice(cloud, 'phone-y', 'yara')
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const base = '/api/accounts/yara/blobs'
  const send = async (body: Buffer): Promise<string> => {
    const res = await api.stream('POST', `${base}/batch`, body, 'application/octet-stream')
    const parts: Buffer[] = []
    for await (const c of res) parts.push(c as Buffer)
    return Buffer.concat(parts).toString()
  }
  const batch = async (body: Buffer): Promise<unknown> => JSON.parse(await send(body)) as unknown
  const small = Buffer.from('a small blob')
  const large = Buffer.alloc(100_000, 7)
  const bad = Buffer.from('these bytes are not what the header says')
  const big = Buffer.alloc(250_000, 1)

  await t.test('many blobs in one upload, each answered on its own', async (t) => {
    const reply = await batch(
      Buffer.concat([frame(small), frame(large), frame(bad, 0, sha(Buffer.from('other'))), frame(small), frame(big)]),
    )
    t.match(reply, {
      blobs: [
        { sha256: sha(small), stored: true, offset: small.length },
        { sha256: sha(large), stored: true, offset: large.length },
        {
          code: 'CHECKSUM_MISMATCH',
          error: /^the bytes received hash to [0-9a-f]{64}, not [0-9a-f]{64}; the partial upload was discarded/,
        },
        { sha256: sha(small), code: 'BUSY', error: 'an upload of this blob is already in progress' },
        { sha256: sha(big), code: 'QUOTA_EXCEEDED', error: /^over quota: this upload needs/ },
      ],
    })
    t.equal(cloud.broker.cloud.blobs.size(sha(large)), large.length, 'stored once the batch is committed')
    t.match(await batch(frame(small)), { blobs: [{ sha256: sha(small), stored: true }] }, 'a blob stored already is said so')
    const state = await api.request(`${base}/state`, {
      blobs: [
        { sha256: sha(small), size: small.length },
        { sha256: sha(bad), size: bad.length },
        { sha256: sha(big), size: big.length },
      ],
    })
    t.match(state, {
      blobs: [
        { sha256: sha(small), stored: true, offset: small.length },
        { sha256: sha(bad), stored: false, offset: 0 },
        { sha256: sha(big), code: 'QUOTA_EXCEEDED' },
      ],
    })
    await t.rejects(api.request(`${base}/state`, { blobs: [{ sha256: 'x', size: 1 }] }), { status: 400, message: /SHA-256/ })
  })

  await t.test('a full disk under a batch: 507 with the reason, what arrived whole before it kept; the broker goes on', async (t) => {
    const first = Buffer.from('whole before the disk filled')
    const blob = Buffer.alloc(80_000, 'f') // over PACK_MAX: written to its partial file, which here is /dev/full (ENOSPC)
    const partial = join(cloud.dataDir, 'blobs', 'incoming', `${Buffer.from('yara').toString('hex')}-${sha(blob)}.part`)
    symlinkSync('/dev/full', partial)
    const full = await api.stream('POST', `${base}/batch`, Buffer.concat([frame(first), frame(blob)]), 'application/octet-stream').then(
      () => null,
      (err: unknown) => err,
    )
    t.match(full, { status: 507, message: /^the cloud cannot store this now: the disk is full \(ENOSPC\)/ })
    t.equal(cloud.broker.cloud.blobs.size(sha(first)), first.length, 'the blob that arrived whole before it is stored')
    t.equal(cloud.broker.cloud.blobs.size(sha(blob)), undefined, 'the other is not')
    rmSync(partial)
    t.match(await batch(frame(blob)), { blobs: [{ sha256: sha(blob), stored: true }] }, 'sent again once there is room')
  })

  await t.test('a batch cut mid-blob keeps what arrived, and a resume from there completes it', async (t) => {
    const blob = Buffer.alloc(3000, 'r')
    const body = Buffer.concat([frame(small), frame(blob)])
    // Announced whole, sent up to 1000 bytes into the blob, then the connection goes.
    await new Promise<void>((resolve) => {
      const req = request(`${cloud.apiUrl}${base}/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cloud.consoleToken}`, 'content-length': String(body.length) },
      })
      req.on('error', () => resolve())
      req.write(body.subarray(0, body.length - 2000), () => setImmediate(() => req.destroy()))
      req.on('close', () => resolve())
    })
    let state: { blobs: { offset: number }[] } = { blobs: [] }
    for (let i = 0; i < 50 && state.blobs[0]?.offset !== 1000; i++)
      state = await api.request(`${base}/state`, { blobs: [{ sha256: sha(blob), size: blob.length }] })
    t.match(state, { blobs: [{ stored: false, offset: 1000 }] }, 'the cloud kept the 1,000 bytes that arrived')
    t.match(await batch(frame(blob, 999)), { blobs: [{ code: 'BAD_OFFSET', error: /send from offset 1000/ }] })
    t.match(await batch(frame(blob, 1000)), { blobs: [{ sha256: sha(blob), stored: true }] }, 'resumed from there')
  })

  await t.test("the batch's own limits: malformed framing, a body or a blob too large, too many parts", async (t) => {
    await t.rejects(send(Buffer.from('blob 12 0 0\r\n\r\n')), { status: 400, message: /a part header is "blob SHA256 SIZE OFFSET"/ })
    await t.rejects(send(partHeader('gone', sha(small), 0, 0)), { status: 400, message: 'an upload batch carries blob parts only' })
    await t.rejects(send(partHeader('blob', sha(small), 600 * 1024 * 1024, 0)), { status: 413, message: /a blob may be at most/ })
    const many = Buffer.concat(Array.from({ length: MAX_BATCH_PARTS + 1 }, () => frame(Buffer.alloc(0))))
    await t.rejects(send(many), { status: 400, message: `a batch holds at most ${MAX_BATCH_PARTS} blobs` })
    const status = await new Promise<number | undefined>((resolve) => {
      const req = request(`${cloud.apiUrl}${base}/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cloud.consoleToken}`, 'content-length': String(MAX_BATCH_BYTES + 1) },
      })
      req.on('response', (res) => (res.resume(), resolve(res.statusCode)))
      req.on('error', () => resolve(undefined))
      req.flushHeaders()
    })
    t.equal(status, 413, 'a body announced larger than a batch may be is refused before it is read')
  })

  await t.test('the read-back: every blob held, streamed; one gone or damaged on disk is said gone', async (t) => {
    const read = async (list: string[]): Promise<[string, string, Buffer][]> =>
      gather(
        readParts(
          await api.stream('POST', `${base}/read`, Buffer.from(JSON.stringify({ sha256: list })), 'application/json'),
          Infinity,
          Infinity,
        ),
      )
    const items = cloud.broker.cloud.items
    for (const [id, b] of [
      ['s', small],
      ['l', large],
    ] as const)
      items.put('yara', 'phone-y', 'notes', id, { sha256: sha(b), size: b.length, meta: {}, modifiedAt: 0 })
    t.same(await read([sha(small), sha(large), sha(big)]), [
      ['blob', sha(small), small],
      ['blob', sha(large), large],
      ['gone', sha(big), Buffer.alloc(0)],
    ])
    // Small blobs are gathered into one buffer of the answer until the next would not fit: five of 60,000 bytes do not.
    const mid = Buffer.alloc(60_000, 'm')
    items.put('yara', 'phone-y', 'notes', 'm', {
      sha256: await cloud.broker.cloud.blobs.put(mid),
      size: mid.length,
      meta: {},
      modifiedAt: 0,
    })
    const mids = Array.from({ length: 5 }, () => sha(mid))
    t.same(await read([sha(small), ...mids, sha(large), sha(mid)]), [
      ['blob', sha(small), small],
      ...mids.map((m) => ['blob', m, mid]),
      ['blob', sha(large), large],
      ['blob', sha(mid), mid],
    ])
    // The small blob came in a batch, so it is in the batch's pack; the large one has a file of its own.
    const file = (b: Buffer): BlobFile => cloud.broker.cloud.blobs.locate(sha(b)) as BlobFile
    t.match(file(small), { packed: true, path: new RegExp(`^${join(cloud.dataDir, 'blobs', 'packs')}/\\d+-[0-9a-f]{24}\\.pack$`) })
    t.same(file(large), {
      size: large.length,
      path: join(cloud.dataDir, 'blobs', sha(large).slice(0, 2), sha(large)),
      offset: 0,
      packed: false,
    })
    truncateSync(file(small).path, file(small).offset + 3)
    truncateSync(file(large).path, 3)
    t.same(
      (await read([sha(small), sha(large)])).map(([kind]) => kind),
      ['gone', 'gone'],
      'a file shorter than the blob stored',
    )
    rmSync(file(small).path)
    rmSync(file(large).path)
    t.same(
      (await read([sha(small), sha(large)])).map(([kind]) => kind),
      ['gone', 'gone'],
      'a file removed, read whole or streamed',
    )
  })
})

t.test("M2: verification at the cloud: each blob re-read from the cloud's disk and hashed there, a photo's EXIF read there", async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-v', 'vera')
  await addDevice(cloud, 'phone-w', 'walt')
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const verify = (blobs: { sha256: string; exif: boolean }[], account = 'vera'): Promise<unknown> =>
    api.request(`/api/accounts/${account}/blobs/verify`, { blobs })
  const exif = { takenAt: Date.UTC(2026, 5, 1, 12, 30, 15, 0), lat: 55.948612, lon: -3.199935, make: 'Xiaomi', model: '13 Pro' }
  const meta = { takenAt: exif.takenAt, lat: exif.lat, lon: exif.lon, camera: 'Xiaomi 13 Pro' }
  const photo = makePhoto(exif, 3)
  // A photo larger than a socket read and the EXIF head (the first 256 KiB), so it is streamed from a file of its own.
  const bigPhoto = Buffer.concat([makePhoto(exif, 4), Buffer.alloc(2 * 1024 * 1024, 9)])
  const note = Buffer.from('a note, not a photo')
  const large = Buffer.alloc(300_000, 5)
  const others = Buffer.from("another account's blob")
  const res = await api.stream(
    'POST',
    '/api/accounts/vera/blobs/batch',
    Buffer.concat([frame(photo), frame(note)]),
    'application/octet-stream',
  )
  for await (const _ of res);
  const { blobs, items } = cloud.broker.cloud
  for (const b of [bigPhoto, large, others]) await blobs.put(b)
  for (const [i, b] of [photo, note, bigPhoto, large].entries())
    items.put('vera', 'phone-v', 'notes', `n${i}`, { sha256: sha(b), size: b.length, meta: {}, modifiedAt: 0 })
  items.put('walt', 'phone-w', 'notes', 'w', { sha256: sha(others), size: others.length, meta: {}, modifiedAt: 0 })
  const file = (b: Buffer): BlobFile => blobs.locate(sha(b)) as BlobFile
  t.match(
    [file(photo), file(note), file(bigPhoto), file(large)],
    [{ packed: true }, { packed: true }, { packed: false }, { packed: false }],
  )

  await t.test('each blob hashed from its bytes on disk, in the order asked; EXIF when asked', async (t) => {
    t.same(
      await verify([
        { sha256: sha(photo), exif: true },
        { sha256: sha(note), exif: false },
        { sha256: sha(bigPhoto), exif: true },
        { sha256: sha(large), exif: false },
        { sha256: sha(note), exif: true },
        { sha256: sha(others), exif: false },
      ]),
      {
        blobs: [
          { sha256: sha(photo), hashed: sha(photo), meta },
          { sha256: sha(note), hashed: sha(note), meta: null },
          { sha256: sha(bigPhoto), hashed: sha(bigPhoto), meta },
          { sha256: sha(large), hashed: sha(large), meta: null },
          { sha256: sha(note), hashed: sha(note), meta: { takenAt: null, lat: null, lon: null, camera: null } },
          { sha256: sha(others), code: 'NOT_FOUND', error: 'this account holds no such blob' },
        ],
      },
    )
    t.same(await verify([], 'walt'), { blobs: [] })
  })

  await t.test('bad input is refused whole: 400, 401 without the console token, 404 for an unknown account', async (t) => {
    await t.rejects(verify([{ sha256: 'nothex', exif: false }]), { status: 400, message: /SHA-256/ })
    await t.rejects(api.request('/api/accounts/vera/blobs/verify', { blobs: [{ sha256: sha(note) }] }), { status: 400, message: /./ })
    await t.rejects(api.request('/api/accounts/vera/blobs/verify', { sha256: [sha(note)] }), { status: 400, message: /./ })
    const many = Array.from({ length: MAX_BATCH_PARTS + 1 }, () => ({ sha256: sha(note), exif: false }))
    await t.rejects(verify(many), { status: 400, message: /./ })
    await t.rejects(new ConsoleClient(cloud.apiUrl, 'wrong').request('/api/accounts/vera/blobs/verify', { blobs: [] }), {
      status: 401,
      message: /./,
    })
    await t.rejects(verify([], 'nobody'), { status: 404, message: /./ })
  })

  await t.test('bytes damaged on disk hash to what they are now; a file gone or cut short is UNREADABLE', async (t) => {
    // One byte flipped in the pack (the photo's camera) and in the large blob's file: the cloud reads them, not its records.
    const pack = file(photo)
    const bytes = readFileSync(pack.path)
    bytes.write('Xiaomj', bytes.indexOf('Xiaomi', pack.offset, 'latin1'), 'latin1')
    writeFileSync(pack.path, bytes)
    const damaged = Buffer.from(large)
    damaged[1000] = 6
    writeFileSync(file(large).path, damaged)
    truncateSync(file(bigPhoto).path, 1000)
    const reply = (await verify([
      { sha256: sha(photo), exif: true },
      { sha256: sha(large), exif: false },
      { sha256: sha(bigPhoto), exif: true },
    ])) as { blobs: unknown[] }
    const flipped = Buffer.from(photo)
    flipped.write('Xiaomj', flipped.indexOf('Xiaomi', 0, 'latin1'), 'latin1')
    t.same(reply.blobs, [
      { sha256: sha(photo), hashed: sha(flipped), meta: { ...meta, camera: 'Xiaomj 13 Pro' } },
      { sha256: sha(large), hashed: sha(damaged), meta: null },
      { sha256: sha(bigPhoto), code: 'UNREADABLE', error: 'its file is gone or not the size it was stored with' },
    ])
    rmSync(pack.path)
    t.match(await verify([{ sha256: sha(note), exif: false }]), { blobs: [{ sha256: sha(note), code: 'UNREADABLE' }] }, 'its pack removed')
  })
})
