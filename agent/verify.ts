/**
 * F2 authenticity on the device: before anything runs, a command must parse,
 * carry a valid signature by the owner's key, be addressed to this device,
 * be inside its time window, and be newer than every command seen before.
 * Someone who controls only the broker can do none of that.
 */
import type { KeyObject } from 'node:crypto'
import { CommandSchema, decodeJson, type Command } from '../common/contract.js'
import { verifyPayload } from '../common/signing.js'

/** Clock difference tolerated between the owner's console and the phone. */
export const CLOCK_SKEW_MS = 5 * 60_000

/** The phone's reasons for refusing a command it cannot tie to its owner (F2); the console says what to do about each. */
export const NOT_PAIRED = 'this device is not paired with an owner'
export const NOT_OWNERS_SIGNATURE = "the signature is not the owner's"

export type Verdict = { ok: true; command: Command } | { ok: false; reason: string; command?: Command }

export interface VerifyContext {
  deviceId: string
  ownerKey: KeyObject | undefined
  now: number
  lastSeq: number
}

export function verifyCommand(payload: Buffer | string, ctx: VerifyContext): Verdict {
  const decoded = decodeJson(CommandSchema, payload)
  if (!decoded.ok) return { ok: false, reason: `malformed command: ${decoded.reason}` }
  const command = decoded.value
  const reason = check(command, ctx)
  return reason ? { ok: false, reason, command } : { ok: true, command }
}

function check(command: Command, ctx: VerifyContext): string | null {
  if (!ctx.ownerKey) return NOT_PAIRED
  if (!verifyPayload(command, ctx.ownerKey)) return NOT_OWNERS_SIGNATURE
  if (command.device !== ctx.deviceId) return `the command is for ${command.device}`
  if (command.issuedAt > ctx.now + CLOCK_SKEW_MS) return 'the command is not valid yet'
  if (command.expiresAt <= ctx.now) return 'the command has expired'
  if (command.seq <= ctx.lastSeq) return 'the command was already seen (replay)'
  return null
}
