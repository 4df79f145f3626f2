/**
 * F2: the web console's memory of verified receipts (cli/verified-receipts.ts): a receipt's signature is checked once,
 * and again whenever the receipt's bytes or the device's key changed -- a receipt tampered with after it was verified
 * is refused, never taken from memory -- and the memory holds no more than the room it was given, the least recently
 * used going first.
 */
import t from 'tap'
import type { CommandView } from '../../common/console-api.js'
import type { Result } from '../../common/contract.js'
import { deviceKeys, signPayload } from '../../common/signing.js'
import { receiptLine } from '../../cli/remote-commands.js'
import { VerifiedReceipts } from '../../cli/verified-receipts.js'
import { makeOwner, signed } from '../fixtures/owner.js'

const SECRET = 'phone-b-secret-0123456789abcdef'

/** A ring of phone-b that succeeded, its receipt signed by `secret`'s key at `at`. */
function rang(owner: ReturnType<typeof makeOwner>, at: number, secret = SECRET): CommandView {
  const command = signed(owner, 'phone-b', 'ring', { seconds: 5 }, at)
  const receipt = signPayload({ command: command.id, device: 'phone-b', state: 'succeeded', at }, deviceKeys(secret).privateKey) as Result
  return {
    id: command.id,
    device: 'phone-b',
    type: 'ring',
    args: command.args,
    state: 'succeeded',
    reason: null,
    data: null,
    receipt,
    command,
    createdAt: at,
    updatedAt: at,
    expiresAt: at + 600_000,
    sentAt: at,
  }
}

t.test('F2: a receipt verified once is not checked again; one whose bytes changed is, and is refused', async (t) => {
  const owner = makeOwner(t)
  owner.keys.rememberDevice('phone-b', SECRET)
  const receipts = new VerifiedReceipts()
  const ring = rang(owner, 1_000)
  const line = 'verified receipt signed by phone-b at 1970-01-01 00:00:01 UTC'
  t.equal(receiptLine(ring, owner.keys, receipts), line)
  t.equal(receiptLine(ring, owner.keys, receipts), line, 'the same receipt again (read anew: another object)')
  t.equal(receiptLine(structuredClone(ring), owner.keys, receipts), line)
  t.equal(receipts.checks, 1, 'its signature checked once')

  // Whoever holds the broker moves the receipt's time: the signature no longer covers it, whatever was verified before.
  const moved = { ...ring, receipt: { ...(ring.receipt as Result), at: 5_000 } }
  t.equal(receiptLine(moved, owner.keys, receipts), "receipt NOT verified: the signature is not phone-b's")
  t.equal(receiptLine(moved, owner.keys, receipts), "receipt NOT verified: the signature is not phone-b's", 'refused each time')
  t.equal(receipts.checks, 3, 'a refused receipt is checked each time it is read')
  t.equal(receiptLine(ring, owner.keys, receipts), line, 'the genuine one is still verified')
  t.equal(receipts.checks, 3)

  // Another command's genuine receipt under this command: the rest of the checks still run on a remembered one.
  const other = rang(owner, 2_000)
  t.match(
    receiptLine({ ...other, receipt: ring.receipt }, owner.keys, receipts),
    /^receipt NOT verified: it is phone-b's receipt of command /,
  )

  // phone-b provisioned again (a new key in the keys folder): its old receipt is checked with the new key, and refused.
  owner.keys.rememberDevice('phone-b', 'phone-b-new-secret-0123456789abcdef')
  t.equal(receiptLine(ring, owner.keys, receipts), "receipt NOT verified: the signature is not phone-b's")
})

t.test('F2: the memory holds its room, the least recently used receipt going first', async (t) => {
  const owner = makeOwner(t)
  owner.keys.rememberDevice('phone-b', SECRET)
  const receipts = new VerifiedReceipts(2)
  const [a, b, c] = [rang(owner, 1_000), rang(owner, 2_000), rang(owner, 3_000)]
  const verified = (view: CommandView): boolean => receiptLine(view, owner.keys, receipts).startsWith('verified')
  t.ok(verified(a) && verified(b) && verified(a), 'a, b, then a used again')
  t.equal(receipts.checks, 2)
  t.ok(verified(c))
  t.equal(receipts.size, 2, 'no more than its room')
  t.ok(verified(a))
  t.equal(receipts.checks, 3, 'a, used since b, stayed')
  t.ok(verified(b))
  t.equal(receipts.checks, 4, 'b, the least recently used, went')

  // Sized to a fleet of two phones: eight receipts stay; never less than the room it was made with.
  receipts.fitFleet(2)
  const more = Array.from({ length: 8 }, (_, i) => rang(owner, 10_000 + i))
  t.ok(more.every(verified))
  t.equal(receipts.size, 8)
  receipts.fitFleet(0)
  t.ok(verified(rang(owner, 20_000)))
  t.equal(receipts.size, 2, 'back to the room it was made with')
})
