/** Option parsers shared by the subcommands: each names what was wrong. */
import { InvalidArgumentError } from 'commander'
import { parseHostPort, parseLatLon } from '../agent/place-text.js'
import type { Point } from '../agent/location.js'
import { AccountNameSchema } from '../common/contract.js'
import { privateKeyFileRefusal } from '../common/signing.js'
export { duration, formatDuration } from './duration-option.js'

/** Where the console keeps owner keys unless told otherwise. */
export const DEFAULT_KEYS_DIR = './keys'

export function port(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535')
  return n
}

export function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number above 0')
  return n
}

/** The name of an account to make (`device add`, `console import`, `console migrate --to-account`): the contract's rule. */
export function accountName(value: string): string {
  const bad = AccountNameSchema.safeParse(value).error
  if (bad) throw new InvalidArgumentError(bad.issues[0]?.message as string)
  return value
}

export function fraction(value: string): number {
  const n = Number(value)
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be a number from 0 up to (not including) 1')
  return n
}

export function onOff(value: string): boolean {
  if (value === 'on') return true
  if (value === 'off') return false
  throw new InvalidArgumentError('must be "on" or "off"')
}

export function latLon(value: string): Point {
  const point = parseLatLon(value)
  if (!point) throw new InvalidArgumentError('must be LAT,LON in degrees, e.g. 55.9486,-3.1999')
  return point
}

export function hostPort(value: string): { host: string; port: number } {
  const at = parseHostPort(value)
  if (!at) throw new InvalidArgumentError('must be HOST:PORT, e.g. 127.0.0.1:2947')
  return at
}

/** A parser that only checks: the text given is kept as the option's value. */
export function checked(parse: (value: string) => unknown): (value: string) => string {
  return (value) => {
    parse(value)
    return value
  }
}

/** A public key file for `--owner-key`: the owner's private key is refused here, in one line naming the .pub to give. */
export function publicKeyFile(value: string): string {
  const refusal = privateKeyFileRefusal(value)
  if (refusal) throw new InvalidArgumentError(refusal)
  return value
}

/** What each other kind of URL given for an HTTP address is, and the address to give instead, from `url`'s host. */
const NOT_HTTP: Record<string, (url: URL) => string> = {
  'mqtt:': (url) => `that is the MQTT address; the console talks to the HTTP one, http://${url.hostname}:HTTP-PORT`,
  'ws:': (url) => `that is MQTT over WebSocket; the console talks to http://${url.host}`,
  'https:': () => 'the broker serves plain HTTP, http://HOST:PORT',
}

/**
 * A cloud's HTTP address (`console --api`, `console migrate --to`, `fleet run --api`): `http://HOST:PORT`, which the
 * broker prints at start ("Broker on mqtt://… and http://…"). The MQTT URL, a ws:// URL or a bare HOST:PORT were taken
 * as given and crashed the first request with Node's stack trace; each is refused with the address to give.
 */
export function httpUrl(value: string): string {
  const url = URL.canParse(value) ? new URL(value) : undefined
  if (url?.protocol === 'http:') return value
  const hostPort = /^[^:/\s]+:\d+\/?$/.test(value) ? `give it as http://${value.replace(/\/$/, '')}` : undefined
  const instead = hostPort ?? (url && NOT_HTTP[url.protocol]?.(url)) ?? 'http://HOST:PORT'
  throw new InvalidArgumentError(
    `must be the broker's HTTP address: ${instead} (the broker says it at start: "Broker on mqtt://… and http://…")`,
  )
}
