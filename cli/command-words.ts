/**
 * A remote command (F2) in words: one wording for the CLI's lines (`console locate|ring|…` when it stops waiting,
 * `console commands`) and the web console's command list, whose `text` its server puts in the answer
 * (cli/web/page-api.ts), so the terminal and the page never say one state two ways.
 *
 * A command not finished yet is said as the phone's data channel stands, which the cloud knows: a phone that is online
 * has been sent it and its receipt is what is waited for; one that is offline gets it, or answers it, when it is back.
 * What others chose (the device's id, a reason the phone gave) goes in through `shown`: forTerminal for a terminal
 * (common/terminal-text), as it is for the page, which puts the text in as text.
 */
import { formatAge } from '../common/clock.js'
import { FINAL_STATES } from '../common/contract.js'
import type { CommandView } from '../common/console-api.js'
import { plural } from './render.js'
import { NOT_OWNERS_SIGNATURE, NOT_PAIRED } from '../agent/verify.js'

/** A position and its accuracy, as a locate and the last known position say them: `55.94861,-3.19979 (±8 m)`. */
export function fixText(lat: number, lon: number, accuracy: number): string {
  return `${lat.toFixed(5)},${lon.toFixed(5)} (±${Math.round(accuracy)} m)`
}

/** How a value from others is put into the words: escaped for a terminal, or as it is. */
export type Shown = (value: string) => string
const asIs: Shown = (value) => value

/** An unfinished command, as the device's data channel stands (`online`); null for a finished one (describe() says it). */
export function pendingText(view: CommandView, now: number, online: boolean, shown: Shown = asIs): string | null {
  if (FINAL_STATES.has(view.state)) return null
  const device = shown(view.device)
  const expires = `expires in ${formatAge(view.expiresAt - now)}`
  if (!online) {
    return view.state === 'queued'
      ? `${device} is offline: ${view.type} is queued and runs when it comes back (${expires})`
      : `${device} is offline: ${view.type} reached it (${view.state}); its receipt comes when it is back (${expires})`
  }
  const where = view.state === 'queued' ? 'sent to' : view.state === 'delivered' ? 'delivered to' : 'executing on'
  return `${view.type} ${where} ${device}: waiting for its receipt (${expires})`
}

/**
 * F2: what the owner does about a phone that refused a command as not its owner's: the phone was started without the
 * account's public key, or with another one than the half of the key this console signs with. Said with the refusal,
 * the phone's words alone left the owner stuck ("the signature is not the owner's": whose, and what now?).
 */
const OWNER_KEY_FIX = '(ACCOUNT.pub in the keys folder this console signs with) as its ownerKey (or --owner-key) and restart it'
const REJECTION_HINTS: Readonly<Record<string, string>> = {
  [NOT_PAIRED]: `: the phone was started without the owner's public key; give it the account's public key ${OWNER_KEY_FIX}`,
  [NOT_OWNERS_SIGNATURE]:
    ": the phone's owner key is not the public half of the key that signed; " + `give it the account's public key ${OWNER_KEY_FIX}`,
}

/** What happened, in words a person understands; an unfinished command as pendingText says it. */
export function describe(view: CommandView, now: number, online: boolean, shown: Shown = asIs): string {
  const pending = pendingText(view, now, online, shown)
  if (pending !== null) return pending
  const d = view.data ?? {}
  const device = shown(view.device)
  if (view.state !== 'succeeded') {
    const hint = view.state === 'rejected' ? (REJECTION_HINTS[String(view.reason)] ?? '') : ''
    return `${view.type} ${view.state}: ${shown(String(view.reason))}${hint}`
  }
  switch (view.type) {
    case 'locate':
      return (
        `${device} is at ${fixText(Number(d['lat']), Number(d['lon']), Number(d['accuracy']))}, ` +
        `fix taken ${formatAge(now - Number(d['at']))} ago`
      )
    case 'ring':
      return `${device} is ringing for ${String(d['seconds'])} s`
    case 'lock':
      return `${device} is locked`
    case 'lost-mode':
      return d['lostMode'] ? `${device} is in lost mode: locked, reporting more often` : `${device} left lost mode`
    case 'wipe':
      return (
        `${device} was wiped: ${plural(Number(d['files']), 'file')}, ${plural(Number(d['bytes']), 'byte')} removed; external storage ` +
        `${d['sdcardKept'] ? 'kept' : 'erased'}; Find Device pairing ${d['findDeviceKept'] ? 'kept' : 'cleared'}`
      )
  }
}
