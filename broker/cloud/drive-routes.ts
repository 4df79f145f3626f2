/**
 * The cloud drive's entry points (D1, D3, D5), every one of which answers
 * 403 SERVICE_NOT_ENABLED while the account's cloud service is off:
 *
 * device (HTTP Basic; bytes go first through the resumable /cloud/v1/blobs):
 *   GET    /cloud/v1/drive/files                  list
 *   POST   /cloud/v1/drive/files                  {name, folder, sha256, size}: the uploaded blob becomes a file
 *   GET    /cloud/v1/drive/files/:id/content      download
 *   DELETE /cloud/v1/drive/files/:id              delete
 *   POST   /cloud/v1/drive/files/:id/shares       a share link
 *   DELETE /cloud/v1/drive/shares/:token          revoke a share link
 * console (bearer console token), the same under /api/accounts/:account/drive, where an
 * upload is the raw body (`POST .../files?name=N&folder=/F`), plus SDK tokens:
 *   POST   /api/accounts/:account/drive/tokens    {app}: a new SDK token, shown once
 *   DELETE /api/accounts/:account/drive/tokens/:id
 * SDK (bearer SDK token), for third-party apps:
 *   GET    /sdk/v1/files                          the file picker; D5: while off, 403 {files: [], error, code}
 *   GET    /sdk/v1/files/:id/content              download
 *   POST   /sdk/v1/files?name=N&folder=/F         upload, raw body
 * public (no credentials):
 *   GET    /share/:token                          download through a share link
 */
import type { IncomingMessage } from 'node:http'
import {
  DRIVE_DEVICE_PATH,
  DRIVE_SDK_PATH,
  DriveRegisterSchema,
  DriveTokenRequestSchema,
  FileNameSchema,
  FolderSchema,
  SHARE_PATH,
  type DriveFile,
  type DriveRevoked,
} from '../../common/cloud/drive-api.js'
import { readBodyBytes } from '../../common/http-body.js'
import type { AccountError } from './accounts.js'
import { MAX_BLOB_BYTES } from './blob-store.js'
import type { CloudParts } from './cloud-data.js'
import type { DriveStore } from './drive-store.js'
import type { DriveTokens } from './drive-tokens.js'
import { HttpError, type Reply, type RouteContext } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'

const CONSOLE_PATH = '/api/accounts/:account/drive'
/** The answer to a share link's or an SDK token's revocation. */
const REVOKED: DriveRevoked = { revoked: true }

export function addDriveRoutes(parts: CloudParts, files: DriveStore, tokens: DriveTokens): void {
  const { router, accounts, blobs } = parts

  /** The account the caller acts on, once its cloud service is on (D3). */
  const owner = (ctx: RouteContext): string => {
    const { principal } = ctx
    const account =
      principal.kind === 'device' || principal.kind === 'sdk' ? principal.account : accounts.need(ctx.params.account as string).id
    accounts.assertServiceOn(account)
    return account
  }
  const uploader = (ctx: RouteContext): string => {
    const { principal } = ctx
    if (principal.kind === 'device') return principal.deviceId
    return principal.kind === 'sdk' ? `sdk:${principal.app}` : 'console'
  }
  const download = (file: DriveFile): Reply => ({
    status: 200,
    stream: blobs.read(file.sha256),
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(file.size),
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    },
  })
  /** A raw-body upload (console, SDK): refused before it is stored when it does not fit (A1). */
  const rawUpload = async (ctx: RouteContext): Promise<Reply> => {
    const account = owner(ctx)
    const name = FileNameSchema.safeParse(ctx.url.searchParams.get('name') ?? '')
    if (!name.success) throw new HttpError(400, 'BAD_REQUEST', 'give the file a name: ?name=report.pdf (one path segment)')
    const folder = FolderSchema.safeParse(ctx.url.searchParams.get('folder') ?? '/')
    if (!folder.success) throw new HttpError(400, 'BAD_REQUEST', 'folder must be a path such as / or /Documents/2026')
    // A1: an announced size that does not fit is refused before the body is read.
    const announced = Number(ctx.req.headers['content-length'])
    if (announced > 0) accounts.assertFits(account, announced, `drive file ${quoted(name.data)}`)
    const bytes = await readBody(ctx.req)
    accounts.assertFits(account, bytes.length, `drive file ${quoted(name.data)}`)
    const sha256 = await blobs.put(bytes)
    const file = files.put(account, { folder: folder.data, name: name.data, sha256, size: bytes.length, uploadedBy: uploader(ctx) })
    return { status: 201, body: { file } }
  }
  const share = (ctx: RouteContext): Reply => {
    const account = owner(ctx)
    const token = files.share(account, ctx.params.id as string)
    const url = `http://${String(ctx.req.headers.host)}${SHARE_PATH}/${token}`
    return { status: 201, body: { fileId: ctx.params.id, token, url } }
  }

  for (const [base, callers] of [
    [DRIVE_DEVICE_PATH, ['device']],
    [CONSOLE_PATH, ['console']],
  ] as const) {
    router.add('GET', `${base}/files`, callers, (ctx) => ({ status: 200, body: { files: files.list(owner(ctx)) } }))
    router.add('GET', `${base}/files/:id/content`, callers, (ctx) => download(files.need(owner(ctx), ctx.params.id as string)))
    router.add('DELETE', `${base}/files/:id`, callers, async (ctx) => ({
      status: 200,
      body: { file: await files.delete(owner(ctx), ctx.params.id as string) },
    }))
    router.add('POST', `${base}/files/:id/shares`, callers, share)
    router.add('DELETE', `${base}/shares/:token`, callers, (ctx) => {
      files.unshare(owner(ctx), ctx.params.token as string)
      return { status: 200, body: REVOKED }
    })
  }

  router.add('POST', `${DRIVE_DEVICE_PATH}/files`, ['device'], async (ctx) => {
    const account = owner(ctx)
    const req = await ctx.json(DriveRegisterSchema)
    // Only a blob this account holds or sent the bytes of: a hash alone gets no other account's file (blob-store.ts).
    if (blobs.claimableSize(account, req.sha256) !== req.size)
      throw new HttpError(409, 'CONFLICT', `blob ${req.sha256} of ${req.size} bytes is not uploaded; upload it to /cloud/v1/blobs first`)
    const file = files.put(account, { folder: req.folder, name: req.name, sha256: req.sha256, size: req.size, uploadedBy: uploader(ctx) })
    return { status: 201, body: { file } }
  })
  router.add('POST', `${CONSOLE_PATH}/files`, ['console'], rawUpload)

  router.add('POST', `${CONSOLE_PATH}/tokens`, ['console'], async (ctx) => {
    const account = accounts.need(ctx.params.account as string).id
    const { app } = await ctx.json(DriveTokenRequestSchema)
    return { status: 201, body: tokens.issue(account, app) }
  })
  router.add('DELETE', `${CONSOLE_PATH}/tokens/:id`, ['console'], (ctx) => {
    tokens.revoke(accounts.need(ctx.params.account as string).id, ctx.params.id as string)
    return { status: 200, body: REVOKED }
  })

  // D5: the picker gets an empty list and a failure, never a stale list.
  router.add('GET', DRIVE_SDK_PATH, ['sdk'], (ctx) => {
    let account: string
    try {
      account = owner(ctx)
    } catch (err) {
      // owner() only refuses with an AccountError: SERVICE_NOT_ENABLED or FROZEN.
      const refusal = err as AccountError
      return { status: 403, body: { files: [], error: refusal.message, code: refusal.code } }
    }
    return { status: 200, body: { files: files.list(account) } }
  })
  router.add('GET', `${DRIVE_SDK_PATH}/:id/content`, ['sdk'], (ctx) => download(files.need(owner(ctx), ctx.params.id as string)))
  router.add('POST', DRIVE_SDK_PATH, ['sdk'], rawUpload)

  router.add('GET', `${SHARE_PATH}/:token`, ['public'], (ctx) => {
    const found = files.shared(ctx.params.token as string)
    if (!found) throw new HttpError(404, 'NOT_FOUND', 'this share link does not exist or was revoked')
    accounts.assertServiceOn(found.account)
    return download(found.file)
  })
}

/** The whole request body, at most one blob's size. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const bytes = await readBodyBytes(req, MAX_BLOB_BYTES)
  /* c8 ignore next -- a body over 512 MiB is not worth sending in a test; the limit is MAX_BLOB_BYTES, as for device uploads */
  if (bytes === null) throw new HttpError(413, 'TOO_LARGE', `a drive file may be at most ${MAX_BLOB_BYTES} bytes`)
  return bytes
}
