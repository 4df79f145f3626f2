import t, { type Test } from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { ManualClock } from '../../../common/clock.js'
import { BACKUP_PATH, BackupOneSchema, PACKAGE_FORMAT, type BackupPackage } from '../../../common/cloud/backup-api.js'
import { signPayload } from '../../../common/signing.js'
import { manifestOf } from '../../../agent/backup/package.js'
import { wipeData } from '../../../agent/wipe.js'
import { agentConnected, startAgent, startCloud } from '../../fixtures/cloud.js'
import { listening, makeOwner, provision, run, signed, strangerKey, unsigned } from '../../fixtures/owner.js'
import { backupReady } from '../../fixtures/backup.js'
import { tempDir } from '../../fixtures/scope.js'
import { ensureSystemProfile, systemProfile } from '../../../agent/backup/system-profile.js'

async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  for (const top of ['system', 'app-data']) {
    for (const e of await readdir(join(dir, top), { recursive: true, withFileTypes: true })) {
      if (e.isFile())
        files.set(join(e.parentPath, e.name).slice(dir.length + 1), (await readFile(join(e.parentPath, e.name))).toString('base64'))
    }
  }
  return files
}

/** A cloud on a manual clock and a phone of alice's that obeys her key, with its system profile and its start options. */
async function ownedPhone(t: Test, id: string) {
  const cloud = await startCloud(t)
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, id)
  const opts = { dataDir: tempDir(t, 'fakephone-phone-'), ownerKey: owner.publicKey, systemProfile: true }
  const agent = await startAgent(t, cloud, id, secret, opts)
  return { cloud, clock: cloud.clock as ManualClock, owner, secret, opts, dataDir: opts.dataDir, agent }
}

t.test(
  'B1 restore: a phone wiped by a signed wipe command gets its settings, apps, layout, Wi-Fi and app data back byte for byte',
  async (t) => {
    const { cloud, clock, owner, dataDir, agent } = await ownedPhone(t, 'phone-a')
    await agentConnected(agent)
    await listening(cloud, 'phone-a')
    await backupReady(cloud, 'phone-a')
    const before = await snapshot(dataDir)
    t.ok(before.size >= 8, `the phone has a system profile (${before.size} files)`)
    const backup = await agent.backup.backupNow()

    const wipe = await run(cloud, signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now()))
    t.equal(wipe.state, 'succeeded')
    t.notOk(existsSync(join(dataDir, 'system')), 'the wipe removed the system profile')
    t.notOk(existsSync(join(dataDir, 'app-data')), 'and the app data')
    t.equal(agent.status().backup.lastBackupId, null, 'the backup switch and history are reset')
    t.equal(agent.status().backup.on, true)

    const restored = await agent.backup.restore()
    t.equal(restored.backup.id, backup.id, "this phone's latest by default")
    t.equal(restored.files, before.size)
    t.same(await snapshot(dataDir), before, 'every file back, byte for byte')

    await wipeData(dataDir, { keepSdcard: false })
    const empty = await agent.backup.backupNow()
    t.same(
      empty.manifest.parts.map((p) => p.count),
      [1, 0, 0, 0, 0],
      'a wiped phone backs up empty parts (the PIN only)',
    )
    const again = await agent.backup.restore(backup.id)
    t.equal(again.backup.id, backup.id, 'or named by id')
    t.same(await snapshot(dataDir), before)
    t.equal(agent.status().id, 'phone-a')
  },
)

t.test('restore: a phone with no backup of its own is told what to do; a bad package is refused with the reason', async (t) => {
  const cloud = await startCloud(t)
  const owner = makeOwner(t)
  const agent = await startAgent(t, cloud, 'phone-a', await provision(cloud, owner, 'phone-a'), { systemProfile: true })
  await agentConnected(agent)
  await backupReady(cloud, 'phone-a')
  await t.rejects(agent.backup.restore(), { code: 'NOT_FOUND', message: /no backup of phone-a/ })
  await t.rejects(agent.backup.restore('nope'), { code: 'NOT_FOUND' })
  // A package the phone cannot read: registered with a manifest, but its bytes are not a package.
  const bytes = Buffer.from('{"format":"something-else"}')
  const cloudClient = agent.cloud!
  const sha256 = await cloudClient.upload(bytes)
  const manifest = {
    format: 'fakephone-backup/1',
    device: 'phone-a',
    createdAt: 0,
    size: bytes.length,
    parts: ['settings', 'apps', 'launcher', 'wifi', 'appData'].map((name) => ({ name, files: 0, bytes: 0, count: 0 })),
  }
  const reply = await cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256, manifest })
  t.equal(reply.backup.size, bytes.length)
  await t.rejects(cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256, manifest: { ...manifest, size: 1 } }), {
    code: 'BAD_REQUEST',
    message: /manifest says 1 bytes/,
  })
  await t.rejects(cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256, manifest: { ...manifest, device: 'phone-z' } }), {
    code: 'BAD_REQUEST',
  })
  await t.rejects(cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256: 'a'.repeat(64), manifest }), {
    code: 'NOT_FOUND',
    message: /upload the package first/,
  })
  await t.rejects(cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256, manifest, planId: randomUUID() }), {
    code: 'STALE_PLAN',
  })
  await t.rejects(cloudClient.call('POST', `${BACKUP_PATH}/plans/${randomUUID()}/failed`, BackupOneSchema, { reason: 'x' }), {
    code: 'STALE_PLAN',
  })
  await t.rejects(agent.backup.restore(), { code: 'BAD_PACKAGE' })
})

t.test(
  'B1, F2 restore: a package whose part holds a file not its own (the command journal) is refused whole; no wipe runs at the next start',
  async (t) => {
    const { cloud, clock, owner, dataDir, secret, opts, agent: victim } = await ownedPhone(t, 'phone-b')
    await agentConnected(victim)
    // Another phone of the account (or a cloud that serves what it likes) makes the package the owner restores phone-b from.
    const other = await startAgent(t, cloud, 'phone-a', await provision(cloud, owner, 'phone-a'), { systemProfile: true })
    await agentConnected(other)
    await backupReady(cloud, 'phone-a')
    const before = await snapshot(dataDir)
    // A wipe no owner signed, as the journal keeps a command it had started: run to completion at the next start.
    const wipe = signPayload(unsigned('phone-b', 'wipe', { eraseSdcard: true, keepFindDevice: false }, clock.now()), strangerKey())
    const journal = `${JSON.stringify({ step: 'executing', command: wipe, reported: false })}\n`
    const file = (path: string, text: string) => ({ path, base64: Buffer.from(text).toString('base64') })
    const part = (files: { path: string; base64: string }[] = []) => ({ files, count: files.length, values: {} })
    const pkg: BackupPackage = {
      format: PACKAGE_FORMAT,
      device: 'phone-a',
      createdAt: clock.now(),
      parts: {
        settings: part([file('commands.jsonl', journal)]),
        apps: part(),
        launcher: part(),
        wifi: part(),
        appData: part([file('app-data/planted.txt', 'x')]),
      },
    }
    const bytes = Buffer.from(JSON.stringify(pkg))
    const cloudClient = other.cloud!
    const sha256 = await cloudClient.upload(bytes)
    const { backup } = await cloudClient.call('POST', BACKUP_PATH, BackupOneSchema, { sha256, manifest: manifestOf(pkg, bytes) })

    await t.rejects(victim.backup.restore(backup.id), {
      code: 'BAD_PACKAGE',
      message:
        `backup ${backup.id} cannot be put on this phone: its settings part holds "commands.jsonl", not ` +
        'system/preferences.json; nothing was restored',
    })
    t.notOk(existsSync(join(dataDir, 'commands.jsonl')), 'the journal was not put there')
    t.notOk(existsSync(join(dataDir, 'app-data', 'planted.txt')), 'nor any other file of the package')
    // The next start finishes whatever its journal says was started: nothing, so the phone keeps its data.
    await victim.stop()
    const again = await startAgent(t, cloud, 'phone-b', secret, opts)
    await agentConnected(again)
    await listening(cloud, 'phone-b')
    await again.remote.idle()
    t.same(await snapshot(dataDir), before, 'no wipe ran: every file is still there')
    t.same(again.remote.journal.unfinished(), [])
  },
)

t.test('the system profile is made once and is the same for the same device id', async (t) => {
  const dir = tempDir(t)
  t.equal(await ensureSystemProfile(dir, 'phone-a'), true, 'made on first start')
  t.equal(await ensureSystemProfile(dir, 'phone-a'), false, 'kept after')
  t.same(systemProfile('phone-a'), systemProfile('phone-a'))
  t.not(JSON.stringify(systemProfile('phone-a')), JSON.stringify(systemProfile('phone-b')))
})
