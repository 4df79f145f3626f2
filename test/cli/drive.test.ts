/** The drive's commands (D1-D3, D5), in-process against a real broker and agent: console drive ..., phone drive ... */
import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderDriveFiles } from '../../cli/drive-commands.js'
import { DOWNLOAD_SUFFIX } from '../../common/save-file.js'
import { deviceOnDisk, startCloud } from '../fixtures/cloud.js'
import { closedPort } from '../fixtures/ports.js'
import { run } from '../fixtures/io.js'
import { startCliAgent } from '../fixtures/cli-agent.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

t.test(
  'D1-D3 from the command line: the phone uploads, syncs and shares; the console lists, downloads, shares, deletes and issues ' +
    'SDK tokens; off, both say so',
  async (t) => {
    const cloud = await startCloud(t)
    const { secretFile, phoneDir } = await deviceOnDisk(t, cloud)
    const phone = ['phone', '--data', phoneDir]
    const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
    const { io: agentIo, running } = await startCliAgent(t, cloud, { secretFile, phoneDir })
    const work = tempDir(t)

    t.equal((await run([...phone, 'drive', 'list'])).out, 'The drive is empty.\n')
    const note = join(work, 'note.txt')
    writeFileSync(note, 'hello drive')
    const up = await run([...phone, 'drive', 'upload', note, '--folder', '/Docs'])
    t.match(up.out, /^Uploaded note\.txt \(11 B\) as (\S+)\.\n$/)
    const id = /as (\S+)\.\n/.exec(up.out)?.[1] as string
    t.match(JSON.parse((await run([...phone, '--json', 'drive', 'upload', note])).out), { file: { name: 'note.txt', folder: '/' } })
    const listed = await run([...phone, 'drive', 'list'])
    t.match(
      listed.out,
      /^ID\s+FILE\s+SIZE\s+UPDATED \(UTC\)\s+BY\n\S+\s+\/note\.txt\s+11 B\s+2026-01-01 00:00:00\s+phone-a\n\S+\s+\/Docs\/note\.txt\s+11 B/,
    )
    const saved = join(work, 'copy.txt')
    t.equal((await run([...phone, 'drive', 'download', id, saved])).out, `Saved note.txt to ${saved}.\n`)
    t.equal(readFileSync(saved, 'utf8'), 'hello drive')
    // D1 on a full disk (a real ENOSPC: the temporary file beside the target is /dev/full): the file there survives whole.
    writeFileSync(saved, 'my own edits')
    symlinkSync('/dev/full', `${saved}${DOWNLOAD_SUFFIX}`)
    t.match(await run([...phone, 'drive', 'download', id, saved]), { code: 1, err: /ENOSPC/ })
    t.equal(readFileSync(saved, 'utf8'), 'my own edits', 'the file at the path is untouched')
    t.same(readdirSync(work).sort(), ['copy.txt', 'note.txt'], 'and no temporary or truncated file is left beside it')
    t.match((await run([...phone, 'drive', 'share', id])).out, new RegExp(`^${cloud.apiUrl}/share/\\S+\\n$`))

    mkdirSync(join(phoneDir, 'sdcard', 'Drive'), { recursive: true })
    writeFileSync(join(phoneDir, 'sdcard', 'Drive', 'synced.txt'), 'from the folder')
    t.equal(
      (await run([...phone, 'drive', 'sync', 'off'])).out,
      'Drive sync is off. Files already in the cloud drive stay there, with the same access.\n',
      'D2: one sentence, no repeated words, and it says nothing was deleted',
    )
    t.equal(
      (await run([...phone, 'drive', 'sync', 'now'])).out,
      'Drive sync is off, so nothing was uploaded (turn it on with: drive sync on).\n',
      'D2: sync now while off says why nothing went up',
    )
    t.equal((await run([...phone, 'drive', 'sync', 'on'])).out, 'Drive sync is on; 1 file uploaded.\n', 'D1')
    t.match(JSON.parse((await run([...phone, '--json', 'drive', 'sync', 'now'])).out), { sync: true, uploaded: [] })
    t.match((await run([...phone, 'drive', 'sync', 'maybe'])).err, /drive sync takes on, off or now/)

    const consoleList = await run([...api, 'drive', 'list', 'alice'])
    t.match(consoleList.out, /\/synced\.txt\s+15 B/)
    t.equal(JSON.parse((await run([...api, '--json', 'drive', 'list', 'alice'])).out).files.length, 3)
    const report = join(work, 'report.csv')
    writeFileSync(report, 'a,b\n1,2\n')
    const cup = await run([...api, 'drive', 'upload', 'alice', report, '--name', 'q1.csv', '--folder', '/Reports'])
    t.match(cup.out, /^Uploaded q1\.csv \(8 B\) as (\S+)\.\n$/)
    const cid = /as (\S+)\.\n/.exec(cup.out)?.[1] as string
    t.match(JSON.parse((await run([...api, '--json', 'drive', 'upload', 'alice', report])).out), {
      name: 'report.csv',
      uploadedBy: 'console',
    })
    t.match((await run([...api, 'drive', 'upload', 'alice', join(work, 'missing')])).err, /cannot read .*missing: ENOENT/)
    const back = join(work, 'back.csv')
    t.equal((await run([...api, 'drive', 'download', 'alice', cid, back])).out, `Saved 8 B to ${back}.\n`)
    t.equal(readFileSync(back, 'utf8'), 'a,b\n1,2\n')
    // A real full disk: /dev/full takes no byte (a device is written to, not replaced). The user is told why, not shown a
    // stack trace.
    const full = await run([...api, 'drive', 'download', 'alice', cid, '/dev/full'])
    t.match(full, { code: 1, err: /^error: the disk is full \(ENOSPC\): ENOSPC: no space left on device/ })
    // The disk fills while the file is written beside a file of the same name: that file survives whole, nothing else stays.
    writeFileSync(back, 'my own numbers')
    symlinkSync('/dev/full', `${back}${DOWNLOAD_SUFFIX}`)
    t.match(await run([...api, 'drive', 'download', 'alice', cid, back]), { code: 1, err: /^error: the disk is full \(ENOSPC\)/ })
    t.equal(readFileSync(back, 'utf8'), 'my own numbers', 'the file at the path is untouched')
    t.notOk(existsSync(`${back}${DOWNLOAD_SUFFIX}`), 'the temporary file is removed')
    const fresh = join(work, 'fresh.csv')
    symlinkSync('/dev/full', `${fresh}${DOWNLOAD_SUFFIX}`)
    t.match(await run([...api, 'drive', 'download', 'alice', cid, fresh]), { code: 1, err: /ENOSPC/ })
    t.same(
      readdirSync(work).filter((n) => n.startsWith('fresh')),
      [],
      'a download to a new path leaves no truncated file',
    )
    // Bytes that do not hash to the file's SHA-256 (damaged on the cloud's disk) are not saved either.
    const { sha256 } = cloud.broker.cloud.drive.files.list('alice').find((f) => f.id === cid) as { sha256: string }
    const blob = join(cloud.dataDir, 'blobs', sha256.slice(0, 2), sha256)
    const good = readFileSync(blob)
    writeFileSync(blob, 'a,b\n6,6\n')
    t.match(await run([...api, 'drive', 'download', 'alice', cid, back]), { code: 1, err: /arrived damaged .*nothing was saved/ })
    t.equal(readFileSync(back, 'utf8'), 'my own numbers')
    writeFileSync(blob, good)
    t.equal((await run([...api, 'drive', 'download', 'alice', cid, back])).code, 0)
    t.equal(readFileSync(back, 'utf8'), 'a,b\n1,2\n', 'once there is room, the whole file replaces it')
    const shared = await run([...api, 'drive', 'share', 'alice', cid])
    const token = /unshare alice (\S+)\)/.exec(shared.out)?.[1] as string
    t.match(shared.out, new RegExp(`^${cloud.apiUrl}/share/${token}\\n`))
    t.equal(await (await fetch(`${cloud.apiUrl}/share/${token}`)).text(), 'a,b\n1,2\n')
    t.equal((await run([...api, 'drive', 'unshare', 'alice', token])).out, 'Share link revoked.\n')
    t.equal((await fetch(`${cloud.apiUrl}/share/${token}`)).status, 404)
    t.equal((await run([...api, 'drive', 'delete', 'alice', cid])).out, 'Deleted q1.csv.\n')
    // A drive file's name is whoever uploaded it's (a phone, a shared account): shown escaped, one line.
    const odd = await run([...api, 'drive', 'upload', 'alice', report, '--name', 'q\x1b[2J\nforged\\x41.csv'])
    t.match(odd.out, /^Uploaded q\\x1B\[2J\\x0Aforged\\\\x41\.csv \(8 B\) as (\S+)\.\n$/)
    const oddId = /as (\S+)\.\n/.exec(odd.out)?.[1] as string
    t.equal((await run([...api, 'drive', 'delete', 'alice', oddId])).out, 'Deleted q\\x1B[2J\\x0Aforged\\\\x41.csv.\n')
    t.match((await run([...api, 'drive', 'download', 'alice', cid, back])).err, /is not in account "alice"/)

    const issued = await run([...api, 'drive', 'token', 'alice', '--app', 'gallery'])
    const [sdk, line] = issued.out.split('\n') as [string, string]
    const tokenId = /SDK token (\S+) for gallery/.exec(line)?.[1] as string
    const picker = await fetch(`${cloud.apiUrl}/sdk/v1/files`, { headers: { authorization: `Bearer ${sdk}` } })
    t.equal(((await picker.json()) as { files: unknown[] }).files.length, 4, 'the issued token opens the SDK')
    t.equal((await run([...api, 'drive', 'revoke-token', 'alice', tokenId])).out, 'SDK token revoked.\n')
    t.equal((await fetch(`${cloud.apiUrl}/sdk/v1/files`, { headers: { authorization: `Bearer ${sdk}` } })).status, 401)
    t.match((await run([...api, 'drive', 'token', 'alice'])).err, /required option '--app <name>'/)

    const off = once(cloud.broker.cloud.accounts, 'service-off')
    await run([...phone, 'cloud-service', 'off'])
    await off
    t.equal((await run([...phone, 'drive', 'list'])).out, 'cloud service is not enabled, enable it in settings\n', 'D3: the phone says so')
    t.match(JSON.parse((await run([...phone, '--json', 'drive', 'list'])).out), { files: [], notice: /not enabled/ })
    t.match((await run([...phone, 'drive', 'upload', note])).err, /cloud service is not enabled, enable it in settings/)
    t.match((await run([...api, 'drive', 'list', 'alice'])).err, /cloud service is not enabled/, 'D3: the console says so')
    t.match((await run([...api, 'drive', 'download', 'alice', id, back])).err, /cloud service is not enabled/)

    agentIo.abort()
    t.equal(await running, 0)
  },
)

t.test('the console says when the broker is not there or does not answer like one', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end('bad gateway')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onEnd(t, () => new Promise((resolve) => server.close(resolve)))
  const cloud = await startCloud(t)
  const { port } = server.address() as { port: number }
  const proxy = await run([
    'console',
    '--api',
    `http://127.0.0.1:${port}`,
    '--data',
    cloud.dataDir,
    'drive',
    'download',
    'alice',
    'x',
    join(tempDir(t), 'x'),
  ])
  t.match(proxy.err, /HTTP 502/)
  const goneUrl = `http://127.0.0.1:${await closedPort()}`
  const gone = await run(['console', '--api', goneUrl, '--data', cloud.dataDir, 'drive', 'download', 'alice', 'x', join(tempDir(t), 'x')])
  t.match(gone.err, `cannot reach the broker's HTTP API at ${goneUrl} (--api): `)
})

t.test('the drive table puts the folder before the name and a notice instead of an empty table', (t) => {
  const file = {
    id: 'f1',
    name: 'a.txt',
    folder: '/x',
    sha256: '0'.repeat(64),
    size: 2048,
    createdAt: 0,
    updatedAt: 0,
    uploadedBy: 'console',
  }
  t.equal(renderDriveFiles([file]), 'ID  FILE      SIZE    UPDATED (UTC)        BY\nf1  /x/a.txt  2.0 KB  1970-01-01 00:00:00  console\n')
  t.equal(renderDriveFiles([], 'off'), 'off\n')
  t.end()
})
