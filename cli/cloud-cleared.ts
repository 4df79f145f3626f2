/**
 * A3 on the phone's screens: while its account is frozen, the line that says
 * the cloud copy was cleared, and what becomes of it once the owner signs
 * in. `phone sync status` (the items that upload again) and `phone backup
 * status` (the fresh backup) say it in the same words.
 */
import type { CloudClearing } from '../agent/sync/engine.js'
import { utcDay } from '../common/format-time.js'

/** `in cloud: cleared on DAY (A3: …; the account is frozen): <after>`, or nothing unless the account is frozen. */
export function frozenLine(cloud: CloudClearing | undefined, after: () => string): string[] {
  // A cloud that says no date (older than the field) left the links, and so the counts, as they were.
  if (cloud?.frozen !== true || cloud.clearedAt === null) return []
  const cleared = `cleared on ${utcDay(cloud.clearedAt)}`
  return [`in cloud: ${cleared} (A3: a year without activity; the account is frozen): ${after()}`]
}
