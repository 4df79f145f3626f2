/**
 * A contact as the phone keeps it (S1, S4): one vCard 3.0 file (RFC 2426)
 * with FN, N, TEL, EMAIL, UID and REV, CRLF line endings and escaped
 * values, so any address book can import it (M3).
 */

export interface Contact {
  uid: string
  name: string
  phone: string | null
  email: string | null
  /** Last revision, ms since the epoch. */
  rev: number
}

const escape = (v: string): string =>
  v
    .replace(/\\/g, '\\\\')
    .replace(/\r?\n/g, '\\n')
    .replace(/([,;])/g, '\\$1')
const unescape = (v: string): string => v.replace(/\\([\\,;nN])/g, (_, c: string) => (c === 'n' || c === 'N' ? '\n' : c))

/** The family name is the last word of the full name, the given names the rest. */
function structuredName(name: string): string {
  const words = name.trim().split(/\s+/)
  const family = words.length > 1 ? (words.pop() as string) : ''
  return `${escape(family)};${escape(words.join(' '))};;;`
}

/** `2026-01-01T12:00:00Z`: REV's timestamp, to the second. */
const revStamp = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

export function toVcard(c: Contact): string {
  const lines = ['BEGIN:VCARD', 'VERSION:3.0', `UID:${escape(c.uid)}`, `FN:${escape(c.name)}`, `N:${structuredName(c.name)}`]
  if (c.phone) lines.push(`TEL;TYPE=CELL:${escape(c.phone)}`)
  if (c.email) lines.push(`EMAIL;TYPE=INTERNET:${escape(c.email)}`)
  lines.push(`REV:${revStamp(c.rev)}`, 'END:VCARD')
  return lines.join('\r\n') + '\r\n'
}

/** Reads the first vCard in `text`; fields it lacks come back null (name: empty, rev: NaN). */
export function parseVcard(text: string): Contact {
  const props = new Map<string, string>()
  // Unfold continuation lines (a line break followed by a space or tab), then read NAME[;params]:value.
  for (const line of text.replace(/\r?\n[ \t]/g, '').split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const name = (line.slice(0, colon).split(';')[0] as string).toUpperCase()
    if (!props.has(name)) props.set(name, line.slice(colon + 1))
  }
  const value = (key: string): string | null => {
    const v = props.get(key)
    return v === undefined || v === '' ? null : unescape(v)
  }
  const rev = props.get('REV')
  return {
    uid: value('UID') ?? '',
    name: value('FN') ?? '',
    phone: value('TEL'),
    email: value('EMAIL'),
    rev: rev === undefined ? NaN : Date.parse(rev),
  }
}
