/** Option parsers shared by the subcommands: each names what was wrong. */
import { InvalidArgumentError } from 'commander'
import { parseDuration } from '../common/clock.js'

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

export function duration(value: string): number {
  try {
    return parseDuration(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
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

export function latLon(value: string): { lat: number; lon: number } {
  const [lat, lon] = value.split(',').map(Number)
  if (lat === undefined || lon === undefined || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) {
    throw new InvalidArgumentError('must be LAT,LON in degrees, e.g. 55.9486,-3.1999')
  }
  return { lat, lon }
}
