/**
 * The console's account views and the clock (A1-A3, simulated time):
 *   GET  /api/accounts                      every account: tier, quota use, service state, and (M1) its
 *                                           `retirement` place (access, deadline, purge) once a plan is set
 *   GET  /api/accounts/:account             one account, with what its unfinished uploads hold; opening it is a
 *                                           web/console sign-in (A3)
 *   PUT  /api/accounts/:account/membership  {"tier":"premium","days":365} or {"tier":"free"} (A2)
 *   GET  /api/accounts/:account/log         what the cloud's rules did to its data, newest first
 *   GET  /api/clock                         the cloud's time, and whether it is simulated
 *   POST /api/clock/advance                 {"by":"73h"}: simulated time only; runs every rule that falls due, in order,
 *                                           and says what they did (`effects`, advance-effects.ts)
 */
import { z } from 'zod'
import { SimulatedClock, parseDuration } from '../../common/clock.js'
import { AdvanceWatch } from './advance-effects.js'
import type { ClockAdvance, ClockView } from '../../common/cloud/clock-api.js'
import type { CloudParts } from './cloud-data.js'
import type { AccountRetirement } from './retirement-plan.js'
import { HttpError, intParam } from '../http/router.js'

const DAY = 86_400_000

const MembershipSchema = z.union([
  z.strictObject({ tier: z.literal('premium'), days: z.number().int().positive().max(36_500).optional() }),
  z.strictObject({ tier: z.literal('free') }),
])

/** A move of the clock hands the event loop back at least this often, ms (health checks, the systemd watchdog). */
const MOVE_SLICE_MS = 50
/** Largest single advance: ten years. */
const MAX_ADVANCE_MS = 3650 * DAY
const AdvanceSchema = z.strictObject({ by: z.union([z.string(), z.number().int().positive()]) })

/** `retirement` is M1's view of one account, asked per request (the retirement is made after these routes). */
export function addAccountRoutes(parts: CloudParts, retirement: (account: string) => AccountRetirement | null): void {
  const { router, accounts, clock, cloudLog } = parts
  const watch = new AdvanceWatch(parts.db)
  let moving: Promise<unknown> = Promise.resolve()
  router.add('GET', '/api/accounts', ['console'], () => ({
    status: 200,
    body: { now: clock.now(), accounts: accounts.list().map((a) => ({ ...a, retirement: retirement(a.id) })) },
  }))
  router.add('GET', '/api/accounts/:account', ['console'], async (ctx) => {
    // The account as the owner finds it (frozen, say); opening it then counts as a sign-in.
    const found = accounts.need(ctx.params.account as string)
    accounts.touch(found.id, 'console-sign-in')
    // A1: what its unfinished uploads hold counts against the quota too (blob-routes.ts), so the owner sees it.
    const pendingBytes = await parts.blobs.pendingBytes(found.id)
    return { status: 200, body: { now: clock.now(), account: { ...found, pendingBytes } } }
  })
  router.add('PUT', '/api/accounts/:account/membership', ['console'], async (ctx) => {
    const req = await ctx.json(MembershipSchema)
    const until = req.tier === 'premium' && req.days !== undefined ? clock.now() + req.days * DAY : null
    return { status: 200, body: { now: clock.now(), account: accounts.setMembership(ctx.params.account as string, req.tier, until) } }
  })
  router.add('GET', '/api/accounts/:account/log', ['console'], (ctx) => {
    const account = accounts.need(ctx.params.account as string)
    return {
      status: 200,
      body: { now: clock.now(), account: account.id, log: cloudLog.list(account.id, intParam(ctx.url, 'limit', 50, 1, 1000)) },
    }
  })
  router.add('GET', '/api/clock', ['console'], () => ({ status: 200, body: clockView(parts) }))
  router.add('POST', '/api/clock/advance', ['console'], async (ctx) => {
    if (!(clock instanceof SimulatedClock)) {
      throw new HttpError(
        409,
        'REAL_TIME',
        'the cloud runs on real time; start the broker with --simulated-time (or "simulatedTime": true in its --config file) ' +
          'to move its clock',
      )
    }
    const { by } = await ctx.json(AdvanceSchema)
    let ms: number
    try {
      ms = typeof by === 'number' ? by : parseDuration(by)
    } catch (err) {
      throw new HttpError(400, 'BAD_REQUEST', (err as Error).message)
    }
    if (ms <= 0 || ms > MAX_ADVANCE_MS) throw new HttpError(400, 'BAD_REQUEST', 'advance the clock by more than nothing and at most 3650d')
    // One move at a time: a second waits for the first to arrive (a move hands the event loop back while it runs).
    const move = moving.then(async () => {
      const from = clock.now()
      let fired = 0
      // What the rules did on the way, as a user can look it up; `fired` counts every timer, look-agains included.
      // Each slice of the move is one transaction: a year of hourly rules is tens of thousands of writes.
      const effects = await watch.around(
        from,
        async () => {
          fired = await clock.advanceInSlices(ms, (work) => parts.db.transaction(work)(), MOVE_SLICE_MS)
        },
        () => clock.now(),
      )
      return { from, fired, effects }
    })
    moving = Promise.allSettled([move])
    const { from, fired, effects } = await move
    const body: ClockAdvance = { ...clockView(parts), from, fired, effects }
    return { status: 200, body }
  })
}

function clockView(parts: CloudParts): ClockView {
  const { clock } = parts
  return { now: clock.now(), simulated: clock instanceof SimulatedClock, aheadMs: clock instanceof SimulatedClock ? clock.ahead : 0 }
}
