/** The calling phone on a cloud route added for device callers (D3, A3). */
import type { Principal, RouteContext } from '../http/router.js'
import type { Accounts, AccountView } from './accounts.js'

/**
 * The calling phone, on a route added for device callers only, once its account may use the cloud: service on, not frozen
 * (D3, A3); with when the account's data was last cleared (A3), read in the same look at the account.
 */
export function servedDevice(
  accounts: Accounts,
  ctx: RouteContext,
): { account: string; deviceId: string; clearedAt: AccountView['clearedAt'] } {
  const { account, deviceId } = ctx.principal as Extract<Principal, { kind: 'device' }>
  const { clearedAt } = accounts.assertServiceOn(account)
  return { account, deviceId, clearedAt }
}
