/**
 * M2: faults injected between the migration job and the destination cloud,
 * through a real TCP proxy (test/fixtures/proxy.ts) in front of the
 * destination's HTTP port, and what the job's report says of each: a
 * connection cut mid-blob (resumed from the destination's offset), a byte
 * flipped in transit (refused by the checksum, sent again; three in a row
 * and the item is not copied, each attempt listed), the destination over
 * quota (partially completed, each item not copied named with the reason,
 * the source unchanged), a duplicate name at the destination (skipped with
 * the reason, the destination's file untouched; resolved there, a rerun
 * completes). Each subtest migrates its own account, so no blob is already
 * at the destination (blobs are content-addressed there).
 */
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { makePhoto } from '../../agent/phone-data/photo.js'
import { ManualClock } from '../../common/clock.js'
import { seededRandom } from '../../common/random.js'
import { DEFAULT_BROKER_OPTIONS } from '../../broker/server.js'
import { ConsoleClient } from '../../cli/console-client.js'
import { BLOB_ATTEMPTS, importAccount } from '../../cli/transfer/account-import.js'
import { eachAtOnce } from '../../cli/transfer/each-at-once.js'
import { migrate, type MigrationJob } from '../../cli/transfer/migrate.js'
import { Progress } from '../../cli/transfer/progress.js'
import { renderJob } from '../../cli/transfer/migrate-command.js'
import type { BlobFile } from '../../broker/cloud/blob-store.js'
import { addDevice, startCloud, type Cloud } from '../fixtures/cloud.js'
import { httpFront } from '../fixtures/http.js'
import { startProxy } from '../fixtures/proxy.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

const QUOTA = 1024 * 1024
const DRIVE_BYTES = 200 * 1024
const TAKEN = Date.UTC(2026, 5, 1, 12, 30, 15)

interface Seeded {
  account: string
  photo: string
  note: { id: string; sha256: string; size: number }
  drive: { id: string; sha256: string; folder: string; name: string }
}

/** An account of its own on the source: two photos, a contact, a note, a 200 KiB drive file; bytes differ per account. */
async function seedAccount(cloud: Cloud, account: string, seed: number): Promise<Seeded> {
  await addDevice(cloud, `phone-${account}`, account)
  const { blobs, items, drive } = cloud.broker.cloud
  const put = async (category: 'photos' | 'contacts' | 'notes', id: string, bytes: Buffer, meta: Record<string, string | number | null>) =>
    items.put(account, `phone-${account}`, category, id, { sha256: await blobs.put(bytes), size: bytes.length, meta, modifiedAt: TAKEN })
  const exif = { takenAt: TAKEN, lat: 55.9486, lon: -3.1999, make: 'Xiaomi', model: '13' }
  const photo = `IMG_${seed}_1.jpg`
  await put('photos', photo, makePhoto(exif, seed), { takenAt: TAKEN, lat: 55.9486, lon: -3.1999, camera: 'Xiaomi 13' })
  await put('photos', `IMG_${seed}_2.jpg`, makePhoto({ ...exif, lat: null, lon: null }, seed + 1), {
    takenAt: TAKEN,
    lat: null,
    lon: null,
    camera: 'Xiaomi 13',
  })
  await put('contacts', `c-${seed}.vcf`, Buffer.from(`BEGIN:VCARD\nFN:Friend ${seed}\nEND:VCARD\n`), { name: `Friend ${seed}` })
  const text = Buffer.from(`Notes of ${account}\n${'a line of a long note\n'.repeat(1000)}`)
  const note = await put('notes', `n-${seed}.txt`, text, { title: `Notes of ${account}` })
  const random = seededRandom(seed)
  const bytes = Buffer.from(Array.from({ length: DRIVE_BYTES }, () => Math.floor(random() * 256)))
  const file = drive.files.put(account, {
    folder: '/Documents',
    name: 'figures.bin',
    sha256: await blobs.put(bytes),
    size: bytes.length,
    uploadedBy: 'console',
  })
  return { account, photo, note: { id: note.id, sha256: note.sha256, size: note.size }, drive: file }
}

const driveOf = (job: MigrationJob, s: Seeded) => job.report.find((r) => r.kind === 'drive' && r.id === s.drive.id)
const snapshot = (cloud: Cloud, account: string): Promise<Record<string, unknown>> =>
  new ConsoleClient(cloud.apiUrl, cloud.consoleToken).request(`/api/accounts/${account}/export`)

/**
 * Where the faults strike: `relay`, the console carries the bytes and the proxy stands in front of the destination (the
 * faults in the console's upload); `pull`, the destination pulls from the source itself and the proxy stands between
 * the two brokers (the faults in the source's answer to the destination).
 */
type Path = 'relay' | 'pull'

const faultsOn = (path: Path) => async (t: Test) => {
  const source = await startCloud(t)
  const dest = await startCloud(
    t,
    { cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: QUOTA } } },
    new ManualClock(source.clock.now()),
  )
  const proxy = await startProxy(t, path === 'relay' ? dest.apiUrl : source.apiUrl)
  const to = path === 'relay' ? proxy.url : dest.apiUrl
  const dir = tempDir(t)
  const run = (s: Seeded, toAccount: string): Promise<MigrationJob> =>
    migrate({
      source: new ConsoleClient(source.apiUrl, source.consoleToken),
      dest: new ConsoleClient(to, dest.consoleToken),
      pullFrom: path === 'pull' ? proxy.url : undefined,
      account: s.account,
      to,
      toAccount,
      jobFile: join(dir, `${toAccount}.json`),
      signal: new AbortController().signal,
      now: () => dest.clock.now(),
      progress: (total) => new Progress(null, dest.clock, 'migrating', total),
      verifyProgress: (total) => {
        const p = new Progress(null, dest.clock, 'verifying', total)
        const item = p.item.bind(p)
        verifying.push({ total, items: 0 })
        p.item = () => {
          ;(verifying.at(-1) as { items: number }).items++
          item()
        }
        return p
      },
    })
  /** Each run's verification progress: its totals, and the items it heard checked. */
  const verifying: { total: { items: number; bytes: number }; items: number }[] = []
  /** The part of a batch (the console's upload, or the source's answer to the destination) that carries the blob. */
  const put = (_to: string, sha256: string): { marker: string; in: 'request' | 'answer' } => ({
    marker: `blob ${sha256} `,
    in: path === 'relay' ? 'request' : 'answer',
  })
  /** What the job says of the cut connection: the console's upload closed, or the source's answer to the destination. */
  const cutSaid =
    path === 'relay' ? `the broker's HTTP API at ${proxy.url} closed the connection mid-request ` : `the source's answer broke off: aborted`

  await t.test('M2: a connection cut mid-blob: the job resumes from the offset the destination kept and completes verified', async (t) => {
    const s = await seedAccount(source, 'anna', 1)
    const cut = proxy.arm({ ...put('anna', s.drive.sha256), bodyOffset: 150_000, action: 'cut' })
    const job = await run(s, 'anna')
    await cut
    t.match(job, { state: 'completed', summary: /^5 of 5 items identical, bytes \d+, metadata fields \d+ checked$/ })
    t.equal(job.copiedBy, path === 'relay' ? 'console' : 'destination', `the bytes went by ${path}`)
    const v = verifying.at(-1)
    t.ok(v !== undefined && v.total.items > 0 && v.items === v.total.items, 'the verification has its progress: every blob, once')
    const kept = dest.logs.lines.find((l) => l.msg === 'upload cut short; kept for resume')?.offset as number
    t.ok(kept > 0 && kept <= 150_000, `the destination kept ${kept} bytes of the cut upload`)
    t.match(driveOf(job, s), {
      identical: true,
      sourceSha256: s.drive.sha256,
      destSha256: s.drive.sha256,
      // The proxy cut a connection that had answered before: a close mid-request, not a broker that may be down.
      transit: [`attempt 1 from offset 0: ${cutSaid}`, `attempt 2 from offset ${kept}: stored`],
    })
    t.ok(
      job.report.filter((r) => r !== driveOf(job, s)).every((r) => r.identical && r.transit.length === 0),
      'nothing else saw a fault',
    )
    t.match(renderJob(job), `  drive ${s.drive.id}: identical after a retry; attempt 1 from offset 0: ${cutSaid}`)
  })

  await t.test(
    'M2: a byte flipped in transit is refused by the checksum and sent again; three in a row and the item is not copied',
    async (t) => {
      const s = await seedAccount(source, 'bert', 2)
      const flipped = proxy.arm({ ...put('bert', s.note.sha256), bodyOffset: 100, action: 'flip' })
      const job = await run(s, 'bert')
      await flipped
      t.equal(job.state, 'completed')
      t.match(
        job.report.find((r) => r.id === `notes/${s.note.id}`),
        {
          identical: true,
          destSha256: s.note.sha256,
          transit: [
            new RegExp(
              `^attempt 1 from offset 0: the bytes received hash to [0-9a-f]{64}, not ${s.note.sha256}; ` +
                'the partial upload was discarded, send it again$',
            ),
            'attempt 2 from offset 0: stored',
          ],
        },
      )
      t.equal(job.report.filter((r) => r.transit.length > 0).length, 1, 'one item saw a fault')

      const c = await seedAccount(source, 'cleo', 3)
      const all = Array.from({ length: BLOB_ATTEMPTS }, () =>
        // Well into the blob's bytes: in the source's answer a large blob's first bytes follow an HTTP chunk's size line.
        proxy.arm({ ...put('cleo', c.drive.sha256), bodyOffset: 1000, action: 'flip' }),
      )
      const failed = await run(c, 'cleo')
      await Promise.all(all)
      t.match(failed, { state: 'partially completed', summary: /^4 of 5 items identical/ })
      const drive = driveOf(failed, c)
      t.match(drive, {
        identical: false,
        destSha256: null,
        error: /^its bytes were refused: not stored after 3 attempts: attempt 1 from offset 0: the bytes/,
      })
      t.equal(drive?.transit.length, 3, 'each failed attempt is in the report')
      t.match(renderJob(failed), `  drive ${c.drive.id}: its bytes were refused: not stored after 3 attempts`)
    },
  )

  await t.test(
    'M2: the destination over quota: partially completed, each item not copied named with the reason, the source unchanged',
    async (t) => {
      const s = await seedAccount(source, 'dora', 4)
      const before = await snapshot(source, 'dora')
      // The destination account exists already, with room for every item but one byte: items go in in (category, id) order,
      // so the last photo is the one that does not fit; the 200 KiB drive file is refused before its bytes are sent.
      await addDevice(dest, 'phone-full', 'full')
      const items = before.items as { size: number; id: string; category: string }[]
      const last = items[items.length - 1] as (typeof items)[number]
      dest.broker.cloud.accounts.charge('full', QUOTA - (items.reduce((n, i) => n + i.size, 0) - 1), 'filler')
      const job = await run(s, 'full')
      t.match(job, { state: 'partially completed', summary: /^3 of 5 items identical/ })
      t.match(
        job.report.find((r) => r.id === `${last.category}/${last.id}`),
        {
          identical: false,
          destSha256: null,
          error: new RegExp(`^over quota: photos/${last.id} \\(${last.size} bytes\\) needs .* is free; nothing stored was touched$`),
        },
      )
      t.match(driveOf(job, s), { identical: false, error: /^its bytes were refused: over quota: this upload needs 200 KB but .* is free/ })
      t.same(
        job.report.filter((r) => !r.identical).map((r) => r.kind),
        ['item', 'drive'],
        'the last photo and the drive file, nothing else',
      )
      const after = await snapshot(source, 'dora')
      t.same({ ...after, now: 0, log: [] }, { ...before, now: 0, log: [] }, 'the source holds what it held')
      t.equal(source.broker.cloud.retirement.migration('dora'), null, 'nor is the source account marked migrated')
    },
  )

  await t.test('M2: a duplicate name at the destination is skipped with the reason; renamed there, a rerun completes', async (t) => {
    const s = await seedAccount(source, 'emil', 5)
    await addDevice(dest, 'phone-emil', 'emil')
    const theirs = Buffer.from('their own figures\n')
    const { files } = dest.broker.cloud.drive
    const other = files.put('emil', {
      folder: s.drive.folder,
      name: s.drive.name,
      sha256: await dest.broker.cloud.blobs.put(theirs),
      size: theirs.length,
      uploadedBy: 'console',
    })
    const job = await run(s, 'emil')
    t.match(job, { state: 'partially completed', summary: /^4 of 5 items identical/ })
    t.match(driveOf(job, s), {
      identical: false,
      destSha256: null,
      error: `duplicate name: /Documents already holds a file named "figures.bin" (id ${other.id})`,
    })
    t.match(files.list('emil'), [{ id: other.id, sha256: other.sha256 }], "the destination's file is untouched")

    await files.delete('emil', other.id)
    const again = await run(s, 'emil')
    t.match(again, { state: 'completed', runs: 2, summary: /^5 of 5 items identical/ })
  })

  await t.test(
    'M2: a cloud that answers an upload without storing it all, or refuses it: attempts are bounded, each reported',
    async (t) => {
      // A stand-in destination on a real socket (no fakephone cloud answers so; another might): a PUT of blob a keeps 3 bytes
      // of 10, a PUT of blob b is refused for good (HTTP 507, in plain text): not a fault in transit, not tried again.
      const [a, b] = ['a'.repeat(64), 'b'.repeat(64)]
      const server = createHttpServer((req, res) => {
        const path = new URL(req.url as string, 'http://x').pathname
        req.resume()
        req.on('end', () => {
          res.setHeader('content-type', 'application/json')
          const failed = { kind: 'drive', id: 'd', result: 'failed', error: 'not uploaded' }
          if (path.endsWith('/import'))
            res.end(JSON.stringify({ now: 0, account: 'x', imported: 0, present: 0, failed: 1, outcomes: [failed] }))
          else if (req.method === 'PUT' && path.endsWith(b)) res.writeHead(507, { 'content-type': 'text/plain' }).end('no room')
          else res.end(JSON.stringify({ sha256: a, size: 10, stored: false, offset: req.method === 'PUT' ? 3 : 0 }))
        })
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      onEnd(t, () => new Promise((resolve) => server.close(resolve)))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const transit = new Map<string, string[]>()
      const file = { id: 'd', folder: '/', name: 'd', sha256: b, size: 10, createdAt: 0, updatedAt: 0, uploadedBy: 'console' }
      const reply = await importAccount(
        new ConsoleClient(url, 'token'),
        'x',
        {
          request: {
            account: undefined,
            devices: [],
            items: [],
            drive: [file],
            backups: [],
            locations: [],
            commands: [],
            notifications: [],
          },
          blobs: new Map([
            [a, { path: 'a', size: 10 }],
            [b, { path: 'b', size: 10 }],
          ]),
        },
        () => Promise.resolve(Buffer.alloc(10)),
        (total) => new Progress(null, dest.clock, 'x', total),
        undefined,
        transit,
      )
      t.same(
        transit.get(a),
        [1, 2, 3].map((n) => `attempt ${n} from offset 0: the cloud kept 3 of 10 bytes`),
      )
      t.equal(transit.get(b), undefined)
      // A refusal in plain text, no broker's: what came back, on one line.
      const refused = `its bytes were refused: ${url} did not answer like a fakephone broker (HTTP 507, text/plain: "no room")`
      t.match(reply.outcomes, [{ id: 'd', result: 'failed', error: refused }])
    },
  )
}

t.test('M2 faults between the migration and the destination (the console relays the bytes)', faultsOn('relay'))
t.test('M2 faults between the two brokers (the destination pulls the bytes from the source)', faultsOn('pull'))

t.test('M2: blobs a few at once: a job that fails fails the lot, once the others have ended', async (t) => {
  const ended: number[] = []
  await t.rejects(
    eachAtOnce([1, 2, 3], 2, async (n) => {
      if (n === 1) throw new Error('one failed')
      await Promise.resolve()
      ended.push(n)
    }),
    /one failed/,
  )
  t.same(ended, [2, 3])
})

t.test('M2: blobs a few at once: once the signal aborts no new job starts, the running ones end, and the abort is thrown', async (t) => {
  const started: number[] = []
  const stop = new AbortController()
  await t.rejects(
    eachAtOnce(
      [1, 2, 3, 4],
      2,
      async (n) => {
        started.push(n)
        if (n === 2) stop.abort(new Error('stopped by the user'))
        await Promise.resolve()
      },
      stop.signal,
    ),
    /stopped by the user/,
  )
  t.same(started, [1, 2], 'the two already running ended; 3 and 4 never started')
})

t.test(
  'M2: the destination pulls with a grant per batch, and the console relays when the destination cannot reach the source',
  async (t) => {
    const source = await startCloud(t)
    const dest = await startCloud(t, {}, new ManualClock(source.clock.now()))
    const dir = tempDir(t)
    /** The calls the console makes to the destination, with their bodies: what the destination is handed. */
    const handed: string[] = []
    class Watched extends ConsoleClient {
      override call(...args: Parameters<ConsoleClient['call']>): ReturnType<ConsoleClient['call']> {
        handed.push(`${args[0]} ${args[1]} ${args[2]?.toString() ?? ''}`)
        return super.call(...args)
      }
    }
    const run = (s: Seeded, pullFrom: string, to = dest.apiUrl): Promise<MigrationJob> =>
      migrate({
        source: new ConsoleClient(source.apiUrl, source.consoleToken),
        dest: new Watched(to, dest.consoleToken),
        pullFrom,
        account: s.account,
        to,
        toAccount: s.account,
        jobFile: join(dir, `${s.account}.json`),
        signal: new AbortController().signal,
        now: () => dest.clock.now(),
        progress: (total) => new Progress(null, dest.clock, 'migrating', total),
      })

    await t.test('M2: a grant per batch, never the console token, each revoked once its batch is done', async (t) => {
      const s = await seedAccount(source, 'gina', 7)
      const job = await run(s, source.apiUrl)
      t.match(job, { state: 'completed', copiedBy: 'destination', summary: /^5 of 5 items identical/ })
      t.equal(job.relayedBecause, undefined)
      t.notMatch(renderJob(job), /relayed/, 'nothing said of a relay')
      const pulls = handed.filter((h) => h.startsWith('POST /api/accounts/gina/blobs/pull '))
      t.ok(pulls.length > 0, 'the destination was asked to pull')
      t.notOk(
        handed.some((h) => h.includes(source.consoleToken)),
        "the source's console token is in nothing the destination was handed",
      )
      const grants = pulls.map((h) => (JSON.parse(h.slice(h.indexOf('{'))) as { from: { grant: string } }).from.grant)
      t.equal(new Set(grants).size, grants.length, 'a grant of its own for each batch')
      t.same(
        grants.map((g) => source.broker.cloud.grants.verify(g)),
        grants.map(() => undefined),
        'each grant revoked: the source takes none of them any more',
      )
    })

    await t.test('M2: the destination cannot reach the source: the console relays, and says so once', async (t) => {
      const s = await seedAccount(source, 'hugo', 8)
      // A port the OS gave and took back: nothing listens there (connection refused).
      const closed = createHttpServer()
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
      const unreachable = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
      await new Promise((resolve) => closed.close(resolve))
      const job = await run(s, unreachable)
      t.match(job, { state: 'completed', copiedBy: 'console', summary: /^5 of 5 items identical/ })
      t.match(job.relayedBecause, new RegExp(`^this cloud cannot reach the source at ${unreachable}: connect ECONNREFUSED`))
      const said = renderJob(job)
        .split('\n')
        .filter((l) => l.includes('could not reach the source'))
      t.match(said, [
        /^The destination could not reach the source \(this cloud cannot reach .*\): this console relayed the bytes instead\.$/,
      ])
      t.equal(said.length, 1, 'said once')
    })

    /**
     * The real destination behind a front that answers its pull route with `pull(n)` (the n-th call, from 1) when that
     * gives an answer, and passes everything else on.
     */
    const front = (t: Test, pull: (n: number) => { status: number; type: string; body: string } | undefined) => {
      let calls = 0
      return httpFront(t, dest.apiUrl, (req, res, forward) => {
        const answer = req.url?.endsWith('/blobs/pull') === true ? pull(++calls) : undefined
        if (answer === undefined) return forward()
        req.resume()
        res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body)
      })
    }

    await t.test('M2: a destination from before the pull route (404 NOT_FOUND): the console relays, and says why', async (t) => {
      const s = await seedAccount(source, 'olga', 11)
      // Its pull route answered as an older broker's router does: no such path.
      const olderUrl = await front(t, () => ({
        status: 404,
        type: 'application/json',
        body: JSON.stringify({ error: 'POST /api/accounts/olga/blobs/pull: there is no such path', code: 'NOT_FOUND' }),
      }))
      const job = await run(s, source.apiUrl, olderUrl)
      t.match(job, { state: 'completed', copiedBy: 'console', summary: /^5 of 5 items identical/ })
      t.equal(job.relayedBecause, `${olderUrl} cannot pull (it has no /api/accounts/olga/blobs/pull: an older fakephone?)`)
    })

    await t.test("M2: a proxy's error page for a pull: that batch goes again, the job completes, the fault says what came", async (t) => {
      const s = await seedAccount(source, 'pia', 12)
      const page = '<html><h1>502 Bad Gateway</h1></html>'
      const url = await front(t, (n) => (n === 1 ? { status: 502, type: 'text/html', body: page } : undefined))
      const job = await run(s, source.apiUrl, url)
      t.match(job, { state: 'completed', copiedBy: 'destination', summary: /^5 of 5 items identical/ })
      t.same(
        job.report.flatMap((r) => r.transit),
        [
          `attempt 1 from offset 0: ${url} did not answer like a fakephone broker (HTTP 502, text/html: "${page}")`,
          'attempt 2 from offset 0: stored',
        ],
        'the one fault, in one line, and the blob stored at the next try',
      )
    })

    await t.test('M2: a blob the source cannot read is refused with the reason; the rest of its batch still goes', async (t) => {
      const s = await seedAccount(source, 'ida', 9)
      rmSync((source.broker.cloud.blobs.locate(s.drive.sha256) as BlobFile).path)
      const job = await run(s, source.apiUrl)
      t.match(job, { state: 'partially completed', copiedBy: 'destination', summary: /^4 of 5 items identical/ })
      t.match(driveOf(job, s), { identical: false, error: 'its bytes were refused: the source cannot read it' })
    })

    await t.test("M2: the destination's connection cut as it is asked to pull: sent again, the job completes", async (t) => {
      const s = await seedAccount(source, 'jan', 10)
      const proxy = await startProxy(t, dest.apiUrl)
      const cut = proxy.arm({ marker: 'POST /api/accounts/jan/blobs/pull', bodyOffset: 10, action: 'cut' })
      const job = await run(s, source.apiUrl, proxy.url)
      await cut
      t.match(job, { state: 'completed', copiedBy: 'destination', summary: /^5 of 5 items identical/ })
      t.match(
        job.report.flatMap((r) => r.transit),
        [
          `attempt 1 from offset 0: the broker's HTTP API at ${proxy.url} closed the connection mid-request `,
          'attempt 2 from offset 0: stored',
        ],
        'the blob in transit saw the cut, and was stored next time',
      )
    })
  },
)
