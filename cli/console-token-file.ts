/**
 * Reads the console token from a file a person named (`console --token-file`, `--data DIR`'s console.token,
 * `fleet run --console-token-file`): a token given on the command line is shown by `ps` to every user. One reader for
 * every command, each with its own words for what to do (`hints`): the console's default is the broker's data
 * directory, so a missing file there means a broker never started; `fleet run` names the flag it came from.
 */
import { readSmallFileSync, SmallFileError } from '../common/small-file.js'
import { forTerminal } from '../common/terminal-text.js'
import { UserError } from './io.js'

export interface TokenFileHints {
  /** Said first on every refusal (`--console-token-file: `); none: nothing. */
  flag?: string
  /** What to do about a file that cannot be opened (missing, not this user's), said after its name and error code. */
  unreadable: string
  /** What to do about a file that holds nothing; none: an empty token is returned, for the broker to refuse. */
  empty?: string
}

/** The token in `file` (trimmed): a file that is not a small regular one, cannot be opened or (with `hints.empty`) is empty is refused. */
export function readConsoleTokenFile(file: string, hints: TokenFileHints): string {
  const flag = hints.flag ?? ''
  let token: string
  try {
    token = readSmallFileSync(file).trim()
  } catch (err) {
    if (err instanceof SmallFileError) throw new UserError(`${flag}cannot read the console token: ${err.message}`)
    const code = (err as NodeJS.ErrnoException).code
    throw new UserError(`${flag}cannot read the console token ${forTerminal(file)} (${code})${hints.unreadable}`)
  }
  if (token === '' && hints.empty !== undefined) throw new UserError(`${flag}${forTerminal(file)} is empty${hints.empty}`)
  return token
}
