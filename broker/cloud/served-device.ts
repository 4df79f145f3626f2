/** The calling phone on a cloud route added for device callers (D3, A3). */
import type { Principal, RouteContext } from '../http/router.js'
import type { Accounts } from './accounts.js'

/** The calling phone, on a route added for device callers only, once its account may use the cloud: service on, not frozen (D3, A3). */
export function servedDevice(accounts: Accounts, ctx: RouteContext): { account: string; deviceId: string } {
  const { account, deviceId } = ctx.principal as Extract<Principal, { kind: 'device' }>
  accounts.assertServiceOn(account)
  return { account, deviceId }
}
