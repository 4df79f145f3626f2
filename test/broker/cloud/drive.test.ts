/** The cloud drive (D1-D5, A1, A3) end to end: real broker, real agents, real HTTP, a manual clock. */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Agent } from '../../../agent/agent.js'
import { PHONE_NOT_ENABLED, PhoneDrive } from '../../../agent/drive/phone-drive.js'
import { driveFolder } from '../../../agent/drive/drive-settings.js'
import { CloudClient } from '../../../agent/cloud-client.js'
import { DeviceCredentials } from '../../../agent/credentials.js'
import { DEFAULT_ACCOUNT_RULES } from '../../../broker/cloud/accounts.js'
import { DEFAULT_CLOUD_DATA_OPTIONS } from '../../../broker/cloud/cloud-data.js'
import { utcDate, type ManualClock } from '../../../common/clock.js'
import { SdkFailedListSchema, type DriveFile } from '../../../common/cloud/drive-api.js'
import { addDevice, agentConnected, startAgent, startCloud, type Cloud } from '../../fixtures/cloud.js'
import type { LogLine } from '../../fixtures/logs.js'
import { tempDir } from '../../fixtures/scope.js'

const DAY = 86_400_000
const HOUR = 3_600_000

interface Call {
  status: number
  body: unknown
  bytes: Buffer
}

/** One HTTP call to the cloud as console (`console`), a device (`basic:id:secret`), an SDK app (a token) or nobody. */
async function call(cloud: Cloud, method: string, path: string, as: string | null, body?: Buffer | object): Promise<Call> {
  const headers: Record<string, string> = {}
  if (as === 'console') headers.authorization = `Bearer ${cloud.consoleToken}`
  else if (as?.startsWith('basic:')) headers.authorization = `Basic ${Buffer.from(as.slice(6)).toString('base64')}`
  else if (as !== null) headers.authorization = `Bearer ${as}`
  const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body)
  const res = await fetch(new URL(path, cloud.apiUrl), { method, headers, body: raw })
  const bytes = Buffer.from(await res.arrayBuffer())
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString())
  } catch {
    parsed = null
  }
  return { status: res.status, body: parsed, bytes }
}

/** The next log line with `msg`, not one already logged. */
function nextLog(cloud: Cloud, msg: string): Promise<LogLine> {
  const seen = cloud.logs.lines.filter((l) => l.msg === msg).length
  return cloud.logs.waitFor((l) => l.msg === msg && cloud.logs.lines.filter((x) => x.msg === msg).length > seen)
}

const files = (c: Call): DriveFile[] => (c.body as { files: DriveFile[] }).files

async function serviceOff(cloud: Cloud, agent: Agent): Promise<void> {
  const off = once(cloud.broker.cloud.accounts, 'service-off')
  await agent.setSwitch('cloudService', false)
  await off
}

async function serviceOn(cloud: Cloud, agent: Agent): Promise<void> {
  const on = once(cloud.broker.cloud.accounts, 'service-on')
  await agent.setSwitch('cloudService', true)
  await on
  await agentConnected(agent)
}

async function phone(
  t: Test,
  opts: Parameters<typeof startCloud>[1] = {},
): Promise<{ cloud: Cloud; clock: ManualClock; agent: Agent; secret: string; dataDir: string }> {
  const cloud = await startCloud(t, opts)
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const dataDir = tempDir(t, 'fakephone-phone-')
  // A heartbeat a day: these tests jump the clock by days, and at the usual 30 s the jumps fired 100,000 heartbeats.
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, heartbeatMs: DAY })
  await agentConnected(agent)
  return { cloud, clock: cloud.clock as ManualClock, agent, secret, dataDir }
}

function localFile(t: Test, name: string, text: string): string {
  const path = join(tempDir(t), name)
  writeFileSync(path, text)
  return path
}

async function sdkToken(cloud: Cloud, app = 'notes-app'): Promise<{ id: string; token: string }> {
  const issued = await call(cloud, 'POST', '/api/accounts/alice/drive/tokens', 'console', { app })
  return issued.body as { id: string; token: string }
}

t.test(
  'D1 a file uploaded from the phone downloads from the console, the SDK and a share link; console and SDK uploads reach the phone',
  async (t) => {
    const { cloud, agent, dataDir, secret } = await phone(t)
    const uploaded = await agent.drive.upload(localFile(t, 'report.txt', 'quarterly numbers'))
    t.match(uploaded, { name: 'report.txt', folder: '/', size: 17, uploadedBy: 'phone-a' })

    const listed = await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console')
    t.same(
      files(listed).map((f) => f.id),
      [uploaded.id],
      'the console lists it',
    )
    const fromConsole = await call(cloud, 'GET', `/api/accounts/alice/drive/files/${uploaded.id}/content`, 'console')
    t.equal(fromConsole.bytes.toString(), 'quarterly numbers', 'the console downloads it')

    const { token, id: tokenId } = await sdkToken(cloud)
    const picked = await call(cloud, 'GET', '/sdk/v1/files', token)
    t.equal(picked.status, 200)
    t.same(
      files(picked).map((f) => f.name),
      ['report.txt'],
      "the SDK's file picker shows it",
    )
    t.equal(
      (await call(cloud, 'GET', `/sdk/v1/files/${uploaded.id}/content`, token)).bytes.toString(),
      'quarterly numbers',
      'the SDK downloads it',
    )
    const bySdk = await call(cloud, 'POST', '/sdk/v1/files?name=todo.md&folder=%2FNotes', token, Buffer.from('- buy milk'))
    t.equal(bySdk.status, 201)
    t.match(bySdk.body, { file: { name: 'todo.md', folder: '/Notes', uploadedBy: 'sdk:notes-app' } })
    t.match(
      await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=empty.txt', 'console', Buffer.alloc(0)),
      { status: 201, body: { file: { size: 0 } } },
      'an empty file is a file',
    )
    const driveFiles = files(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console'))
    const empty = driveFiles.find((f) => f.name === 'empty.txt') as DriveFile
    t.equal((await call(cloud, 'DELETE', `/api/accounts/alice/drive/files/${empty.id}`, 'console')).status, 200)
    const byConsole = await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=plan.txt', 'console', Buffer.from('the plan'))
    t.match(byConsole.body, { file: { name: 'plan.txt', folder: '/', uploadedBy: 'console' } })

    const onPhone = await agent.drive.list()
    t.same(
      onPhone.files.map((f) => `${f.folder}:${f.name}`),
      ['/:plan.txt', '/:report.txt', '/Notes:todo.md'],
      'the phone sees every file',
    )
    const todo = (bySdk.body as { file: DriveFile }).file
    const dest = join(dataDir, 'sdcard', 'Download', 'todo.md')
    await agent.drive.download(todo.id, dest)
    t.equal(readFileSync(dest, 'utf8'), '- buy milk', 'the phone downloads what the SDK uploaded')
    await t.rejects(agent.drive.download('nope', dest), { code: 'NOT_FOUND' })

    const link = await agent.drive.share(uploaded.id)
    t.match(link.url, new RegExp(`^${cloud.apiUrl}/share/fps_[\\w-]{32}$`), 'a token that cannot be taken for a command-line option')
    const shared = await fetch(link.url)
    t.equal(shared.status, 200)
    t.equal(await shared.text(), 'quarterly numbers', 'anyone with the link downloads it, with no credentials')
    t.match(shared.headers.get('content-disposition'), /filename\*=UTF-8''report\.txt/)
    const revoke = await call(cloud, 'DELETE', `/cloud/v1/drive/shares/${link.token}`, `basic:phone-a:${secret}`)
    t.equal(revoke.status, 200)
    t.match(await call(cloud, 'GET', `/share/${link.token}`, null), { status: 404, body: { code: 'NOT_FOUND' } }, 'a revoked link is dead')
    const consoleLink = await call(cloud, 'POST', `/api/accounts/alice/drive/files/${uploaded.id}/shares`, 'console')
    t.equal(consoleLink.status, 201)
    const consoleToken = (consoleLink.body as { token: string }).token
    t.equal((await call(cloud, 'GET', `/share/${consoleToken}`, null)).bytes.toString(), 'quarterly numbers')
    t.equal((await call(cloud, 'DELETE', `/api/accounts/alice/drive/shares/${consoleToken}`, 'console')).status, 200)
    t.match(await call(cloud, 'DELETE', `/api/accounts/alice/drive/shares/${consoleToken}`, 'console'), {
      status: 404,
      body: { error: /revoked already/ },
    })

    const used = cloud.broker.cloud.accounts.need('alice').usedBytes
    t.equal(used, 17 + 10 + 8, 'every file counts against the quota')
    const deleted = await call(cloud, 'DELETE', `/api/accounts/alice/drive/files/${todo.id}`, 'console')
    t.match(deleted.body, { file: { id: todo.id } })
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, used - 10, 'a deleted file gives its quota back')
    t.match(await call(cloud, 'GET', `/api/accounts/alice/drive/files/${todo.id}/content`, 'console'), {
      status: 404,
      body: { error: /drive file ".*" is not in account "alice"/ },
    })
    t.match(await call(cloud, 'POST', '/api/accounts/alice/drive/files/nope/shares', 'console'), { status: 404 })
    t.match(await call(cloud, 'GET', '/api/accounts/nobody/drive/files', 'console'), {
      status: 404,
      body: { error: 'account "nobody" not found' },
    })

    t.match(
      await call(cloud, 'GET', '/sdk/v1/files', 'fpd_not-a-token'),
      { status: 401, body: { code: 'UNAUTHORIZED', error: /drive SDK token/ } },
      'a bad SDK token is refused',
    )
    t.match(await call(cloud, 'GET', '/sdk/v1/files', cloud.consoleToken), { status: 401 }, 'the console token is no SDK token')
    t.equal((await call(cloud, 'DELETE', `/api/accounts/alice/drive/tokens/${tokenId}`, 'console')).status, 200)
    t.match(await call(cloud, 'GET', '/sdk/v1/files', token), { status: 401 }, 'a revoked SDK token is refused')
    t.match(await call(cloud, 'DELETE', `/api/accounts/alice/drive/tokens/${tokenId}`, 'console'), { status: 404 })
    t.match(await call(cloud, 'POST', '/api/accounts/alice/drive/tokens', 'console', { app: '' }), { status: 400 })

    t.match(await call(cloud, 'POST', '/api/accounts/alice/drive/files', 'console', Buffer.from('x')), {
      status: 400,
      body: { error: /give the file a name/ },
    })
    t.match(await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=a&folder=..', 'console', Buffer.from('x')), {
      status: 400,
      body: { error: /folder must be/ },
    })
    const device = `basic:phone-a:${secret}`
    t.match(await call(cloud, 'POST', '/cloud/v1/drive/files', device, { name: 'x', sha256: 'a'.repeat(64), size: 1 }), {
      status: 409,
      body: { error: /upload it to \/cloud\/v1\/blobs first/ },
    })
    t.match(await call(cloud, 'POST', '/cloud/v1/drive/files', device, { name: '../x', sha256: 'a'.repeat(64), size: 1 }), { status: 400 })
    t.match(
      await call(cloud, 'POST', '/cloud/v1/drive/files', device, { name: '..', folder: '/a/../b', sha256: 'a'.repeat(64), size: 1 }),
      { status: 400 },
    )
    t.equal((await call(cloud, 'DELETE', `/cloud/v1/drive/files/${uploaded.id}`, device)).status, 200, 'the phone deletes a file too')
  },
)

t.test(
  "D1 D2 the phone's Drive folder syncs while drive sync is on; off uploads nothing more and deletes nothing, every file keeps its access",
  async (t) => {
    const { cloud, clock, agent, dataDir } = await phone(t)
    const folder = driveFolder(dataDir)
    t.same(await agent.drive.sync(), { uploaded: [] }, 'no Drive folder yet: nothing to do')
    mkdirSync(join(folder, 'Trips'), { recursive: true })
    writeFileSync(join(folder, 'a.txt'), 'first')
    writeFileSync(join(folder, 'Trips', 'b.txt'), 'second')
    t.same(await agent.drive.sync(), { uploaded: ['Trips/b.txt', 'a.txt'] })
    t.same(await agent.drive.sync(), { uploaded: [] }, 'unchanged files are not sent again')
    const before = files(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console'))
    t.same(
      before.map((f) => `${f.folder}:${f.name}`),
      ['/:a.txt', '/Trips:b.txt'],
    )

    writeFileSync(join(folder, 'a.txt'), 'first, edited')
    const edited = nextLog(cloud, 'drive folder synced')
    clock.advance(5 * 60_000)
    await edited
    const after = files(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console'))
    const a = after.find((f) => f.name === 'a.txt') as DriveFile
    t.equal(a.id, before.find((f) => f.name === 'a.txt')?.id, 'an edited file replaces its cloud copy (the schedule synced it)')
    t.equal(a.size, 13)
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, 13 + 6, 'the quota counts the new size only')

    t.same(await agent.drive.setSync(false), { uploaded: [], skipped: 'drive sync is off' })
    writeFileSync(join(folder, 'c.txt'), 'third')
    clock.advance(5 * 60_000)
    t.same(await agent.drive.sync(), { uploaded: [], skipped: 'drive sync is off' }, 'D2: sync off uploads nothing')
    t.equal(agent.drive.syncOn, false)
    const kept = files(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console'))
    t.same(
      kept.map((f) => f.name),
      ['a.txt', 'b.txt'],
      'D2: every file is still in the cloud',
    )
    const { token } = await sdkToken(cloud)
    t.same(
      files(await call(cloud, 'GET', '/sdk/v1/files', token)).map((f) => f.name),
      ['a.txt', 'b.txt'],
      'the SDK sees them',
    )
    t.equal((await call(cloud, 'GET', `/sdk/v1/files/${a.id}/content`, token)).bytes.toString(), 'first, edited', 'and downloads them')
    t.equal((await agent.drive.list()).files.length, 2, 'the phone lists them')

    t.same(await agent.drive.setSync(true), { uploaded: ['c.txt'] }, 'sync on uploads what waited')

    await agent.setNetwork('none')
    await t.rejects(agent.drive.list(), { code: 'NO_NETWORK', message: /needs Wi-Fi or mobile data/ }, 'no network, no drive')
    writeFileSync(join(folder, 'd.txt'), 'fourth')
    t.match(await agent.drive.sync(), { uploaded: [], skipped: /no network/ })
    const resumed = nextLog(cloud, 'drive folder synced')
    await agent.setNetwork('wifi')
    await resumed
    t.equal(cloud.broker.cloud.drive.files.count('alice'), 4, 'the network back, the folder syncs at once')
  },
)

t.test(
  'D3 D5 with the cloud service off every entry point answers "cloud service is not enabled" and the phone shows no drive',
  async (t) => {
    const { cloud, agent, secret } = await phone(t)
    const file = await agent.drive.upload(localFile(t, 'a.txt', 'alpha'))
    const { token } = await sdkToken(cloud)
    const link = await agent.drive.share(file.id)
    await serviceOff(cloud, agent)

    const notEnabled = { status: 403, body: { code: 'SERVICE_NOT_ENABLED', error: /cloud service is not enabled/ } }
    const device = `basic:phone-a:${secret}`
    t.match(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console'), notEnabled, 'console list')
    t.match(await call(cloud, 'GET', `/api/accounts/alice/drive/files/${file.id}/content`, 'console'), notEnabled, 'console download')
    t.match(
      await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=b.txt', 'console', Buffer.from('b')),
      notEnabled,
      'console upload',
    )
    t.match(await call(cloud, 'POST', `/api/accounts/alice/drive/files/${file.id}/shares`, 'console'), notEnabled, 'console share')
    t.match(await call(cloud, 'DELETE', `/api/accounts/alice/drive/files/${file.id}`, 'console'), notEnabled, 'console delete')
    t.match(await call(cloud, 'GET', '/cloud/v1/drive/files', device), notEnabled, 'device list')
    t.match(await call(cloud, 'GET', `/cloud/v1/drive/files/${file.id}/content`, device), notEnabled, 'device download')
    t.match(
      await call(cloud, 'POST', '/cloud/v1/drive/files', device, { name: 'b', sha256: file.sha256, size: file.size }),
      notEnabled,
      'device upload',
    )
    t.match(await call(cloud, 'GET', `/sdk/v1/files/${file.id}/content`, token), notEnabled, 'SDK download')
    t.match(await call(cloud, 'POST', '/sdk/v1/files?name=b.txt', token, Buffer.from('b')), notEnabled, 'SDK upload')
    t.match(await call(cloud, 'GET', `/share/${link.token}`, null), notEnabled, 'share link')
    const picker = await call(cloud, 'GET', '/sdk/v1/files', token)
    t.equal(picker.status, 403, 'D5: the SDK file picker call fails')
    t.same(
      picker.body,
      { files: [], error: (picker.body as { error: string }).error, code: 'SERVICE_NOT_ENABLED' },
      'D5: with an empty list and no fallback',
    )
    t.ok(SdkFailedListSchema.safeParse(picker.body).success, 'in the documented shape')

    t.same(await agent.drive.list(), { files: [], notice: PHONE_NOT_ENABLED }, "the phone's file manager shows no drive and says why")
    await t.rejects(agent.drive.upload(localFile(t, 'b.txt', 'b')), { code: 'SERVICE_NOT_ENABLED', message: PHONE_NOT_ENABLED })

    // A phone whose own switch is on but whose account's service is off (it has not told the cloud): the cloud's answer is shown the same
    // way.
    const other = new PhoneDrive(
      {
        cloud: new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('phone-a', secret) }),
        canTransfer: () => true,
        transferSignal: new AbortController().signal,
        status: () => ({ cloudService: true }),
        on: () => undefined,
      },
      tempDir(t),
      cloud.clock,
      cloud.logs.logger(),
    )
    t.same(await other.list(), { files: [], notice: PHONE_NOT_ENABLED })
    t.match(await agent.drive.sync(), { skipped: /cloud service is off/ })

    await serviceOn(cloud, agent)
    t.equal(files(await call(cloud, 'GET', '/sdk/v1/files', token)).length, 1, 'back on, the file is there again')
    t.equal((await call(cloud, 'GET', `/share/${link.token}`, null)).bytes.toString(), 'alpha', 'and the share link works again')
  },
)

t.test(
  'D4 files are kept 7 days after the service went off, then deleted in batches without further notice; the owner was told once, ' +
    'at off time',
  async (t) => {
    // The 7 days are the cloud's default; only the batches are made small and quick here.
    const drive = { ...DEFAULT_CLOUD_DATA_OPTIONS.drive, batchSize: 2, batchEveryMs: HOUR }
    const { cloud, clock, agent } = await phone(t, { cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, drive } })
    const uploaded: DriveFile[] = []
    for (const name of ['1.txt', '2.txt', '3.txt']) uploaded.push(await agent.drive.upload(localFile(t, name, `file ${name}`)))
    const store = cloud.broker.cloud.drive.files
    const log = (rule: string) => cloud.broker.cloud.cloudLog.list('alice', 100).filter((e) => e.rule === rule)
    const offAt = clock.now()
    await serviceOff(cloud, agent)
    await agent.stop()
    const notices = log('drive-cleanup-notice')
    t.equal(notices.length, 1, 'one notice when the service went off')
    t.equal(notices[0]?.at, offAt)
    const queued = cloud.broker.framework.queue.list('phone-a', 10).find((n) => n.title === 'Your cloud drive files will be deleted')
    t.match(
      queued?.body,
      new RegExp(`Your 3 drive files are kept until ${utcDate(offAt + 7 * DAY)} and then deleted\\. .* to keep your files\\.$`),
      "the notice went to the owner's phone with the date",
    )

    clock.advance(7 * DAY - 1000)
    t.equal(store.count('alice'), 3, 'at 7 days minus 1 s every file is there')
    t.equal(log('drive-cleanup').length, 0)
    clock.advance(1000)
    t.equal(store.count('alice'), 1, 'at 7 days the first batch went')
    t.match(log('drive-cleanup'), [{ count: 2, at: offAt + 7 * DAY, message: /deleted 2 drive file/ }])
    clock.advance(HOUR - 1000)
    t.equal(store.count('alice'), 1, 'the next batch waits its interval')
    clock.advance(1000)
    t.equal(store.count('alice'), 0, 'the second batch took the rest')
    t.match(
      log('drive-cleanup'),
      [{ count: 1, at: offAt + 7 * DAY + HOUR, message: /deleted 1 drive file$/ }, { count: 2 }],
      'every batch is logged, a count of one in the singular',
    )
    clock.advance(30 * DAY)
    t.equal(log('drive-cleanup').length, 2, 'nothing more runs')
    t.equal(log('drive-cleanup-notice').length, 1, 'and no further notice was sent')
    t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, 0, 'their quota is free again')
    await cloud.logs.waitFor(() => cloud.logs.lines.filter((l) => l.msg === 'drive clean-up: unreferenced blobs removed').length >= 2)
    for (const f of uploaded) {
      t.equal(cloud.broker.cloud.blobs.size(f.sha256), undefined, `the bytes of ${f.name} left the cloud`)
      t.notOk(existsSync(join(cloud.dataDir, 'blobs', f.sha256.slice(0, 2), f.sha256)))
    }
  },
)

t.test('D4 the service turned back on within 7 days deletes nothing', async (t) => {
  const { cloud, clock, agent } = await phone(t)
  await serviceOff(cloud, agent)
  t.equal(cloud.broker.cloud.cloudLog.list('alice', 100).filter((e) => e.rule === 'drive-cleanup-notice').length, 0, 'no files, no notice')
  await serviceOn(cloud, agent)
  await agent.drive.upload(localFile(t, 'keep.txt', 'keep me'))
  await serviceOff(cloud, agent)
  clock.advance(7 * DAY - 1000)
  await serviceOn(cloud, agent)
  clock.advance(30 * DAY)
  t.equal(cloud.broker.cloud.drive.files.count('alice'), 1, 'the file is still there')
  t.equal(cloud.broker.cloud.cloudLog.list('alice', 100).filter((e) => e.rule === 'drive-cleanup').length, 0, 'no clean-up ran')
})

t.test('A1 an upload over quota is refused with the reason from every entry point, and nothing stored is touched', async (t) => {
  const { cloud, clock, agent, dataDir, secret } = await phone(t, {
    cloud: { ...DEFAULT_CLOUD_DATA_OPTIONS, accounts: { ...DEFAULT_ACCOUNT_RULES, freeQuotaBytes: 100 } },
  })
  const first = await agent.drive.upload(localFile(t, 'big.bin', 'x'.repeat(60)))
  const overQuota = { code: 'QUOTA_EXCEEDED', message: /over quota: .* needs 60 B but 40 B of 100 B is free; nothing stored was touched/ }
  await t.rejects(agent.drive.upload(localFile(t, 'other.bin', 'y'.repeat(60))), overQuota, 'the phone is refused before a byte is stored')
  const { token } = await sdkToken(cloud)
  t.match(
    await call(cloud, 'POST', '/sdk/v1/files?name=s.bin', token, Buffer.from('z'.repeat(60))),
    { status: 507, body: { code: 'QUOTA_EXCEEDED' } },
    'the SDK is refused',
  )
  t.match(
    await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=c.bin', 'console', Buffer.from('w'.repeat(60))),
    { status: 507 },
    'the console is refused',
  )
  const device = `basic:phone-a:${secret}`
  t.match(
    await call(cloud, 'POST', '/cloud/v1/drive/files', device, { name: 'copy.bin', sha256: first.sha256, size: 60 }),
    { status: 507 },
    'a second file of stored bytes is refused too',
  )
  mkdirSync(driveFolder(dataDir), { recursive: true })
  writeFileSync(join(driveFolder(dataDir), 'synced.bin'), 'v'.repeat(60))
  await t.rejects(agent.drive.sync(), overQuota, 'the Drive folder sync is refused')
  const retried = nextLog(cloud, 'drive sync failed; it tries again later')
  clock.advance(5 * 60_000)
  t.match(await retried, { err: /over quota/ }, 'and the scheduled sync says why in the log')
  t.same(files(await call(cloud, 'GET', '/api/accounts/alice/drive/files', 'console')), [first], 'the stored file is untouched')
  t.equal(cloud.broker.cloud.accounts.need('alice').usedBytes, 60)
  t.match(
    await agent.drive.upload(localFile(t, 'big.bin', 'x'.repeat(30))),
    { id: first.id, size: 30 },
    'replacing it with something smaller fits',
  )
})

t.test('A3 a frozen account loses its drive with the rest of its cloud data', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a', 'alice')
  await call(cloud, 'POST', '/api/accounts/alice/drive/files?name=a.txt', 'console', Buffer.from('a'))
  ;(cloud.clock as ManualClock).advance(366 * DAY)
  t.equal(cloud.broker.cloud.drive.files.count('alice'), 0)
  t.match(cloud.broker.cloud.cloudLog.list('alice', 1), [{ rule: 'inactivity-freeze', message: /cloud data cleared: drive files 1, / }])
})

t.test(
  'S3-style halt: stopping the phone or switching its cloud service off stops a Drive-folder sync at once, and the next sync finishes it',
  async (t) => {
    const { cloud, agent, dataDir } = await phone(t)
    mkdirSync(driveFolder(dataDir), { recursive: true })
    writeFileSync(join(driveFolder(dataDir), 'a.txt'), 'a'.repeat(1000))
    const halted = t.rejects(agent.drive.sync(), { code: 'SERVICE_NOT_ENABLED' }, 'cloud service off: halted before a byte went')
    await agent.setSwitch('cloudService', false)
    await halted
    await serviceOn(cloud, agent)
    t.same(await agent.drive.sync(), { uploaded: ['a.txt'] }, 'on again, the next sync uploads it')
    writeFileSync(join(driveFolder(dataDir), 'b.txt'), 'b')
    const stopped = t.rejects(agent.drive.sync(), { code: 'ABORTED' }, 'the agent stopped: halted, and the stop did not fail')
    await agent.stop()
    await stopped
    t.equal(cloud.broker.cloud.drive.files.count('alice'), 1)
  },
)

t.test('a phone without a cloud URL has no drive to show or sync', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const agent = await startAgent(t, cloud, 'phone-a', secret, { cloudUrl: undefined })
  await t.rejects(agent.drive.list(), { code: 'NO_CLOUD', message: /--cloud/ })
  t.match(await agent.drive.sync(), { skipped: /no transfers now/ })
})
