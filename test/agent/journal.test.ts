/** F2 the command journal and the device-side checks, as units. */
import t from 'tap'
import { CommandJournal } from '../../agent/journal.js'
import { verifyCommand } from '../../agent/verify.js'
import { canonical } from '../../common/signing.js'
import { makeOwner, signed } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'

t.test('the journal keeps the last 200 finished commands and never lowers lastSeq', async (t) => {
  const owner = makeOwner(t)
  const dir = tempDir(t)
  const journal = new CommandJournal(dir)
  await journal.load()
  const commands = Array.from({ length: 205 }, (_, i) => signed(owner, 'p', 'locate', {}, 1000, { seq: i + 1 }))
  for (const command of commands) await journal.put({ step: 'done', command, reported: true })
  await journal.put({ step: 'received', command: signed(owner, 'p', 'locate', {}, 1000, { seq: 3 }), reported: false })
  t.equal(journal.lastSeq, 205, 'an older sequence number does not lower lastSeq')
  t.equal(journal.entry(commands[0]!.id), undefined, 'the oldest finished entries are dropped')
  t.ok(journal.entry(commands[204]!.id))
  const again = new CommandJournal(dir)
  await again.load()
  t.equal(again.lastSeq, 205, 'it is on disk')
  t.equal(again.unfinished().length, 1)
})

t.test('an unpaired device refuses every command', (t) => {
  const owner = makeOwner(t)
  const verdict = verifyCommand(JSON.stringify(signed(owner, 'p', 'locate', {}, 1000)), {
    deviceId: 'p',
    ownerKey: undefined,
    now: 1000,
    lastSeq: 0,
  })
  t.match(verdict, { ok: false, reason: 'this device is not paired with an owner' })
  t.end()
})

t.test('canonical JSON sorts keys at every level, arrays included, and drops undefined', (t) => {
  t.equal(canonical({ b: [{ d: 1, c: 2 }], a: 'x', u: undefined }), '{"a":"x","b":[{"c":2,"d":1}]}')
  t.end()
})
