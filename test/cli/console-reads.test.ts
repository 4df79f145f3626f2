/**
 * The console's reads of devices and commands (F1, F2), of a device's channels, notifications and behaviour logs
 * (X1-X3), of backups (B2-B4), the drive (D1), the service's retirement (M1), the cloud's clock (simulated
 * time, A3), sync items and the recycle bin (S1, R1, R3), the snapshot `console export` bags (M3) and what `console
 * import` (M3) and `console migrate` (M2) read of either cloud are checked against their schemas
 * (common/cloud/*-api.ts): an answer of another version's broker is a one-line error that names the method, the path
 * and the field this console cannot read, with exit status 1 -- no stack trace, nothing half-read printed. A refusal
 * whose body is no broker's (a proxy's error page) says what came back, on one line. Real brokers' answers are read in each group's own
 * test file (commands, framework, backup, drive, retirement, clock, sync).
 */
import t, { type Test } from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../fixtures/io.js'
import { answeringServer, consoleArgs, otherVersionBroker } from '../fixtures/http.js'
import { addDevice, basicAuth, startCloud, type Cloud } from '../fixtures/cloud.js'
import { putNote } from '../fixtures/account-data.js'
import { readSnapshot } from '../../cli/transfer/account-export.js'
import { tempDir } from '../fixtures/scope.js'
import { makeOwner } from '../fixtures/owner.js'
import { deviceView } from '../fixtures/cloud.js'
import { ConsoleClient } from '../../cli/console-client.js'

/** The one line a read of another version's answer is refused with: names the method, the path and the field. */
const refusal = (url: string, method: string, path: string, field: string): RegExp =>
  new RegExp(
    `${url} answered ${method} ${path.replace(/[?]/g, '\\?')} with what this console cannot read ` +
      `\\([^\\n]*${field}[^\\n]*\\): ` +
      'is it a fakephone broker of another version\\?',
  )

/**
 * Runs `args` against a broker that answers every request with `answer` (or what it answers for the method and path);
 * each read is refused as `reads` says.
 */
async function refusedReads(
  t: Test,
  answer: unknown,
  reads: { args: string[]; method: string; path: string; field: string }[],
): Promise<void> {
  const { url, console: api } = await otherVersionBroker(
    t,
    typeof answer === 'function' ? (answer as (method: string, path: string) => unknown) : () => answer,
  )
  for (const { args, method, path, field } of reads) {
    const r = await run([...api, ...args])
    t.equal(r.code, 1, `${args.join(' ')}: it fails`)
    t.equal(r.out, '', `${args.join(' ')}: nothing half-read is printed`)
    t.match(r.err, new RegExp(`^error: ${refusal(url, method, path, field).source}\\n$`), `${args.join(' ')}: one line naming the field`)
    t.notMatch(r.err, /\n\s+at /, `${args.join(' ')}: no stack trace`)
  }
}

/** A device as a broker of this version shows it (F1), for the reads that need one before the read under test. */
const DEVICE = deviceView()

t.test(
  "F1, F2: the console's device and command reads refuse another version's answer; a command is not sent on a misread device",
  async (t) => {
    const owner = makeOwner(t)
    // Another version's device: Find Device under no name; its command view: no signed receipt.
    const { findDevice: _, ...oldDevice } = DEVICE
    const oldCommand = { id: '0b5e2f7e-8a40-4b8e-9d4a-1f0f3c1a2b3c', device: 'phone-a', type: 'ring', state: 'succeeded' }
    const fix = { seq: 1, at: 0, lat: 0, lon: 0, accuracy: 5, speed: 0, battery: 50, charging: false, receivedAt: 0 }
    const asked: string[] = []
    const answers = (method: string, path: string): unknown => {
      asked.push(`${method} ${path}`)
      return path === '/api/devices/phone-a'
        ? { now: 0, device: DEVICE }
        : { now: 0, device: oldDevice, devices: [oldDevice], history: [fix], commands: [oldCommand], command: oldCommand }
    }
    await refusedReads(t, answers, [
      { args: ['devices'], method: 'GET', path: '/api/devices', field: 'findDevice' },
      { args: ['history', 'phone-a'], method: 'GET', path: '/api/devices/phone-a/history?limit=20', field: 'network' },
      { args: ['commands', 'phone-a'], method: 'GET', path: '/api/devices/phone-a/commands', field: 'receipt' },
      {
        args: ['ring', 'phone-a', '--keys', owner.keys.dir],
        method: 'POST',
        path: '/api/devices/phone-a/commands?wait=30000',
        field: 'receipt',
      },
      { args: ['ring', 'phone-b', '--keys', owner.keys.dir], method: 'GET', path: '/api/devices/phone-b', field: 'findDevice' },
      {
        args: ['cancel', oldCommand.id],
        method: 'POST',
        path: `/api/commands/${oldCommand.id}/cancel`,
        field: 'receipt',
      },
    ])
    t.notOk(
      asked.some((a) => a.startsWith('POST /api/devices/phone-b/')),
      'no command went to the device the console could not read',
    )
    // The web console's recall of every phone's newest command (cli/web/live.ts) reads through the same schema.
    const { url } = await otherVersionBroker(t, () => ({
      now: 0,
      latest: [{ device: 'phone-a', newest: oldCommand, locate: null }],
      next: null,
    }))
    await t.rejects(new ConsoleClient(url, 'a-token').latestCommands(''), {
      code: 'EAPI',
      message: refusal(url, 'GET', '/api/commands/latest?after=', 'receipt'),
    })
  },
)

t.test("X1, X2, X3: the console's channels, notifications and logs reads refuse another version's answer", async (t) => {
  // Another version's views: the push channel without its presence, notifications without a state, events without a type.
  const notification = { id: '0b5e2f7e-8a40-4b8e-9d4a-1f0f3c1a2b3c', deviceId: 'phone-a', kind: 'message', title: 'hi', body: '' }
  await refusedReads(
    t,
    {
      now: 0,
      device: 'phone-a',
      data: { online: true, cloudService: true, since: 0 },
      notifications: [notification],
      notification,
      logs: { events: 0, lastReceivedAt: null },
      total: 1,
      events: [{ seq: 1, at: 0, detail: 'x', receivedAt: 0 }],
    },
    [
      { args: ['device', 'phone-a'], method: 'GET', path: '/api/devices/phone-a/channels', field: 'push' },
      {
        args: ['notifications', 'phone-a'],
        method: 'GET',
        path: '/api/devices/phone-a/notifications?limit=20',
        field: 'state',
      },
      {
        args: ['notify', 'phone-a', '--title', 'hi'],
        method: 'POST',
        path: '/api/devices/phone-a/notifications',
        field: 'state',
      },
      { args: ['logs', 'phone-a'], method: 'GET', path: '/api/devices/phone-a/logs?limit=20', field: 'type' },
    ],
  )
})

t.test("B2, B3, B4: the console's backup views and deletions refuse another version's answer", async (t) => {
  // The old view: no retention state (B3), no deletion counts (B4).
  await refusedReads(t, { now: 0, backups: [] }, [
    { args: ['backups', 'alice'], method: 'GET', path: '/api/accounts/alice/backups', field: 'retention' },
    { args: ['backup', 'show', 'b-1'], method: 'GET', path: '/api/backups/b-1', field: 'retention' },
    { args: ['backup', 'delete', 'b-1'], method: 'DELETE', path: '/api/backups/b-1', field: 'deleted' },
    { args: ['backup', 'off', 'phone-a', '--delete-data'], method: 'DELETE', path: '/api/devices/phone-a/backups', field: 'deleted' },
  ])
})

t.test("D1: the console's drive reads refuse another version's answer; a download saves nothing", async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'notes.txt'), 'hello')
  // A drive file of another version: no sha256, no size; no share URL, no token.
  const file = { id: 'f-1', name: 'notes.txt', folder: '/', createdAt: 0, updatedAt: 0, uploadedBy: 'console' }
  await refusedReads(t, { files: [file], file }, [
    { args: ['drive', 'list', 'alice'], method: 'GET', path: '/api/accounts/alice/drive/files', field: 'sha256' },
    {
      args: ['drive', 'upload', 'alice', join(dir, 'notes.txt')],
      method: 'POST',
      path: '/api/accounts/alice/drive/files?name=notes.txt&folder=%2F',
      field: 'sha256',
    },
    {
      args: ['drive', 'download', 'alice', 'f-1', join(dir, 'saved')],
      method: 'GET',
      path: '/api/accounts/alice/drive/files',
      field: 'sha256',
    },
    { args: ['drive', 'share', 'alice', 'f-1'], method: 'POST', path: '/api/accounts/alice/drive/files/f-1/shares', field: 'url' },
    { args: ['drive', 'delete', 'alice', 'f-1'], method: 'DELETE', path: '/api/accounts/alice/drive/files/f-1', field: 'sha256' },
    { args: ['drive', 'token', 'alice', '--app', 'notes'], method: 'POST', path: '/api/accounts/alice/drive/tokens', field: 'token' },
    { args: ['drive', 'unshare', 'alice', 'tok-1'], method: 'DELETE', path: '/api/accounts/alice/drive/shares/tok-1', field: 'revoked' },
    { args: ['drive', 'revoke-token', 'alice', 't-1'], method: 'DELETE', path: '/api/accounts/alice/drive/tokens/t-1', field: 'revoked' },
  ])
  t.notOk(existsSync(join(dir, 'saved')), 'the download saved nothing')
})

t.test("M1: `console service status` and `service retire` refuse another version's answer", async (t) => {
  // A status of another version: the phase under another name, no accounts.
  await refusedReads(t, { now: 0, plan: null, state: 'in-service', next: null }, [
    { args: ['service', 'status'], method: 'GET', path: '/api/service', field: 'phase' },
    {
      args: ['service', 'retire', '--announce', 'now', '--sync-off', '1d', '--migration-deadline', '2d', '--shutdown', '3d'],
      method: 'PUT',
      path: '/api/service/retirement',
      field: 'phase',
    },
    {
      args: ['service', 'retire', '--account', 'alice', '--deadline', '5d'],
      method: 'PUT',
      path: '/api/service/retirement/accounts/alice',
      field: 'account',
    },
  ])
})

t.test("A3 (simulated time): `console clock` and `clock advance` refuse another version's answer", async (t) => {
  // A clock of another version: whether it is simulated under another name, no effects of an advance.
  await refusedReads(t, { now: 0, mode: 'simulated', aheadMs: 0, from: 0, fired: 0 }, [
    { args: ['clock'], method: 'GET', path: '/api/clock', field: 'simulated' },
    { args: ['clock', 'advance', '7d'], method: 'POST', path: '/api/clock/advance', field: 'simulated' },
  ])
})

t.test("S1, R1, R3: the console's sync items and recycle bin refuse another version's answer", async (t) => {
  // Items and bin entries of another version: nothing this console reads.
  await refusedReads(t, { now: 0, photos: [] }, [
    { args: ['items', 'alice'], method: 'GET', path: '/api/accounts/alice/items', field: 'items' },
    { args: ['delete', 'alice', 'notes', 'n-1'], method: 'DELETE', path: '/api/accounts/alice/items/notes/n-1', field: 'item' },
    { args: ['bin', 'alice'], method: 'GET', path: '/api/accounts/alice/bin', field: 'entries' },
    { args: ['restore', 'alice', 'notes', 'n-1'], method: 'POST', path: '/api/accounts/alice/bin/notes/n-1/restore', field: 'item' },
    { args: ['delete-forever', 'alice', 'notes', 'n-1'], method: 'DELETE', path: '/api/accounts/alice/bin/notes/n-1', field: 'purged' },
  ])
})

t.test("M3: `console export` refuses another version's account snapshot and writes no bag", async (t) => {
  const dir = tempDir(t)
  // A snapshot of another version: the account's records under other names.
  await refusedReads(t, { now: 0, account: { name: 'alice' }, records: [] }, [
    { args: ['export', 'alice', '--out', join(dir, 'bag')], method: 'GET', path: '/api/accounts/alice/export', field: 'account' },
  ])
  t.notOk(existsSync(join(dir, 'bag')), 'no bag was written')
})

/** `fakephone console` arguments for a real cloud. */
const consoleOf = (cloud: Cloud): string[] => ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

/** The one line `args` fail with, exit 1 and nothing on stdout. */
async function failsWith(t: Test, args: string[], line: RegExp | string): Promise<void> {
  const r = await run(args)
  t.equal(r.code, 1, 'it fails')
  t.equal(r.out, '', 'nothing half-read is printed')
  if (typeof line === 'string') t.equal(r.err, `error: ${line}\n`, 'one line saying what came back')
  else t.match(r.err, new RegExp(`^error: ${line.source}\\n$`), 'one line naming the route and the field')
  t.notMatch(r.err, /\n\s+at /, 'no stack trace')
}

t.test(
  "M3: `console import` refuses another version's answer to the import; a refusal that is no broker's says what came back",
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a', 'alice')
    const sha256 = await putNote(t, cloud, basicAuth('phone-a', secret), 'n-1')
    const bag = join(tempDir(t), 'bag')
    t.equal((await run([...consoleOf(cloud), 'export', 'alice', '--out', bag])).code, 0, 'a bag of alice')
    // The import's answer of another version: its counts under other names.
    await refusedReads(t, { now: 0, account: 'alice', added: 1 }, [
      { args: ['import', bag, '--account', 'alice'], method: 'POST', path: '/api/accounts/alice/import', field: 'outcomes' },
    ])
    // A destination of another version that takes the import but answers for the note's blob under other names, where
    // its upload stands (GET) or what it kept of it (PUT): the note is refused with that one line; the rest goes in.
    const size = Buffer.byteLength('a private note n-1')
    const blobPath = `/api/accounts/alice/blobs/${sha256}?size=${size}`
    for (const [method, path, field] of [
      ['GET', blobPath, 'sha256'],
      ['PUT', `${blobPath}&offset=0`, 'sha256'],
    ] as const) {
      const { url, console: api } = await otherVersionBroker(t, (m, p, body) => {
        const failed = [{ kind: 'item', id: 'notes/n-1', result: 'failed', error: 'no bytes' }]
        if (p.endsWith('/import')) {
          const items = (body as { items?: unknown[] }).items === undefined ? [] : failed
          return { now: 0, account: 'alice', imported: 0, present: 0, failed: items.length, outcomes: items }
        }
        // Wrong where the loop's method says; the GET before a PUT answers as this version does.
        if (m === method) return { now: 0, kept: 0 }
        return { sha256, size, stored: false, offset: 0 }
      })
      const r = await run([...api, 'import', bag, '--account', 'alice'])
      t.equal(r.code, 1, `${method}: the import fails`)
      t.match(
        r.out,
        new RegExp(`\\n  item notes/n-1: its bytes were refused: ${refusal(url, method, path, field).source}\\n$`),
        `${method}: the note is refused with one line naming the route and the field`,
      )
    }
    // A proxy's error page in front of the broker: its status, type and first bytes, its line breaks shown as escapes.
    const page = '<html>\n<h1>Internal Server Error</h1>\n</html>\n'
    const proxy = await answeringServer(t, () => ({ status: 500, type: 'text/html', body: page }))
    await failsWith(
      t,
      [...consoleArgs(t, proxy), 'import', bag, '--account', 'alice'],
      `${proxy} did not answer like a fakephone broker (HTTP 500, text/html: "<html>\\x0A<h1>Internal Server Error</h1>\\x0A</html>\\x0A")`,
    )
  },
)

t.test("M2: `console migrate` refuses another version's answer of the destination or of the source", async (t) => {
  const source = await startCloud(t)
  const secret = await addDevice(source, 'phone-a', 'alice')
  await putNote(t, source, basicAuth('phone-a', secret), 'n-1')
  /** `console migrate` from the console API `from` speaks to, to the one at `to` with the token in `tokenFile`. */
  const migrate = (from: string[], to: string, tokenFile: string): string[] => [
    ...from,
    ...['migrate', 'alice', '--to', to, '--to-token-file', tokenFile, '--job', join(tempDir(t), 'job.json')],
  ]
  const reply = { now: 0, account: 'alice', imported: 0, present: 0, failed: 0, outcomes: [] }
  // A destination of another version: it takes the import, but its blobs' states come under another name.
  const dest = await otherVersionBroker(t, (_, path) => (path.endsWith('/import') ? reply : { now: 0, states: [] }))
  await failsWith(
    t,
    migrate(consoleOf(source), dest.url, dest.console[4] as string),
    refusal(dest.url, 'POST', '/api/accounts/alice/blobs/state', 'blobs'),
  )

  // A source of another version that gives the account (a snapshot as this version's) but not its phones' verifiers, or
  // not where it told them to go: the copy is done and verified, the phones' move is refused with one line.
  const {
    items: _,
    drive: __,
    backups: ___,
    ...records
  } = await readSnapshot(new ConsoleClient(source.apiUrl, source.consoleToken), 'alice')
  const snapshot = { ...records, items: [], drive: [], backups: [] }
  const verifier = `sha256$${'A'.repeat(43)}=`
  for (const [verifiers, moved, path, field] of [
    [{ devices: [{ id: 'phone-a', secret }] }, {}, 'GET /api/accounts/alice/device-verifiers', 'verifier'],
    [{ devices: [{ id: 'phone-a', verifier }] }, { devices: ['phone-a'] }, 'POST /api/accounts/alice/moved', 'to'],
  ] as const) {
    const other = await otherVersionBroker(t, (_, p) =>
      p.endsWith('/export') ? snapshot : p.endsWith('/device-verifiers') ? verifiers : p.endsWith('/moved') ? moved : {},
    )
    const [method, route] = path.split(' ') as [string, string]
    const dest = await startCloud(t)
    const migration = migrate(other.console, dest.apiUrl, join(dest.dataDir, 'console.token'))
    await failsWith(t, migration, refusal(other.url, method, route, field))
  }
})
