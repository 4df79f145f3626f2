/**
 * Cloud backup's HTTP routes (B1-B4; docs/CONTRACT.md, "Cloud backup").
 * Device (the phone, over the data channel; the cloud service must be on):
 *   POST   /cloud/v1/backups                       register an uploaded package {sha256, manifest, planId?}
 *   GET    /cloud/v1/backups                       the account's backups, newest first (?device=ID for one phone's)
 *   GET    /cloud/v1/backups/:id                   one backup with its manifest
 *   DELETE /cloud/v1/backups                       B4: this phone's backup off, its backups deleted now
 *   POST   /cloud/v1/backups/plans/:id/failed      the phone could not answer a plan {reason}
 * Console:
 *   GET    /api/accounts/:account/backups          B3 state with its dates, the backups and recent plans
 *   GET    /api/backups/:id                        one backup with its manifest
 *   GET    /api/backups/:id/package                the package's bytes (allowed while read-only)
 *   DELETE /api/backups/:id                        delete one backup (refused while read-only)
 *   DELETE /api/devices/:device/backups            B4 from the console: backup off for the device, its backups deleted
 */
import {
  PlanFailedSchema,
  RegisterBackupSchema,
  type BackupView,
  type ConsoleBackupList,
  type NoPlanBecause,
} from '../../common/cloud/backup-api.js'
import type { Backups } from './backups.js'
import type { CloudParts } from './cloud-data.js'
import { HttpError } from '../http/router.js'
import { servedDevice } from './served-device.js'
import { quoted } from '../../common/terminal-text.js'
import { utcDate } from '../../common/clock.js'

export function addBackupRoutes(parts: CloudParts, backups: Backups): void {
  const { router, accounts, clock, blobs } = parts
  const { store, retention, plans } = backups
  const need = (id: string, account?: string): BackupView => {
    const b = store.get(id)
    if (!b || (account !== undefined && b.account !== account))
      throw new HttpError(404, 'NOT_FOUND', `no backup ${quoted(id)}${account === undefined ? '' : ' in this account'}`)
    return b
  }
  const one = (b: BackupView) => ({ status: 200, body: { now: clock.now(), retention: retention.view(b.account), backup: b } })

  router.add('POST', '/cloud/v1/backups', ['device'], async (ctx) => {
    const { account, deviceId } = servedDevice(parts.accounts, ctx)
    const req = await ctx.json(RegisterBackupSchema)
    return {
      status: 201,
      body: {
        now: clock.now(),
        retention: retention.view(account),
        backup: backups.register(account, deviceId, req.sha256, req.manifest, req.planId),
      },
    }
  })
  router.add('GET', '/cloud/v1/backups', ['device'], (ctx) => {
    const { account } = servedDevice(parts.accounts, ctx)
    const only = ctx.url.searchParams.get('device') ?? undefined
    return { status: 200, body: { now: clock.now(), retention: retention.view(account), backups: store.list(account, only) } }
  })
  router.add('GET', '/cloud/v1/backups/:id', ['device'], (ctx) =>
    one(need(ctx.params.id as string, servedDevice(parts.accounts, ctx).account)),
  )
  router.add('DELETE', '/cloud/v1/backups', ['device'], async (ctx) => {
    const { account, deviceId } = servedDevice(parts.accounts, ctx)
    return { status: 200, body: { now: clock.now(), ...(await backups.switchOffAndDelete(account, deviceId, 'on the phone')) } }
  })
  router.add('POST', '/cloud/v1/backups/plans/:id/failed', ['device'], async (ctx) => {
    const { deviceId } = servedDevice(parts.accounts, ctx)
    const { reason } = await ctx.json(PlanFailedSchema)
    const id = ctx.params.id as string
    if (!plans.isOpen(id, deviceId)) throw new HttpError(409, 'STALE_PLAN', `backup plan ${quoted(id)} is not open`)
    plans.finish(id, 'failed', reason, null)
    return { status: 200, body: { now: clock.now(), plan: plans.get(id) } }
  })

  router.add('GET', '/api/accounts/:account/backups', ['console'], (ctx) => {
    const { id: account, serviceOffAt, frozenAt } = accounts.need(ctx.params.account as string)
    // B2: the schedule plans nothing for an account whose cloud service is off (or that is frozen, A3; or whose uploads
    // the service's retirement closed, M1), nor for a phone whose backup or cloud service is off.
    const closedAt = plans.uploadsClosedAt(account)
    const noPlanBecause: NoPlanBecause | null =
      serviceOffAt !== null
        ? 'the cloud service of the account is off (B2)'
        : frozenAt !== null
          ? 'the account is frozen (A3)'
          : closedAt !== null
            ? `the fakephone cloud is retiring: sync stopped and new uploads are refused since ${utcDate(closedAt)} (M1)`
            : plans.plansFor(account)
              ? null
              : 'no phone of the account has cloud backup and the cloud service on (B2)'
    const body: ConsoleBackupList = {
      now: clock.now(),
      account,
      retention: retention.view(account),
      nextPlanAt: noPlanBecause === null ? plans.nextRun() : null,
      noPlanBecause,
      backups: store.list(account),
      plans: plans.list(account),
    }
    return { status: 200, body }
  })
  router.add('GET', '/api/backups/:id', ['console'], (ctx) => one(need(ctx.params.id as string)))
  router.add('GET', '/api/backups/:id/package', ['console'], (ctx) => {
    const b = need(ctx.params.id as string)
    return { status: 200, stream: blobs.read(b.sha256), headers: { 'content-type': 'application/json', 'content-length': String(b.size) } }
  })
  router.add('DELETE', '/api/backups/:id', ['console'], async (ctx) => {
    const b = need(ctx.params.id as string)
    const releasedBytes = await backups.delete(b.account, [b], `backup ${b.id} deleted from the console`)
    return { status: 200, body: { now: clock.now(), deleted: 1, releasedBytes } }
  })
  router.add('DELETE', '/api/devices/:device/backups', ['console'], async (ctx) => {
    const deviceId = ctx.params.device as string
    const account = accounts.accountOf(deviceId)
    if (account === undefined) throw new HttpError(404, 'NOT_FOUND', `device ${quoted(deviceId)} not found`)
    return { status: 200, body: { now: clock.now(), ...(await backups.switchOffAndDelete(account, deviceId, 'from the console')) } }
  })
}
