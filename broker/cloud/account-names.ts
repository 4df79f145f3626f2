/**
 * Account names on the cloud side (docs/CONTRACT.md, "Account names"). A new account's name meets the contract's
 * AccountNameSchema: the registry checks every device registered (`device add`, `fleet provision`), an import checks the
 * account it fills (console API, M3), a migration the account it makes there (M2). A database may still hold names
 * given before that rule (a space, a `/`, a wildcard, hundreds of characters): those owners are not locked out. Such an
 * account keeps what it has -- its devices sign in, the console reads, exports and runs its commands as before (file
 * names and OwnTracks topics take its name encoded: contract.ts, accountSegment) -- but gets no new device, is no
 * import's or migration's target, and is never made again under that name. The broker says at start how many there
 * are and what to do.
 */
import { z } from 'zod'
import { ACCOUNT_NAME_RULE, AccountNameSchema, decodeValue } from '../../common/contract.js'
import type { Logger } from '../../common/log.js'
import { plural } from '../../common/plural.js'

/** The names shown in the start-up warning at most. */
const SHOWN = 5

/**
 * An `:account` in a console path: a name the rule accepts, or the name of an account made before the rule that the
 * database holds (`exists`). Anything else is refused with the rule.
 */
export function accountPathSchema(exists: (name: string) => boolean): z.ZodType<string> {
  return z.string().refine((name) => AccountNameSchema.safeParse(name).success || exists(name), ACCOUNT_NAME_RULE)
}

/** The names among `names` that the account-name rule refuses (the schema's compiled check: a fleet's 100,000 names at start). */
function legacyNames(names: readonly string[]): string[] {
  return names.filter((name) => !decodeValue(AccountNameSchema, name).ok)
}

/** Logs, once, how many accounts have names the rule refuses, and what their owners can do; nothing when none has. */
export function warnLegacyNames(names: readonly string[], log: Logger): void {
  const legacy = legacyNames(names)
  if (legacy.length === 0) return
  log.warn(
    { accounts: legacy.length, names: legacy.slice(0, SHOWN), rule: ACCOUNT_NAME_RULE },
    `${plural(legacy.length, 'account')} with a name the account-name rule refuses ` +
      '(made before it): they keep their devices and data, ' +
      'which sign in, are read and exported as before, but get no new devices. To give one a name that meets the rule, export it ' +
      '(fakephone console export NAME --out BAG) and import it under a new name (fakephone console import BAG --account NEW).',
  )
}
