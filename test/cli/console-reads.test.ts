/**
 * The console's reads of backups (B2-B4), the drive (D1), the service's retirement (M1), the cloud's clock (simulated
 * time, A3) and sync items and the recycle bin (S1, R1, R3) are checked against their schemas (common/cloud/*-api.ts):
 * an answer of another version's broker is a one-line error that names the method, the path and the field this console
 * cannot read, with exit status 1 -- no stack trace, nothing half-read printed. Real brokers' answers are read in each
 * group's own test file (backup, drive, retirement, clock, sync).
 */
import t, { type Test } from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../fixtures/io.js'
import { otherVersionBroker } from '../fixtures/http.js'
import { tempDir } from '../fixtures/scope.js'

/** Runs `args` against a broker that answers every request with `answer`; each read is refused as `reads` says. */
async function refusedReads(
  t: Test,
  answer: unknown,
  reads: { args: string[]; method: string; path: string; field: string }[],
): Promise<void> {
  const { url, console: api } = await otherVersionBroker(t, () => answer)
  for (const { args, method, path, field } of reads) {
    const r = await run([...api, ...args])
    t.equal(r.code, 1, `${args.join(' ')}: it fails`)
    t.equal(r.out, '', `${args.join(' ')}: nothing half-read is printed`)
    t.match(
      r.err,
      new RegExp(
        `^error: ${url} answered ${method} ${path.replace(/[?]/g, '\\?')} with what this console cannot read ` +
          `\\([^\\n]*${field}[^\\n]*\\): ` +
          'is it a fakephone broker of another version\\?\\n$',
      ),
      `${args.join(' ')}: one line naming the field`,
    )
    t.notMatch(r.err, /\n\s+at /, `${args.join(' ')}: no stack trace`)
  }
}

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
