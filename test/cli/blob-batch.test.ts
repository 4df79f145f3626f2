/**
 * M2: the migrating console's batch uploads (cli/transfer/blob-batch.ts)
 * against a real cloud behind a real TCP proxy (test/fixtures/proxy.ts):
 * a batch cut inside its first blob counts the attempt for that blob only
 * and the rerun stores both from where the cloud's copy ended; a blob the
 * source cannot give is refused with that reason while the rest of its
 * batch goes again uncounted. And the one-blob-at-a-time upload M3's import
 * keeps: a byte flipped in transit is refused by the checksum and sent again.
 * And how verification's requests are cut, and an answer not for the blobs
 * asked, or of another shape, refused (a real HTTP server on loopback answering).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { ConsoleClient } from '../../cli/console-client.js'
import { importAccount } from '../../cli/transfer/account-import.js'
import { uploadInBatches, verifyBlobs, VERIFY_BYTES, type BatchEvents, type VerifyBlob } from '../../cli/transfer/blob-batch.js'
import { Progress } from '../../cli/transfer/progress.js'
import { partHeader, type BlobVerdict } from '../../common/cloud/blob-batch.js'
import { Relay } from '../../common/cloud/blob-relay.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { startProxy } from '../fixtures/proxy.js'
import { otherVersionBroker } from '../fixtures/http.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A source's batch read from memory, framed, in 1000-byte chunks; a blob not in `have` is `gone`. */
const fromMemory =
  (have: Buffer[]) =>
  (sha256s: string[]): Promise<Readable> => {
    const parts = sha256s.map((s) => {
      const b = have.find((h) => sha(h) === s)
      return b === undefined ? partHeader('gone', s, 0, 0) : Buffer.concat([partHeader('blob', s, b.length, 0), b])
    })
    return Promise.resolve(inChunks(Buffer.concat(parts), 1000))
  }

/** `bytes` as a stream of chunks of `size` bytes. */
const inChunks = (bytes: Buffer, size: number): Readable =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)),
    { objectMode: false },
  )

function recorder(): BatchEvents & { log: Map<string, string[]> } {
  const log = new Map<string, string[]>()
  const say = (sha256: string, what: string): void => void log.set(sha256, [...(log.get(sha256) ?? []), what])
  return {
    log,
    stored: (s, bytes) => say(s, `stored ${bytes}`),
    refused: (s, why) => say(s, `refused: ${why}`),
    fault: (s, why) => say(s, why),
  }
}

t.test('M2: batch uploads through a proxy that cuts and flips', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-q', 'quinn')
  const proxy = await startProxy(t, cloud.apiUrl)
  const api = new ConsoleClient(proxy.url, cloud.consoleToken)

  await t.test('a batch cut inside its first blob: that blob has the attempt, the next goes again uncounted', async (t) => {
    const a = Buffer.alloc(20_000, 'a')
    const b = Buffer.alloc(20_000, 'b')
    const cut = proxy.arm({ marker: `blob ${sha(a)} `, bodyOffset: 5000, action: 'cut' })
    const events = recorder()
    const blobs = [a, b].map((x) => ({ sha256: sha(x), size: x.length }))
    await uploadInBatches(api, 'quinn', blobs, fromMemory([a, b]), events)
    await cut
    t.match(events.log.get(sha(a)), [
      // The proxy cut a connection it had answered on: said as a close mid-request, not as a broker that may be down.
      new RegExp(`^attempt 1 from offset 0: the broker's HTTP API at ${proxy.url} closed the connection mid-request `),
      /^attempt 2 from offset \d+: stored$/,
      /^stored \d+$/,
    ])
    t.same(events.log.get(sha(b)), ['stored 20000'], 'b was not in transit: no fault, sent once whole')
    t.equal(cloud.broker.cloud.blobs.size(sha(a)), a.length)
  })

  await t.test('a blob the source cannot give is refused with that reason; its batch goes again', async (t) => {
    const c = Buffer.from('the source lost this one')
    const d = Buffer.from('this one it has')
    const events = recorder()
    const blobs = [d, c].map((x) => ({ sha256: sha(x), size: x.length }))
    await uploadInBatches(api, 'quinn', blobs, fromMemory([d]), events)
    t.same(events.log.get(sha(c)), ['refused: the source cannot read it'])
    t.match(events.log.get(sha(d)), [/^stored \d+$/])
    t.equal(cloud.broker.cloud.blobs.size(sha(c)), undefined)
  })

  await t.test('M3: one blob at a time, a byte flipped in transit is sent again', async (t) => {
    const e = Buffer.alloc(5000, 'e')
    const flipped = proxy.arm({ marker: `PUT /api/accounts/quinn/blobs/${sha(e)}?`, bodyOffset: 10, action: 'flip' })
    const transit = new Map<string, string[]>()
    const empty = { account: undefined, devices: [], items: [], drive: [], backups: [], locations: [], commands: [], notifications: [] }
    await importAccount(
      api,
      'quinn',
      { request: empty, blobs: new Map([[sha(e), { path: 'e', size: e.length }]]) },
      () => Promise.resolve(Buffer.from(e)),
      (total) => new Progress(null, cloud.clock, 'x', total),
      undefined,
      transit,
    )
    await flipped
    t.match(transit.get(sha(e)), [/^attempt 1 from offset 0: the bytes received hash to /, 'attempt 2 from offset 0: stored'])
  })
})

t.test(
  "M2: verification's requests: at most 1,000 blobs and VERIFY_BYTES each; an answer must be for the blobs asked, in order",
  async (t) => {
    const blob = (n: number, size = 1): VerifyBlob => ({ sha256: n.toString(16).padStart(64, '0'), size, exif: n % 2 === 0 })
    const verdict = (b: { sha256: string }): BlobVerdict => ({ sha256: b.sha256, hashed: b.sha256, meta: null })
    const asked: number[] = []
    /** A cloud (a real HTTP server on loopback) that answers for what it was asked, passed through `answer`. */
    const cloud = async (answer: (v: BlobVerdict[]) => unknown = (v) => ({ blobs: v })): Promise<ConsoleClient> => {
      const { url } = await otherVersionBroker(t, (method, path, body) => {
        t.equal(`${method} ${path}`, 'POST /api/accounts/a%2Fb/blobs/verify')
        const { blobs } = body as { blobs: { sha256: string; exif: boolean }[] }
        asked.push(blobs.length)
        return answer(blobs.map(verdict))
      })
      return new ConsoleClient(url, 'a-token')
    }
    const many = [blob(1, VERIFY_BYTES), blob(2), ...Array.from({ length: 1001 }, (_, i) => blob(i + 3))]
    const heard: string[] = []
    const out = await verifyBlobs(await cloud(), 'a/b', many, (b) => heard.push(b.sha256))
    t.same(asked, [1, 1000, 2], 'a blob of VERIFY_BYTES alone, then 1,000 and the rest')
    t.same(
      heard,
      many.map((b) => b.sha256),
      'progress hears each blob once its request is answered',
    )
    t.same([...out.values()], many.map(verdict))
    for (const wrong of [(v: BlobVerdict[]) => ({ blobs: v.slice(1) }), (v: BlobVerdict[]) => ({ blobs: [...v].reverse() })])
      await t.rejects(
        verifyBlobs(await cloud(wrong), 'a/b', [blob(1), blob(2)], () => undefined),
        {
          code: 'BAD_REPLY',
          message: "the cloud's verification does not answer for the 2 blobs asked, in order",
        },
      )
    // Another version's cloud: its answer under another name is one line naming the route and the field, not zod's issues.
    await t.rejects(
      verifyBlobs(await cloud((v) => ({ verdicts: v })), 'a/b', [blob(1)], () => undefined),
      {
        status: 502,
        message: new RegExp(
          '^http://127\\.0\\.0\\.1:\\d+ answered POST /api/accounts/a%2Fb/blobs/verify with what this console cannot read ' +
            '\\([^\\n]*blobs[^\\n]*\\): is it a fakephone broker of another version\\?$',
        ),
      },
      'an answer of another shape: one line naming the route and the field',
    )
  },
)

t.test("M2: the source's batch read passed on to the destination as it came, each part's header checked", async (t) => {
  const a = Buffer.alloc(2500, 'a')
  const b = Buffer.from('the second blob')
  const empty = Buffer.alloc(0)
  const c = Buffer.from('one the source lost')
  const blob = (x: Buffer, from = 0) => ({ sha256: sha(x), size: x.length, from })
  const part = (x: Buffer): Buffer => Buffer.concat([partHeader('blob', sha(x), x.length, 0), x])
  /** What the relay of `answer` (in chunks of `size` bytes) for `batch` passes on, or its error; and the blobs said gone. */
  const relayed = async (batch: ReturnType<typeof blob>[], answer: Buffer, size: number) => {
    const gone: string[] = []
    const relay = new Relay(batch, (x) => gone.push(x.sha256))
    const out = await buffer(inChunks(answer, size).pipe(relay)).catch((err: Error) => err)
    return { out, gone, length: relay.length }
  }
  const answer = Buffer.concat([part(a), part(empty), part(b)])
  for (const size of [7, 100, 1000, 1_000_000]) {
    const r = await relayed([blob(a), blob(empty), blob(b)], answer, size)
    t.same(r.out, answer, `from the first byte: the answer as it came, in chunks of ${size} bytes (headers cut across chunks too)`)
    t.equal(r.length, answer.length)
  }
  const resumed = await relayed([blob(a, 1000), blob(b, b.length), blob(empty)], Buffer.concat([part(a), part(b), part(empty)]), 300)
  const sent = Buffer.concat([
    partHeader('blob', sha(a), a.length, 1000),
    a.subarray(1000),
    partHeader('blob', sha(b), b.length, b.length),
    part(empty),
  ])
  t.same(resumed.out, sent, 'a blob the destination has part of: its header says its offset, its first bytes left out')
  t.equal(resumed.length, sent.length)

  const lost = await relayed([blob(a), blob(c)], Buffer.concat([part(a), partHeader('gone', sha(c), 0, 0)]), 1000)
  t.match(lost, { out: { message: `the source cannot read blob ${sha(c)}` }, gone: [sha(c)] }, 'a blob the source cannot give')
  const swapped = await relayed([blob(a), blob(b)], Buffer.concat([part(b), part(a)]), 1000)
  t.match(swapped, { out: { message: `the source cannot read blob ${sha(a)}` }, gone: [sha(a)] }, 'another blob than the one expected')
  const noHeader = await relayed([blob(a)], Buffer.alloc(300, 'x'), 1000)
  t.match(noHeader, { out: { message: `the source cannot read blob ${sha(a)}` }, gone: [sha(a)] }, 'no header in its first 256 bytes')
  for (const [what, bytes] of [
    ['inside a blob', part(a).subarray(0, 200)],
    ['before the next header', part(a)],
    ['inside the next header', Buffer.concat([part(a), part(b).subarray(0, 20)])],
  ] as const) {
    const cut = await relayed([blob(a), blob(b)], bytes, 1000)
    const which = what === 'inside a blob' ? a : b
    t.match(cut, { out: { message: `the source's answer ended before the end of blob ${sha(which)}` }, gone: [] }, `cut ${what}`)
  }
  for (const extra of [part(b), Buffer.from('more')]) {
    const past = await relayed([blob(a)], Buffer.concat([part(a), extra]), 1000)
    t.match(past, { out: { message: 'the source answered past the 1 blobs asked' }, gone: [] }, 'an answer past the batch')
  }
})
