/**
 * F2: where a phone's commands stand, as every page of the web console hears it (cli/web/outcomes.ts, the live feed's
 * `outcomes` event): its newest command with its receipt said verified only when the owner's keys check it, and the fix
 * of its newest locate whose receipt is verified -- a forged receipt's fix never reaches the map. The feed reads a phone
 * again when the clock moves only while its newest command is unfinished.
 */
import t from 'tap'
import type { CommandView, CommandsReply } from '../../../common/console-api.js'
import type { CommandState, Result } from '../../../common/contract.js'
import { OwnerKeys, deviceKeys, signPayload } from '../../../common/signing.js'
import type { ConsoleClient } from '../../../cli/console-client.js'
import { LiveFeed } from '../../../cli/web/live.js'
import { outcomeOf } from '../../../cli/web/outcomes.js'
import { LogCapture } from '../../fixtures/logs.js'
import { signed, makeOwner } from '../../fixtures/owner.js'
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

t.test('the feed rereads a phone on a clock move only while its newest command is unfinished', async (t) => {
  const owner = makeOwner(t)
  const lists: Record<string, CommandView[]> = { 'phone-b': [view(owner, 'ring', 'queued', null)], 'phone-c': [] }
  const reads: string[] = []
  const api = {
    commands: async (id: string): Promise<CommandsReply> => {
      reads.push(id)
      const commands = lists[id]
      if (!commands) throw new Error(`device ${id} not found`)
      return { now: 5_000, commands }
    },
  } as unknown as ConsoleClient
  const logs = new LogCapture()
  const feed = new LiveFeed(api, {
    mqttUrl: 'ws://127.0.0.1:1/mqtt',
    consoleToken: 'x',
    keys: new OwnerKeys(tempDir(t)),
    log: logs.logger(),
  })
  const frames: string[] = []
  feed.attach(fakeStream(frames))
  for (const id of ['phone-b', 'phone-c', 'phone-gone']) feed.commandsMoved(id)
  await feed.flush()
  t.same(reads.sort(), ['phone-b', 'phone-c', 'phone-gone'])
  t.match(logs.lines, [{ msg: 'live feed: could not read the commands', err: 'device phone-gone not found' }])
  const said = frames.filter((f) => f.startsWith('event: outcomes'))
  t.match(said, [/"device":"phone-b".*"device":"phone-c","command":null/], 'one event, both phones read')
  t.notMatch(said[0], /phone-gone/)

  reads.length = 0
  feed.clockMoved()
  await feed.flush()
  t.same(reads, ['phone-b'], 'the queued ring may have expired; phone-c has no command to expire')
  await feed.stop()
})
