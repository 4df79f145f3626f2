/**
 * M2: the migrating console's batch uploads (cli/transfer/blob-batch.ts)
 * against a real cloud behind a real TCP proxy (test/fixtures/proxy.ts):
 * a batch cut inside its first blob counts the attempt for that blob only
 * and the rerun stores both from where the cloud's copy ended; a blob the
 * source cannot give is refused with that reason while the rest of its
 * batch goes again uncounted. And the one-blob-at-a-time upload M3's import
 * keeps: a byte flipped in transit is refused by the checksum and sent again.
 * And how verification's requests are cut, and an answer not for the blobs
 * asked refused.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { ConsoleClient } from '../../cli/console-client.js'
import { importAccount } from '../../cli/transfer/account-import.js'
import { uploadInBatches, verifyBlobs, VERIFY_BYTES, type BatchEvents, type VerifyBlob } from '../../cli/transfer/blob-batch.js'
import { Progress } from '../../cli/transfer/progress.js'
import type { BlobVerdict, Part } from '../../common/cloud/blob-batch.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { startProxy } from '../fixtures/proxy.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A source that streams blobs from memory, in 1000-byte chunks; one not in `have` is `gone`. */
const fromMemory =
  (have: Buffer[]) =>
  (sha256s: string[]): AsyncIterable<Part> =>
    (async function* () {
      for (const s of sha256s) {
        const b = have.find((h) => sha(h) === s)
        if (b === undefined) yield { kind: 'gone' as const, sha256: s, size: 0, offset: 0, body: (async function* () {})() }
        else
          yield {
            kind: 'blob' as const,
            sha256: s,
            size: b.length,
            offset: 0,
            body: (async function* () {
              for (let i = 0; i < b.length; i += 1000) yield b.subarray(i, i + 1000)
            })(),
          }
      }
    })()

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
      new RegExp(`^attempt 1 from offset 0: cannot reach the broker at ${proxy.url}: `),
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
    /** A cloud that answers for what it was asked, passed through `answer`. */
    const cloud = (answer: (v: BlobVerdict[]) => BlobVerdict[] = (v) => v): ConsoleClient =>
      ({
        request: (path: string, body: { blobs: { sha256: string; exif: boolean }[] }): Promise<unknown> => {
          t.equal(path, '/api/accounts/a%2Fb/blobs/verify')
          asked.push(body.blobs.length)
          return Promise.resolve({ blobs: answer(body.blobs.map(verdict)) })
        },
      }) as unknown as ConsoleClient
    const many = [blob(1, VERIFY_BYTES), blob(2), ...Array.from({ length: 1001 }, (_, i) => blob(i + 3))]
    const out = await verifyBlobs(cloud(), 'a/b', many)
    t.same(asked, [1, 1000, 2], 'a blob of VERIFY_BYTES alone, then 1,000 and the rest')
    t.same([...out.values()], many.map(verdict))
    for (const wrong of [(v: BlobVerdict[]) => v.slice(1), (v: BlobVerdict[]) => [...v].reverse()])
      await t.rejects(verifyBlobs(cloud(wrong), 'a/b', [blob(1), blob(2)]), {
        code: 'BAD_REPLY',
        message: "the cloud's verification does not answer for the 2 blobs asked, in order",
      })
  },
)
