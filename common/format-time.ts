/**
 * Times and ages in words, for people: the CLI's tables and notices (re-exported by common/clock.ts) and the web
 * console's page, which loads the built file as `/js/format-time.js` (cli/web/assets.ts), so both say "3m 12s" and
 * "0s" alike. No imports: the browser loads it as it is.
 */
/**
 * How far ahead of "now" a timestamp may be and still read as just made: a phone and the CLI on its data directory
 * learn the cloud's time from the cloud's messages, so their clock runs behind the cloud's by the time a message took
 * (a backup the cloud stamped a moment ago could otherwise read "in the future"). Well above a message's delay under
 * load, far below any clock rule's step.
 */
export const FOLLOW_SKEW_MS = 5000

/** A time for people, to the minute: "2027-03-01 12:00 UTC" (the cloud's clock may be simulated: no time zone to go on). */
export const utcDate = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`

/** A UTC day for people: "2027-03-01" (a freeze's, a clearing's: the day is what matters). */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** A time for a table's UTC column, to the second: "2027-03-01 12:00:05". */
export const utcSeconds = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')

/**
 * A time for people in a sentence or a line of its own, to the second: "2027-03-01 12:00:05 UTC" -- what a table's UTC
 * column says, with the zone the column's header would give. The CLI's clock, receipts and notices and the web page's
 * when() all say it so; the raw ISO instant stays in --json, logs and file formats.
 */
export const utcText = (ms: number): string => `${utcSeconds(ms)} UTC`

/** "3m 12s ago"-style age of a timestamp, for people; "0s" for one at most FOLLOW_SKEW_MS ahead. */
export function formatAge(ms: number): string {
  if (ms < -FOLLOW_SKEW_MS) return 'in the future'
  if (ms < 0) return '0s'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}
