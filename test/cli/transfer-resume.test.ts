/**
 * M3: an export cut short never leaves anything at --out that looks like a bag, and the same command run again
 * carries on from what was written: a real broker behind a proxy that cuts the connection mid-blob, the CLI driven
 * in-process. The bag is written in OUT.fakephone-partial (marked as fakephone's) and renamed to OUT only when whole.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateBag } from '../../common/bagit/validate.js'
import { BagWriter } from '../../common/bagit/write.js'
import { ConsoleClient } from '../../cli/console-client.js'
import { bagTo } from '../../cli/transfer/open-bag.js'
import { ManualClock } from '../../common/clock.js'
import { PhoneFiles } from '../../agent/phone-data/store.js'
import { noteItem, sha } from '../fixtures/sync-items.js'
import { startCloud, type Cloud } from '../fixtures/cloud.js'
import { httpFront } from '../fixtures/http.js'
import { run, testIo } from '../fixtures/io.js'
import { main } from '../../cli/main.js'
import { assertBuilt, cliCommand } from '../fixtures/child.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

const NOTES = { 'a.txt': 'a'.repeat(100_000), 'b.txt': 'b'.repeat(200_000), 'c.txt': 'c'.repeat(50_000) }

/** An account `cutx` holding three notes, on a real broker. */
async function seeded(t: Test): Promise<Cloud> {
  const cloud = await startCloud(t)
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  await api.request('/api/accounts/cutx/import', { account: { tier: 'free', premiumUntil: null, createdAt: 1 } })
  for (const body of Object.values(NOTES))
    await api.bytes('PUT', `/api/accounts/cutx/blobs/${sha(body)}?size=${body.length}&offset=0`, Buffer.from(body))
  await api.request('/api/accounts/cutx/import', { items: Object.entries(NOTES).map(([id, body]) => noteItem(id, body)) })
  return cloud
}

interface Cutter {
  url: string
  /** The blobs whose bytes were asked for, in order. */
  asked: string[]
  /** Cut the answer for this blob after its first kilobyte (and drop the connection), once. */
  cut?: string
  /** Hold the answer for this blob after its first kilobyte, once; `stalled` resolves then. */
  stall?: { sha256: string; stalled: () => void }
}

/** A proxy in front of the broker that can cut a blob's answer mid-way, as a lost connection does. */
async function cutter(t: Test, cloud: Cloud): Promise<Cutter> {
  const state: Cutter = { url: '', asked: [] }
  state.url = await httpFront(t, cloud.apiUrl, (req, res, forward) => {
    const blob = /\/blobs\/([0-9a-f]{64})\/content$/.exec(req.url as string)?.[1]
    if (blob !== undefined) state.asked.push(blob)
    forward((answer) => {
      const stall = state.stall
      if (stall !== undefined && blob === stall.sha256) {
        state.stall = undefined
        return void answer.once('data', (chunk: Buffer) => res.write(chunk.subarray(0, 1024), () => stall.stalled()))
      }
      if (blob === undefined || blob !== state.cut) return void answer.pipe(res)
      state.cut = undefined
      answer.once('data', (chunk: Buffer) => res.write(chunk.subarray(0, 1024), () => res.socket?.destroy()))
    })
  })
  return state
}

t.test(
  'M3: an export cut mid-blob leaves nothing at --out; the same command resumes, keeping the files whose checksums match',
  async (t) => {
    const cloud = await seeded(t)
    const proxy = await cutter(t, cloud)
    const parent = tempDir(t)
    const out = join(parent, 'bag')
    const partial = `${out}.fakephone-partial`
    const cmd = ['console', '--api', proxy.url, '--data', cloud.dataDir, 'export', 'cutx', '--out', out]

    proxy.cut = sha(NOTES['c.txt'])
    const cut = await run(cmd)
    t.equal(cut.code, 1)
    t.match(cut.err, /^error: notes\/c\.txt: the broker's answer broke off \(.+\); nothing at the cloud changed, run the export again\n/m)
    t.match(cut.err, `the part written is kept in ${partial}: run the same command again to carry on from it\n`)
    t.notOk(existsSync(out), 'nothing at --out: no part of a bag looks like a bag')
    t.same(readdirSync(parent), ['bag.fakephone-partial'])
    t.match(JSON.parse(readFileSync(join(partial, 'fakephone-partial.json'), 'utf8')), { format: 'fakephone-partial-bag/1', bag: out })
    const written = (id: string): string => readFileSync(join(partial, 'bag', 'data', 'notes', id), 'utf8')
    t.equal(written('a.txt'), NOTES['a.txt'], 'the blobs before the cut are whole')
    t.equal(written('b.txt'), NOTES['b.txt'])
    t.ok(written('c.txt').length < NOTES['c.txt'].length, 'the cut one is not')

    // Between the runs: a whole file damaged (same size), and files the account no longer has (a note deleted meanwhile).
    writeFileSync(join(partial, 'bag', 'data', 'notes', 'b.txt'), 'B'.repeat(NOTES['b.txt'].length))
    mkdirSync(join(partial, 'bag', 'data', 'old', 'deep'), { recursive: true })
    writeFileSync(join(partial, 'bag', 'data', 'old', 'deep', 'gone.txt'), 'gone')
    writeFileSync(join(partial, 'bag', 'data', 'notes', 'gone.txt'), 'gone')
    writeFileSync(join(partial, 'bag', 'bag-info.txt'), 'left: by the cut run\n')

    // Another export to the same --out running (its lock held by a live process: the one that runs these tests; not this
    // process, which runs the export itself, and a lock naming its own pid that it did not take is an earlier process's) refuses
    // this run, untouched.
    const since = '2026-12-06T00:00:00.000Z'
    writeFileSync(join(partial, 'export.lock'), JSON.stringify({ pid: process.ppid, startedAt: since, token: 'another' }))
    proxy.asked.length = 0
    const busy = await run(cmd)
    t.equal(busy.code, 1)
    t.equal(
      busy.err,
      `error: another export to ${out} is running (process ${process.ppid}, since ${since}): ` +
        'wait for it to finish, or give this one another --out\n',
    )
    t.same(proxy.asked, [], 'nothing downloaded')
    t.equal(readFileSync(join(partial, 'bag', 'bag-info.txt'), 'utf8'), 'left: by the cut run\n', 'its files untouched')
    rmSync(join(partial, 'export.lock'))
    const again = await run(cmd)
    t.equal(again.code, 0, again.err)
    t.equal(
      again.err,
      `resuming the interrupted export in ${partial}: files already written are checked and kept when their checksums match\n`,
    )
    t.match(
      again.out,
      /^Exported account cutx to .*: 3 items, 0 drive files, 0 backups, \d+ files, [\d.() a-zA-Z-]+\. 1 file \(100000 bytes\) /,
    )
    t.same(
      proxy.asked,
      [sha(NOTES['b.txt']), sha(NOTES['c.txt'])],
      'a.txt was kept, not downloaded again; the damaged b.txt and the cut c.txt were',
    )
    t.same(readdirSync(parent), ['bag'], 'the partial folder is gone')
    const report = await validateBag(out)
    t.same(report.problems, [], 'the resumed bag is whole and holds nothing the account does not')
    t.notOk(existsSync(join(out, 'data', 'old')), 'an emptied folder goes too')
    for (const [id, body] of Object.entries(NOTES)) t.equal(readFileSync(join(out, 'data', 'notes', id), 'utf8'), body)
  },
)

t.test('M3: an export refused before any file is written (a wrong console token, an unknown account) leaves nothing behind', async (t) => {
  const cloud = await seeded(t)
  const parent = tempDir(t)
  const out = join(parent, 'bag')
  const badToken = join(parent, 'wrong.token')
  writeFileSync(badToken, 'not-the-token\n')
  for (const [why, argv] of [
    ['wrong token', ['--token-file', badToken, 'export', 'cutx', '--out', out]],
    ['unknown account', ['export', 'nobody', '--out', out]],
  ] as const) {
    const got = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...argv])
    t.equal(got.code, 1, why)
    t.match(got.err, /^error: /, why)
    t.notMatch(got.err, /the part written is kept/, `${why}: no part to carry on`)
    t.same(readdirSync(parent), ['wrong.token'], `${why}: no bag, no partial folder`)
  }
})

t.test('M3: the tar is put at --out only whole; a second run resumes, and what is at --out already is refused untouched', async (t) => {
  const cloud = await seeded(t)
  const proxy = await cutter(t, cloud)
  const parent = tempDir(t)
  const tar = join(parent, 'bag.tar')
  const cmd = ['console', '--api', proxy.url, '--data', cloud.dataDir, 'export', 'cutx', '--out', tar, '--format', 'tar']
  proxy.cut = sha(NOTES['b.txt'])
  t.equal((await run(cmd)).code, 1)
  t.same(readdirSync(parent), ['bag.tar.fakephone-partial'], 'no tar, cut short or whole')
  proxy.asked.length = 0
  const again = await run(['console', '--json', ...cmd.slice(1)])
  t.equal(again.code, 0, again.err)
  t.match(again.err, /^resuming the interrupted export in /)
  t.match(JSON.parse(again.out), { bag: tar, format: 'tar', kept: { files: 1, bytes: 100_000 } })
  t.same(proxy.asked, [sha(NOTES['b.txt']), sha(NOTES['c.txt'])], 'a.txt kept; c.txt, never reached, fetched')
  t.same(readdirSync(parent), ['bag.tar'])
  t.equal((await run(['bag', 'validate', tar])).code, 0)

  // Something at --out already: refused before a byte is read, left as it is, and no partial folder made.
  proxy.asked.length = 0
  const taken = await run(cmd)
  t.equal(taken.code, 1)
  t.equal(taken.err, `error: ${tar} exists: the tar goes to a new file; give another --out or move it away\n`)
  const full = join(parent, 'full')
  mkdirSync(full)
  writeFileSync(join(full, 'mine.txt'), 'mine')
  const dirCmd = ['console', '--api', proxy.url, '--data', cloud.dataDir, 'export', 'cutx', '--out', full]
  t.equal(
    (await run(dirCmd)).err,
    `error: ${full} is not empty: a bag goes into a new or empty directory; give another --out or move it away\n`,
  )
  writeFileSync(join(parent, 'file'), 'mine')
  t.match((await run([...dirCmd.slice(0, -1), join(parent, 'file')])).err, /file is not empty/)
  t.same(proxy.asked, [], 'nothing was downloaded')
  t.same(readdirSync(parent).sort(), ['bag.tar', 'file', 'full'])
  t.same(readdirSync(full), ['mine.txt'])

  // An empty directory at --out is where the bag goes.
  const empty = join(parent, 'empty')
  mkdirSync(empty)
  t.equal((await run([...dirCmd.slice(0, -1), empty])).code, 0)
  t.same((await validateBag(empty)).problems, [])

  // A folder by the partial's name that fakephone did not make (no marker, or another file under its name) is never used or removed.
  const other = join(parent, 'other')
  for (const marker of [undefined, 'not json', '{"format": "something else"}']) {
    mkdirSync(`${other}.fakephone-partial`, { recursive: true })
    writeFileSync(join(`${other}.fakephone-partial`, 'keep.txt'), "the user's")
    if (marker !== undefined) writeFileSync(join(`${other}.fakephone-partial`, 'fakephone-partial.json'), marker)
    const refused = await run([...dirCmd.slice(0, -1), other])
    t.equal(
      refused.err,
      `error: ${other}.fakephone-partial is in the way: fakephone writes an unfinished bag there, but this is not one of its own; ` +
        'move it away and run again\n',
    )
    t.equal(readFileSync(join(`${other}.fakephone-partial`, 'keep.txt'), 'utf8'), "the user's")
  }
  t.notOk(existsSync(other))
})

t.test('M3: what appears at --out while the bag is written is not replaced; the whole bag waits in the partial folder', async (t) => {
  const parent = tempDir(t)
  const writeAnd = (put: (out: string) => void, out: string) => async (dir: string) => {
    const bag = await BagWriter.create(dir)
    await bag.add('a.txt', 'a')
    await bag.finish({}, 0)
    put(out)
  }
  const dir = join(parent, 'd')
  await t.rejects(
    bagTo(
      dir,
      false,
      0,
      writeAnd((out) => (mkdirSync(out), writeFileSync(join(out, 'x'), 'x')), dir),
    ),
    { message: `${dir} is not empty: a bag goes into a new or empty directory; give another --out or move it away` },
  )
  t.same(readdirSync(dir), ['x'])
  const tar = join(parent, 't.tar')
  await t.rejects(
    bagTo(
      tar,
      true,
      0,
      writeAnd((out) => writeFileSync(out, 'mine'), tar),
    ),
    { message: /t\.tar exists/ },
  )
  t.equal(readFileSync(tar, 'utf8'), 'mine')
  t.same(readdirSync(parent).sort(), ['d', 'd.fakephone-partial', 't.tar', 't.tar.fakephone-partial'])
})

t.test('M3: `phone export` shares it: an unfinished phone bag is carried on, what the phone no longer has removed', async (t) => {
  const phoneDir = tempDir(t)
  const files = new PhoneFiles({ dataDir: phoneDir, clock: new ManualClock() })
  await files.add({ category: 'notes', title: 'Ideas', body: 'export everything' })
  const out = join(tempDir(t), 'phone-bag')
  // A run that stopped part-way (the process killed): the partial folder with some of a bag, and a stray tag file.
  await t.rejects(
    bagTo(out, false, 0, async (dir) => {
      const bag = await BagWriter.create(dir)
      await bag.add('notes/deleted-since.txt', 'old')
      writeFileSync(join(dir, 'manifest-sha256.txt'), 'half')
      throw new Error('killed')
    }),
    { message: 'killed' },
  )
  const resumed = await run(['phone', '--data', phoneDir, 'export', '--out', out])
  t.equal(resumed.code, 0, resumed.err)
  t.match(resumed.err, /^resuming the interrupted export in .*phone-bag\.fakephone-partial/)
  t.match(resumed.out, /^Exported the phone to .*phone-bag: 1 item, 3 files, \d+ bytes \(Payload-Oxum \d+\.3\)\.\n$/)
  t.same((await validateBag(out)).problems, [])
  t.notOk(existsSync(`${out}.fakephone-partial`))
})

t.test('M3: Ctrl-C in the middle of an export says where the part written is kept and that the same command carries it on', async (t) => {
  // The README promises that line for a Ctrl-C too; the interruption ended the command before the export could say it.
  const cloud = await seeded(t)
  const proxy = await cutter(t, cloud)
  const parent = tempDir(t)
  const out = join(parent, 'bag')
  const stalled = new Promise<void>((stalled) => (proxy.stall = { sha256: sha(NOTES['b.txt']), stalled }))
  const ctrlC = testIo()
  const exporting = main(['console', '--api', proxy.url, '--data', cloud.dataDir, 'export', 'cutx', '--out', out], ctrlC.io)
  await stalled
  ctrlC.abort()
  t.equal(await exporting, 130)
  t.equal(
    ctrlC.err(),
    'interrupted: fakephone console export stopped before it finished\n' +
      `the part written is kept in ${out}.fakephone-partial: run the same command again to carry on from it\n`,
  )
  t.same(readdirSync(parent), ['bag.fakephone-partial'], 'nothing at --out')
})

t.test('M3: an export killed mid-blob (SIGKILL, the built CLI) leaves nothing at --out; the same command carries it on', async (t) => {
  assertBuilt()
  const cloud = await seeded(t)
  const proxy = await cutter(t, cloud)
  const parent = tempDir(t)
  const out = join(parent, 'bag')
  const cmd = ['console', '--api', proxy.url, '--data', cloud.dataDir, 'export', 'cutx', '--out', out]
  const stalled = new Promise<void>((stalled) => (proxy.stall = { sha256: sha(NOTES['b.txt']), stalled }))
  const child = spawn(...cliCommand(cmd), { stdio: 'ignore' })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_, signal) => resolve(signal)))
  onEnd(t, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  })
  await stalled
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL')
  t.same(readdirSync(parent), ['bag.fakephone-partial'], 'nothing at --out')
  t.equal(readFileSync(join(`${out}.fakephone-partial`, 'bag', 'data', 'notes', 'a.txt'), 'utf8'), NOTES['a.txt'])

  proxy.asked.length = 0
  const again = await run(cmd)
  t.equal(again.code, 0, again.err)
  t.match(again.err, /^resuming the interrupted export in /)
  t.match(again.out, / 1 file \(100000 bytes\) kept from the interrupted run\.\n$/)
  t.same(proxy.asked, [sha(NOTES['b.txt']), sha(NOTES['c.txt'])])
  t.same((await validateBag(out)).problems, [])
  t.same(readdirSync(parent), ['bag'])
})
