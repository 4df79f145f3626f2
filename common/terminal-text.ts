/**
 * Text that others chose (an account named before the account-name rule, a device id, a file or note name, a
 * notification's title), made safe to print on a terminal: a control character in it would otherwise move the
 * cursor, recolour the screen, retitle the window or forge a line of the CLI's output. Each C0 control (line breaks
 * and tabs too), DEL and each C1 control shows as `\xNN`, and each invisible character that reorders or breaks text
 * (bidirectional overrides and isolates, the line and paragraph separators) as `\u{NNNN}`: visible. A backslash shows
 * as `\\`, so every backslash on the screen starts an escape and each one reads back one way: a name holding the text
 * `\x1B` shows as `\\x1B`, an ESC as `\x1B`. Nothing else changes. `--json` output never goes through here: it stays
 * exact JSON.
 *
 * Each value from others is escaped once, with forTerminal, where it goes into a line. linesForTerminal is the net over
 * a whole text the CLI wrote (a message, a rendered view): it shows any control character that slipped in, but leaves
 * backslashes as they are, so a text whose values were escaped already is not escaped twice.
 *
 * A message names a value in quotes with `quoted`, one rule on both sides: the broker's refusals (HTTP error bodies the
 * CLI and the web console show, MQTT refusals it logs) and the CLI's own errors (a value the user typed) quote a name
 * once, where they put it in, as the terminal shows names: an ESC in it is `\x1B` everywhere, never `\u001b` in one
 * place and `\x1B` in another. Whatever prints such a message whole uses a net that leaves backslashes alone:
 * linesForTerminal, or lineForTerminal where the message must stay on one line.
 */

const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const UNSAFE_BUT_BACKSLASH = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const UNSAFE_BUT_LF = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const escape = (c: string): string => {
  if (c === '\\') return '\\\\'
  const code = c.charCodeAt(0)
  const hex = code.toString(16).toUpperCase()
  return code <= 0xff ? `\\x${hex.padStart(2, '0')}` : `\\u{${hex}}`
}

/** One value (a name, an id) for a line of human output: each control character escaped, line breaks too; a backslash doubled. */
export function forTerminal(text: string): string {
  return text.replace(UNSAFE, escape)
}

/**
 * Text of several lines the CLI wrote itself, its values from others escaped with forTerminal already: control
 * characters shown as forTerminal shows them, but `\n` stays a line break and a backslash stays as it is.
 */
export function linesForTerminal(text: string): string {
  return text.replace(UNSAFE_BUT_LF, escape)
}

/**
 * A value from others (a name, an id, a text the user typed) for a message, in double quotes: escaped as forTerminal
 * escapes it, and a `"` in it shown as `\"`, so the quotes around it are the only bare ones and it reads back one way
 * (every backslash inside starts an escape).
 */
export function quoted(value: string): string {
  return `"${forTerminal(value).replace(/"/g, '\\"')}"`
}

/**
 * A whole message (one whose values were quoted or escaped already, such as a refusal the broker sent) on one line:
 * control characters shown as forTerminal shows them, a line break too, but a backslash stays as it is.
 */
export function lineForTerminal(text: string): string {
  return text.replace(UNSAFE_BUT_BACKSLASH, escape)
}
