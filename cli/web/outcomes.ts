/**
 * F2: where a phone's remote commands stand, as the web console's list and map show it for every phone of the account
 * (not only the one whose page is open): its newest command -- type, state, the reason of a refusal or failure, and
 * whether this console can vouch for the phone's signed receipt (cli/remote-commands receiptLine, with the owner's
 * keys, which stay in this process) -- and the fix of its newest locate whose receipt is verified, which moves the
 * phone's dot and its list row there (the page keeps it while it is newer than the last heartbeat). The live feed
 * (live.ts) sends it as the `outcomes` event when a command or its receipt moves; the device page's command list
 * (page-api.ts) says each receipt the same way. Both pass the console's VerifiedReceipts (cli/verified-receipts.ts): a
 * receipt's signature checked once is not checked again at the next recall or reload.
 */
import type { CommandView } from '../../common/console-api.js'
import { FINAL_STATES } from '../../common/contract.js'
import type { OwnerKeys } from '../../common/signing.js'
import { receiptLine } from '../remote-commands.js'
import type { VerifiedReceipts } from '../verified-receipts.js'

/** A receipt in words (`verified receipt signed by …`, `receipt NOT verified: …`, `no receipt`), and whether it is verified. */
export function receiptOf(view: CommandView, keys: OwnerKeys, receipts?: VerifiedReceipts): { receiptText: string; verified: boolean } {
  const receiptText = receiptLine(view, keys, receipts)
  return { receiptText, verified: receiptText.startsWith('verified') }
}

/** A fix a verified locate brought. */
export interface LocatedFix {
  lat: number
  lon: number
  accuracy: number
  at: number
}

/** A phone's newest command, as its row in the list says it. */
export interface CommandOutcome {
  id: string
  type: CommandView['type']
  state: CommandView['state']
  /** Whether the state is final (common/contract's FINAL_STATES): the page marks an unfinished one as pending. */
  final: boolean
  reason: string | null
  receiptText: string
  verified: boolean
}

/** event: outcomes, one per phone whose commands moved. */
export interface DeviceOutcome {
  device: string
  /** Its newest command (null: it never had one). */
  command: CommandOutcome | null
  /** The fix of its newest locate that succeeded with a verified receipt (null: none among its last 50 commands). */
  located: LocatedFix | null
}

/** `device`'s outcome from its command list (newest first, as the console API answers). */
export function outcomeOf(device: string, commands: readonly CommandView[], keys: OwnerKeys, receipts?: VerifiedReceipts): DeviceOutcome {
  const newest = commands[0]
  const command: CommandOutcome | null = newest
    ? {
        id: newest.id,
        type: newest.type,
        state: newest.state,
        final: FINAL_STATES.has(newest.state),
        reason: newest.reason,
        ...receiptOf(newest, keys, receipts),
      }
    : null
  return { device, command, located: locatedFix(commands, keys, receipts) }
}

function locatedFix(commands: readonly CommandView[], keys: OwnerKeys, receipts?: VerifiedReceipts): LocatedFix | null {
  for (const c of commands) {
    if (c.type !== 'locate' || c.state !== 'succeeded' || !receiptOf(c, keys, receipts).verified) continue
    // A locate that succeeded carries its fix, as describe() reads it (cli/command-words): what the receipt vouches for.
    const d: Record<string, unknown> = { ...c.data }
    return { lat: Number(d['lat']), lon: Number(d['lon']), accuracy: Number(d['accuracy']), at: Number(d['at']) }
  }
  return null
}
