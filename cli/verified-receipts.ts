/**
 * F2: the receipts whose signature this console has already checked, so the web console's recall of every phone's
 * latest commands (cli/web/live.ts recall(), again each time the feed finds the broker) and a device page read again
 * after a reload do not check each phone's Ed25519 signatures again: two a phone, most of the recall's CPU.
 *
 * A receipt is remembered by its command's id and a SHA-256 digest of the receipt whole (its canonical JSON, the
 * signature with it) -- a receipt whose bytes changed is another entry, checked afresh -- together with the key that
 * checked it: a device key rewritten meanwhile (re-provisioned) checks again too. Only verified receipts are kept,
 * the least recently used going first once there are more than the room given (sized to the fleet by the live feed).
 */
import { createHash, type KeyObject } from 'node:crypto'
import { canonical, verifyPayload } from '../common/signing.js'

/** Receipts remembered a phone: its newest command and its newest locate (the recall), and some of its list. */
const PER_PHONE = 4

export class VerifiedReceipts {
  /** Receipt (command id + digest) → the key its signature was checked with; oldest use first. */
  private readonly verified = new Map<string, KeyObject>()
  private room: number
  /** Signatures checked with the key (not found here), since this was made: the tests and the bench read it. */
  checks = 0

  constructor(private readonly least = 1024) {
    this.room = least
  }

  /** Room for the receipts of `phones` phones (never less than the room it was made with). */
  fitFleet(phones: number): void {
    this.room = Math.max(this.least, phones * PER_PHONE)
  }

  get size(): number {
    return this.verified.size
  }

  /** Whether `receipt`, the receipt of command `command`, carries `key`'s signature. */
  signedBy(command: string, receipt: { sig: string }, key: KeyObject): boolean {
    const id = `${command} ${createHash('sha256').update(canonical(receipt)).digest('base64')}`
    const known = this.verified.get(id) === key
    if (!known) {
      this.checks++
      if (!verifyPayload(receipt, key)) return false
    }
    // Used now: the newest, and the last to go.
    this.verified.delete(id)
    this.verified.set(id, key)
    for (const oldest of this.verified.keys()) {
      if (this.verified.size <= this.room) break
      this.verified.delete(oldest)
    }
    return true
  }
}
