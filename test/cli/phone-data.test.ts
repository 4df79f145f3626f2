/** `fakephone phone data ...` and `fakephone agent seed-data` in-process, against a real agent's control socket (S1-S4). */
import t, { type Test } from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { serveControl } from '../../agent/control.js'
import type { DataRow } from '../../agent/phone-data/control-ops.js'
import type { Category } from '../../agent/phone-data/types.js'
import { formatBytes, renderItems } from '../../cli/phone-data-render.js'
import type { ManualClock } from '../../common/clock.js'
import { cloudWithAgent } from '../fixtures/cloud.js'
import { run } from '../fixtures/io.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

async function runningPhone(t: Test): Promise<{ dataDir: string; clock: ManualClock; phone: string[] }> {
  const dataDir = tempDir(t)
  // No cloud URL: no sync, so no upload races the listings and the marker reads "-" (sync's own tests show it).
  const { cloud, clock, agent } = await cloudWithAgent(t, 'phone-a', { dataDir, cloudUrl: undefined })
  const server = await serveControl(agent, dataDir, cloud.logs.logger())
  onEnd(t, () => server.close())
  return { dataDir, clock, phone: ['phone', '--data', dataDir, 'data'] }
}

t.test('S1: the user adds, lists, edits and deletes contacts and notes on a running phone', async (t) => {
  const { phone, clock } = await runningPhone(t)
  t.equal(
    (await run([...phone, 'list', 'contacts'])).out,
    'No contacts on this phone; add one with: fakephone phone data add contacts --name NAME\n',
  )

  clock.advance(60_000)
  const added = await run([
    ...phone,
    'add',
    'contacts',
    '--name',
    'Alice Smith',
    '--phone',
    '+44 7700 900123',
    '--email',
    'alice@example.com',
  ])
  t.equal(added.code, 0)
  t.match(
    added.out,
    /^Added contacts\/([0-9a-f-]{36})\.vcf \(\d+ B\): name Alice Smith, phone \+44 7700 900123, email alice@example\.com\n$/,
  )
  const id = /contacts\/(\S+\.vcf)/.exec(added.out)?.[1] as string
  const bob = JSON.parse((await run([...phone, 'add', 'contacts', '--name', 'Bob Jones', '--json'])).out)
  t.match(bob, { item: { category: 'contacts', meta: { name: 'Bob Jones', phone: null }, inCloud: null } })

  const list = await run([...phone, 'list', 'contacts'])
  t.match(list.out, /^ID\s+NAME\s+PHONE\s+EMAIL\s+SIZE\s+MODIFIED \(UTC\)\s+IN CLOUD\n/)
  t.match(list.out, new RegExp(`${id}\\s+Alice Smith\\s+\\+44 7700 900123\\s+alice@example\\.com\\s+\\d+ B\\s+2026-01-01 00:01:00\\s+-\\n`))
  t.match(list.out, /Bob Jones\s+-\s+-\s+\d+ B/)
  t.equal(JSON.parse((await run(['phone', '--data', phone[2] as string, '--json', 'data', 'list', 'contacts'])).out).items.length, 2)

  const edited = await run([...phone, 'edit', 'contacts', id, '--phone', '+44 7700 900999', '--email', ''])
  t.match(edited.out, /^Changed contacts\/\S+ \(\d+ B\): name Alice Smith, phone \+44 7700 900999, email -\n$/)
  t.equal((await run([...phone, 'delete', 'contacts', bob.item.id])).out, `Deleted contacts/${bob.item.id} from the phone.\n`)
  t.match(JSON.parse((await run([...phone, 'delete', 'contacts', id, '--json'])).out), { deleted: { category: 'contacts', id } })
  t.match((await run([...phone, 'list', 'contacts'])).out, /^No contacts/)

  const note = JSON.parse((await run([...phone, 'add', 'notes', '--title', 'Shopping', '--body', 'milk', '--json'])).out).item
  t.match(
    (await run([...phone, 'edit', 'notes', note.id, '--title', 'Groceries'])).out,
    /^Changed notes\/\S+\.txt \(\d+ B\): title Groceries\n$/,
  )
  t.match((await run([...phone, 'edit', 'notes', note.id, '--body', 'eggs'])).out, /title Groceries/, 'the title kept')
  t.match(
    (await run([...phone, 'list', 'notes'])).out,
    /^ID\s+TITLE\s+SIZE\s+MODIFIED \(UTC\)\s+IN CLOUD\n\S+\.txt\s+Groceries\s+\d+ B\s+2026-01-01 00:01:00\s+-\n$/,
  )
})

t.test('S1/S3: the user takes a photo where the phone is and records a memo', async (t) => {
  const { phone, clock, dataDir } = await runningPhone(t)
  t.match((await run([...phone, 'list', 'photos'])).out, /take one with: fakephone phone data take-photo/)
  t.match((await run([...phone, 'list', 'recordings'])).out, /make one with: fakephone phone data record/)
  clock.advance(3_600_000)
  const photo = await run([...phone, 'take-photo'])
  t.match(
    photo.out,
    new RegExp(
      String.raw`^Took photos\/IMG_20260101_010000_000\.jpg \(\d+\.\d KB\): taken 2026-01-01 01:00:00, position ` +
        String.raw`55\.94860,-3\.19990, camera Xiaomi 13\n$`,
    ),
  )
  t.ok(existsSync(join(dataDir, 'sdcard', 'DCIM', 'Camera', 'IMG_20260101_010000_000.jpg')))
  t.match(
    (await run([...phone, 'list', 'photos'])).out,
    new RegExp(
      String.raw`^ID\s+TAKEN \(UTC\)\s+POSITION\s+CAMERA\s+SIZE\s+MODIFIED \(UTC\)\s+IN CLOUD\n` +
        String.raw`IMG_20260101_010000_000\.jpg\s+2026-01-01 01:00:00\s+55\.94860,-3\.19990\s+Xiaomi 13\s+\d+\.\d KB\s+2026-01-01 ` +
        String.raw`01:00:00\s+-\n$`,
    ),
  )

  t.match(
    (await run([...phone, 'record', '--seconds', '2.5'])).out,
    /^Recorded recordings\/REC_20260101_010000_000\.wav \(39\.1 KB\): length 2\.5 s\n$/,
  )
  t.match(JSON.parse((await run([...phone, 'record', '--json'])).out), { item: { meta: { durationS: 5 } } })
  t.match((await run([...phone, 'list', 'recordings'])).out, /REC_20260101_010000_000\.wav\s+2\.5 s\s+39\.1 KB/)
})

t.test('bad input from the user gets a clear error and the phone keeps running', async (t) => {
  const { phone } = await runningPhone(t)
  const photo = JSON.parse((await run([...phone, 'take-photo', '--json'])).out).item
  const cases: [string[], RegExp][] = [
    [['list', 'videos'], /^error: unknown category "videos": use one of photos, contacts, notes, recordings\n$/],
    [['add', 'contacts'], /^error: a new contact needs a name \(--name\)\n$/],
    [['add', 'notes', '--body', 'x'], /^error: a new note needs a title \(--title\)\n$/],
    [['add', 'notes', '--title', ' '], /a note needs a title of 1 to 200 characters/],
    [['add', 'photos'], /^error: photos are not typed in: use take-photo or record\n$/],
    [['add', 'recordings'], /use take-photo or record/],
    [['edit', 'photos', photo.id, '--name', 'x'], /^error: photos cannot be edited on the phone, only taken and deleted\n$/],
    [['edit', 'contacts', 'nobody.vcf', '--name', 'x'], /^error: no contacts item "nobody\.vcf" on this phone\n$/],
    [['edit', 'contacts', '../settings.json'], /^error: bad contacts id "\.\.\/settings\.json": an id is a file name/],
    [['delete', 'notes', 'gone.txt'], /no notes item "gone\.txt"/],
    [['delete', 'notes', 'a/b.txt'], /bad notes id/],
    [['record', '--seconds', '0'], /must be a number of seconds from 0\.1 to 3600/],
  ]
  for (const [args, err] of cases) {
    const r = await run([...phone, ...args])
    t.equal(r.code, 1, args.join(' '))
    t.match(r.err, err)
  }
  t.match((await run([...phone, 'list', 'photos'])).out, new RegExp(photo.id), 'still running, photo still there')
  t.match((await run(['phone', '--data', tempDir(t), 'data', 'list', 'notes'])).err, /no agent is running with data directory/)
})

t.test('S1: a flag meant for the other kind is refused, naming the flags the kind takes, and nothing is written', async (t) => {
  const { phone } = await runningPhone(t)
  const contact = JSON.parse((await run([...phone, 'add', 'contacts', '--name', 'Ann', '--json'])).out).item
  const note = JSON.parse((await run([...phone, 'add', 'notes', '--title', 'Plan', '--json'])).out).item
  const cases: [string[], string][] = [
    [['add', 'contacts', '--name', 'Bob', '--title', 'x'], 'a contact takes --name, --phone and --email, not --title'],
    [['add', 'contacts', '--title', 'x', '--body', 'y'], 'a contact takes --name, --phone and --email, not --title or --body'],
    [['add', 'notes', '--title', 'x', '--email', 'a@b'], 'a note takes --title and --body, not --email'],
    [['add', 'notes', '--name', 'n', '--phone', '1', '--email', 'e'], 'a note takes --title and --body, not --name, --phone or --email'],
    [['edit', 'contacts', contact.id, '--body', 'x'], 'a contact takes --name, --phone and --email, not --body'],
    [['edit', 'notes', note.id, '--title', 'New', '--name', 'x'], 'a note takes --title and --body, not --name'],
  ]
  for (const [args, err] of cases) {
    const r = await run([...phone, ...args])
    t.equal(r.code, 1, args.join(' '))
    t.equal(r.err, `error: ${err}\n`)
  }
  const contacts = JSON.parse((await run([...phone, 'list', 'contacts', '--json'])).out).items
  t.same(
    contacts.map((i: { meta: { name: string } }) => i.meta.name),
    ['Ann'],
    'no contact was added or changed',
  )
  const notes = JSON.parse((await run([...phone, 'list', 'notes', '--json'])).out).items
  t.same(
    notes.map((i: { meta: { title: string } }) => i.meta.title),
    ['Plan'],
    'no note was added or changed',
  )
})

t.test('seed-data fills a phone directory, deterministic for a seed, adding to what is there, with progress for long runs', async (t) => {
  const dir = tempDir(t)
  const first = await run([
    'agent',
    'seed-data',
    '--data',
    dir,
    '--photos',
    '3',
    '--contacts',
    '4',
    '--notes',
    '2',
    '--recordings',
    '1',
    '--seed',
    '9',
  ])
  t.equal(first.code, 0)
  t.match(first.out, new RegExp(`^Seeded 3 photos, 4 contacts, 2 notes and 1 recording \\(\\d+\\.\\d KB\\) into ${dir} with seed 9\\.\\n$`))
  t.equal(first.err, '', 'no progress lines for a short run')
  t.equal(readdirSync(join(dir, 'sdcard', 'DCIM', 'Camera')).length, 3)
  t.equal(readdirSync(join(dir, 'contacts')).length, 4)

  const again = JSON.parse(
    (await run(['agent', '--data', dir, 'seed-data', '--photos', '1', '--contacts', '0', '--notes', '0', '--recordings', '0', '--json']))
      .out,
  )
  t.match(again, { dataDir: dir, seed: 1, counts: { photos: 1, contacts: 0 }, bytes: Number })
  t.equal(readdirSync(join(dir, 'sdcard', 'DCIM', 'Camera')).length, 4, '--data given to agent works too; the run added to what was there')

  const twin = tempDir(t)
  await run(['agent', 'seed-data', '--data', twin, '--photos', '3', '--contacts', '4', '--notes', '2', '--recordings', '1', '--seed', '9'])
  t.same(readdirSync(join(twin, 'contacts')).sort(), readdirSync(join(dir, 'contacts')).sort(), 'the same seed gives the same contacts')

  const long = tempDir(t)
  const big = await run([
    'agent',
    'seed-data',
    '--data',
    long,
    '--photos',
    '100',
    '--contacts',
    '0',
    '--notes',
    '0',
    '--recordings',
    '0',
    '--near',
    '48.8566,2.3522',
  ])
  t.equal(big.err, 'photos: 100/100\n')

  t.match((await run(['agent', 'seed-data', '--data', long, '--photos', '-1'])).err, /--photos.*must be a whole number from 0 to 100000/)
  t.match((await run(['agent', 'seed-data', '--data', long, '--seed', 'x'])).err, /--seed.*must be a whole number from 0 to 4294967295/)
  t.match((await run(['agent', 'seed-data', '--near', '100,0'])).err, /LAT,LON/)
  t.match((await run(['agent', 'seed-data', '--help'])).out, /fill a phone's data directory/)
})

t.test('S1 seed-data adds only the categories asked for; with no count, the realistic mix the help names', async (t) => {
  const seed = async (...flags: string[]): Promise<{ counts: Record<Category, number> }> => {
    const r = await run(['agent', 'seed-data', '--data', tempDir(t), '--json', ...flags])
    t.equal(r.code, 0, r.err)
    return JSON.parse(r.out) as { counts: Record<Category, number> }
  }
  t.same((await seed('--photos', '2')).counts, { photos: 2, contacts: 0, notes: 0, recordings: 0 }, '--photos alone: photos only')
  t.same((await seed('--notes', '1', '--recordings', '1')).counts, { photos: 0, contacts: 0, notes: 1, recordings: 1 })
  t.same((await seed('--contacts', '0')).counts, { photos: 0, contacts: 0, notes: 0, recordings: 0 }, 'a count of 0 is a count too')
  t.same((await seed()).counts, { photos: 200, contacts: 50, notes: 20, recordings: 5 }, 'no count: the mix')
  const help = (await run(['agent', 'seed-data', '--help'])).out.replace(/\s+/g, ' ')
  t.match(help, 'with no count a realistic mix (200 photos, 50 contacts, 20 notes and 5 recordings), with any count only what it asks for')
})

t.test('the data table shows what is unknown as "-", the cloud marker as yes/no, and sizes in B, KB and MB', async (t) => {
  const row = (category: Category, meta: DataRow['meta'], size: number, inCloud: boolean | null): DataRow => ({
    category,
    id: `x-${size}`,
    path: '/x',
    size,
    modifiedAt: Date.UTC(2026, 0, 1),
    sha256: '',
    meta,
    inCloud,
  })
  const photos = renderItems('photos', [
    row('photos', { takenAt: null, lat: null, lon: null, camera: null }, 3 * 1024 * 1024, true),
    row('photos', { takenAt: 0, lat: 1, lon: 2, camera: 'X' }, 900, false),
  ])
  t.match(photos, /x-3145728\s+-\s+-\s+-\s+3\.0 MB\s+2026-01-01 00:00:00\s+yes\n/)
  t.match(photos, /x-900\s+1970-01-01 00:00:00\s+1\.00000,2\.00000\s+X\s+900 B\s+2026-01-01 00:00:00\s+no\n/)
  t.match(renderItems('recordings', [row('recordings', { durationS: null }, 10, null)]), /x-10\s+-\s+10 B/)
  t.equal(formatBytes(1536), '1.5 KB')
})

t.test('seed-data into a folder that cannot be made (under /proc) fails at once, in one line naming it, and writes nothing', async (t) => {
  const seeded = await run(['agent', 'seed-data', '--data', '/proc/self/fakephone-test', '--photos', '1'])
  t.equal(seeded.code, 1)
  t.equal(seeded.err, "error: ENOENT: no such file or directory, mkdir '/proc/self/fakephone-test'\n")
  t.equal(seeded.out, '')
})
