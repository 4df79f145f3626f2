/**
 * M2 across devices, on the console API (contract: common/cloud/cloud-move.ts):
 * the source gives the account's device verifiers, the destination takes
 * them for the same devices (so each phone signs in there with the secret
 * it has: the secret itself never travels), and the source tells each phone
 * of a migrated account, over the push channel, where its cloud is now --
 * a `cloud-moved` notice signed with that device's verifier. The push queue
 * keeps it for a phone that is away until it comes back. Each device told
 * is kept in device_moves, so this cloud's device views say where it went
 * (DeviceView.moved) instead of calling it offline.
 */
import { CLOUD_MOVED, DeviceVerifiersSchema, MovedRequestSchema, signMove, type MovedReply } from '../../common/cloud/cloud-move.js'
import { HttpError, type HttpRouter } from '../http/router.js'
import type { TransferDeps } from './deps.js'
import { quoted } from '../../common/terminal-text.js'
import { plural } from '../../common/plural.js'

/** As long as the source keeps a migrated account's data (M1's guarantee), so a phone away that long still follows. */
const MOVE_TTL_MS = 30 * 86_400_000

export function addDeviceMoveRoutes(router: HttpRouter, deps: TransferDeps): void {
  const { db, clock, cloud, queue } = deps
  const sql = {
    verifiers: db.prepare<[account: string], { id: string; verifier: string }>(
      'SELECT id, secret_hash AS verifier FROM devices WHERE account = ? ORDER BY id',
    ),
    setVerifier: db.prepare<[verifier: string, id: string, account: string]>(
      'UPDATE devices SET secret_hash = ? WHERE id = ? AND account = ?',
    ),
    moved: db.prepare<[device: string, notice: string, cloud: string, account: string, at: number]>(
      'INSERT OR REPLACE INTO device_moves (device_id, notice, cloud, account, at) VALUES (?, ?, ?, ?, ?)',
    ),
  }
  const CONSOLE = ['console'] as const
  const accountOf = (param: string | undefined): string => cloud.accounts.need(param as string).id

  router.add('GET', '/api/accounts/:account/device-verifiers', CONSOLE, (ctx) => ({
    status: 200,
    body: { devices: sql.verifiers.all(accountOf(ctx.params.account)) },
  }))
  router.add('PUT', '/api/accounts/:account/device-verifiers', CONSOLE, async (ctx) => {
    const account = accountOf(ctx.params.account)
    const { devices } = await ctx.json(DeviceVerifiersSchema, { what: 'device verifiers' })
    // All or none: a device that is not the account's here leaves every verifier as it was.
    db.transaction(() => {
      for (const d of devices)
        if (sql.setVerifier.run(d.verifier, d.id, account).changes === 0)
          throw new HttpError(409, 'NOT_HERE', `device ${d.id} is not a device of ${quoted(account)} here: import the account first`)
    })()
    cloud.cloudLog.record(
      account,
      'migration-credentials',
      `took the secret verifiers of ${plural(devices.length, 'device')} from their old cloud`,
      devices.length,
    )
    return { status: 200, body: { devices: devices.map((d) => d.id) } }
  })
  router.add('POST', '/api/accounts/:account/moved', CONSOLE, async (ctx) => {
    const account = accountOf(ctx.params.account)
    const req = await ctx.json(MovedRequestSchema, { what: 'move' })
    if (cloud.retirement.migration(account)?.how !== 'migrate')
      throw new HttpError(409, 'NOT_MIGRATED', `${quoted(account)} has no verified migration here: its phones stay`)
    const devices = sql.verifiers.all(account)
    for (const d of devices) {
      const move = signMove({ v: 1, device: d.id, account: req.account, to: req.to, at: clock.now() }, d.verifier)
      const notice = queue.enqueue(d.id, {
        kind: CLOUD_MOVED,
        title: `Your cloud moved to ${req.to.cloud}`,
        body: JSON.stringify(move),
        ttlMs: MOVE_TTL_MS,
      })
      // The device views say where it went (and, by the notice's state, whether it took the notice), not "offline".
      sql.moved.run(d.id, notice.id, req.to.cloud, req.account, move.at)
    }
    cloud.cloudLog.record(
      account,
      'migration-followed',
      `told ${plural(devices.length, 'phone')} to follow to ${req.to.cloud} (account ${req.account})`,
      devices.length,
    )
    return { status: 200, body: { devices: devices.map((d) => d.id), to: req.to } satisfies MovedReply }
  })
}
