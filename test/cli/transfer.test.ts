/**
 * M3: export -> validate -> import round trip, byte for byte and field for
 * field, between two in-process brokers (each its own data directory and
 * ports), driving the CLI in-process. The source account has every kind of
 * record: photos with EXIF, a contact, a note, a recording, a recycle-bin
 * entry, a drive file with an odd name, a backup package, location history,
 * a command with its signed receipt, notifications and the cloud log.
 */
import t, { type Test } from 'tap'
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { ManualClock } from '../../common/clock.js'
import { PACKAGE_FORMAT, PART_NAMES } from '../../common/cloud/backup-api.js'
import type { AccountSnapshot } from '../../common/cloud/transfer-api.js'
import { makePhoto } from '../../agent/phone-data/photo.js'
import { PhoneFiles } from '../../agent/phone-data/store.js'
import { readPhotoMeta } from '../../common/photo-meta.js'
import { toVcard } from '../../agent/phone-data/vcard.js'
import { makeWav } from '../../agent/phone-data/wav.js'
import type { BlobFile } from '../../broker/cloud/blob-store.js'
import { ConsoleApiError, ConsoleClient } from '../../cli/console-client.js'
import { heartbeat, startAgent, startCloud, type Cloud } from '../fixtures/cloud.js'
import { httpFront } from '../fixtures/http.js'
import { run as runCli, testIo, type TestIo } from '../fixtures/io.js'
import { main } from '../../cli/main.js'
import { jobState, migrate as migrateJob, type ItemReport } from '../../cli/transfer/migrate.js'
import { Progress } from '../../cli/transfer/progress.js'
import { listening, makeOwner, provision, run, signed } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'

const TAKEN = Date.UTC(2026, 5, 1, 12, 30, 15)
const DRIVE_NAME = 'report 100%\nfinal.txt'

/** Puts `bytes` in the cloud as an item of alice's, the way a phone's sync does. */
async function putItem(
  cloud: Cloud,
  category: 'photos' | 'contacts' | 'notes' | 'recordings',
  id: string,
  bytes: Buffer,
  meta: Record<string, string | number | null>,
) {
  const sha256 = await cloud.broker.cloud.blobs.put(bytes)
  return cloud.broker.cloud.items.put('alice', 'phone-a', category, id, { sha256, size: bytes.length, meta, modifiedAt: cloud.clock.now() })
}

async function seededSource(t: Test): Promise<Cloud> {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  const agent = await startAgent(t, cloud, 'phone-a', secret, { ownerKey: owner.publicKey })
  await listening(cloud, 'phone-a')
  const located = await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))
  t.equal(located.state, 'succeeded')
  // The phone goes quiet, so the account holds still while it is exported and compared.
  await agent.stop()
  cloud.broker.framework.queue.enqueue('phone-a', { kind: 'message', title: 'Hello', body: 'from the cloud' })
  for (let seq = 1; seq <= 3; seq++) cloud.broker.store.recordHeartbeat('phone-a', heartbeat(seq), clock.now())
  cloud.broker.store.flush()

  const exif = { takenAt: TAKEN, lat: 55.9486, lon: -3.1999, make: 'Xiaomi', model: '13' }
  await putItem(cloud, 'photos', 'IMG_20260601_123015_000.jpg', makePhoto(exif, 1), {
    takenAt: TAKEN,
    lat: 55.9486,
    lon: -3.1999,
    camera: 'Xiaomi 13',
  })
  await putItem(cloud, 'photos', 'IMG_20260601_123016_000.jpg', makePhoto({ ...exif, takenAt: TAKEN + 1000, lat: null, lon: null }, 2), {
    takenAt: TAKEN + 1000,
    lat: null,
    lon: null,
    camera: 'Xiaomi 13',
  })
  await putItem(
    cloud,
    'contacts',
    'a1b2c3d4-0000-4000-8000-000000000001.vcf',
    Buffer.from(
      toVcard({
        uid: 'a1b2c3d4-0000-4000-8000-000000000001',
        name: 'Ada Lovelace',
        phone: '+44 20 1234',
        email: 'ada@example.com',
        rev: TAKEN,
      }),
    ),
    { name: 'Ada Lovelace', phone: '+44 20 1234', email: 'ada@example.com' },
  )
  await putItem(cloud, 'notes', 'a1b2c3d4-0000-4000-8000-000000000002.txt', Buffer.from('Groceries\nmilk\n'), { title: 'Groceries' })
  await putItem(cloud, 'recordings', 'REC_20260601_123015_000.wav', makeWav(5, 440), { durationS: 5 })
  await putItem(cloud, 'notes', 'a1b2c3d4-0000-4000-8000-000000000003.txt', Buffer.from('Old\n'), { title: 'Old' })
  cloud.broker.cloud.items.delete('alice', 'phone-a', 'notes', 'a1b2c3d4-0000-4000-8000-000000000003.txt')
  clock.advance(3 * 86_400_000)

  const doc = Buffer.from('quarterly figures\n')
  cloud.broker.cloud.drive.files.put('alice', {
    folder: '/My Docs/2026',
    name: DRIVE_NAME,
    sha256: await cloud.broker.cloud.blobs.put(doc),
    size: doc.length,
    uploadedBy: 'console',
  })
  const pkg = Buffer.from(JSON.stringify({ format: PACKAGE_FORMAT, note: 'a small stand-in package' }))
  const manifest = {
    format: PACKAGE_FORMAT as typeof PACKAGE_FORMAT,
    device: 'phone-a',
    createdAt: clock.now(),
    size: pkg.length,
    parts: PART_NAMES.map((name) => ({ name, files: 1, bytes: 1, count: 1 })),
  }
  cloud.broker.cloud.backups.store.add('alice', 'phone-a', await cloud.broker.cloud.blobs.put(pkg), manifest, null, () => undefined)
  cloud.broker.cloud.accounts.setMembership('alice', 'premium', clock.now() + 365 * 86_400_000)
  return cloud
}

const api = (cloud: Cloud): string[] => ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
const client = (cloud: Cloud): ConsoleClient => new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
const snapshot = (cloud: Cloud, account: string): Promise<AccountSnapshot> => client(cloud).request(`/api/accounts/${account}/export`)
async function blob(cloud: Cloud, account: string, sha: string): Promise<Buffer> {
  return client(cloud).bytes('GET', `/api/accounts/${account}/blobs/${sha}/content`)
}

// One source and one destination for every subtest (a broker and an agent cost seconds on a busy machine).
t.test('M3 between two clouds', async (t) => {
  const source = await seededSource(t)
  const dest = await startCloud(t, {}, new ManualClock(source.clock.now()))

  await t.test(
    'M3: export -> bag validate -> import into another cloud: byte for byte, field for field, and twice imports nothing twice',
    async (t) => {
      const dir = tempDir(t)
      const bag = join(dir, 'alice-bag')

      const exported = await runCli([...api(source), 'export', 'alice', '--out', bag])
      t.equal(exported.code, 0, exported.err)
      // Counted as bag-info.txt counts them: 6 synced items, 1 drive file, 1 backup; then the bag's payload files.
      t.match(
        exported.out,
        /^Exported account alice to .*alice-bag: 6 items, 1 drive file, 1 backup, \d+ files, \d+ bytes \(Payload-Oxum \d+\.\d+\)\.\n$/,
      )
      const files = Number(/, (\d+) files,/.exec(exported.out)?.[1])
      t.same(readdirSync(bag).sort(), ['bag-info.txt', 'bagit.txt', 'data', 'manifest-sha256.txt', 'tagmanifest-sha256.txt'])
      t.match(
        source.broker.cloud.retirement.migration('alice'),
        { how: 'export', detail: `bag of ${files} files` },
        'M1: an export written to its end keeps the account readable past its deadline',
      )
      t.same(readdirSync(join(bag, 'data')).sort(), [
        'account.json',
        'backups',
        'cloud-log.json',
        'contacts',
        'devices',
        'drive',
        'notes',
        'photos',
        'recordings',
        'recycle-bin',
      ])
      t.match(readFileSync(join(bag, 'bag-info.txt'), 'utf8'), /Fakephone-Account: alice\nFakephone-Source: http:\/\/127\.0\.0\.1:\d+\n/)
      t.match(readFileSync(join(bag, 'manifest-sha256.txt'), 'utf8'), 'data/drive/files/My Docs/2026/report 100%25%0Afinal.txt')
      const photo = readFileSync(join(bag, 'data/photos/IMG_20260601_123015_000.jpg'))
      t.same(await readPhotoMeta(photo), { takenAt: TAKEN, lat: 55.9486, lon: -3.1999, camera: 'Xiaomi 13' }, 'the photo keeps its EXIF')
      t.match(JSON.parse(readFileSync(join(bag, 'data/photos/IMG_20260601_123015_000.jpg.meta.json'), 'utf8')), {
        category: 'photos',
        meta: { takenAt: TAKEN, camera: 'Xiaomi 13' },
        deletedAt: null,
      })
      t.match(
        JSON.parse(readFileSync(join(bag, 'data/recycle-bin/notes/a1b2c3d4-0000-4000-8000-000000000003.txt.meta.json'), 'utf8')),
        {
          daysLeft: 177,
        },
        'a bin entry says its days left (premium window 180 days, deleted 3 days ago)',
      )
      t.match(
        readFileSync(join(bag, 'data/contacts/a1b2c3d4-0000-4000-8000-000000000001.vcf'), 'utf8'),
        /BEGIN:VCARD[\s\S]*FN:Ada Lovelace/,
      )
      t.match(
        readFileSync(join(bag, 'data/devices/phone-a/locations.gpx'), 'utf8'),
        /<trkpt lat="55.95" lon="-3.19"><time>2026-01-01T00:00:01.000Z<\/time>/,
      )
      t.match(JSON.parse(readFileSync(join(bag, 'data/devices/phone-a/commands.json'), 'utf8')), [
        { type: 'locate', state: 'succeeded', receipt: { state: 'succeeded' } },
      ])

      const validated = await runCli(['bag', 'validate', bag])
      t.match(validated.out, /alice-bag is a valid BagIt 1.0 bag: \d+ payload files, \d+ bytes\.\n/)

      const imported = await runCli([...api(dest), '--json', 'import', bag, '--account', 'alice'])
      t.equal(imported.code, 0, imported.err)
      const reply = JSON.parse(imported.out)
      t.same(
        reply.outcomes.filter((o: { result: string }) => o.result !== 'imported'),
        [],
      )
      t.equal(reply.failed, 0)
      t.equal(reply.present, 0)
      t.equal(reply.imported, 13, 'account, device, 6 items, drive file, backup, location history, command, notification')

      const [a, b] = [await snapshot(source, 'alice'), await snapshot(dest, 'alice')]
      const strip = <T extends { seq?: number }>(rows: T[]): Omit<T, 'seq'>[] => rows.map(({ seq: _, ...r }) => r)
      t.same(strip(b.items), strip(a.items), "every item, field for field (the change-feed seq is the new cloud's own)")
      t.same(b.drive, a.drive)
      t.same(b.backups, a.backups)
      t.same(b.locations, a.locations)
      t.same(b.commands, a.commands)
      t.same(b.notifications, a.notifications)
      t.same(b.devices, a.devices)
      t.same(
        { ...b.account, lastActivity: a.account.lastActivity, lastActivityAt: a.account.lastActivityAt },
        { ...a.account, frozenAt: null, serviceOffAt: null },
        'tier, premium end, quota, bytes used, creation date',
      )
      for (const item of a.items)
        t.same(
          await blob(dest, 'alice', item.sha256),
          await blob(source, 'alice', item.sha256),
          `${item.category}/${item.id} byte for byte`,
        )
      t.same(
        await readPhotoMeta(await blob(dest, 'alice', a.items.find((i) => i.id === 'IMG_20260601_123015_000.jpg')?.sha256 as string)),
        {
          takenAt: TAKEN,
          lat: 55.9486,
          lon: -3.1999,
          camera: 'Xiaomi 13',
        },
      )

      const again = JSON.parse((await runCli([...api(dest), '--json', 'import', bag, '--account', 'alice'])).out)
      t.equal(again.imported, 0, 'the second import imports nothing')
      t.equal(again.failed, 0)
      t.equal(again.present, reply.imported)
      t.same((await snapshot(dest, 'alice')).account.usedBytes, a.account.usedBytes, 'nothing charged twice')
    },
  )

  await t.test(
    'M3: the tar form, a damaged bag refused with its problems, and records another account holds refused one by one',
    async (t) => {
      const dir = tempDir(t)
      const tar = join(dir, 'alice.tar')
      const exported = JSON.parse((await runCli([...api(source), '--json', 'export', 'alice', '--out', tar, '--format', 'tar'])).out)
      t.match(exported, { bag: tar, format: 'tar', account: 'alice', oxum: /^\d+\.\d+$/ })
      t.match(JSON.parse((await runCli(['bag', '--json', 'validate', tar])).out), { valid: true, problems: [] })

      // The same bag imported into a second account of the destination: its items go in, what alice holds there does not.
      t.match(
        (await runCli([...api(dest), 'import', tar, '--account', 'alice'])).out,
        /: 0 records added, 13 already there, 0 refused\n  of the bag's 13 records: /,
      )
      const bob = await runCli([...api(dest), 'import', tar, '--account', 'bob'])
      t.equal(bob.code, 1)
      t.match(bob.out, /^Imported into account bob: 7 records added, 0 already there, 6 refused\n/)
      t.match(bob.out, '  device phone-a: device phone-a is registered to account "alice" on this cloud: import into that account, ')
      t.match(bob.out, '  locations phone-a: device phone-a is not a device of bob here: account "alice" holds it\n')
      t.match(bob.out, /  drive [0-9a-f-]+: drive file id "[0-9a-f-]+" is taken here by another file\n/)
      t.match(bob.out, /  backup [0-9a-f-]+: backup id "[0-9a-f-]+" is taken here by another package\n/)
      t.match(bob.err, '6 records were refused (listed above); the rest are in')

      // One flipped byte: refused before anything is imported.
      const bag = join(dir, 'bag')
      await runCli([...api(source), 'export', 'alice', '--out', bag])
      const note = join(bag, 'data/notes/a1b2c3d4-0000-4000-8000-000000000002.txt')
      writeFileSync(note, 'Groceries\nmilK\n')
      const refused = await runCli([...api(dest), 'import', bag, '--account', 'carol'])
      t.equal(refused.code, 1)
      t.match(
        refused.err,
        new RegExp(
          String.raw`is not a valid bag: 1 problem\n  "data/notes/a1b2c3d4-0000-4000-8000-000000000002.txt": checksum mismatch: ` +
            String.raw`manifest-sha256.txt says [0-9a-f]{64}, the file hashes to [0-9a-f]{64}\nNothing was imported\. ` +
            String.raw`A bag is checked against .*: make it again \(fakephone console export, fakephone phone export\) or copy ` +
            String.raw`it again whole from the original \(files, not links\), then try again\.\n$`,
        ),
        'what is wrong, that nothing went in, and how to get a bag that imports',
      )
      t.equal(
        (await client(dest).request<{ accounts: { id: string }[] }>('/api/accounts')).accounts.some((a) => a.id === 'carol'),
        false,
        'no account was made',
      )
      const invalid = await runCli(['bag', 'validate', bag])
      t.equal(invalid.code, 1)
      t.match(invalid.err, /bag is not a valid bag: 1 problem\n.*\nA bag is checked against .* then try again\.\n$/)
      t.match(JSON.parse((await runCli(['bag', '--json', 'validate', bag])).out), {
        valid: false,
        problems: [{ path: 'data/notes/a1b2c3d4-0000-4000-8000-000000000002.txt' }],
      })
    },
  )

  await t.test("M3: a phone's user exports the phone's own data in the same layout; the cloud imports it", async (t) => {
    const phoneDir = tempDir(t)
    const files = new PhoneFiles({ dataDir: phoneDir, clock: dest.clock })
    await files.add({ category: 'photos', takenAt: TAKEN, lat: 55.9486, lon: -3.1999 })
    await files.add({ category: 'contacts', name: 'Grace Hopper', phone: '+1 555 0100' })
    await files.add({ category: 'notes', title: 'Ideas', body: 'export everything' })
    const bag = join(tempDir(t), 'phone-bag')
    const exported = await runCli(['phone', '--data', phoneDir, 'export', '--out', bag])
    t.match(exported.out, /^Exported the phone to .*phone-bag: 3 items, 7 files, \d+ bytes/)
    t.equal((await runCli(['bag', 'validate', bag])).code, 0)
    t.match(
      (await runCli([...api(dest), 'import', bag, '--account', 'dave'])).out,
      // M3: the records by kind, in the words the export counted them with ("3 items"): the numbers add up.
      "Imported into account dave: 4 records added, 0 already there, 0 refused\n  of the bag's 4 records: 1 account, 3 items\n",
    )
    const local = (await Promise.all((['photos', 'contacts', 'notes'] as const).map((c) => files.list(c)))).flat()
    const cloud = (await snapshot(dest, 'dave')).items
    t.same(
      cloud.map((i) => [i.category, i.id, i.sha256, i.size, i.meta, i.modifiedAt]),
      local
        .map((i) => [i.category, i.id, i.sha256, i.size, i.meta, i.modifiedAt])
        .sort((a, b) => (a[0] as string).localeCompare(b[0] as string)),
    )
    const tar = join(tempDir(t), 'phone.tar')
    t.match(JSON.parse((await runCli(['phone', '--data', phoneDir, '--json', 'export', '--out', tar, '--format', 'tar'])).out), {
      account: 'phone',
      format: 'tar',
      files: 7,
    })
  })

  await t.test(
    'M2: migrate to another cloud as a job: verified item by item (SHA-256, fields, EXIF), resumable, cancellable',
    async (t) => {
      const dest = await startCloud(t, {}, new ManualClock(source.clock.now()))
      const dir = tempDir(t)
      const tokenFile = join(dir, 'dest.token')
      writeFileSync(tokenFile, dest.consoleToken + '\n')
      const job = join(dir, 'job.json')
      const migrate = (
        to: string,
        io?: TestIo,
        jobFile = job,
        extra: string[] = [],
      ): Promise<number> | Promise<{ code: number; out: string; err: string }> => {
        const argv = [
          ...api(source),
          // The in-process run (the cancelled one) asks for JSON.
          ...(io ? ['--json'] : []),
          'migrate',
          'alice',
          '--to',
          dest.apiUrl,
          '--to-token-file',
          tokenFile,
          '--to-account',
          to,
          '--job',
          jobFile,
          ...extra,
        ]
        return io ? main(argv, io.io) : runCli(argv)
      }
      const cancelled = testIo(new ManualClock())
      cancelled.abort()
      t.equal(await migrate('mig', cancelled), 130)
      t.match(JSON.parse(cancelled.out()), { state: 'cancelled', summary: /run the command again to resume/ })
      t.match(
        JSON.parse(cancelled.err()),
        { error: /^the migration was stopped and saved as cancelled in .*job\.json: run the same command again/, code: 'INTERRUPTED' },
        'under --json the error line says it, as JSON',
      )
      t.match(JSON.parse(readFileSync(job, 'utf8')), { state: 'cancelled', runs: 1 })

      const done = (await migrate('mig')) as { code: number; out: string }
      t.equal(done.code, 0)
      t.match(
        done.out,
        new RegExp(
          String.raw`^Migration of alice to http://127\.0\.0\.1:\d+ \(account mig\): completed\. ` +
            String.raw`8 of 8 items identical, bytes \d+, metadata fields \d+ checked\n` +
            // M2, M3: the 8 by kind, in the words the export counts them with.
            String.raw`  of the 8: 6 items, 1 drive file, 1 backup\n` +
            // M2 across devices: the account's phone is told to follow (test/cli/migrate-follow.test.ts).
            String.raw`Phones told over push to follow to http://127\.0\.0\.1:\d+: phone-a\n$`,
        ),
      )
      const saved = JSON.parse(readFileSync(job, 'utf8'))
      t.match(saved, { state: 'completed', runs: 2 }, 'the cancelled job resumed')
      t.equal(saved.copiedBy, 'destination', 'M2: the destination pulled the bytes from the source itself (--api’s address)')
      t.match(
        source.broker.cloud.retirement.migration('alice'),
        { how: 'migrate', detail: /^to http:\/\/127\.0\.0\.1:\d+$/ },
        'M1: a migration proven identical is recorded at the source',
      )
      t.equal(saved.report.length, 8)
      t.ok(
        saved.report.every(
          (r: { sourceSha256: string; destSha256: string; identical: boolean }) => r.identical && r.sourceSha256 === r.destSha256,
        ),
      )
      t.equal(
        saved.report.find((r: { id: string }) => r.id === 'photos/IMG_20260601_123015_000.jpg').fieldsChecked,
        13,
        '9 record fields and 4 EXIF fields',
      )

      // A blob damaged at the destination after the copy: verification finds it and the job does not say completed.
      const photo = (await snapshot(source, 'alice')).items.find((i) => i.id === 'IMG_20260601_123015_000.jpg')?.sha256 as string
      const wav = (await snapshot(source, 'alice')).items.find((i) => i.category === 'recordings')?.sha256 as string
      const locate = (sha256: string): BlobFile => dest.broker.cloud.blobs.locate(sha256) as BlobFile
      // The photo is small, so in the pack of the batch that brought it (blob-store.ts); the recording (80 KB) is not.
      const [p, w] = [locate(photo), locate(wav)]
      t.match([p, w], [{ packed: true }, { packed: false }])
      const bytes = readFileSync(p.path)
      bytes.write('Xiaomj', bytes.indexOf('Xiaomi', p.offset, 'latin1'), 'latin1')
      writeFileSync(p.path, bytes)
      rmSync(w.path)
      // --relay: the bytes through this console, as before the destination could pull.
      const damaged = (await migrate('mig', undefined, job, ['--relay'])) as { code: number; out: string; err: string }
      t.equal(JSON.parse(readFileSync(job, 'utf8')).copiedBy, 'console')
      t.equal(damaged.code, 1)
      t.match(
        damaged.out,
        new RegExp(
          String.raw`partially completed\. 6 of 8 items identical[\s\S]*item photos/IMG_20260601_123015_000\.jpg: bytes hash to ` +
            String.raw`[0-9a-f]{64} at the destination; EXIF camera differs\n[\s\S]*item recordings/REC_20260601_123015_000\.wav: ` +
            String.raw`its bytes cannot be read at the destination`,
        ),
      )
      t.equal(
        damaged.err,
        'error: the migration is partially completed: what did not go across is said above; resolve it and run the same ' +
          'command again to carry on\n',
        'the summary printed above is not repeated',
      )

      // Into an account whose drive file, backup and device ids another account holds there: those fail, each said
      // (and the two blobs damaged above are the same blobs for this account: content-addressed).
      t.match(
        ((await migrate('bob2')) as { err: string }).err,
        /job\.json is the migration of alice to .* \(account mig\); give this one another --job file/,
      )
      const partial = (await migrate('bob2', undefined, join(dir, 'job2.json'))) as { code: number; out: string }
      t.match(
        partial.out,
        new RegExp(String.raw`\(account bob2\): partially completed\. 4 of 8 items identical, bytes \d+, metadata fields \d+ checked\n`),
        'M2: the summary is one line; what else did not go across is listed under it, one line each, as items are',
      )
      t.match(
        partial.out,
        '\n  device phone-a: device phone-a is registered to account "mig" on this cloud: import into that account, or ' +
          'remove the device there first (fakephone device remove phone-a --data DIR)\n',
      )
      t.match(partial.out, '\n  locations phone-a: device phone-a is not a device of bob2 here: account "mig" holds it\n')
      // Under --json the error line is the only text: it says the summary and what else did not go across.
      const partialJson = testIo(new ManualClock())
      t.equal(await migrate('bob2', partialJson, join(dir, 'job2.json')), 1)
      t.match(JSON.parse(partialJson.err()), {
        error: /^the migration is partially completed: 4 of 8 items identical, .*; device phone-a: .* registered to account "mig"/,
        code: 'ERROR',
      })
      t.match(JSON.parse(readFileSync(join(dir, 'job2.json'), 'utf8')).others, [
        { kind: 'device', id: 'phone-a', error: /registered to account "mig"/ },
      ])
      t.match(partial.out, /drive [0-9a-f-]+: drive file id "[0-9a-f-]+" is taken here by another file/)

      // --from-url: the source as the destination reaches it; here an address where nothing listens, so the console relays
      // (to a cloud of its own: the blobs are not there yet) and says so.
      const other = await startCloud(t, {}, new ManualClock(source.clock.now()))
      writeFileSync(join(dir, 'other.token'), other.consoleToken)
      const closed = createServer()
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
      const nowhere = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
      await new Promise((resolve) => closed.close(resolve))
      const relayed = await runCli([
        ...api(source),
        'migrate',
        'alice',
        '--to',
        other.apiUrl,
        '--to-token-file',
        join(dir, 'other.token'),
        '--job',
        join(dir, 'job5.json'),
        '--from-url',
        nowhere,
      ])
      t.equal(relayed.code, 0)
      t.match(
        relayed.out,
        new RegExp(
          String.raw`completed\. 8 of 8 items identical, bytes \d+, metadata fields \d+ checked\n {2}of the 8: [^\n]+\n` +
            String.raw`The destination could not reach the source \(this cloud cannot reach the source at ` +
            String.raw`http://127\.0\.0\.1:\d+: connect ECONNREFUSED 127\.0\.0\.1:\d+\): this console relayed the bytes instead\.\n` +
            String.raw`Phones told`,
        ),
      )
      t.ok(relayed.out.includes(nowhere), 'the address it could not reach')
      t.match(JSON.parse(readFileSync(join(dir, 'job5.json'), 'utf8')), { copiedBy: 'console', relayedBecause: /ECONNREFUSED/ })

      // Cancelled between two blobs of the copy; a destination that refuses the console token fails the run, saying why.
      const controller = new AbortController()
      class Cancelling extends Progress {
        override item(): void {
          controller.abort()
        }
      }
      const options = {
        source: client(source),
        dest: client(dest),
        account: 'alice',
        to: dest.apiUrl,
        toAccount: 'mid',
        jobFile: join(dir, 'job3.json'),
        signal: controller.signal,
        now: () => dest.clock.now(),
        progress: () => new Cancelling(null, dest.clock, 'x', { items: 0, bytes: 0 }),
      }
      t.match(await migrateJob(options), { state: 'cancelled', summary: 'cancelled during the copy; run the command again to resume' })
      await t.rejects(
        migrateJob({
          ...options,
          dest: new ConsoleClient(dest.apiUrl, 'wrong'),
          jobFile: join(dir, 'job4.json'),
          signal: new AbortController().signal,
        }),
        ConsoleApiError,
      )
      t.match(
        JSON.parse(readFileSync(join(dir, 'job4.json'), 'utf8')),
        { state: 'failed', summary: /^stopped: .+; run the command again to resume$/ },
        'M2: a run stopped by an error says so in its job, not `running` long after the process is gone',
      )

      // M2: Ctrl-C as a user presses it, in the middle of a run: the command stops by itself, saves the job as cancelled
      // (the process did not end first, leaving it `running`) and says how to resume it; the same command then completes it.
      const ctrlC = testIo(new ManualClock())
      const front = await httpFront(t, source.apiUrl, (req, _res, forward) => {
        if (req.url === '/api/accounts/alice/export') ctrlC.abort()
        forward()
      })
      // A cloud of its own: the drive file's and the backup's ids are taken at `dest` by the copies above.
      const third = await startCloud(t, {}, new ManualClock(source.clock.now()))
      writeFileSync(join(dir, 'third.token'), third.consoleToken)
      const job6 = join(dir, 'job6.json')
      const argv = ['console', '--api', front, '--data', source.dataDir, 'migrate', 'alice', '--to', third.apiUrl]
      const ctrlCArgs = [...argv, '--to-token-file', join(dir, 'third.token'), '--job', job6]
      t.equal(await main(ctrlCArgs, ctrlC.io), 130)
      t.match(JSON.parse(readFileSync(job6, 'utf8')), { state: 'cancelled', runs: 1 }, 'saved before the command ended')
      t.match(ctrlC.out(), /: cancelled\. cancelled before the copy; run the command again to resume\n$/)
      t.equal(ctrlC.err(), `error: the migration was stopped and saved as cancelled in ${job6}: run the same command again to resume it\n`)
      t.equal((await runCli(ctrlCArgs)).code, 0)
      t.match(JSON.parse(readFileSync(job6, 'utf8')), { state: 'completed', runs: 2 })

      t.equal(jobState([], 0), 'completed')
      t.equal(jobState([{ identical: false } as ItemReport], 0), 'failed')
      t.equal(jobState([{ identical: true } as ItemReport], 1), 'partially completed')
      const noToken = (await runCli([
        ...api(source),
        'migrate',
        'alice',
        '--to',
        dest.apiUrl,
        '--to-token-file',
        join(dir, 'none'),
        '--job',
        job,
      ])) as {
        err: string
      }
      t.match(noToken.err, /cannot read the other cloud's console token .*none \(ENOENT\)/)
    },
  )
})
