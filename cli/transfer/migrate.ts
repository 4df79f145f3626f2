/**
 * M2: `fakephone console migrate`: an account copied to another fakephone
 * cloud as a job, with the same enumeration (the export route) and the same
 * idempotent import as M3, then verified. The job is a JSON file beside the
 * console (`--job`), saved at every state change: new -> running ->
 * verifying -> completed | partially completed | failed | cancelled. Running
 * the command again resumes a job that did not complete: blobs the
 * destination already holds are not sent again, records already there are
 * `present` (ids are kept). A signal (Ctrl-C) between items cancels it.
 *
 * Blobs go many at once (blob-batch.ts): the destination pulls them from
 * the source's batch read itself, with a transfer grant the source issues
 * for one batch of this account's blobs and the console revokes once the
 * batch is done (the console token never leaves the console); when the
 * destination cannot reach the source, the console relays them (streamed
 * from the source's batch read into the destination's batch upload), and
 * the job says so. Verify-after-import re-reads
 * the destination: every blob is read back in batches and hashed, every
 * record's fields compared with the source, and each photo's EXIF (capture time, GPS, camera, read with exifr) compared with
 * the metadata the source kept. A job that cannot prove every item
 * identical does not say completed.
 */
import { z } from 'zod'
import { MovedReplySchema } from '../../common/cloud/cloud-move.js'
import { FakephoneError } from '../../common/errors.js'
import { JsonFile } from '../../common/json-file.js'
import { TransferGrantSchema, type BlobVerdict, type VerifiedMeta } from '../../common/cloud/blob-batch.js'
import type { AccountSnapshot, Transferred } from '../../common/cloud/transfer-api.js'
import type { ConsoleClient } from '../console-client.js'
import { importAccount, type BagContents } from './account-import.js'
import { readBlobs, verifyBlobs, type PullFrom, type VerifyBlob } from './blob-batch.js'
import { readSnapshot } from './account-export.js'
import { phonesFollow } from './phones-follow.js'
import type { Progress } from './progress.js'
import { plural } from '../render.js'

const JOB_STATES = ['new', 'running', 'verifying', 'completed', 'partially completed', 'failed', 'cancelled'] as const

const ItemReportSchema = z.strictObject({
  kind: z.string(),
  id: z.string(),
  bytes: z.number().int(),
  sourceSha256: z.string().nullable(),
  /** What the blob's bytes hash to, re-read by the destination from its own disk (null: not there, or not readable). */
  destSha256: z.string().nullable(),
  /** Fields compared (record fields, and EXIF fields for photos). */
  fieldsChecked: z.number().int(),
  identical: z.boolean(),
  error: z.string().nullable(),
  /** Each failed upload attempt of its bytes (a cut connection, a checksum mismatch), also when a retry then succeeded. */
  transit: z.array(z.string()).default([]),
})
export type ItemReport = z.infer<typeof ItemReportSchema>

export const MigrationJobSchema = z.strictObject({
  account: z.string(),
  to: z.string(),
  toAccount: z.string(),
  state: z.enum(JOB_STATES),
  startedAt: z.number().int(),
  updatedAt: z.number().int(),
  /** How many times it was run (1 + resumes). */
  runs: z.number().int(),
  report: z.array(ItemReportSchema),
  summary: z.string(),
  /** M2 across devices: the phones told to follow, and where to (once completed). */
  phones: MovedReplySchema.optional(),
  /** Who carried the bytes in the last run: the destination pulling from the source, or this console relaying them. */
  copiedBy: z.enum(['destination', 'console']).optional(),
  /** Why the console relayed though it asked the destination to pull (it could not reach the source). */
  relayedBecause: z.string().optional(),
  /** Records other than items, drive files and backups the destination refused (a device, its history), each with why. */
  others: z.array(z.strictObject({ kind: z.string(), id: z.string(), error: z.string() })).default([]),
})
export type MigrationJob = z.infer<typeof MigrationJobSchema>

const enc = encodeURIComponent

/** The records of a snapshot as an import, each blob read from the source cloud. */
function contentsOf(snap: AccountSnapshot): BagContents {
  const { account: a, now: _, log: __, ...records } = snap
  const blobs = new Map<string, { path: string; size: number }>()
  for (const r of [...snap.items, ...snap.drive, ...snap.backups]) blobs.set(r.sha256, { path: r.sha256, size: r.size })
  return { request: { ...records, account: { tier: a.tier, premiumUntil: a.premiumUntil, createdAt: a.createdAt } }, blobs }
}

/** Compares two records field by field; answers how many fields and which differ. */
function compare(source: Record<string, unknown>, dest: Record<string, unknown> | undefined, skip: readonly string[]): [number, string[]] {
  const keys = Object.keys(source).filter((k) => !skip.includes(k))
  if (dest === undefined) return [0, ['not at the destination']]
  // The same value is the same JSON: only values that are not (objects, or different) are compared as JSON.
  const differs = (k: string): boolean => source[k] !== dest[k] && JSON.stringify(source[k]) !== JSON.stringify(dest[k])
  return [keys.length, keys.filter(differs).map((k) => `${k} differs`)]
}

/** M2's verify-after-import: every blob re-read and hashed by the destination, every record and each photo's EXIF compared. */
async function verifyMigration(
  source: AccountSnapshot,
  dest: ConsoleClient,
  toAccount: string,
  failed: Map<string, string>,
  transit: ReadonlyMap<string, string[]> = new Map(),
  progress?: (total: { items: number; bytes: number }) => Progress,
): Promise<ItemReport[]> {
  const there = await readSnapshot(dest, toAccount)
  const items = new Map(there.items.map((d) => [`${d.category}/${d.id}`, d]))
  const drive = new Map(there.drive.map((d) => [d.id, d]))
  const backups = new Map(there.backups.map((d) => [d.id, d]))
  type Rec = { sha256: string; size: number } & Record<string, unknown>
  type Check = [kind: string, id: string, rec: Rec, other: Record<string, unknown> | undefined, skip: string[], exif: boolean]
  const checks: Check[] = [
    ...source.items.map((i): Check => {
      const key = `${i.category}/${i.id}`
      return ['item', key, i, items.get(key), ['seq', 'daysLeft'], i.category === 'photos']
    }),
    ...source.drive.map((f): Check => ['drive', f.id, f, drive.get(f.id), [], false]),
    ...source.backups.map((b): Check => ['backup', b.id, b, backups.get(b.id), [], false]),
  ]
  // Every blob a record at the destination points to is re-read there once (a photo's EXIF with it).
  const present = checks.filter(([, , , other]) => other !== undefined)
  const photos = new Set(present.filter(([, , , , , exif]) => exif).map(([, , rec]) => rec.sha256))
  const wanted = new Map(
    present.map(([, , { sha256, size }]): [string, VerifyBlob] => [sha256, { sha256, size, exif: photos.has(sha256) }]),
  )
  // The destination re-reads every byte: as long as the copy for an account of large files, so it has its progress line.
  const p = progress?.({ items: wanted.size, bytes: [...wanted.values()].reduce((n, b) => n + b.size, 0) })
  const read = await verifyBlobs(dest, toAccount, [...wanted.values()], (b) => {
    p?.add(b.size)
    p?.item()
  }).finally(() => p?.done())
  const check = ([kind, id, rec, other, skip, exif]: Check): ItemReport => {
    const [compared, diffs] = compare(rec, other, skip)
    let fields = compared
    let destSha: string | null = null
    // verifyBlobs answers for every blob asked; one not at the destination was not asked (compare said so).
    const back = other === undefined ? undefined : (read.get(rec.sha256) as BlobVerdict)
    if (back !== undefined && 'error' in back) diffs.push(`its bytes cannot be read at the destination: ${back.error}`)
    else if (back !== undefined) {
      destSha = back.hashed
      if (destSha !== rec.sha256) diffs.push(`bytes hash to ${destSha} at the destination`)
      if (exif) {
        const kept = rec.meta as Record<string, unknown>
        for (const f of ['takenAt', 'lat', 'lon', 'camera'] as const)
          if (JSON.stringify((back.meta as VerifiedMeta)[f]) !== JSON.stringify(kept[f] ?? null)) diffs.push(`EXIF ${f} differs`)
        fields += 4
      }
    }
    const error = failed.get(`${kind}:${id}`) ?? (diffs.length > 0 ? diffs.join('; ') : null)
    return {
      kind,
      id,
      bytes: rec.size,
      sourceSha256: rec.sha256,
      destSha256: destSha,
      fieldsChecked: fields,
      identical: error === null,
      error,
      transit: transit.get(rec.sha256) ?? [],
    }
  }
  return checks.map(check)
}

export function summarize(report: readonly ItemReport[]): string {
  const same = report.filter((r) => r.identical)
  const bytes = same.reduce((n, r) => n + r.bytes, 0)
  const fields = report.reduce((n, r) => n + r.fieldsChecked, 0)
  return `${same.length} of ${plural(report.length, 'item')} identical, bytes ${bytes}, metadata fields ${fields} checked`
}

/** Completed only when every item is proven identical and no other record failed; failed when nothing arrived intact. */
export function jobState(report: readonly ItemReport[], otherFailures: number): MigrationJob['state'] {
  const same = report.filter((r) => r.identical).length
  if (same === report.length && otherFailures === 0) return 'completed'
  return same === 0 && report.length > 0 ? 'failed' : 'partially completed'
}

export interface MigrateOptions {
  source: ConsoleClient
  dest: ConsoleClient
  account: string
  to: string
  toAccount: string
  jobFile: string
  signal: AbortSignal
  now(): number
  progress: (total: { items: number; bytes: number }) => Progress
  /** The verification's progress (the destination re-reading every blob); none when absent. */
  verifyProgress?: (total: { items: number; bytes: number }) => Progress
  /**
   * M2: the source's console API as the destination reaches it: the destination pulls the blobs from there itself, with
   * a transfer grant per batch (never the console token); absent, this console relays them.
   */
  pullFrom?: string
}

/** The destination pulls from `url` with a grant of the source's per batch, revoked once the batch is done. */
function pullFrom(o: MigrateOptions, url: string, relaying: (why: string) => void): PullFrom {
  const grants = `/api/accounts/${enc(o.account)}/transfer-grants`
  return {
    url,
    account: o.account,
    grant: async () => {
      const { id, token } = await o.source.read(TransferGrantSchema, 'POST', grants, {})
      return { token, revoke: () => o.source.send('DELETE', `${grants}/${enc(id)}`).then(() => undefined) }
    },
    relaying,
  }
}

/** Runs (or resumes) the migration job; answers the job as saved last. */
export async function migrate(o: MigrateOptions): Promise<MigrationJob> {
  const file = new JsonFile(o.jobFile, MigrationJobSchema)
  const fresh: MigrationJob = {
    account: o.account,
    to: o.to,
    toAccount: o.toAccount,
    state: 'new',
    startedAt: o.now(),
    updatedAt: o.now(),
    runs: 0,
    report: [],
    summary: '',
    others: [],
  }
  let job = await file.load(fresh)
  if (job.account !== o.account || job.to !== o.to || job.toAccount !== o.toAccount)
    throw new FakephoneError(
      'JOB_MISMATCH',
      `${o.jobFile} is the migration of ${job.account} to ${job.to} (account ${job.toAccount}); give this one another --job file`,
    )
  const save = async (change: Partial<MigrationJob>): Promise<MigrationJob> => {
    job = { ...job, ...change, updatedAt: o.now() }
    await file.save(job)
    return job
  }
  await save({ state: 'running', runs: job.runs + 1 })
  // A run that stops on an error (the source closed, the destination unreachable) says so in the job, not `running`.
  return run(o, save).catch(async (err: unknown) => {
    await save({ state: 'failed', summary: `stopped: ${(err as Error).message}; run the command again to resume` })
    throw err
  })
}

/** One run of the job, from reading the source to the phones told to follow; `save` keeps each step in the job file. */
async function run(o: MigrateOptions, save: (change: Partial<MigrationJob>) => Promise<MigrationJob>): Promise<MigrationJob> {
  const snap = await readSnapshot(o.source, o.account)
  if (o.signal.aborted) return save({ state: 'cancelled', summary: 'cancelled before the copy; run the command again to resume' })
  const transit = new Map<string, string[]>()
  let relayedBecause: string | undefined
  const pull = o.pullFrom === undefined ? undefined : pullFrom(o, o.pullFrom, (why) => (relayedBecause = why))
  const reply = await importAccount(
    o.dest,
    o.toAccount,
    contentsOf(snap),
    { many: (sha256s) => readBlobs(o.source, o.account, sha256s), pull },
    o.progress,
    o.signal,
    transit,
  ).catch((err: unknown) => {
    if (o.signal.aborted) return undefined
    throw err
  })
  if (reply === undefined) return save({ state: 'cancelled', summary: 'cancelled during the copy; run the command again to resume' })
  const copiedBy = pull === undefined || relayedBecause !== undefined ? 'console' : 'destination'
  const failed = new Map(reply.outcomes.filter((r) => r.result === 'failed').map((r) => [`${r.kind}:${r.id}`, r.error as string]))
  await save({ state: 'verifying' })
  const report = await verifyMigration(snap, o.dest, o.toAccount, failed, transit, o.verifyProgress)
  const others = reply.outcomes
    .filter((r) => r.result === 'failed' && !['item', 'drive', 'backup'].includes(r.kind))
    .map(({ kind, id, error }) => ({ kind, id, error: error as string }))
  const state = jobState(report, others.length)
  // Only a migration proven identical counts as the account's data out (M1 keeps it readable past its deadline).
  if (state === 'completed')
    await o.source.request(`/api/accounts/${enc(o.account)}/transferred`, { how: 'migrate', detail: `to ${o.to}` } satisfies Transferred)
  // M2 across devices: the account's phones follow a migration proven identical (phones-follow.ts).
  const phones = state === 'completed' ? await phonesFollow(o) : undefined
  return save({ state, report, summary: summarize(report), others, phones, copiedBy, relayedBecause })
}
