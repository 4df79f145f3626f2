/**
 * How the CLI says that a command failed: `error: …` for a person; under `--json`, one line holding one JSON object,
 * `{"error", "code"}` (and `status` when the broker's HTTP API refused), so a script that asked for JSON reads its
 * errors as JSON too (README "`--json` output"). Both on stderr: stdout stays the command's answer alone (F2: a failed
 * remote command's view is there, beside its error). `error` is the same text, escaped for a terminal the same way.
 *
 * Loaded by every command line: no console client, no schema; a console API error is told by its fields.
 */

/** What kind of failure it was, for a script to branch on. */
export interface ErrorKind {
  /**
   * The broker's code of a refusal (`NOT_FOUND`, `NOT_ENABLED`, …), or USAGE, UNREACHABLE, BAD_ANSWER, a remote
   * command's final state that is no success (FAILED, REJECTED, EXPIRED, CANCELLED), INTERRUPTED (cli/main.ts), or ERROR.
   */
  code: string
  /** The HTTP status, when the broker answered. */
  status?: number
}

/** A command-line mistake: an unknown command or option, a missing or invalid argument. */
export const USAGE: ErrorKind = { code: 'USAGE' }

/** True when the command line asks for `--json` (before a `--`, after which words are values). */
export function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json')
}

/**
 * The kind of a thrown error: a console API call's (cli/console-client.ts ConsoleApiError: `status`, 0 when the broker
 * could not be reached, and the broker's `refusedAs`), the `kind` a UserError names (cli/io.ts), or any other (ERROR).
 */
export function errorKind(err: unknown): ErrorKind {
  const api = err as { code?: unknown; status?: unknown; refusedAs?: unknown; kind?: unknown } | null
  if (typeof api?.kind === 'string') return { code: api.kind }
  if (api?.code !== 'EAPI' || typeof api.status !== 'number') return { code: 'ERROR' }
  if (api.status === 0) return { code: 'UNREACHABLE' }
  // An answer that is no refusal of a broker (a proxy's page, another version's shape) is the web console's BAD_ANSWER.
  return { code: typeof api.refusedAs === 'string' ? api.refusedAs : 'BAD_ANSWER', status: api.status }
}

/** The error line: `text` (already escaped for a terminal) as `error: text`, or under `json` as one JSON object. */
export function errorLine(text: string, kind: ErrorKind, json: boolean): string {
  return json ? `${JSON.stringify({ error: text, ...kind })}\n` : `error: ${text}\n`
}
