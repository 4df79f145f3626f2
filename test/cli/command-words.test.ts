/**
 * F2: one wording for a remote command's state, the CLI's and the web console's: an unfinished command said as the
 * device's data channel stands (online: waiting for its receipt; offline: it runs, or answers, when it is back), and
 * names from others put in as the caller shows them.
 */
import t from 'tap'
import { describe, pendingText } from '../../cli/command-words.js'
import type { CommandView } from '../../common/console-api.js'
import { forTerminal } from '../../common/terminal-text.js'

const view = (fields: Partial<CommandView>): CommandView =>
  ({
    id: 'c1',
    device: 'phone-a',
    type: 'ring',
    state: 'queued',
    reason: null,
    data: null,
    createdAt: 0,
    expiresAt: 90_000,
    ...fields,
  }) as CommandView

t.test('F2 an unfinished command is said by whether the device is online, in the same words wherever it is shown', async (t) => {
  const said = (state: CommandView['state'], online: boolean): string | null => pendingText(view({ state }), 30_000, online)
  t.equal(said('queued', true), 'ring sent to phone-a: waiting for its receipt (expires in 1m 0s)')
  t.equal(said('delivered', true), 'ring delivered to phone-a: waiting for its receipt (expires in 1m 0s)')
  t.equal(said('executing', true), 'ring executing on phone-a: waiting for its receipt (expires in 1m 0s)')
  t.equal(said('queued', false), 'phone-a is offline: ring is queued and runs when it comes back (expires in 1m 0s)')
  t.equal(said('delivered', false), 'phone-a is offline: ring reached it (delivered); its receipt comes when it is back (expires in 1m 0s)')
  t.equal(said('executing', false), 'phone-a is offline: ring reached it (executing); its receipt comes when it is back (expires in 1m 0s)')
  for (const state of ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'] as const) t.equal(said(state, true), null, state)
  t.equal(describe(view({ state: 'queued' }), 30_000, false), said('queued', false), 'describe says an unfinished one as pendingText')
})

t.test("F2 a finished command says what happened; the device's id and the reason it gave are shown as the caller shows them", async (t) => {
  const evil = view({ device: 'p\x1b[2J', state: 'failed', reason: 'no fix\nerror: forged' })
  t.equal(describe(evil, 0, true), 'ring failed: no fix\nerror: forged', 'for the page: as it is, put in as text')
  t.equal(describe(evil, 0, true, forTerminal), 'ring failed: no fix\\x0Aerror: forged', 'for a terminal: one line, escaped')
  t.equal(describe({ ...evil, state: 'succeeded', data: { seconds: 5 } }, 0, true, forTerminal), 'p\\x1B[2J is ringing for 5 s')
  t.equal(pendingText(evil, 0, false, forTerminal), null, 'a finished one has no pending words')
  t.equal(
    pendingText({ ...evil, state: 'queued' }, 0, false, forTerminal),
    'p\\x1B[2J is offline: ring is queued and runs when it comes back (expires in 1m 30s)',
  )
})

t.test('F2 a phone that refuses a command as not its owner says what the owner does about it', async (t) => {
  const rejected = (reason: string): string => describe(view({ type: 'locate', state: 'rejected', reason }), 0, true)
  const fix = '(ACCOUNT.pub in the keys folder this console signs with) as its ownerKey (or --owner-key) and restart it'
  t.equal(
    rejected("the signature is not the owner's"),
    "locate rejected: the signature is not the owner's: the phone's owner key is not the public half of the key that " +
      `signed; give it the account's public key ${fix}`,
    'a phone started with another owner key',
  )
  t.equal(
    rejected('this device is not paired with an owner'),
    "locate rejected: this device is not paired with an owner: the phone was started without the owner's public key; " +
      `give it the account's public key ${fix}`,
    'a phone started without one',
  )
  t.equal(rejected('the command has expired'), 'locate rejected: the command has expired', 'other reasons as the phone gave them')
  t.equal(
    describe(view({ state: 'failed', reason: "the signature is not the owner's" }), 0, true),
    "ring failed: the signature is not the owner's",
    'only a refusal (rejected) is answered with the owner key',
  )
})
