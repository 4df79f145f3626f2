/**
 * The console's side of the console API: what `fakephone console` and the
 * demo's live view use to read the cloud. The shapes it sends and gets are
 * the contract in common/console-api.ts; the devices' and commands' answers
 * (F1, F2) are read through its schemas, like the cloud data's (common/cloud/).
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { readWholeBody } from '../common/http-body.js'
import { ConnectionClosedError, requestAnswer } from '../common/http-request.js'
import type { Readable } from 'node:stream'
import { FakephoneError } from '../common/errors.js'
import { quoted } from '../common/terminal-text.js'
import { z } from 'zod'
import { FINAL_STATES, decodeValue, type Command } from '../common/contract.js'
import {
  CommandChangeReplySchema,
  CommandReplySchema,
  CommandsReplySchema,
  DeviceReplySchema,
  DevicesReplySchema,
  HistoryReplySchema,
  LatestCommandsReplySchema,
  MAX_COMMAND_WAIT_MS,
  type CommandChangeReply,
  type CommandReply,
  type CommandView,
  type CommandsReply,
  type DeviceReply,
  type DevicesReply,
  type HistoryReply,
  type LatestCommandsReply,
} from '../common/console-api.js'

/** An answer that came but cannot be read: the gateway's trouble (HTTP 502), not a refusal by the broker. */
const BAD_GATEWAY = 502

/**
 * A console API call that failed; `status` is the HTTP status, 0 when the broker's HTTP API could not be reached (`reason`:
 * Node's error); `refusedAs`, the broker's code of a refusal (`NOT_FOUND`, `NOT_ENABLED`, …), which `--json` errors carry.
 */
export class ConsoleApiError extends FakephoneError {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: Error,
    readonly refusedAs?: string,
  ) {
    super('EAPI', message)
  }
}

/**
 * An answer this console cannot read: not JSON, or not of the schema the call is read with (another version's broker,
 * or not a broker). The API answered, but with nothing to act on: the web console answers it 502, the fleet counts it
 * with the calls that failed and says it once (fleet/api-outage.ts).
 */
export class ConsoleAnswerError extends ConsoleApiError {}

/** What a refusal of the console API carries (common/console-api.ts's ApiErrorBody): its reason, and a code a hint may name. */
const RefusalSchema = z.object({ error: z.string(), code: z.unknown() })

/** How much of an answer that is no broker's is quoted in the error: enough to tell a proxy's page or another server. */
const FIRST_BYTES = 80

/**
 * What came back, on one line, for an answer that is no broker's: its status, content type and first bytes, quoted
 * with each control character (a line break too) shown as an escape (common/terminal-text.ts).
 */
function whatCame({ status, headers, body }: ApiAnswer): string {
  const type = headers['content-type'] ?? 'no content type'
  if (body.length === 0) return `HTTP ${status}, ${type}, an empty body`
  const more = body.length > FIRST_BYTES ? ` (${body.length} bytes in all)` : ''
  return `HTTP ${status}, ${type}: ${quoted(body.subarray(0, FIRST_BYTES).toString())}${more}`
}

/** An answer's body as JSON, or NOT_JSON (which no schema accepts). */
const NOT_JSON: unique symbol = Symbol('not JSON')
export function parsedJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString())
  } catch {
    return NOT_JSON
  }
}

/** A console API call's answer as it came, whatever its status. */
export interface ApiAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer<ArrayBuffer>
}

/**
 * Said when the address took the connection but no HTTP came back, and never has to this client: the broker's MQTT port
 * closes a connection whose first bytes are not MQTT, which Node calls "socket hang up"; "is the broker running?" sent
 * a user whose broker ran to look for the wrong fault. An address that answered in HTTP before is HTTP: a cut there (a
 * broker stopping, a proxy dropping connections) keeps the usual hint.
 */
const NOT_HTTP_HINT =
  ': it took the connection but gave no HTTP answer; if the broker is running, this is probably its MQTT port: give the ' +
  'HTTP port the broker printed at its start (`Broker on mqtt://HOST:N and http://HOST:M`)'

/** A connection that opened and closed with no HTTP answer, or answered with bytes that are not HTTP. */
function notHttp(err: NodeJS.ErrnoException): boolean {
  return (err.code === 'ECONNRESET' && err.message === 'socket hang up') || err.code?.startsWith('HPE_') === true
}

export class ConsoleClient {
  /** True once this address answered in HTTP: a connection cut there later is not said to be the MQTT port. */
  private answeredHttp = false

  /**
   * @param waitCapMs the longest wait one request asks the cloud for (its cap; smaller only in tests of the long poll)
   * @param hints what to do, added to "cannot reach the broker's HTTP API" and to the broker's refusal of the token (the
   * console CLI names its --api, --data and --token-file flags); `from`, the option the address came from (`--api`,
   * `--to`), is said beside the address, so a user whose broker has an MQTT address too knows which one to check;
   * `refusals`, what to add to a refusal of the broker by its code (the console CLI's hint of where to look next)
   * @param silenceMs how long a connection may say nothing either way before the call fails: a broker that took the
   * connection and hangs ends a command, a migration or a fleet run's report with an error instead of never. Past the
   * longest long poll (`waitCapMs`), with a minute to spare; smaller only in its test.
   */
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly waitCapMs = MAX_COMMAND_WAIT_MS,
    private readonly hints: { from?: string; unreachable?: string; unauthorized?: string; refusals?: Record<string, string> } = {},
    private readonly silenceMs = waitCapMs + 60_000,
  ) {}

  devices(): Promise<DevicesReply> {
    return this.read(DevicesReplySchema, 'GET', '/api/devices')
  }

  history(id: string, limit: number): Promise<HistoryReply> {
    return this.read(HistoryReplySchema, 'GET', `/api/devices/${encodeURIComponent(id)}/history?limit=${limit}`)
  }

  device(id: string): Promise<DeviceReply> {
    return this.read(DeviceReplySchema, 'GET', `/api/devices/${encodeURIComponent(id)}`)
  }

  commands(id: string): Promise<CommandsReply> {
    return this.read(CommandsReplySchema, 'GET', `/api/devices/${encodeURIComponent(id)}/commands`)
  }

  /** One page of every device's newest command and newest succeeded locate (F2): the devices after `after` by id ('': from the first). */
  latestCommands(after: string): Promise<LatestCommandsReply> {
    return this.read(LatestCommandsReplySchema, 'GET', `/api/commands/latest?after=${encodeURIComponent(after)}`)
  }

  /**
   * Submits a signed command and, in the same request, waits up to `waitMs` (at most the cloud's cap) for it to reach a
   * final state (F2): the command as it stands then. A refusal (F3) is a ConsoleApiError with status 409.
   */
  submit(command: Command, waitMs = 0): Promise<CommandReply> {
    const wait = Math.min(waitMs, this.waitCapMs)
    const path = `/api/devices/${encodeURIComponent(command.device)}/commands${wait > 0 ? `?wait=${wait}` : ''}`
    return this.read(CommandReplySchema, 'POST', path, command)
  }

  /**
   * Submits a signed command and waits up to `waitMs` in all for it to reach a final state: one request when the phone
   * answers within the cloud's cap, long polls after it for a longer wait. With `beforeWait`, the submit does not wait:
   * `beforeWait` hears of the queued command first (the CLI says an offline phone is away before it waits).
   */
  async submitAndWait(command: Command, waitMs: number, beforeWait?: (submitted: CommandView) => void): Promise<CommandReply> {
    if (beforeWait) {
      const submitted = await this.submit(command)
      beforeWait(submitted.command)
      return this.poll(submitted, waitMs)
    }
    return this.poll(await this.submit(command, waitMs), waitMs - Math.min(waitMs, this.waitCapMs))
  }

  /** The command, after waiting up to `waitMs` (at most the cloud's cap) for it to reach a final state. */
  command(id: string, waitMs: number): Promise<CommandReply> {
    return this.read(CommandReplySchema, 'GET', `/api/commands/${encodeURIComponent(id)}?wait=${Math.min(waitMs, this.waitCapMs)}`)
  }

  /** `reply` if its command is final, else long polls for it up to `leftMs` more (the cloud answered each poll only at its wait's end). */
  private async poll(reply: CommandReply, leftMs: number): Promise<CommandReply> {
    let answer = reply
    for (let left = leftMs; left > 0 && !FINAL_STATES.has(answer.command.state); left -= this.waitCapMs)
      answer = await this.command(answer.command.id, left)
    return answer
  }

  cancel(id: string): Promise<CommandChangeReply> {
    return this.read(CommandChangeReplySchema, 'POST', `/api/commands/${encodeURIComponent(id)}/cancel`, {})
  }

  /** One console API call: a GET, or a POST of `post` as JSON when given. */
  request<T>(path: string, post?: unknown): Promise<T> {
    return post === undefined ? this.send('GET', path) : this.send('POST', path, post)
  }

  /**
   * A blob's or a drive file's bytes to or from the console API over node:http, whole (M2: fetch copied a 64 MiB blob
   * several times over through web streams, most of a migration's CPU); a refusal is a ConsoleApiError with the cloud's reason, status 0
   * when the broker could not be reached or the connection broke.
   */
  async bytes(method: 'GET' | 'POST' | 'PUT', path: string, body?: Uint8Array): Promise<Buffer<ArrayBuffer>> {
    const res = await this.stream(method, path, body)
    return this.whole(res)
  }

  /**
   * A console API call whose body (bytes, or a stream of `length` bytes sent as it is produced) or answer is streamed (M2's batch
   * routes); resolves with the answer to read once its status says success, else rejects like `bytes`.
   */
  stream(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: Uint8Array | { stream: Readable; length: number },
    contentType?: string,
  ): Promise<IncomingMessage> {
    return this.open(method, path, body, contentType).then(async (res) => {
      const status = res.statusCode as number
      if (status < 300) return res
      throw this.refusal({ status, headers: res.headers, body: await this.whole(res) })
    })
  }

  /**
   * Sends one request over node:http (keep-alive: the global agent's); resolves with the answer whatever its status. A GET
   * the broker cut as it reused the connection is sent again once (common/http-request.ts); a POST (F2's submit: a
   * repeat is refused as DUPLICATE), PUT or DELETE is not: it may have arrived. No PUT or DELETE the console calls has
   * the same effect and answer sent twice as once: each DELETE (a sync item or a bin item, a backup, a drive file, share
   * link or SDK token, a transfer grant) answers NOT_FOUND to its repeat, the backups of a device "0 deleted", and the PUTs
   * log again (membership, device verifiers: membership's `days` also counts from the repeat), refuse a plan already
   * announced (retirement), move a relative deadline, or resume an import's upload at an offset the first one moved.
   */
  private open(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body: Uint8Array | { stream: Readable; length: number } | undefined,
    contentType?: string,
  ): Promise<IncomingMessage> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    if (contentType !== undefined) headers['content-type'] = contentType
    if (body !== undefined) headers['content-length'] = String(body.length)
    const sending = {
      resend: method === 'GET',
      send: (req: ClientRequest): void => {
        // Silence either way (Node counts what is sent and what comes) for silenceMs, the answer's body included: the call fails.
        req.setTimeout(this.silenceMs, () =>
          req.destroy(new Error(`it took the connection but said nothing for ${Math.round(this.silenceMs / 1000)} s`)),
        )
        if (body === undefined) req.end()
        else if ('stream' in body) {
          body.stream.on('error', (err) => req.destroy(err))
          body.stream.pipe(req)
        } else req.end(body)
      },
    }
    return requestAnswer(new URL(path, this.baseUrl), { method, headers }, sending).then(
      (res) => {
        this.answeredHttp = true
        return res
      },
      (err: Error) => Promise.reject(this.unreachable(err, !this.answeredHttp && notHttp(err))),
    )
  }

  /** An answer's whole body; a connection cut before its end is a ConsoleApiError with status 0. */
  private whole(res: IncomingMessage): Promise<Buffer<ArrayBuffer>> {
    return readWholeBody(res).catch((err: Error) => Promise.reject(this.unreachable(err)))
  }

  /** `notHttp`: the connection opened but what answered was not HTTP (said instead of the `unreachable` hint). */
  private unreachable(err: Error, notHttp = false): ConsoleApiError {
    const { from, unreachable = '' } = this.hints
    const where = `${this.baseUrl}${from === undefined ? '' : ` (${from})`}`
    if (err instanceof ConnectionClosedError)
      return new ConsoleApiError(
        0,
        `the broker's HTTP API at ${where} closed the connection mid-request (${err.message}), one it had answered on ` +
          'before; the request was not sent again, as it may have arrived: check whether it took effect, then retry',
        err,
      )
    const hint = notHttp ? NOT_HTTP_HINT : unreachable
    return new ConsoleApiError(0, `cannot reach the broker's HTTP API at ${where}: ${String(err)}${hint}`, err)
  }

  /**
   * An error status's answer as a ConsoleApiError: the broker's refusal, its reason as it said it (one of the token, 401,
   * or one with a hint for its code, says what to do about it); a body that is no refusal of a broker (a proxy's error
   * page, another server's 404, JSON without a reason) says what came back, on one line, with its status.
   */
  refusal(answer: ApiAnswer): ConsoleApiError {
    const refusal = RefusalSchema.safeParse(parsedJson(answer.body))
    if (!refusal.success) return new ConsoleApiError(answer.status, this.notBroker(answer))
    // A refusal without a code looks up "undefined": no hint.
    const hint = answer.status === 401 ? this.hints.unauthorized : this.hints.refusals?.[String(refusal.data.code)]
    const code = typeof refusal.data.code === 'string' ? refusal.data.code : undefined
    return new ConsoleApiError(answer.status, `${refusal.data.error}${hint ?? ''}`, undefined, code)
  }

  /** Said of an answer that is not a broker's: what came back, on one line. */
  private notBroker(answer: ApiAnswer): string {
    return `${this.baseUrl} did not answer like a fakephone broker (${whatCame(answer)})`
  }

  /**
   * One console API call with any method; `body` goes as JSON when given. Over node:http, not fetch (M2: Node 20's fetch
   * cost a migrating console ~90 ms of CPU to load and several ms per call until warm).
   */
  async send<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, json?: unknown): Promise<T> {
    const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json))
    return this.json(await this.call(method, path, body, body === undefined ? undefined : 'application/json')) as T
  }

  /**
   * One console API call whose answer is checked against `schema` (common/cloud/*-api.ts): one this console cannot read
   * (another version's broker, or not a broker) is a ConsoleApiError that says what is wrong, not a render of half a view.
   */
  async read<T>(schema: z.ZodType<T>, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, json?: unknown): Promise<T> {
    return this.checked(schema, method, path, await this.send<unknown>(method, path, json))
  }

  /**
   * An upload of bytes (`stream`'s body: a drive file, D1; a blob or a batch of them, M2) whose JSON answer is checked
   * against `schema` as `read` does.
   */
  async readAfterBytes<T>(
    schema: z.ZodType<T>,
    method: 'POST' | 'PUT',
    path: string,
    body: Uint8Array | { stream: Readable; length: number },
    contentType?: string,
  ): Promise<T> {
    const res = await this.stream(method, path, body, contentType)
    const answer = this.json({ status: res.statusCode as number, headers: res.headers, body: await this.whole(res) })
    return this.checked(schema, method, path, answer)
  }

  /** A `call`'s answer checked as `read` checks one: an error status is a refusal, a success `schema` cannot read a 502. */
  answered<T>(schema: z.ZodType<T>, method: string, path: string, answer: ApiAnswer): T {
    return this.checked(schema, method, path, this.json(answer))
  }

  /** `answer`, when `schema` reads it; else the ConsoleApiError that says what is wrong. */
  private checked<T>(schema: z.ZodType<T>, method: string, path: string, answer: unknown): T {
    const decoded = decodeValue(schema, answer)
    // A 502, whatever status came with it: the broker answered, but nothing a caller may take as its answer (the web
    // console's relay passes a ConsoleApiError's status on to the page).
    if (!decoded.ok)
      throw new ConsoleAnswerError(
        BAD_GATEWAY,
        `${this.baseUrl} answered ${method} ${path} with what this console cannot read (${decoded.reason}): is it a ` +
          'fakephone broker of another version?',
      )
    return decoded.value
  }

  /**
   * A success's body read as JSON; one that is not JSON is an answer this console cannot read, said with what came back.
   * An error status is a refusal whatever its body (`refusal`).
   */
  private json(answer: ApiAnswer): unknown {
    if (answer.status >= 300) throw this.refusal(answer)
    const value = parsedJson(answer.body)
    if (value === NOT_JSON) throw new ConsoleAnswerError(BAD_GATEWAY, this.notBroker(answer))
    return value
  }

  /**
   * One call over node:http whose answer, status, headers and whole body, is the caller's to read whatever its status (the web
   * console's relay passes it to the page as it is); status 0 as in `bytes` when the broker could not be reached.
   */
  async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: Uint8Array, contentType?: string): Promise<ApiAnswer> {
    const res = await this.open(method, path, body, contentType)
    return { status: res.statusCode as number, headers: res.headers, body: await this.whole(res) }
  }
}
