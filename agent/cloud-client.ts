/**
 * The phone's side of the data channel's bulk transfers (sync, backup,
 * drive): HTTP to the cloud with the device's id and secret. Uploads are
 * resumable and checksummed: the client asks where the cloud stands, sends
 * the rest in chunks, and an abort (the cloud-service component force-
 * stopped, the network cut) stops it at once; the next upload of the same
 * bytes carries on from what the cloud kept.
 */
import { createHash } from 'node:crypto'
import type { ClientRequest } from 'node:http'
import type { z } from 'zod'
import { BLOB_PATH, CloudErrorSchema, UploadStateSchema, type UploadStateBody } from '../common/cloud/blob-api.js'
import { FakephoneError } from '../common/errors.js'
import { readWholeBody } from '../common/http-body.js'
import { ConnectionClosedError, requestAnswer } from '../common/http-request.js'
import type { DeviceCredentials } from './credentials.js'

export class CloudError extends FakephoneError {
  constructor(
    code: string,
    message: string,
    /** The HTTP status, 0 when the cloud was not reached or the call was aborted. */
    readonly status: number,
    /** A3: with `FROZEN`, when the cloud cleared the account's data (undefined: not said). */
    readonly clearedAt?: number | null,
  ) {
    super(code, message)
  }
}

export interface CloudClientOptions {
  /** http://host:port of the cloud's HTTP side. */
  baseUrl: string
  /** The device's id and secret, read at each call: F1, X1: a device given a new secret sends it from the next call on. */
  credentials: DeviceCredentials
  /** Bytes per upload request (default 256 KiB). */
  chunkBytes?: number
}

const DEFAULT_CHUNK_BYTES = 256 * 1024

/** The cloud's HTTP base for a push URL ws://host:port/push: http://host:port. */
export function cloudUrlOf(pushUrl: string): string {
  const url = new URL(pushUrl)
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`
}

export class CloudClient {
  private readonly credentials: DeviceCredentials
  private readonly chunkBytes: number
  /** Where the cloud is; M2 moves it (moveTo). */
  private base: string

  constructor(opts: CloudClientOptions) {
    this.credentials = opts.credentials
    this.base = opts.baseUrl
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
   * part of it answers BAD_OFFSET, one still writing it (a cut connection not
   * yet noticed) BUSY; either way the upload carries on from the cloud's offset.
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
        // BAD_OFFSET: the cloud holds more or less than we sent from. BUSY: a write of this blob is still going (a
        // connection cut a moment ago, not yet noticed by the cloud); asking where it stands waits for that write.
        if (!(err instanceof CloudError && (err.code === 'BAD_OFFSET' || err.code === 'BUSY'))) throw err
        state = await where()
      }
    }
    onProgress?.(bytes.length, bytes.length)
    return sha256
  }

  /** The bytes of a blob the device's account holds; checked against their SHA-256. */
  async download(sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const { body: bytes, status } = await this.exchange(`${BLOB_PATH}/${sha256}/content`, { method: 'GET' }, signal, (res) => res)
    if (createHash('sha256').update(bytes).digest('hex') !== sha256)
      throw new CloudError('CHECKSUM_MISMATCH', `blob ${sha256} arrived damaged`, status)
    return bytes
  }

  /**
   * One request and the reading of its answer, both stopped by `signal`.
   * Each request gets a signal of its own: the agent's transfer signal lives
   * for thousands of requests, and a listener left on it per request leaked
   * (Node warned of a leak after 1,500 photos, once per request).
   */
  private exchange<T>(path: string, init: Request, signal: AbortSignal | undefined, read: (res: Answer) => T): Promise<T> {
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

  private async answer<T>(path: string, init: Request, signal: AbortSignal, read: (res: Answer) => T): Promise<T> {
    const res = await send(
      new URL(path, this.base),
      { ...init, headers: { ...init.headers, authorization: this.credentials.authorization } },
      signal,
    )
    if (res.status >= 200 && res.status < 300) return read(res)
    const e = CloudErrorSchema.safeParse(parseJson(res.body))
    throw e.success
      ? new CloudError(e.data.code, e.data.error, res.status, e.data.clearedAt)
      : new CloudError('HTTP', `the cloud answered ${res.status} ${res.statusText}`, res.status)
  }

  private asCloudError(err: unknown, aborted: boolean): CloudError {
    if (err instanceof CloudError) return err
    if (aborted) return new CloudError('ABORTED', 'stopped', 0)
    if (err instanceof ConnectionClosedError)
      return new CloudError(
        'UNREACHABLE',
        `the cloud at ${this.base} closed the connection mid-request (${err.message}): not sent again, as it may have arrived`,
        0,
      )
    return new CloudError('UNREACHABLE', `cannot reach the cloud at ${this.base}: ${(err as Error).message}`, 0)
  }
}

interface Request {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  headers?: Record<string, string>
  body?: string | Uint8Array
}

/** An answer read whole. */
interface Answer {
  status: number
  statusText: string
  body: Buffer
}

/**
 * One HTTP exchange with node:http (kept-alive connections of the global
 * agent): about a third of fetch()'s CPU per request, which a sync of 1,000
 * photos makes thousands of. `signal` stops it at once, answer half-read or not.
 * A GET or PUT the cloud cut as it reused the connection is sent again once
 * (common/http-request.ts): a PUT sets a whole state (S1's item), or a blob's
 * chunk at its offset, which a repeat finds stored (BAD_OFFSET, and upload asks
 * where the cloud stands). A POST (B1's backup registration) or DELETE is not.
 */
function send(url: URL, init: Request, signal: AbortSignal): Promise<Answer> {
  const headers = init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) }
  const sending = {
    resend: init.method === 'GET' || init.method === 'PUT',
    send(req: ClientRequest): void {
      const stop = (): void => void req.destroy(new Error('stopped'))
      signal.addEventListener('abort', stop, { once: true })
      req.on('close', () => signal.removeEventListener('abort', stop))
      if (signal.aborted) stop()
      else req.end(init.body)
    },
  }
  // An answer cut short (the connection closed, or `signal` destroyed the request) fails the read.
  return requestAnswer(url, { method: init.method, headers }, sending).then(async (res) => {
    const body = await readWholeBody(res)
    return { status: res.statusCode as number, statusText: res.statusMessage as string, body }
  })
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

/** The answer as JSON checked against `schema`; anything else is BAD_REPLY. */
function readJson<T>(res: Answer, schema: z.ZodType<T>, path: string): T {
  const body = parseJson(res.body)
  if (body === undefined) throw new CloudError('BAD_REPLY', `the cloud's answer to ${path} is not JSON`, res.status)
  const r = schema.safeParse(body)
  if (!r.success) throw new CloudError('BAD_REPLY', `the cloud's answer to ${path} does not match the contract`, res.status)
  return r.data
}
