/**
 * M3: `fakephone console import`: a bag made by `console export` (or
 * `phone export`) into an account of any fakephone cloud, through its
 * console API. The bag is validated first (BagIt: every manifest entry,
 * Payload-Oxum, the tag manifest; then fakephone's own files: each sidecar
 * matches the bytes beside it); a bag with any problem is refused with the
 * whole list and nothing is imported. Then the account and its devices are
 * made, each blob the cloud does not hold yet is uploaded (resumable,
 * verified by the cloud against its SHA-256), and the records are added;
 * the cloud keeps source ids, so importing twice imports nothing twice.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { z, type ZodType } from 'zod'
import type { BagProblem, BagReport } from '../../common/bagit/validate.js'
import { UploadStateSchema, type UploadStateBody } from '../../common/cloud/blob-api.js'
import {
  ImportReplySchema,
  type FullImportRequest,
  type ImportOutcome,
  type ImportReply,
  type ImportRequest,
} from '../../common/cloud/transfer-api.js'
import { ConsoleApiError, type ConsoleClient } from '../console-client.js'
import {
  AccountFileSchema,
  BackupListFileSchema,
  CommandsFileSchema,
  DriveListFileSchema,
  ItemRecordSchema,
  NotificationsFileSchema,
  SIDECAR,
  devicePath,
  isSidecar,
  itemPath,
} from './bag-layout.js'
import { uploadInBatches, type BatchEvents, type PullFrom } from './blob-batch.js'
import { eachAtOnce } from './each-at-once.js'
import { fromGeoJson } from './location-formats.js'
import type { Progress } from './progress.js'

const GeoJsonFile = z.unknown().transform((v) => fromGeoJson(v))

export interface BagContents {
  request: FullImportRequest
  /** Each blob once: its SHA-256, size and file in the bag. */
  blobs: Map<string, { path: string; size: number }>
}

/** Reads a blob of a bag from its file. */
export const fromBag =
  (dir: string) =>
  (_: string, path: string): Promise<Buffer<ArrayBuffer>> =>
    readFile(join(dir, 'data', path))

/** Reads an account bag that validated; answers its records, or the problems that keep it from being one. */
export async function readAccountBag(dir: string, report: BagReport): Promise<BagContents | BagProblem[]> {
  const problems: BagProblem[] = []
  const blobs = new Map<string, { path: string; size: number }>()
  const json = async <T>(path: string, schema: ZodType<T>, fallback: T | undefined): Promise<T | undefined> => {
    if (!report.manifest.has(`data/${path}`)) {
      if (fallback === undefined) problems.push({ path: `data/${path}`, problem: 'missing: an account bag has this file' })
      return fallback
    }
    try {
      return schema.parse(JSON.parse(await readFile(join(dir, 'data', path), 'utf8')))
    } catch (err) {
      problems.push({ path: `data/${path}`, problem: `not what fakephone wrote: ${(err as Error).message.replace(/\s+/g, ' ')}` })
      return fallback
    }
  }
  /** A blob-backed record: its file must be in the bag with the SHA-256 the record says. */
  const blob = (path: string, sha256: string, size: number): void => {
    const listed = report.manifest.get(`data/${path}`)
    if (listed === undefined) problems.push({ path: `data/${path}`, problem: 'missing: its record is in the bag, its bytes are not' })
    else if (listed !== sha256)
      problems.push({ path: `data/${path}`, problem: `its record says SHA-256 ${sha256}, the bag's manifest ${listed}` })
    else blobs.set(sha256, { path, size })
  }

  /** A list file an account bag may leave out (an older or a phone's export): empty then. */
  const list = async <T>(path: string, schema: ZodType<T[]>): Promise<T[]> => (await json(path, schema, [])) as T[]
  const account = await json('account.json', AccountFileSchema, undefined)
  const items = []
  for (const path of [...report.manifest.keys()].filter(isSidecar).sort()) {
    const item = await json(path.slice('data/'.length), ItemRecordSchema, undefined)
    if (item === undefined) continue
    if (`data/${itemPath(item)}${SIDECAR}` !== path) {
      problems.push({ path, problem: `the sidecar is of ${itemPath(item)}, not of the file beside it` })
      continue
    }
    blob(itemPath(item), item.sha256, item.size)
    items.push(item)
  }
  const drive = await list('drive/files.json', DriveListFileSchema)
  for (const f of drive) blob(f.path, f.sha256, f.size)
  const backups = await list('backups/backups.json', BackupListFileSchema)
  for (const b of backups) blob(b.path, b.sha256, b.size)
  const request: BagContents['request'] = {
    account: account && { tier: account.account.tier, premiumUntil: account.account.premiumUntil, createdAt: account.account.createdAt },
    devices: account?.devices ?? [],
    items,
    drive: drive.map(({ path: _, ...f }) => f),
    backups: backups.map(({ path: _, ...b }) => b),
    locations: [],
    commands: [],
    notifications: [],
  }
  for (const d of request.devices) {
    request.locations.push(...(await list(devicePath(d.id, 'locations.geojson'), GeoJsonFile)))
    request.commands.push(...(await list(devicePath(d.id, 'commands.json'), CommandsFileSchema)))
    request.notifications.push(...(await list(devicePath(d.id, 'notifications.json'), NotificationsFileSchema)))
  }
  return problems.length > 0 ? problems : { request, blobs }
}

const enc = encodeURIComponent

/**
 * Blobs sent at once (M2: round trips and the cloud's fsyncs overlap); each is read whole, so a transfer holds at most
 * this many blobs in memory.
 */
const BLOBS_AT_ONCE = 8

/** How many times one blob is sent before it counts as refused (M2: a bytes-in-transit fault is retried, boundedly). */
export const BLOB_ATTEMPTS = 3

/** A refusal worth another attempt: the connection failed (0), the bytes did not hash right (422), an upload still settling (409). */
const retryable = (err: unknown): err is ConsoleApiError => err instanceof ConsoleApiError && [0, 409, 422].includes(err.status)

/**
 * Uploads one blob unless the cloud holds it, each attempt from the offset
 * the cloud reports (a cut connection resumes where the bytes stopped; a
 * checksum mismatch starts over, the cloud having discarded them). Each
 * failed attempt is told to `fault`, and so is the attempt that then
 * stored it (with the offset it resumed from); after BLOB_ATTEMPTS it throws.
 */
async function uploadBlob(
  api: ConsoleClient,
  base: string,
  sha256: string,
  size: number,
  read: () => Promise<Buffer<ArrayBuffer>>,
  fault: (why: string) => void,
): Promise<void> {
  let bytes: Buffer<ArrayBuffer> | undefined
  const faults: string[] = []
  const where = (): Promise<UploadStateBody> => api.read(UploadStateSchema, 'GET', `${base}/blobs/${sha256}?size=${size}`)
  for (let state = await where(), attempt = 1; !state.stored; state = await where(), attempt++) {
    if (attempt > BLOB_ATTEMPTS) throw new ConsoleApiError(0, `not stored after ${BLOB_ATTEMPTS} attempts: ${faults.join('; ')}`)
    bytes ??= await read()
    const from = `attempt ${attempt} from offset ${state.offset}`
    let why: string
    try {
      const path = `${base}/blobs/${sha256}?size=${size}&offset=${state.offset}`
      const after = await api.readAfterBytes(UploadStateSchema, 'PUT', path, bytes.subarray(state.offset))
      if (after.stored) {
        if (faults.length > 0) fault(`${from}: stored`)
        return
      }
      why = `${from}: the cloud kept ${after.offset} of ${size} bytes`
    } catch (err) {
      if (!retryable(err)) throw err
      why = `${from}: ${err.message}`
    }
    faults.push(why)
    fault(why)
  }
}

/**
 * M2: blobs read many at once (another cloud's batch read: its answer, framed) and so sent in batches (blob-batch.ts),
 * not one by one.
 */
export interface BatchRead {
  many(sha256s: string[]): Promise<Readable>
  /** M2: the destination pulls the blobs from the source itself (relaying with `many` if it cannot reach it). */
  pull?: PullFrom
}

/**
 * Imports bag contents into `account` on the cloud behind `api`, reading
 * each blob the cloud lacks with `read` (from the bag, or from another
 * cloud for a migration, M2). Blob
 * uploads that the cloud refuses (over quota, say) are not fatal: their
 * records fail with the cloud's reason, the rest go in. A blob whose
 * upload failed and was retried has each failed attempt in `transit`.
 */
export async function importAccount(
  api: ConsoleClient,
  account: string,
  contents: BagContents,
  read: ((sha256: string, path: string) => Promise<Buffer<ArrayBuffer>>) | BatchRead,
  progress: (total: { items: number; bytes: number }) => Progress,
  signal?: AbortSignal,
  transit?: Map<string, string[]>,
): Promise<ImportReply> {
  const base = `/api/accounts/${enc(account)}`
  const post = (req: ImportRequest): Promise<ImportReply> => api.read(ImportReplySchema, 'POST', `${base}/import`, req)
  const { request, blobs } = contents
  // The account and its devices first: uploads are charged to an account that exists.
  const first = await post({ account: request.account, devices: request.devices })
  const refused = new Map<string, string>()
  const p = progress({ items: blobs.size, bytes: [...blobs.values()].reduce((n, b) => n + b.size, 0) })
  const fault = (sha256: string, why: string): void => void transit?.set(sha256, [...(transit.get(sha256) ?? []), why])
  try {
    // A cancel (M2) stops between blobs (or batches); what arrived stays, and a rerun goes on from there.
    if (typeof read !== 'function') {
      const events: BatchEvents = {
        stored: (_, bytes) => {
          p.add(bytes)
          p.item()
        },
        refused: (sha256, why) => {
          refused.set(sha256, why)
          p.item()
        },
        fault,
      }
      const list = [...blobs].map(([sha256, { size }]) => ({ sha256, size }))
      await uploadInBatches(api, account, list, read.many, events, signal, BLOB_ATTEMPTS, read.pull)
    } else
      await eachAtOnce(
        [...blobs],
        BLOBS_AT_ONCE,
        async ([sha256, { path, size }]) => {
          try {
            await uploadBlob(
              api,
              base,
              sha256,
              size,
              () => read(sha256, path),
              (why) => fault(sha256, why),
            )
            p.add(size)
          } catch (err) {
            refused.set(sha256, (err as Error).message)
          }
          p.item()
        },
        signal,
      )
  } finally {
    p.done()
  }
  const { account: _, devices: __, ...records } = request
  const rest = await post(records)
  const outcomes = [...first.outcomes, ...rest.outcomes]
  const count = (r: ImportOutcome['result']): number => outcomes.filter((o) => o.result === r).length
  const reply: ImportReply = { ...rest, imported: count('imported'), present: count('present'), failed: count('failed'), outcomes }
  const shaOf = new Map<string, string>([
    ...request.items.map((i): [string, string] => [`item:${i.category}/${i.id}`, i.sha256]),
    ...request.drive.map((f): [string, string] => [`drive:${f.id}`, f.sha256]),
    ...request.backups.map((b): [string, string] => [`backup:${b.id}`, b.sha256]),
  ])
  for (const o of reply.outcomes) {
    const why = refused.get(shaOf.get(`${o.kind}:${o.id}`) ?? '')
    if (o.result === 'failed' && why !== undefined) o.error = `its bytes were refused: ${why}`
  }
  return reply
}
