/** M3: what `console import` refuses in a bag that is valid BagIt but not a fakephone account, progress lines, and faults in transit. */
import t, { type Test } from 'tap'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BagWriter } from '../../common/bagit/write.js'
import { validateBag } from '../../common/bagit/validate.js'
import { writeTar } from '../../common/bagit/tar.js'
import { ManualClock } from '../../common/clock.js'
import { DEFAULT_BROKER_OPTIONS } from '../../broker/server.js'
import { ConsoleClient } from '../../cli/console-client.js'
import type { Io } from '../../cli/io.js'
import { exportAccount } from '../../cli/transfer/account-export.js'
import { fromBag, importAccount, readAccountBag } from '../../cli/transfer/account-import.js'
import { EXPORT_FORMAT, drivePath } from '../../cli/transfer/bag-layout.js'
import { bagTo, openBag } from '../../cli/transfer/open-bag.js'
import { Progress, progressOn } from '../../cli/transfer/progress.js'
import { bagFormat, renderProblems } from '../../cli/transfer/transfer-commands.js'
import { noteItem, sha } from '../fixtures/sync-items.js'
import { startCloud, type Cloud } from '../fixtures/cloud.js'
import { httpFront } from '../fixtures/http.js'
import { tempDir } from '../fixtures/scope.js'

const account = {
  id: 'a',
  tier: 'free',
  premiumUntil: null,
  quotaBytes: 0,
  usedBytes: 0,
  createdAt: 0,
  lastActivityAt: 0,
  lastActivity: 'x',
  frozenAt: null,
  serviceOffAt: null,
  binWindowDays: 30,
}
/** A cloud where alice has phone-a, and a console client of it. */
async function aliceCloud(t: Test): Promise<{ cloud: Cloud; api: ConsoleClient }> {
  const cloud = await startCloud(t)
  await cloud.broker.registry.add('phone-a', 'alice')
  return { cloud, api: new ConsoleClient(cloud.apiUrl, cloud.consoleToken) }
}

const noProgress = (): Progress => new Progress(null, new ManualClock(), 'x', { items: 0, bytes: 0 })

t.test('M3: a valid bag that is not a fakephone account is refused with each reason', async (t) => {
  const dir = join(tempDir(t), 'bag')
  const bag = await BagWriter.create(dir)
  await bag.add('notes/ok.txt', 'ok')
  await bag.addJson('notes/ok.txt.meta.json', noteItem('ok.txt', 'ok'))
  await bag.addJson('notes/moved.txt.meta.json', noteItem('other.txt', 'x'))
  await bag.addJson('notes/nofile.txt.meta.json', noteItem('nofile.txt', 'x'))
  await bag.add('notes/wrong.txt', 'actual')
  await bag.addJson('notes/wrong.txt.meta.json', noteItem('wrong.txt', 'claimed'))
  await bag.add('notes/broken.txt.meta.json', '{"not": "an item"}')
  await bag.add('drive/files.json', 'not json')
  await bag.finish({}, 0)
  t.match(await readAccountBag(dir, await validateBag(dir)), [
    { path: 'data/account.json', problem: 'missing: an account bag has this file' },
    { path: 'data/notes/broken.txt.meta.json', problem: /^not what fakephone wrote: / },
    { path: 'data/notes/moved.txt.meta.json', problem: 'the sidecar is of notes/other.txt, not of the file beside it' },
    { path: 'data/notes/nofile.txt', problem: 'missing: its record is in the bag, its bytes are not' },
    { path: 'data/notes/wrong.txt', problem: `its record says SHA-256 ${sha('claimed')}, the bag's manifest ${sha('actual')}` },
    { path: 'data/drive/files.json', problem: /^not what fakephone wrote: Unexpected token/ },
  ])
})

t.test('M3: a blob the cloud refuses fails its record with the cloud reason; the rest go in', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: 100 } },
  })
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const dir = join(tempDir(t), 'bag')
  const bag = await BagWriter.create(dir)
  const big = 'x'.repeat(200)
  await bag.add('notes/big.txt', big)
  await bag.addJson('notes/big.txt.meta.json', noteItem('big.txt', big))
  await bag.add('notes/small.txt', 'small')
  await bag.addJson('notes/small.txt.meta.json', noteItem('small.txt', 'small'))
  await bag.addJson('account.json', { format: EXPORT_FORMAT, exportedAt: 0, source: 'test', account, devices: [] })
  await bag.finish({}, 0)
  const contents = await readAccountBag(dir, await validateBag(dir))
  if (Array.isArray(contents)) throw new Error('the bag should read')
  const reply = await importAccount(api, 'tiny', contents, fromBag(dir), noProgress)
  t.match(reply, { imported: 2, failed: 1 })
  t.match(reply.outcomes, [
    { kind: 'account', result: 'imported' },
    { kind: 'item', id: 'notes/big.txt', result: 'failed', error: /^its bytes were refused: over quota: this upload needs 200 B/ },
    { kind: 'item', id: 'notes/small.txt', result: 'imported' },
  ])

  // A blob damaged on the cloud's disk: the export notices and stops.
  const stored = join(cloud.dataDir, 'blobs', sha('small').slice(0, 2), sha('small'))
  writeFileSync(stored, 'smalL')
  await t.rejects(exportAccount(api, 'tiny', join(tempDir(t), 'out'), 'test', noProgress), {
    message: `notes/small.txt arrived as ${sha('smalL')}, not the ${sha('small')} the cloud holds; the export stopped, run it again`,
  })
})

t.test(
  'M3: progress: quiet for a second, then items, bytes, rate and ETA on stderr; never under --json or without a terminal',
  async (t) => {
    const clock = new ManualClock()
    const lines: string[] = []
    const p = new Progress((s) => lines.push(s), clock, 'exporting', { items: 2, bytes: 2048 })
    p.add(512)
    t.same(lines, [], 'nothing in the first second')
    clock.advance(1000)
    t.same(lines, ['\rexporting: 0/2 items, 512 B of 2.0 KB, 512 B/s, ETA 3s\x1b[K'], 'then what came in it, with nothing more arriving')
    p.add(512)
    p.item()
    t.equal(lines.length, 1, 'one redraw per 200 ms at most')
    clock.advance(200)
    // A migration's blobs are told stored a batch at a time: the last of a burst is drawn, not the first of it.
    t.match(lines[1], /^\rexporting: 1\/2 items, 1\.0 KB of 2\.0 KB, 853 B\/s, ETA 2s\x1b\[K$/, 'the end of a burst, 200 ms on')
    p.item()
    p.done()
    t.same(lines.slice(2), ['\r\x1b[K'], 'done clears the line')
    clock.advance(1000)
    t.equal(lines.length, 3, 'and nothing is drawn after it')
    t.match(new Progress(null, clock, 'x', { items: 1, bytes: 1 }).line(), /ETA \?$/)
    t.equal(
      new Progress(null, clock, 'validating', { items: 0, bytes: 1024 }).line(),
      'validating: 0 B of 1.0 KB, 0 B/s, ETA ?',
      'bytes only',
    )
    const quiet = new Progress(null, clock, 'x', { items: 1, bytes: 1 })
    quiet.done()
    const err: string[] = []
    const io = { err: (s: string) => err.push(s), errTty: true, clock } as unknown as Io
    const shown = progressOn(io, false, 'x')({ items: 1, bytes: 10 })
    clock.advance(2000)
    shown.add(1)
    t.equal(err.length, 1)
    const hidden = progressOn(io, true, 'x')({ items: 1, bytes: 10 })
    clock.advance(2000)
    hidden.add(1)
    t.equal(err.length, 1, '--json is quiet')
  },
)

t.test('M3: small pieces: formats, problem lists, drive paths, tar archives that are not one bag', async (t) => {
  t.equal(bagFormat('tar'), 'tar')
  t.throws(() => bagFormat('zip'), { message: 'must be "dir" (a bag directory) or "tar" (one file)' })
  t.equal(renderProblems('b', [{ path: 'p', problem: 'x' }]), 'b is not a valid bag: 1 problem\n  "p": x\n')
  t.match(
    renderProblems('b', [
      { path: 'p', problem: 'x' },
      { path: 'q', problem: 'y' },
    ]),
    /2 problems/,
  )
  t.equal(drivePath({ folder: '/', name: 'a b' }), 'drive/files/a b')
  t.equal(drivePath({ folder: '/x/y', name: 'a' }), 'drive/files/x/y/a')
  const root = tempDir(t)
  await t.rejects(openBag(join(root, 'nope')), { message: `${join(root, 'nope')} does not exist` })
  mkdirSync(join(root, 'two'))
  writeFileSync(join(root, 'two', 'a'), '')
  await writeTar(join(root, 'two'), join(root, 'x.tar'), 'x', 0)
  await writeTar(join(root, 'two'), join(root, 'y.tar'), 'y', 0)
  const x = readFileSync(join(root, 'x.tar'))
  writeFileSync(join(root, 'xy.tar'), Buffer.concat([x.subarray(0, x.length - 1024), readFileSync(join(root, 'y.tar'))]))
  await t.rejects(openBag(join(root, 'xy.tar')), {
    message: /xy\.tar holds 2 top-level entries; a bag archive holds one directory, the bag/,
  })
  writeFileSync(join(root, 'cut.tar'), x.subarray(0, 700))
  await t.rejects(openBag(join(root, 'cut.tar')), {
    message:
      `${join(root, 'cut.tar')} cannot be opened as a bag: the archive ends early: wanted 512 bytes at offset 512, found 188; ` +
      'nothing in it was checked. Make the archive again (fakephone console export ACCOUNT --out FILE --format tar) or give ' +
      'the bag as a directory.',
  })
})

t.test('M3: an export whose blob answer breaks off says which file and that the export can run again', async (t) => {
  const cloud = await startCloud(t)
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const body = 'b'.repeat(200_000)
  await api.request('/api/accounts/cutx/import', { account: { tier: 'free', premiumUntil: null, createdAt: 1 } })
  await api.bytes('PUT', `/api/accounts/cutx/blobs/${sha(body)}?size=${body.length}&offset=0`, Buffer.from(body))
  await api.request('/api/accounts/cutx/import', { items: [noteItem('big.txt', body)] })
  // In front of the broker: every call passes, but a blob's answer stops after its first kilobyte and the connection drops;
  // or, once `fault.occupy` names a bag, the blob's file is made in it first, as if the user's disk had failed under the export.
  const fault: { occupy?: string } = {}
  const cutter = await httpFront(t, cloud.apiUrl, (req, res, forward) =>
    forward((answer) => {
      if (!(req.url as string).endsWith('/content')) return void answer.pipe(res)
      if (fault.occupy !== undefined) {
        mkdirSync(join(fault.occupy, 'data', 'notes'), { recursive: true })
        writeFileSync(join(fault.occupy, 'data', 'notes', 'big.txt'), 'in the way')
        return void answer.pipe(res)
      }
      answer.once('data', (chunk: Buffer) => res.write(chunk.subarray(0, 1024), () => res.socket?.destroy()))
    }),
  )
  const via = new ConsoleClient(cutter, cloud.consoleToken)
  await t.rejects(exportAccount(via, 'cutx', join(tempDir(t), 'out'), 'test', noProgress), {
    status: 0,
    message: /^notes\/big\.txt: the broker's answer broke off \(.+\); nothing at the cloud changed, run the export again$/,
  })
  fault.occupy = join(tempDir(t), 'occupied')
  await t.rejects(exportAccount(via, 'cutx', fault.occupy, 'test', noProgress), { code: 'EEXIST' }, "the bag's own failure keeps its error")
})

t.test('M3: a disk that fills up under an export leaves no part of a bag, dir or tar, and says why', async (t) => {
  // Injected: a bag is written with 'wx' (a link to /dev/full is refused as existing) and a real full filesystem
  // needs a mount; so the failure is the ENOSPC Node would throw, after part of the bag was really written.
  const writeThenFill = async (dir: string): Promise<never> => {
    const bag = await BagWriter.create(dir)
    await bag.add('photos/IMG_1.jpg', Buffer.alloc(10_000, 1))
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  }
  const parent = tempDir(t)
  const out = join(parent, 'bag')
  await t.rejects(bagTo(out, false, 0, writeThenFill), {
    message:
      `cannot write the bag ${out}: the disk is full (ENOSPC); the part written was removed and nothing else changed: free some ` +
      `space and run it again`,
  })
  await t.rejects(bagTo(join(parent, 'bag.tar'), true, 0, writeThenFill), { message: /^cannot write the bag .*bag\.tar: the disk is full/ })
  t.same(readdirSync(parent), [], 'no bag directory, no tar, no temporary bag')
  await t.rejects(
    bagTo(out, false, 0, () => Promise.reject(new Error('not the disk'))),
    { message: 'not the disk' },
    'any other failure keeps its error',
  )
})

t.test(
  'M3: drive files whose folder and name cannot be a bag path (a "\\", a long name, a file where a folder is) go out and back',
  async (t) => {
    // Anyone who writes to the drive names its files (a phone, a third-party app's SDK token): one such name stopped the
    // whole account's export (`cannot put "drive/files/a\\b" in a bag`, then EEXIST for /Docs beside /Docs/x.txt).
    const { api } = await aliceCloud(t)
    const files = [
      { folder: '/', name: 'a\\b' },
      { folder: '/', name: 'Docs' },
      { folder: '/Docs', name: 'x.txt' },
      { folder: '/', name: 'é'.repeat(200) },
      { folder: '/back\\slash', name: 'in-folder.txt' },
      { folder: '/', name: 'plain.txt' },
    ]
    for (const [i, f] of files.entries())
      await api.bytes(
        'POST',
        `/api/accounts/alice/drive/files?name=${encodeURIComponent(f.name)}&folder=${encodeURIComponent(f.folder)}`,
        Buffer.from(`file ${i}`),
      )
    const dir = join(tempDir(t), 'out')
    await exportAccount(api, 'alice', dir, 'test', noProgress)
    const report = await validateBag(dir)
    t.same(report.problems, [], 'a valid bag')
    const listed = JSON.parse(readFileSync(join(dir, 'data/drive/files.json'), 'utf8')) as { id: string; name: string; path: string }[]
    const pathOf = (name: string): string | undefined => listed.find((f) => f.name === name)?.path
    t.equal(pathOf('plain.txt'), 'drive/files/plain.txt', 'a name that fits keeps its place')
    t.equal(pathOf('x.txt'), 'drive/files/Docs/x.txt')
    for (const name of ['a\\b', 'Docs', 'é'.repeat(200), 'in-folder.txt']) {
      const f = listed.find((l) => l.name === name)
      t.equal(f?.path, `drive/other/${f?.id}`, `${name.slice(0, 10)}: kept by its id`)
    }

    const dest = await startCloud(t)
    const destApi = new ConsoleClient(dest.apiUrl, dest.consoleToken)
    const contents = await readAccountBag(dir, report)
    if (Array.isArray(contents)) throw new Error('the bag should read')
    const reply = await importAccount(destApi, 'alice', contents, fromBag(dir), noProgress)
    t.match(reply, { failed: 0 })
    const arrived = dest.broker.cloud.drive.files.list('alice')
    t.same(
      arrived.map((f) => ({ folder: f.folder, name: f.name, sha256: f.sha256 })).sort((a, b) => (a.name < b.name ? -1 : 1)),
      files.map((f, i) => ({ ...f, sha256: sha(`file ${i}`) })).sort((a, b) => (a.name < b.name ? -1 : 1)),
      'every file back in its folder, under its name, byte for byte',
    )
  },
)

t.test(
  "M3: an export stopped by a drive file that arrived changed names it escaped: a drive file's name is whoever made it's",
  async (t) => {
    const { cloud, api } = await aliceCloud(t)
    const name = 'x\x1b[2J\nerror: forged.txt'
    await api.bytes('POST', `/api/accounts/alice/drive/files?name=${encodeURIComponent(name)}&folder=%2F`, Buffer.from('drive'))
    writeFileSync(join(cloud.dataDir, 'blobs', sha('drive').slice(0, 2), sha('drive')), 'drivE')
    await t.rejects(exportAccount(api, 'alice', join(tempDir(t), 'out'), 'test', noProgress), {
      message:
        `drive/files/x\\x1B[2J\\x0Aerror: forged.txt arrived as ${sha('drivE')}, not the ${sha('drive')} the cloud holds; ` +
        'the export stopped, run it again',
    })
  },
)
