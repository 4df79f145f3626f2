/**
 * The phone's side of the data channel's bulk transfers (sync, backup,
 * drive): HTTP to the cloud with the device's id and secret. Uploads are
 * resumable and checksummed: the client asks where the cloud stands, sends
 * the rest in chunks, and an abort (the cloud-service component force-
 * stopped, the network cut) stops it at once; the next upload of the same
 * bytes carries on from what the cloud kept.
 */
import { createHash } from 'node:crypto'
import type { z } from 'zod'
import { BLOB_PATH, CloudErrorSchema, UploadStateSchema, type UploadStateBody } from '../common/cloud/blob-api.js'
import { FakephoneError } from '../common/errors.js'

export class CloudError extends FakephoneError {
  constructor(
    code: string,
    message: string,
    /** The HTTP status, 0 when the cloud was not reached or the call was aborted. */
    readonly status: number,
  ) {
    super(code, message)
  }
}

export interface CloudClientOptions {
  /** http://host:port of the cloud's HTTP side. */
  baseUrl: string
  deviceId: string
  secret: string
  /** Bytes per upload request (default 256 KiB). */
  chunkBytes?: number
}

export const DEFAULT_CHUNK_BYTES = 256 * 1024

/** The cloud's HTTP base for a push URL ws://host:port/push: http://host:port. */
export function cloudUrlOf(pushUrl: string): string {
  const url = new URL(pushUrl)
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`
}

export class CloudClient {
  private readonly authorization: string
  private readonly chunkBytes: number

  constructor(private readonly opts: CloudClientOptions) {
    this.authorization = `Basic ${Buffer.from(`${opts.deviceId}:${opts.secret}`).toString('base64')}`
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES
  }

  /** One JSON call; the answer is checked against `schema`. Errors are CloudErrors with the cloud's reason. */
  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, schema: z.ZodType<T>, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.fetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return parse(schema, await res.json(), path)
  }

  /** Uploads `bytes` (resuming what the cloud already has) and returns their SHA-256. */
  async upload(bytes: Buffer, signal?: AbortSignal, onProgress?: (sent: number, size: number) => void): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const path = `${BLOB_PATH}/${sha256}?size=${bytes.length}`
    let state: UploadStateBody = await this.call('GET', path, UploadStateSchema, undefined, signal)
    while (!state.stored) {
      onProgress?.(state.offset, bytes.length)
      const end = Math.min(bytes.length, state.offset + this.chunkBytes)
      const res = await this.fetch(`${path}&offset=${state.offset}`, { method: 'PUT', signal, body: Uint8Array.prototype.slice.call(bytes, state.offset, end) as Uint8Array<ArrayBuffer> })
      state = parse(UploadStateSchema, await res.json(), path)
    }
    onProgress?.(bytes.length, bytes.length)
    return sha256
  }

  /** The bytes of a blob the device's account holds; checked against their SHA-256. */
  async download(sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const res = await this.fetch(`${BLOB_PATH}/${sha256}/content`, { method: 'GET', signal })
    const bytes = Buffer.from(await res.arrayBuffer())
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) throw new CloudError('CHECKSUM_MISMATCH', `blob ${sha256} arrived damaged`, res.status)
    return bytes
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    let res: Response
    try {
      res = await fetch(new URL(path, this.opts.baseUrl), { ...init, headers: { ...(init.headers as Record<string, string>), authorization: this.authorization } })
    } catch (err) {
      if (init.signal?.aborted) throw new CloudError('ABORTED', 'stopped', 0)
      throw new CloudError('UNREACHABLE', `cannot reach the cloud at ${this.opts.baseUrl}: ${(err as Error).message}`, 0)
    }
    if (res.ok) return res
    const body: unknown = await res.json().catch(() => null)
    const e = CloudErrorSchema.safeParse(body)
    throw e.success ? new CloudError(e.data.code, e.data.error, res.status) : new CloudError('HTTP', `the cloud answered ${res.status} ${res.statusText}`, res.status)
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown, path: string): T {
  const r = schema.safeParse(body)
  if (!r.success) throw new CloudError('BAD_REPLY', `the cloud's answer to ${path} does not match the contract`, 0)
  return r.data
}
