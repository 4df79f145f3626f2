/** Sync and the recycle bin from the command line (S1, S3, R1, R3), in-process against a real broker and agent. */
import t from 'tap'
import type { ManualClock } from '../../common/clock.js'
import { renderBin, renderSyncStatus, syncStopped } from '../../cli/sync-commands.js'
import type { SyncStatus } from '../../agent/sync/engine.js'
import { CloudClient } from '../../agent/cloud-client.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { ItemReplySchema, SYNC_PATH } from '../../common/cloud/sync-api.js'
import { DEFAULT_SYNC_SWITCHES } from '../../agent/sync/switches.js'
import { deviceOnDisk, startCloud } from '../fixtures/cloud.js'
import { run } from '../fixtures/io.js'
import { utcDate } from '../../common/format-time.js'
import { startCliAgent } from '../fixtures/cli-agent.js'

t.test('S1, S2, X1: phone sync (cloud service off: says so) and console items / delete / bin / restore', async (t) => {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const { secret, secretFile, phoneDir } = await deviceOnDisk(t, cloud)
  const phone = ['phone', '--data', phoneDir]
  const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

  const { io: agentIo, running } = await startCliAgent(
    t,
    cloud,
    { secretFile, phoneDir },
    {
      // A heartbeat a day: the test jumps the clock by 29 days, 83,520 heartbeats at the default 30 s.
      args: ['--interval', '1d'],
    },
  )

  const status = JSON.parse((await run([...phone, '--json', 'sync', 'status'])).out)
  t.ok(status.sync !== null && typeof status.sync === 'object', '--json is an object holding the sync status')
  t.match(
    (await run([...phone, 'sync', 'status'])).out,
    new RegExp(
      String.raw`gallery auto-backup on, album sync on[\s\S]*category\s+switch\s+uploads\s+local\s+in cloud\s+pending\s+last ` +
        String.raw`sync\nphotos\s+on\s+on\s+0\s+0\s+0\s+`,
    ),
  )
  const off = await run([...phone, 'sync', 'notes', 'off'])
  t.match(off.out, /notes\s+off\s+off\s+0\s+0\s+0/)
  t.match((await run([...phone, 'gallery-backup', 'off'])).out, /gallery auto-backup off, album sync on[\s\S]*photos\s+on\s+off/)
  t.match((await run([...phone, 'album-sync', 'off'])).out, /gallery auto-backup off, album sync off/)
  t.match(JSON.parse((await run([...phone, '--json', 'album-sync', 'on'])).out), {
    sync: { switches: { albumSync: true, galleryBackup: false } },
  })
  await run([...phone, 'gallery-backup', 'on'])
  await run([...phone, 'sync', 'notes', 'on'])
  t.match((await run([...phone, 'sync', 'music', 'on'])).err, /unknown category "music": use photos, contacts, notes, recordings/)
  t.match((await run([...phone, 'sync', 'notes'])).err, /say on or off: fakephone phone sync notes on\|off/)
  t.match((await run([...phone, 'sync', 'notes', 'maybe'])).err, /must be "on" or "off"/)

  // A note in the cloud: the console sees it, deletes it, restores it, deletes it for good.
  const client = new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('phone-a', secret) })
  const bytes = Buffer.from('Groceries\nmilk\n')
  const note = { id: 'a1b2c3d4-0000-4000-8000-000000000001.txt' }
  await client.call('PUT', `${SYNC_PATH}/notes/${note.id}`, ItemReplySchema, {
    sha256: await client.upload(bytes),
    size: bytes.length,
    meta: { title: 'Groceries' },
    modifiedAt: clock.now(),
  })
  const items = await run([...api, 'items', 'alice'])
  t.match(
    items.out,
    new RegExp(
      `account alice: what the cloud keeps\\n[\\s\\S]*notes\\s+1 item\\s+\\d+ B[\\s\\S]*notes/${note.id}\\s+\\d+ B\\s+changed by phone-a`,
    ),
  )
  t.match(JSON.parse((await run([...api, '--json', 'items', 'alice', '--category', 'photos'])).out), {
    items: [],
    totals: { notes: { count: 1 } },
  })
  // S2: with --category, the total of that category alone heads its list; the JSON keeps every total, as the API gives them.
  const notes = (await run([...api, 'items', 'alice', '--category', 'notes'])).out
  // One item is "1 item", its number and size in the columns of the others (photos below: "0 items").
  t.match(notes, new RegExp(`^account alice: what the cloud keeps of notes\\n  notes {12}1 item {3}\\d+ B\\nnotes/${note.id}\\s`))
  t.notMatch(notes, /photos|contacts|recordings/, 'no other category')
  t.equal(
    (await run([...api, 'items', 'alice', '--category', 'photos'])).out,
    'account alice: what the cloud keeps of photos\n  photos           0 items  0 B\n',
  )
  t.match((await run([...api, 'items', 'alice', '--category', 'music'])).err, /unknown category/)
  t.equal((await run([...api, 'bin', 'alice'])).out, 'recently deleted of alice is empty (entries stay 30 days)\n')
  t.equal((await run([...api, 'delete', 'alice', 'notes', note.id])).out, `notes/${note.id} moved to recently deleted\n`)
  const deletedAt = clock.now()
  clock.advance(29 * 86_400_000)
  t.match(
    (await run([...api, 'bin', 'alice'])).out,
    new RegExp(
      `recently deleted of alice \\(entries stay 30 days\\):\\nnotes/${note.id}\\s+\\d+ B\\s+deleted 29d 0h ago\\s+1 day left ` +
        `\\(purged ${utcDate(deletedAt + 30 * 86_400_000)}\\)\\n`,
    ),
    'R1: the days left and the time it goes',
  )
  // The id as `bin` and `items` print it, `notes/ID`, is taken as it is copied from there.
  t.equal((await run([...api, 'restore', 'alice', 'notes', `notes/${note.id}`])).out, `notes/${note.id} restored\n`)
  t.equal((await run([...api, 'delete', 'alice', 'notes', `notes/${note.id}`])).out, `notes/${note.id} moved to recently deleted\n`)
  t.match((await run([...api, 'delete', 'alice', 'notes', `photos/${note.id}`])).err, /bad item id "photos\//, 'another prefix is not')
  // R1, R3: the line's first column alone, CATEGORY/ID, names the item too.
  t.equal((await run([...api, 'restore', 'alice', `notes/${note.id}`])).out, `notes/${note.id} restored\n`)
  t.equal((await run([...api, 'delete', 'alice', `notes/${note.id}`])).out, `notes/${note.id} moved to recently deleted\n`)
  t.match(
    (await run([...api, 'delete', 'alice', 'notes'])).err,
    'say which notes item: CATEGORY ID, or CATEGORY/ID as `items` and `bin` list it',
    'a category alone is not an item',
  )
  t.match((await run([...api, 'delete', 'alice', `music/${note.id}`])).err, /unknown category "music"/)
  t.match(
    (await run([...api, 'delete-forever', 'alice', `notes/${note.id}`])).out,
    new RegExp(`notes/${note.id} deleted for good \\(\\d+ B freed\\)`),
  )
  t.match((await run([...api, 'restore', 'alice', 'notes', note.id])).err, /is not in recently deleted/)
  t.match(JSON.parse((await run([...api, '--json', 'bin', 'alice'])).out), { entries: [], windowDays: 30 })

  // Seeding a running phone's folder starts a sync there; `sync now` waits for it.
  const seeded = await run([
    'agent',
    'seed-data',
    '--data',
    phoneDir,
    '--photos',
    '2',
    '--contacts',
    '0',
    '--notes',
    '0',
    '--recordings',
    '0',
  ])
  t.match(seeded.out, /The phone running on this folder is syncing them now/)
  t.match((await run([...phone, 'sync', 'now'])).out, /photos\s+on\s+on\s+2\s+2\s+0/, 'both photos are in the cloud')
  t.equal(JSON.parse((await run([...api, '--json', 'items', 'alice', '--category', 'photos'])).out).items.length, 2)

  // S1, S2, X1: with the cloud service off, seeding and `sync now` say nothing goes up, instead of "syncing them now".
  await run([...phone, 'cloud-service', 'off'])
  const one = ['agent', 'seed-data', '--data', phoneDir, '--photos', '1', '--contacts', '0', '--notes', '0', '--recordings', '0']
  const kept = await run([...one, '--seed', '2'])
  t.notMatch(kept.out, /syncing them now/)
  t.match(
    kept.out,
    'The phone running on this folder keeps them on the phone for now: the cloud service is off, so nothing goes up or ' +
      'comes down until it is back on (phone cloud-service on); what the cloud kept stays there (S2).\n',
  )
  t.match(JSON.parse((await run([...one, '--seed', '3', '--json'])).out), { syncStarted: false })
  const stopped = (await run([...phone, 'sync', 'now'])).out
  t.match(stopped, /^gallery auto-backup on, album sync on\nnot syncing: the cloud service is off, so nothing goes up/)
  t.match(stopped, /what the cloud kept stays there \(S2\); "in cloud" is as of the last sync\n/)
  t.match(stopped, /photos\s+on\s+on\s+4\s+2\s+2\s/, 'the two new photos wait on the phone')
  t.equal(
    JSON.parse((await run([...api, '--json', 'items', 'alice', '--category', 'photos'])).out).items.length,
    2,
    'S2: the cloud kept two',
  )
  await run([...phone, 'cloud-service', 'on'])
  t.notMatch((await run([...phone, 'sync', 'status'])).out, /not syncing/)

  agentIo.abort()
  t.equal(await running, 0)
})

t.test('S1: sync status without a cloud, with no network, and with a last sync and a last error', (t) => {
  t.equal(renderSyncStatus(null, 0), 'sync          unavailable: this phone has no cloud to talk to\n')
  const notes = { sync: true, uploads: true, local: 3, inCloud: 2, pending: 1, lastSync: 0, lastError: 'n1.txt: over quota' }
  const text = renderSyncStatus(
    { switches: DEFAULT_SYNC_SWITCHES, running: true, categories: { photos: notes, contacts: notes, notes, recordings: notes } },
    90_000,
  )
  t.match(text, /^gallery auto-backup on, album sync on, syncing now\n/)
  t.match(text, /notes\s+on\s+on\s+3\s+2\s+1\s+1m 30s ago\n\s+last error: n1.txt: over quota\n/)
  const idle = renderSyncStatus(
    { switches: DEFAULT_SYNC_SWITCHES, running: false, categories: { photos: notes, contacts: notes, notes, recordings: notes } },
    90_000,
  )
  t.match(idle, /^gallery auto-backup on, album sync on\n/)
  t.notMatch(idle, /no room/, 'no retry waits (an older phone says nothing of it)')
  const statusOf = (retryAt: number | null): SyncStatus => ({
    switches: DEFAULT_SYNC_SWITCHES,
    running: false,
    categories: { photos: notes, contacts: notes, notes, recordings: notes },
    retryAt,
  })
  t.match(
    renderSyncStatus(statusOf(180_000), 90_000),
    /^gallery auto-backup on, album sync on\nthe cloud had no room for some items \(quota or disk full\): tried again in 1m 30s\ncategory/,
    'A1: when the items the cloud had no room for are tried again',
  )
  t.notMatch(renderSyncStatus(statusOf(null), 0), /no room/, 'none waits (a phone of this version)')
  const never = renderSyncStatus(
    {
      switches: DEFAULT_SYNC_SWITCHES,
      running: false,
      categories: { photos: { ...notes, lastSync: null, lastError: null }, contacts: notes, notes, recordings: notes },
    },
    90_000,
  )
  t.match(never, /photos\s+on\s+on\s+3\s+2\s+1\s+never\n/, 'a category never synced says so')
  t.match(
    renderSyncStatus(
      { switches: DEFAULT_SYNC_SWITCHES, running: false, categories: { photos: notes, contacts: notes, notes, recordings: notes } },
      90_000,
      syncStopped({ cloudService: true, network: 'none' }),
    ),
    new RegExp(
      String.raw`^gallery auto-backup on, album sync on\nnot syncing: the phone has no network; it syncs once it has one ` +
        String.raw`\(phone network wifi\); "in cloud" is as of the last sync\n`,
    ),
    'S1: a phone with no network says why nothing moves',
  )
  t.equal(syncStopped({ cloudService: true, network: 'wifi' }), null)
  const entry = { category: 'notes' as const, id: 'n.txt', size: 10, deletedAt: 0, purgeAt: 0 }
  t.match(
    renderBin({
      now: 0,
      account: 'alice',
      windowDays: 180,
      entries: [
        { ...entry, daysLeft: 180 },
        { ...entry, daysLeft: 1 },
      ],
    }),
    /180 days left \(purged 1970-01-01 00:00 UTC\)\n.*1 day left \(purged 1970-01-01 00:00 UTC\)\n$/,
  )
  t.end()
})
