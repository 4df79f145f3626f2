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
  /** Where the cloud is; M2 moves it (moveTo). */
  private base: string

  constructor(opts: CloudClientOptions) {
    this.base = opts.baseUrl
    this.authorization = `Basic ${Buffer.from(`${opts.deviceId}:${opts.secret}`).toString('base64')}`
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES
  }

  /** M2: the account migrated; every call from now on goes to the new cloud (http://host:port). */
  moveTo(baseUrl: string): void {
    this.base = baseUrl
  }

  /** One JSON call; the answer is checked against `schema`. Errors are CloudErrors with the cloud's reason. */
  call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, schema: z.ZodType<T>, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
    return this.exchange(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }, signal, (res) =>
      readJson(res, schema, path),
    )
  }

  /**
   * Uploads `bytes` (resuming what the cloud already has) and returns their
   * SHA-256. A blob that fits in one request (most photos) is sent straight
   * away; a larger one asks first where the cloud stands. A cloud that holds
   * part of it answers BAD_OFFSET, and the upload carries on from its offset.
   */
  async upload(bytes: Buffer, signal?: AbortSignal, onProgress?: (sent: number, size: number) => void): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const path = `${BLOB_PATH}/${sha256}?size=${bytes.length}`
    const where = (): Promise<UploadStateBody> => this.call('GET', path, UploadStateSchema, undefined, signal)
    let state = bytes.length <= this.chunkBytes ? { stored: false, offset: 0 } : await where()
    while (!state.stored) {
      onProgress?.(state.offset, bytes.length)
      const end = Math.min(bytes.length, state.offset + this.chunkBytes)
      const chunk = Uint8Array.prototype.slice.call(bytes, state.offset, end) as Uint8Array<ArrayBuffer>
      try {
        state = await this.exchange(`${path}&offset=${state.offset}`, { method: 'PUT', body: chunk }, signal, (res) =>
          readJson(res, UploadStateSchema, path),
        )
      } catch (err) {
        if (!(err instanceof CloudError && err.code === 'BAD_OFFSET')) throw err
        state = await where()
      }
    }
    onProgress?.(bytes.length, bytes.length)
    return sha256
  }

  /** The bytes of a blob the device's account holds; checked against their SHA-256. */
  async download(sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const { bytes, status } = await this.exchange(`${BLOB_PATH}/${sha256}/content`, { method: 'GET' }, signal, async (res) => ({
      bytes: Buffer.from(await res.arrayBuffer()),
      status: res.status,
    }))
    if (createHash('sha256').update(bytes).digest('hex') !== sha256)
      throw new CloudError('CHECKSUM_MISMATCH', `blob ${sha256} arrived damaged`, status)
    return bytes
  }

  /**
   * One request and the reading of its answer, both stopped by `signal`.
   * fetch() gets a signal of its own for each request: undici leaves a
   * listener on the signal it is given until the request is garbage
   * collected, and the agent's transfer signal lives for thousands of
   * requests (Node warned of a leak after 1,500 photos, once per request).
   */
  private exchange<T>(path: string, init: RequestInit, signal: AbortSignal | undefined, read: (res: Response) => Promise<T>): Promise<T> {
    const own = new AbortController()
    const abort = (): void => own.abort(signal?.reason)
    signal?.addEventListener('abort', abort, { once: true })
    if (signal?.aborted) abort()
    return this.answer(path, init, own.signal, read)
      .catch((err: unknown) => {
        throw this.asCloudError(err, own.signal.aborted)
      })
      .finally(() => signal?.removeEventListener('abort', abort))
  }

  private async answer<T>(path: string, init: RequestInit, signal: AbortSignal, read: (res: Response) => Promise<T>): Promise<T> {
    const res = await fetch(new URL(path, this.base), {
      ...init,
      signal,
      headers: { ...(init.headers as Record<string, string>), authorization: this.authorization },
    })
    if (res.ok) return read(res)
    const e = CloudErrorSchema.safeParse(await res.json().catch(() => null))
    throw e.success
      ? new CloudError(e.data.code, e.data.error, res.status)
      : new CloudError('HTTP', `the cloud answered ${res.status} ${res.statusText}`, res.status)
  }

  private asCloudError(err: unknown, aborted: boolean): CloudError {
    if (err instanceof CloudError) return err
    if (aborted) return new CloudError('ABORTED', 'stopped', 0)
    // fetch() and the body readers fail with TypeError('fetch failed' / 'terminated'), the network error as cause.
    return new CloudError('UNREACHABLE', `cannot reach the cloud at ${this.base}: ${(err as Error).message}`, 0)
  }
}

/** The answer as JSON checked against `schema`; anything else is BAD_REPLY. */
async function readJson<T>(res: Response, schema: z.ZodType<T>, path: string): Promise<T> {
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new CloudError('BAD_REPLY', `the cloud's answer to ${path} is not JSON`, res.status)
  }
  const r = schema.safeParse(body)
  if (!r.success) throw new CloudError('BAD_REPLY', `the cloud's answer to ${path} does not match the contract`, res.status)
  return r.data
}
