/**
 * F2: where a phone's commands stand, as every page of the web console hears it (cli/web/outcomes.ts, the live feed's
 * `outcomes` event): its newest command with its receipt said verified only when the owner's keys check it, and the fix
 * of its newest locate whose receipt is verified -- a forged receipt's fix never reaches the map. When the clock moves the
 * feed recalls every phone's newest command in one read, and reads no phone besides: a queued command that expired is
 * said so, and a phone whose commands the move cleared (a year without activity, A3) is said to have none. A feed that starts
 * recalls every phone's from the broker's command history (a restarted console loses nothing the pages showed), never
 * over a newer read; a recall again checks no receipt's signature it verified before, but one changed in the store
 * since is checked, and refused.
 */
import t, { type Test } from 'tap'
import type { IncomingMessage } from 'node:http'
import type { CommandView, CommandsReply, LatestCommandsReply } from '../../../common/console-api.js'
import { accountChangedTopic, type CommandState, type Result } from '../../../common/contract.js'
import { OwnerKeys, deviceKeys, signPayload } from '../../../common/signing.js'
import { ConsoleClient } from '../../../cli/console-client.js'
import { LiveFeed } from '../../../cli/web/live.js'
import { VerifiedReceipts } from '../../../cli/verified-receipts.js'
import { outcomeOf, type DeviceOutcome } from '../../../cli/web/outcomes.js'
import { LogCapture } from '../../fixtures/logs.js'
import { answered, signed, makeOwner, provision } from '../../fixtures/owner.js'
import { startCloud } from '../../fixtures/cloud.js'
import { ManualClock } from '../../../common/clock.js'
import { fakeStream, tempDir } from '../../fixtures/web.js'

const SECRET = 'phone-b-secret-0123456789abcdef'

/** A command of phone-b in `state`, with a receipt signed by `secret`'s key (none for an unfinished one). */
function view(
  owner: ReturnType<typeof makeOwner>,
  type: 'locate' | 'ring',
  state: CommandState,
  data: Record<string, number> | null,
  secret = SECRET,
): CommandView {
  const command = signed(owner, 'phone-b', type, type === 'ring' ? { seconds: 5 } : {}, 1_000)
  const receipt =
    state === 'succeeded'
      ? (signPayload(
          { command: command.id, device: 'phone-b', state, at: 2_000, ...(data ? { data } : {}) },
          deviceKeys(secret).privateKey,
        ) as Result)
      : null
  return {
    id: command.id,
    device: 'phone-b',
    type,
    args: command.args,
    state,
    reason: null,
    data,
    receipt,
    command,
    createdAt: 1_000,
    updatedAt: 2_000,
    expiresAt: 601_000,
    sentAt: 1_000,
  }
}

t.test("outcomeOf: the newest command, and the newest verified locate's fix (a forged receipt's is passed over)", async (t) => {
  const owner = makeOwner(t)
  owner.keys.rememberDevice('phone-b', SECRET)
  const older = view(owner, 'locate', 'succeeded', { lat: 1, lon: 2, accuracy: 3, at: 2_000 })
  const forged = view(owner, 'locate', 'succeeded', { lat: 9, lon: 9, accuracy: 9, at: 3_000 }, 'someone-else-secret-0123456789')
  const ring = view(owner, 'ring', 'queued', null)
  const outcome = outcomeOf('phone-b', [ring, forged, older], owner.keys)
  t.same(outcome, {
    device: 'phone-b',
    command: { id: ring.id, type: 'ring', state: 'queued', final: false, reason: null, receiptText: 'no receipt', verified: false },
    located: { lat: 1, lon: 2, accuracy: 3, at: 2_000 },
  })
  t.match(outcomeOf('phone-b', [forged], owner.keys), {
    command: { final: true, verified: false, receiptText: "receipt NOT verified: the signature is not phone-b's" },
    located: null,
  })
  t.same(outcomeOf('phone-b', [], owner.keys), { device: 'phone-b', command: null, located: null }, 'never had a command')
})

t.test(
  "F2: a clock move reads each phone once (one recall of every phone's newest command, not its list too); one log line for those unread",
  async (t) => {
    const clock = new ManualClock()
    const cloud = await startCloud(t, {}, clock)
    const owner = makeOwner(t)
    // phone-b is away: its ring stays queued, and expires 10 minutes on; phone-c's ring succeeded.
    await provision(cloud, owner, 'phone-b')
    cloud.broker.commands.submit('phone-b', signed(owner, 'phone-b', 'ring', { seconds: 5 }, clock.now()))
    answered(cloud, owner, 'phone-c', await provision(cloud, owner, 'phone-c'), 'ring', 'succeeded')
    const served: string[] = []
    const count = (req: IncomingMessage): void => void served.push(req.url as string)
    cloud.broker.http.on('request', count)
    t.teardown(() => cloud.broker.http.off('request', count))
    const logs = new LogCapture()
    const feed = new LiveFeed(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), {
      mqttUrl: 'ws://127.0.0.1:1/mqtt',
      consoleToken: 'x',
      keys: owner.keys,
      log: logs.logger(),
    })
    t.teardown(() => feed.stop())
    const frames: string[] = []
    feed.attach(fakeStream(frames))
    for (const id of ['phone-b', 'phone-c', 'phone-gone', 'phone-lost']) feed.commandsMoved(id)
    await feed.flush()
    t.same(
      served.sort(),
      ['phone-b', 'phone-c', 'phone-gone', 'phone-lost'].map((id) => `/api/devices/${id}/commands`),
    )
    t.match(logs.lines, [{ msg: 'live feed: could not read the commands', err: /phone-(gone|lost)/, devices: 2 }])
    t.equal(logs.lines.length, 1, 'one line for the two')
    const said = (): string[] => frames.filter((f) => f.startsWith('event: outcomes'))
    t.match(said(), [/"device":"phone-b".*"state":"queued".*"device":"phone-c".*"state":"succeeded"/], 'one event, both phones read')
    t.notMatch(said()[0], /phone-gone/)

    served.length = 0
    frames.length = 0
    clock.advance(600_000)
    // The broker's word that the clock moved (broker/cloud/account-changes.ts, with "clock": true); a command of phone-c
    // moved in the same burst.
    feed.onMessage(accountChangedTopic(null), JSON.stringify({ account: null, clock: true }))
    feed.commandsMoved('phone-c')
    await feed.flush()
    t.same(served, ['/api/commands/latest?after='], "one read of every phone's newest command, phone-b's list not read as well")
    t.match(frames, [/^event: commands\n/, /^event: clock\n/, /^event: outcomes\n/], 'the pages hear of the clock before the recall')
    t.match(said(), [/"device":"phone-b","command":\{[^}]*"state":"expired"/], "phone-b's ring expired, said")
    t.match(said(), [/"device":"phone-c","command":\{[^}]*"state":"succeeded"[^}]*"verified":true/], "phone-c's, as it stands")
  },
)

/**
 * A console API of these phones' command lists (a phone not listed is not found) and of their latest commands (one page),
 * each read held on request: `hold('latest')` holds the next read of the latest commands.
 */
function fakeApi(lists: Record<string, CommandView[]>) {
  const reads: string[] = []
  const holds = new Map<string, { reached(): void; released: Promise<void> }>()
  const state = { latestFails: false }
  const held = async (id: string): Promise<void> => {
    reads.push(id)
    const hold = holds.get(id)
    holds.delete(id)
    hold?.reached()
    await hold?.released
  }
  const api = {
    latestCommands: async (): Promise<LatestCommandsReply> => {
      await held('latest')
      if (state.latestFails) throw new Error('the broker is not answering')
      const latest = Object.entries(lists).flatMap(([device, [newest, ...older]]) => {
        if (!newest) return []
        const locate = [newest, ...older].find((c) => c.type === 'locate' && c.state === 'succeeded') ?? null
        return [{ device, newest, locate }]
      })
      return { now: 5_000, latest, next: null }
    },
    commands: async (id: string): Promise<CommandsReply> => {
      await held(id)
      const commands = lists[id]
      if (!commands) throw new Error(`device ${id} not found`)
      return { now: 5_000, commands }
    },
  } as unknown as ConsoleClient
  /** The next read of `id` waits for release(), its answer as the list was when it came; `reached` once it came. */
  const hold = (id: string): { reached: Promise<void>; release(): void } => {
    let release = (): void => {}
    let reached = (): void => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    holds.set(id, { reached: () => reached(), released })
    return { reached: new Promise<void>((resolve) => (reached = resolve)), release }
  }
  return { api, reads, lists, hold, state }
}

function feedOf(t: Test, api: ConsoleClient, logs = new LogCapture()): LiveFeed {
  const feed = new LiveFeed(api, {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: new OwnerKeys(tempDir(t)),
    log: logs.logger(),
  })
  t.teardown(() => feed.stop())
  return feed
}

/** A page's event stream: the outcomes events it heard, and the next one. */
function page(feed: LiveFeed): { heard: unknown[]; next(): Promise<unknown> } {
  const heard: unknown[] = []
  let wake = (): void => {}
  feed.attach(
    fakeStream([], (frame) => {
      if (!frame.startsWith('event: outcomes')) return
      heard.push(JSON.parse(frame.slice(frame.indexOf('data: ') + 6)).outcomes)
      wake()
    }),
  )
  return { heard, next: () => new Promise((resolve) => (wake = () => resolve(heard[heard.length - 1]))) }
}

t.test("F2: a console that starts recalls every phone's last command from the broker; one that never had one is left out", async (t) => {
  const owner = makeOwner(t)
  const fake = fakeApi({ 'phone-b': [view(owner, 'ring', 'queued', null)], 'phone-c': [] })
  const logs = new LogCapture()
  const feed = feedOf(t, fake.api, logs)
  const open = page(feed)
  await feed.recall()
  t.same(fake.reads, ['latest'], "every phone's latest commands read at once")
  t.match(open.heard, [[{ device: 'phone-b', command: { type: 'ring', state: 'queued' } }]])
  t.notMatch(JSON.stringify(open.heard), /phone-c/, 'phone-c never had a command: not said')
  t.match(page(feed).heard, [[{ device: 'phone-b', command: { type: 'ring' } }]], 'a page that opens later hears it at once')
  t.same(logs.lines, [])

  // The broker away as the feed recalls: the next page that attaches tries again.
  const again = feedOf(t, fake.api, logs)
  fake.state.latestFails = true
  await again.recall()
  t.match(logs.lines, [{ msg: "live feed: could not read the phones' latest commands to recall them", err: 'the broker is not answering' }])
  fake.state.latestFails = false
  const first = page(again)
  t.same(first.heard, [], 'nothing to tell yet')
  t.match(await first.next(), [{ device: 'phone-b', command: { type: 'ring' } }], 'recalled once a page attached')
  t.equal(page(again).heard.length, 1, 'the next page hears it at once')
})

t.test('A3, F2: a clock move recalls every phone; one whose commands the cloud cleared is said to have none', async (t) => {
  const owner = makeOwner(t)
  const ring = view(owner, 'ring', 'succeeded', null)
  const fake = fakeApi({ 'phone-b': [ring], 'phone-c': [{ ...ring, device: 'phone-c' }], 'phone-d': [] })
  const feed = feedOf(t, fake.api)
  const open = page(feed)
  await feed.recall()
  t.match(open.heard, [[{ device: 'phone-b' }, { device: 'phone-c' }]])

  // A year without activity cleared phone-b's and phone-c's commands; phone-c has a command since, read while the clock's
  // recall reads the latest, so its read stands.
  fake.lists['phone-b'] = []
  fake.lists['phone-c'] = []
  const slow = fake.hold('latest')
  fake.reads.length = 0
  feed.onMessage(accountChangedTopic(null), JSON.stringify({ account: null, clock: true }))
  const flushed = feed.flush()
  await slow.reached
  fake.lists['phone-c'] = [{ ...ring, device: 'phone-c', type: 'locate', state: 'queued' }]
  feed.commandsMoved('phone-c')
  await feed.flush()
  slow.release()
  await flushed
  t.same(fake.reads, ['latest', 'phone-c'], 'one recall on the move')
  t.match(open.heard.slice(1), [
    [{ device: 'phone-c', command: { type: 'locate', state: 'queued' } }],
    [{ device: 'phone-b', command: null, located: null }],
  ])
  t.equal(open.heard.length, 3, 'phone-c, read since, is not said to have none')
  t.match(page(feed).heard, [[{ device: 'phone-c' }]], 'a page that opens later hears of phone-c alone')
})

t.test('F2: a recall never overwrites a newer read, and stops reading when the feed stops', async (t) => {
  const owner = makeOwner(t)
  const queued = view(owner, 'ring', 'queued', null)
  const fake = fakeApi({ 'phone-b': [queued] })
  const feed = feedOf(t, fake.api)
  const open = page(feed)
  // The recall's read is slow; meanwhile the ring succeeds and the live feed reads phone-b again.
  const slow = fake.hold('latest')
  const recalled = feed.recall()
  await slow.reached
  fake.lists['phone-b'] = [{ ...queued, state: 'succeeded' }]
  feed.commandsMoved('phone-b')
  await feed.flush()
  t.match(open.heard, [[{ device: 'phone-b', command: { state: 'succeeded' } }]])
  slow.release()
  await recalled
  t.equal(open.heard.length, 1, "the recall's older answer is not said")
  t.match(page(feed).heard, [[{ command: { state: 'succeeded' } }]], 'nor remembered')

  // The other way round: a burst's read of phone-b is slow; meanwhile the ring fails and a recall reads every phone. The
  // burst's answer, of a read that started before the recall's, is not said.
  const burst = fake.hold('phone-b')
  feed.commandsMoved('phone-b')
  const bursting = feed.flush()
  await burst.reached
  fake.lists['phone-b'] = [{ ...queued, state: 'failed' }]
  await feed.recall()
  t.match(open.heard[1], [{ device: 'phone-b', command: { state: 'failed' } }], 'the recall said')
  burst.release()
  await bursting
  t.equal(open.heard.length, 2, "the burst's read is not said after it")

  // The feed stops while the recall's read is on its way: its answer is neither said nor remembered.
  const stopping = feedOf(t, fake.api)
  const said = page(stopping)
  const away = fake.hold('latest')
  const recall = stopping.recall()
  await away.reached
  await stopping.stop()
  away.release()
  await recall
  t.same(said.heard, [], 'nothing said')
  t.equal(page(stopping).heard.length, 0, 'nothing remembered')

  // Nine phones' commands moved, eight read at once: the feed stops while the first eight are on their way; the ninth is
  // never read.
  const ids = Array.from({ length: 9 }, (_, i) => `phone-${i}`)
  const many = fakeApi(Object.fromEntries(ids.map((id) => [id, [queued]])))
  const holds = ids.map((id) => many.hold(id))
  const stopped = feedOf(t, many.api)
  const quiet = page(stopped)
  for (const id of ids) stopped.commandsMoved(id)
  const flushed = stopped.flush()
  await Promise.all(holds.slice(0, 8).map((h) => h.reached))
  await stopped.stop()
  for (const h of holds) h.release()
  await flushed
  t.same(many.reads, ids.slice(0, 8), 'no read started once the feed stopped')
  t.same(quiet.heard, [], 'nothing said')
})

t.test("F2: a recall reads every phone's latest commands from the broker in one request, not one per phone", async (t) => {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const owner = makeOwner(t)
  const fix = { lat: 55.9, lon: -3.2, accuracy: 8, at: 1 }
  for (let i = 0; i < 10; i++) {
    const id = `phone-${i}`
    const secret = await provision(cloud, owner, id)
    answered(cloud, owner, id, secret, 'locate', 'succeeded', { ...fix, at: i })
    clock.advance(1000)
    if (i % 2 === 0) answered(cloud, owner, id, secret, 'ring', 'succeeded')
  }
  await provision(cloud, owner, 'phone-quiet')
  // phone-forged: its newest locate that succeeded carries a receipt this console cannot vouch for; an older one is
  // verified, and that fix is the one the map shows (outcomeOf over its list): its list is read for it.
  const forged = await provision(cloud, owner, 'phone-forged')
  answered(cloud, owner, 'phone-forged', forged, 'locate', 'succeeded', { ...fix, at: 100 })
  clock.advance(1000)
  answered(cloud, owner, 'phone-forged', 'someone-else-secret-0123456789', 'locate', 'succeeded', { ...fix, at: 200 })
  const served: string[] = []
  const count = (req: IncomingMessage): void => void served.push(req.url as string)
  cloud.broker.http.on('request', count)
  t.teardown(() => cloud.broker.http.off('request', count))
  const feed = new LiveFeed(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: owner.keys,
    log: new LogCapture().logger(),
  })
  t.teardown(() => feed.stop())
  const open = page(feed)
  await feed.recall()
  t.same(
    served,
    ['/api/commands/latest?after=', '/api/devices/phone-forged/commands'],
    'one read of every phone, and the list of the one unvouched',
  )
  const ids = [...Array.from({ length: 10 }, (_, i) => `phone-${i}`), 'phone-forged']
  const said = (open.heard.flat() as { device: string }[]).sort((x, y) => x.device.localeCompare(y.device))
  t.same(
    said.map((o) => o.device),
    ids.sort(),
    'phone-quiet never had a command: left out; each phone said once',
  )
  t.same(
    said,
    ids.map((id) => outcomeOf(id, cloud.broker.commands.list(id), owner.keys)),
    "each phone's outcome as its command list says it",
  )
  t.match(
    said.find((o) => o.device === 'phone-forged'),
    { located: { at: 100 } },
    "the forged receipt's fix is passed over",
  )
})

t.test('F2: a recall again checks no receipt it verified before; one changed in the store since is checked, and refused', async (t) => {
  const clock = new ManualClock()
  const cloud = await startCloud(t, {}, clock)
  const owner = makeOwner(t)
  const rings = new Map<string, CommandView>()
  for (let i = 0; i < 3; i++) {
    const id = `phone-${i}`
    const secret = await provision(cloud, owner, id)
    answered(cloud, owner, id, secret, 'locate', 'succeeded', { lat: 55.9, lon: -3.2, accuracy: 8, at: i })
    clock.advance(1000)
    rings.set(id, answered(cloud, owner, id, secret, 'ring', 'succeeded'))
  }
  const receipts = new VerifiedReceipts()
  const feed = new LiveFeed(new ConsoleClient(cloud.apiUrl, cloud.consoleToken), {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: owner.keys,
    receipts,
    log: new LogCapture().logger(),
  })
  t.teardown(() => feed.stop())
  const open = page(feed)
  const recalled = async (): Promise<DeviceOutcome[]> => {
    const heard = open.heard.length
    await feed.recall()
    return (open.heard.slice(heard).flat() as DeviceOutcome[]).sort((x, y) => x.device.localeCompare(y.device))
  }
  const first = await recalled()
  t.ok(
    first.every((o) => o.command?.verified && o.located !== null),
    'each ring verified, each locate verified',
  )
  t.equal(receipts.checks, 6, 'two signatures a phone')
  // The feed finds the broker again (or a page attaches after a failed recall): the same receipts, read again.
  t.same(await recalled(), first, 'the same outcomes')
  t.equal(receipts.checks, 6, 'no signature checked again')

  // Whoever holds the broker moves phone-1's ring receipt's time: the signature no longer covers it.
  const ring = rings.get('phone-1') as CommandView
  cloud.broker.db
    .prepare('UPDATE commands SET receipt = ? WHERE id = ?')
    .run(JSON.stringify({ ...ring.receipt, at: (ring.receipt as Result).at + 86_400_000 }), ring.id)
  const again = await recalled()
  t.match(
    again.find((o) => o.device === 'phone-1')?.command,
    { type: 'ring', verified: false, receiptText: "receipt NOT verified: the signature is not phone-1's" },
    'the changed receipt is refused',
  )
  t.same(
    again.filter((o) => o.device !== 'phone-1'),
    first.filter((o) => o.device !== 'phone-1'),
    'the others as before',
  )
  t.equal(receipts.checks, 7, 'only the changed receipt checked')
})

t.test("F2: a fleet's recall reads its phones' latest commands a page of 1,000 phones at a time", async (t) => {
  const cloud = await startCloud(t)
  const owner = makeOwner(t)
  const ids = Array.from({ length: 1001 }, (_, i) => `fleet-${String(i).padStart(4, '0')}`)
  cloud.broker.registry.addMany(ids.map((id) => ({ id, account: 'alice' })))
  for (const id of ids) cloud.broker.commands.submit(id, signed(owner, id, 'ring', { seconds: 5 }, cloud.clock.now()))
  const served: string[] = []
  const count = (req: IncomingMessage): void => void served.push(req.url as string)
  cloud.broker.http.on('request', count)
  t.teardown(() => cloud.broker.http.off('request', count))
  const feed = feedOf(t, new ConsoleClient(cloud.apiUrl, cloud.consoleToken))
  const open = page(feed)
  await feed.recall()
  t.same(served, ['/api/commands/latest?after=', '/api/commands/latest?after=fleet-0999'], 'two pages, the second after the first')
  const said = open.heard.flat() as DeviceOutcome[]
  t.same(
    said.map((o) => o.device),
    ids,
    'every phone once',
  )
  t.ok(
    said.every((o) => o.command?.type === 'ring' && o.command.state === 'queued'),
    "each phone's queued ring",
  )
})
