/**
 * M1: the console's view and control of the service's retirement:
 *   GET /api/service                                the phase now, the next one and when, every account's deadline and access
 *   PUT /api/service/retirement                     {"announce","syncOff","migrationDeadline","shutdown"}: ISO dates or
 *                                                   durations from now on the cloud's clock (7d); in order
 *   PUT /api/service/retirement/accounts/:account   {"deadline"}: the account's own deadline (staggered notices)
 */
import { z } from 'zod'
import type { CloudParts } from './cloud-data.js'
import type { ServiceRetirement } from './retirement.js'

const DateText = z.string().min(1).max(64)

const PlanSchema = z.strictObject({ announce: DateText, syncOff: DateText, migrationDeadline: DateText, shutdown: DateText })
const DeadlineSchema = z.strictObject({ deadline: DateText })

export function addRetirementRoutes(parts: CloudParts, retirement: ServiceRetirement): void {
  const { router } = parts
  router.add('GET', '/api/service', ['console'], () => ({ status: 200, body: retirement.status() }))
  router.add('PUT', '/api/service/retirement', ['console'], async (ctx) => ({
    status: 200,
    body: retirement.setPlan(await ctx.json(PlanSchema, { what: 'retirement plan' })),
  }))
  router.add('PUT', '/api/service/retirement/accounts/:account', ['console'], async (ctx) => {
    const { deadline } = await ctx.json(DeadlineSchema, { what: 'deadline' })
    return { status: 200, body: { now: parts.clock.now(), account: retirement.setDeadline(ctx.params.account as string, deadline) } }
  })
}
