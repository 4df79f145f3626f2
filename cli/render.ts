/** Plain-text tables and words for people; `--json` output bypasses all of this. Every cell is shown terminal-safe. */
import { DEFAULT_BACKOFF } from '../common/backoff.js'
import { formatAge, utcDate, utcSeconds, utcText } from '../common/clock.js'
import type { DeviceView, LocationRow } from '../common/console-api.js'
import type { LocationStatus } from '../common/contract.js'
import type { ChannelWaiting } from '../common/phone-status.js'
import { forTerminal } from '../common/terminal-text.js'

export { plural } from '../common/plural.js'

/**
 * The data channel while the broker refuses device `id`'s id and secret: the likely causes and what to do (the agent
 * retries meanwhile, with a capped backoff, and reads its secret file again at each refusal: agent/agent.ts). Said by
 * `phone status` and by `fakephone agent` on a terminal. Under systemd the file it reads is the credential systemd copied
 * when the unit started, which never changes while it runs: there the unit is restarted. The account is named: `device add`
 * without --account registers the device in "default", whose key is not the one its phone obeys, and a device still
 * listed (a wrong secret file) is removed first, as `device add` refuses an id it has; so is the old secret file, which
 * `device add --secret-out` never replaces (it may hold the only copy of a secret).
 */
export function dataChannelRefused(id: string): string {
  return (
    `the broker refuses this device's id and secret: it was removed (\`fakephone device list\` on the broker no longer ` +
    `shows ${id}), or the secret file is wrong. Re-register it on the broker, in the account it was in (the phone obeys ` +
    `that account's owner key): \`fakephone device remove ${id}\` if the list still shows it, then remove this agent's ` +
    `secret file FILE (\`device add\` replaces no file) and run \`fakephone device add ${id} --account ACCOUNT --secret-out ` +
    `FILE\`; it reads the file again at each retry, ` +
    `every ${DEFAULT_BACKOFF.capMs / 1000} s at the slowest, and connects with the new secret (under systemd, restart the ` +
    'unit: its credential is copied at the start)'
  )
}

/**
 * F1, X1: a channel (data or push) while it waits to retry, for `phone status`, after its state: since when it has
 * failed and the last failure, Node's `connect ECONNREFUSED HOST:PORT` in words; '' while it does not wait. "waiting"
 * alone left a user with a stopped broker to guess why.
 */
export function channelWaitingText(waiting: ChannelWaiting | undefined): string {
  if (waiting === undefined) return ''
  const refused = waiting.why === null ? null : /^connect ECONNREFUSED (\S+)$/.exec(waiting.why)
  const why = refused
    ? `connection refused by ${refused[1] as string} (is the broker running?)`
    : (waiting.why ?? 'the broker closed the connection')
  return ` since ${utcText(waiting.since)}: ${why}; it keeps retrying`
}

export function table(header: string[], cells: string[][]): string {
  // A cell may hold a name someone else chose (a legacy account name with an escape sequence): shown, never obeyed.
  const rows = cells.map((r) => r.map(forTerminal))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

const position = (lat: number, lon: number): string => `${lat.toFixed(5)},${lon.toFixed(5)}`

/** What the console says about a device's map position. */
function locationCell(d: DeviceView): string {
  if (d.locationOffAt !== null) return d.cloudService === false ? 'offline (cloud service off)' : 'offline (Find Device off)'
  return d.last ? position(d.last.lat, d.last.lon) : 'no fix yet'
}

/**
 * Whether the device is connected here; one that is not and was told to follow its account's migration (M2) says where
 * it went: moved (it took the notice), to follow when it is back (the notice waits for it), or that it missed it.
 */
export function stateCell(d: DeviceView): string {
  if (d.online) return 'online'
  const m = d.moved
  if (m === null) return 'offline'
  if (m.notice === 'delivered') return `moved to ${m.to} on ${utcDate(m.deliveredAt)}`
  if (m.notice === 'queued') return `offline: follows to ${m.to} when back (told ${utcDate(m.at)})`
  return `offline: missed the move to ${m.to} (told ${utcDate(m.at)})`
}

/** F1: `phone status`'s location line: where the position comes from and, for gpsd, why there may be none. */
export function locationSourceText(l: LocationStatus): string {
  if (l.kind === 'fixed') return `fixed at ${position(l.lat, l.lon)}`
  if (l.kind === 'route') return `${l.gpx === null ? 'the built-in route' : `GPX track ${l.gpx}`}, walked at ${l.speed} m/s`
  const gpsd = `gpsd ${l.host}:${l.port}`
  if (l.state === 'waiting')
    return `${gpsd}: not connected, trying again in ${formatAge(l.retryInMs)} (retry ${l.attempt}); no fix, no heartbeats`
  if (l.state !== 'watching') return `${gpsd}: ${l.state}`
  if (l.fix === null) return `${gpsd}: connected, ${l.lost ? 'the receiver lost its fix' : 'no fix yet'}; no heartbeats until one`
  const fix = `last fix ${formatAge(l.fix.ageMs)} ago, accurate to ${Math.round(l.fix.accuracy)} m`
  if (l.fix.ageMs > l.maxAgeMs) return `${gpsd}: connected, ${fix}: older than ${formatAge(l.maxAgeMs)}, so no heartbeats until a new one`
  return `${gpsd}: connected, ${fix}`
}

export function renderDevices(devices: DeviceView[], now: number): string {
  if (devices.length === 0) return 'No devices registered. Add one with: fakephone device add ID\n'
  return table(
    ['DEVICE', 'ACCOUNT', 'STATE', 'LOCATION', 'AGE', 'BATTERY', 'NETWORK', 'LOST MODE'],
    devices.map((d) => [
      d.id,
      d.account,
      stateCell(d),
      locationCell(d),
      d.last && d.locationOffAt === null ? formatAge(now - d.last.at) : '-',
      d.last ? `${Math.round(d.last.battery)}%${d.last.charging ? ' charging' : ''}` : '-',
      d.last ? d.last.network : '-',
      d.lostMode === null ? '-' : d.lostMode.on ? 'on' : 'off',
    ]),
  )
}

/**
 * F1: a heartbeat seq from this up is a time in ms (docs/CONTRACT.md, Heartbeat: a phone numbers from the time it started
 * without a settings file, 13 digits; agent/heartbeat-seq.ts); a phone numbered from 0 beating every second for 30 years
 * stays below it.
 */
const RUN_START_SEQ = 1_000_000_000

/**
 * F1: a device's fixes, newest first. The SEQ column is there to show order and gaps (a missed heartbeat): a
 * phone's seqs, 13 digits that differ in the last few, are shown counted from the lowest seq shown (`+0`, `+1`, a gap
 * is a jump), with a line above the table that says from which, so the table keeps the width of one numbered from 0; `--json`
 * has each seq whole.
 */
export function renderHistory(id: string, rows: LocationRow[], now: number): string {
  if (rows.length === 0) return `No locations recorded for ${forTerminal(id)}.\n`
  const lowest = Math.min(...rows.map((r) => r.seq))
  const counted = Math.max(...rows.map((r) => r.seq)) >= RUN_START_SEQ
  const note = counted
    ? `SEQ +N is seq ${lowest} + N (a phone's seqs start at the time in ms it started without settings; --json has them whole)\n`
    : ''
  const history = table(
    ['SEQ', 'TIME (UTC)', 'AGE', 'POSITION', 'ACCURACY', 'SPEED', 'BATTERY', 'NETWORK'],
    rows.map((r) => [
      counted ? `+${r.seq - lowest}` : String(r.seq),
      utcSeconds(r.at),
      formatAge(now - r.at),
      position(r.lat, r.lon),
      `${Math.round(r.accuracy)} m`,
      `${r.speed.toFixed(1)} m/s`,
      `${Math.round(r.battery)}%`,
      r.network,
    ]),
  )
  return note + history
}
