/**
 * Zod's issues in one line for people (a curl user's 400, F2's command arguments): each names its field by the issue's
 * path and says what the field takes. `z.prettifyError`'s text (`✖ Invalid input: expected boolean, received string
 * → at eraseSdcard`) names the field last, in zod's words, over several lines.
 */
import type { z } from 'zod'

/** What a field of each JSON type takes, in words. */
const TAKES: Readonly<Record<string, string>> = {
  boolean: 'true or false',
  number: 'a number',
  string: 'text (a JSON string)',
  object: 'an object, {...}',
  array: 'a list, [...]',
}

/** A value read from JSON as the answer quotes it back: JSON again, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value)
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

function issueText(issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join('.')
  const named = field === '' ? 'the value' : field
  if (issue.code === 'unrecognized_keys')
    return (
      `unknown field${issue.keys.length === 1 ? '' : 's'} ` +
      `${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${field === '' ? '' : ` in ${field}`}`
    )
  if (issue.code === 'invalid_type') {
    const takes = TAKES[issue.expected] ?? issue.expected
    // `input` is there when the caller asked for it (safeParse's reportInput); undefined is a field left out.
    if (issue.input === undefined) return `${named} is missing: give ${takes}`
    return `${named} must be ${takes}, not ${shown(issue.input)}`
  }
  return `${named}: ${issue.message}`
}

/** Every issue, one after another: `eraseSdcard must be true or false, not "yes"; keepFindDevice is missing: give true or false`. */
export function issuesText(error: z.ZodError): string {
  return error.issues.map(issueText).join('; ')
}
