/**
 * A3 on a real phone: a real broker, the agent as `fakephone agent` starts it
 * with its photos and notes as real files in its data directory, the phone's
 * user and the console on the command line, one manual clock. After a year
 * without activity the account is frozen and its cloud data cleared; its
 * phones are told on the push channel (late, not never, with the framework's
 * network permission revoked: X3); once the account is signed in again, the
 * change feed says when the cloud was cleared and the phone uploads exactly
 * the items it still holds (S1) -- not one it deleted meanwhile.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CloudClient } from '../../agent/cloud-client.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { SyncState } from '../../agent/sync/state.js'
import { driveFolder } from '../../agent/drive/drive-settings.js'
import type { DriveFile } from '../../common/cloud/drive-api.js'
import { FREEZE_NOTICE_TITLE } from '../../broker/cloud/accounts.js'
import type { CloudItem } from '../../common/cloud/sync-api.js'
import { run } from '../fixtures/io.js'
import { DAY, phoneOf } from '../fixtures/frozen-phone.js'

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** What must arrive again: an item's name, bytes and metadata, not where it sits in the feed nor who sent it. */
const content = ({ category, id, sha256, size, meta, modifiedAt }: CloudItem) => ({ category, id, sha256, size, meta, modifiedAt })
const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id)

t.test(
  'A3, S1: signed in after the freeze, the phone uploads exactly the items it still holds, bytes and metadata by SHA-256; ' +
    'one it deleted meanwhile stays deleted; the freeze notice reaches it',
  async (t) => {
    const p = await phoneOf(t)
    const { cloud, clock } = p
    let agent = await p.start()
    for (let i = 0; i < 2; i++) await run([...p.phone, 'data', 'take-photo'])
    await run([...p.phone, 'data', 'add', 'notes', '--title', 'Groceries', '--body', 'milk, eggs'])
    await run([...p.phone, 'data', 'add', 'notes', '--title', 'Door code', '--body', '4711'])
    t.match((await run([...p.phone, 'sync', 'now'])).out, /photos\s+on\s+on\s+2\s+2\s+0[\s\S]*notes\s+on\s+on\s+2\s+2\s+0/)
    // And a file in the phone's Drive folder, with drive sync on (D1).
    const trip = Buffer.from("Edinburgh, 3 days: castle, Arthur's Seat, the Botanics\n")
    mkdirSync(driveFolder(p.phoneDir), { recursive: true })
    writeFileSync(join(driveFolder(p.phoneDir), 'trip.txt'), trip)
    t.match(JSON.parse((await run([...p.phone, '--json', 'drive', 'sync', 'on'])).out), { uploaded: ['trip.txt'] })
    const driveFiles = async (): Promise<DriveFile[]> =>
      (await p.json<{ files: DriveFile[] }>(...p.api, '--json', 'drive', 'list', 'alice')).files
    const before = (await p.cloudItems()).map(content).sort(byId)
    t.equal(before.length, 4, 'two photos and two notes in the cloud')

    // The phone lies in a drawer until a millisecond before the year is up; it is on when the freeze comes.
    await p.stop(agent)
    clock.advance((cloud.broker.cloud.accounts.need('alice').freezesAt as number) - clock.now() - 1)
    agent = await p.start()
    await run([...p.phone, 'sync', 'now'])
    clock.advance(1)
    await p.freezeNoticeShown(agent)
    t.equal((await p.cloudItems()).length, 0, 'the freeze cleared the cloud')
    t.match(
      (await run([...p.phone, 'notifications'])).out,
      new RegExp(`cloud +${FREEZE_NOTICE_TITLE} +0s +No cloud activity since 2026-01-01: on 2027-01-01 the account was frozen and its`),
      'the phone shows the freeze notice at once',
    )

    // While frozen the user deletes a photo from the phone.
    const [gone, kept] = (await p.list('photos')).sort(byId)
    await run([...p.phone, 'data', 'delete', 'photos', gone?.id as string])
    await run([...p.phone, 'sync', 'now'])
    t.equal((await run([...p.api, 'account', 'alice'])).code, 0, 'the owner signs in to the console')
    t.match(
      (await run([...p.phone, 'sync', 'now'])).out,
      /photos\s+on\s+on\s+1\s+1\s+0[\s\S]*notes\s+on\s+on\s+2\s+2\s+0/,
      'the phone says its items are in the cloud again',
    )
    t.ok(agent.io.logs.has("the cloud cleared the account's data (A3: a year without activity): the phone's items are uploaded again"))
    // The Drive folder goes up again too, in the background, started in the first of those passes; `drive sync now` waits
    // for a sync under way (a sync of a folder the phone still takes for uploaded would upload nothing).
    await run([...p.phone, 'drive', 'sync', 'now'])
    t.ok(
      agent.io.logs.lines.some((l) => l.msg === 'drive folder synced' && l['uploaded'] === 1),
      'the folder went up again',
    )
    t.match(
      await driveFiles(),
      [{ name: 'trip.txt', folder: '/', sha256: sha(trip), size: trip.length }],
      'the Drive folder is in the cloud again',
    )

    const after = await p.cloudItems()
    t.same(
      after.map(content).sort(byId),
      before.filter((i) => i.id !== gone?.id),
      "the cloud holds the phone's items again, the deleted photo not among them, each with the same bytes and metadata",
    )
    const local = [...(await p.list('photos')), ...(await p.list('notes'))]
    t.same(local.map((i) => i.id).sort(), after.map((i) => i.id).sort(), 'exactly what the phone holds')
    const client = new CloudClient({ baseUrl: cloud.apiUrl, credentials: new DeviceCredentials('phone-a', p.secret) })
    for (const item of local) {
      const onDisk = sha(readFileSync(item.path))
      const inCloud = after.find((i) => i.id === item.id) as CloudItem
      t.equal(inCloud.sha256, onDisk, `${item.id}: the cloud's SHA-256 is the file's`)
      t.equal(sha(await client.download(inCloud.sha256)), onDisk, `${item.id}: the bytes the cloud serves hash to it`)
      t.ok(item.inCloud, `${item.id} carries the "in the cloud" marker`)
    }
    t.match((await run([...p.api, '--json', 'bin', 'alice'])).out, /"entries":\[\]/, 'nothing went to the recycle bin')
    t.equal(kept?.id, local[0]?.id)
    await p.stop(agent)
  },
)

t.test('A3, X3: with the network permission revoked, the freeze notice waits in the cloud and arrives once it is back', async (t) => {
  const p = await phoneOf(t)
  const { cloud, clock } = p
  const agent = await p.start()
  await run([...p.phone, 'network-permission', 'off'])
  clock.advance((cloud.broker.cloud.accounts.need('alice').freezesAt as number) - clock.now())
  t.match(cloud.broker.cloud.accounts.need('alice'), { frozenAt: clock.now() }, 'frozen')
  clock.advance(3 * DAY)
  // Awaited below only once it is queued: a freeze that sends none fails here, not at the test's timeout.
  const waiting = t.match(
    (await run([...p.api, 'notifications', 'phone-a'])).out,
    new RegExp(`cloud\\s+${FREEZE_NOTICE_TITLE}\\s+3d 0h ago\\s+queued`),
    'the notice waits in the cloud',
  )
  if (!waiting) return p.stop(agent)
  t.match((await run([...p.phone, 'notifications'])).out, /^no notifications shown yet/i, 'the phone showed nothing')

  await run([...p.phone, 'network-permission', 'on'])
  await p.freezeNoticeShown(agent)
  const inbox = (await run([...p.phone, 'notifications'])).out
  t.match(inbox, new RegExp(`cloud +${FREEZE_NOTICE_TITLE} +3d 0h +No cloud activity since`), 'it arrives, three days late')
  t.notMatch(inbox, /will be frozen/, 'the warning it never got went with the freeze')
  await p.stop(agent)
})

t.test(
  'A3: a data dir written before the field takes the first clearing it is told of as new; a cloud without it changes nothing',
  async (t) => {
    const p = await phoneOf(t)
    const { cloud, clock } = p
    let agent = await p.start()
    await run([...p.phone, 'data', 'add', 'notes', '--title', 'Old phone', '--body', 'synced before the upgrade'])
    t.match((await run([...p.phone, 'sync', 'now'])).out, /notes\s+on\s+on\s+1\s+1\s+0/)
    await p.stop(agent)
    // What an agent older than the field wrote: the categories alone.
    const stateFile = join(p.phoneDir, 'sync-state.json')
    const { clearedAt, ...older } = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, unknown>
    t.equal(clearedAt, null, 'this version writes it, null before any clearing')
    writeFileSync(stateFile, JSON.stringify(older))

    clock.advance((cloud.broker.cloud.accounts.need('alice').freezesAt as number) - clock.now())
    await run([...p.api, 'account', 'alice'])
    agent = await p.start()
    t.match((await run([...p.phone, 'sync', 'now'])).out, /notes\s+on\s+on\s+1\s+1\s+0/, 'its note is in the cloud again')
    const notes = (await p.list('notes')).map((i) => i.id)
    t.same(
      (await p.cloudItems()).map((i) => i.id),
      notes,
      'uploaded from the phone',
    )
    await p.stop(agent)

    // A cloud older than the field sends none: the phone keeps what it knows.
    const state = new SyncState(p.phoneDir)
    await state.load()
    t.ok(state.of('notes').links[notes[0] as string], 'the note is linked')
    t.notOk(state.cloudCleared(undefined), 'no clearing learnt')
    t.equal(Object.keys(state.of('notes').links).length, 1, 'the link stays')
  },
)
