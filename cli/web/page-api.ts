/**
 * What the web console's page may ask of the cloud, under /app/api/: the
 * console API's reads and the data rules' actions, relayed to the broker with
 * the console token (which never reaches the browser), plus what only the
 * console's side can do:
 *   POST /app/api/devices/:id/commands        {type, args, expiresMs?, confirm?}: F2, signed here with the owner's key;
 *                                              a wipe needs `confirm` = the device id
 *   GET  /app/api/devices/:id/commands        the command list, each with `text` (the CLI's words, cli/command-words;
 *                                              an unfinished one as the phone's data channel stands), `receiptText`, `verified`
 *   GET  /app/api/devices/:id/track.gpx       F1: the location history as GPX (?limit=N, at most 10,000)
 *   GET  /app/api/devices/:id/track.geojson   ...and as GeoJSON
 *   POST /app/api/clock/advance               relayed; every open page hears the clock moved from the broker's word that
 *                                              it did (an account change with "clock": true, live.ts), as after
 *                                              `console clock advance`
 *   POST /app/api/commands/:cid/cancel        relayed; every open page hears where its device's commands stand from the
 *                                              broker's word that the command changed (live.ts)
 * Everything else on the list below is relayed as is, status and body; any
 * other path is a 404. The account views the page reads (A1-A3: the list,
 * one account -- the owner's sign-in, which brings a frozen account back --
 * and an account's log) are checked with their schema first
 * (common/cloud/account-api.ts), and so is the history a track download is
 * made of (F1, common/console-api.ts): an answer of another version's broker
 * is a 502 BAD_ANSWER saying what it could not read, not a panel of half-read
 * values or a GPX file of undefined points. Every refusal is `{error, code}`, as the broker's. A
 * broker that cannot be reached, or that refuses the console token (a 401 from
 * the broker is not the page's session), is a 502 whose `error` says so in words
 * a person acts on and whose `detail` is the technical reason (broker-trouble.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { readBodyBytes } from '../../common/http-body.js'
import { COMMAND_TYPES, CommandArgsSchemas, decodeJson, type CommandType } from '../../common/contract.js'
import { CommandReplySchema, HistoryReplySchema, type CommandView } from '../../common/console-api.js'
import type { OwnerKeys } from '../../common/signing.js'
import { ConsoleAnswerError, ConsoleApiError, type ConsoleClient } from '../console-client.js'
import { describe } from '../command-words.js'
import { signCommand } from '../sign-command.js'
import { brokerTrouble } from './broker-trouble.js'
import { AccountListSchema, AccountOneSchema, CloudLogViewSchema } from '../../common/cloud/account-api.js'
import { receiptOf } from './outcomes.js'
import type { VerifiedReceipts } from '../verified-receipts.js'
import { toGeoJson, toGpx } from './track.js'
import { quoted } from '../../common/terminal-text.js'
import { issuesText } from '../../common/issue-text.js'

/** The relayed reads checked with their schema before the page gets them (a path, as after /app/api). */
const CHECKED: readonly [RegExp, z.ZodType][] = [
  [/^\/accounts$/, AccountListSchema],
  [/^\/accounts\/[^/]+$/, AccountOneSchema],
  [/^\/accounts\/[^/]+\/log$/, CloudLogViewSchema],
]

/** Largest body the page sends (a drive upload is the largest), bytes. */
const MAX_PAGE_BODY_BYTES = 8 * 1024 * 1024

const SEG = '[^/]+'
/** The broker routes the page uses, relayed as they are. */
const RELAYED: readonly [string, RegExp][] = (
  [
    ['GET', `devices`],
    ['GET', `devices/${SEG}`],
    ['GET', `devices/${SEG}/history`],
    ['GET', `devices/${SEG}/channels`],
    ['GET', `devices/${SEG}/notifications`],
    ['POST', `devices/${SEG}/notifications`],
    // F2: the open pages hear of it from the broker's word that the command changed (live.ts).
    ['POST', `commands/${SEG}/cancel`],
    ['GET', `clock`],
    // The open pages hear the clock moved from the broker's word (live.ts).
    ['POST', `clock/advance`],
    ['GET', `service`],
    ['GET', `accounts`],
    // A3: the owner signs in to the account (the panel's button on a frozen account): it is back, empty.
    ['GET', `accounts/${SEG}`],
    ['GET', `accounts/${SEG}/log`],
    ['GET', `accounts/${SEG}/items`],
    ['GET', `accounts/${SEG}/bin`],
    ['POST', `accounts/${SEG}/bin/${SEG}/${SEG}/restore`],
    ['DELETE', `accounts/${SEG}/bin/${SEG}/${SEG}`],
    ['GET', `accounts/${SEG}/backups`],
    ['GET', `accounts/${SEG}/drive/files`],
    ['POST', `accounts/${SEG}/drive/files`],
    ['GET', `accounts/${SEG}/drive/files/${SEG}/content`],
    ['POST', `accounts/${SEG}/drive/files/${SEG}/shares`],
  ] as const
).map(([method, path]) => [method, new RegExp(`^/${path}$`)])

const PageCommandSchema = z.strictObject({
  type: z.enum(COMMAND_TYPES as [CommandType, ...CommandType[]]),
  args: z.unknown(),
  /** How long the command stays valid, ms (the CLI's defaults when absent). */
  expiresMs: z
    .number()
    .int()
    .positive()
    .max(30 * 86_400_000)
    .optional(),
  /** For a wipe: the device id, typed by the owner. */
  confirm: z.string().optional(),
})

interface Answer {
  status: number
  type: string
  body: Buffer | string
  disposition?: string
}

const json = (status: number, value: unknown): Answer => ({ status, type: 'application/json', body: JSON.stringify(value) })
const refusal = (status: number, code: string, error: string): Answer => json(status, { error, code })
/** The broker's answer to `method /api{path}` was not what this console reads (another version's broker): a 502. */
const badAnswer = (method: string, path: string, reason: string): Answer =>
  refusal(502, 'BAD_ANSWER', `the broker answered ${method} /api${path} with what this console cannot read: ${reason}`)

export interface PageApiContext {
  /** The console API, with the console token: the page's reads and relayed calls go through it. */
  api: ConsoleClient
  /** Its address, for what the page is told when it cannot be reached. */
  apiUrl: string
  keys: OwnerKeys
  /** The receipts already verified (shared with the live feed): a device page read again does not check them again. */
  receipts?: VerifiedReceipts
}

export class PageApi {
  constructor(private readonly ctx: PageApiContext) {}

  /** Answers one /app/api request; `path` is what follows /app/api. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    const method = req.method as string
    let answer: Answer
    try {
      answer = await this.answer(method, path, url, req)
    } catch (err) {
      if (err instanceof ConsoleApiError && (err.status === 0 || err.status === 401)) {
        const trouble = brokerTrouble(err.status === 0 ? err.reason : err, this.ctx.apiUrl)
        answer = json(502, { error: trouble.text, code: err.status === 0 ? 'BAD_GATEWAY' : 'TOKEN_REFUSED', detail: trouble.detail })
      } else if (err instanceof ConsoleAnswerError) {
        answer = refusal(502, 'BAD_ANSWER', err.message)
      } else if (err instanceof ConsoleApiError) {
        answer = refusal(err.status, 'REFUSED', err.message)
      } else if (err instanceof PageError) {
        answer = refusal(err.status, err.code, err.message)
        /* c8 ignore next 3 -- every call above throws one of the two; anything else is a bug, answered and logged */
      } else {
        answer = refusal(500, 'INTERNAL', `the web console failed: ${String(err)}`)
      }
    }
    const headers: Record<string, string> = { 'content-type': answer.type, 'cache-control': 'no-store' }
    if (answer.disposition !== undefined) headers['content-disposition'] = answer.disposition
    res.writeHead(answer.status, headers)
    res.end(answer.body)
  }

  private async answer(method: string, path: string, url: URL, req: IncomingMessage): Promise<Answer> {
    const track = /^\/devices\/([^/]+)\/track\.(gpx|geojson)$/.exec(path)
    if (track && method === 'GET') return this.track(segment(track[1] as string), track[2] as 'gpx' | 'geojson', url)
    const commands = /^\/devices\/([^/]+)\/commands$/.exec(path)
    if (commands && method === 'GET') return this.commandList(segment(commands[1] as string))
    if (commands && method === 'POST') return this.issue(segment(commands[1] as string), await body(req))
    if (RELAYED.some(([m, pattern]) => m === method && pattern.test(path))) {
      return this.relay(method, path, url, method === 'GET' ? undefined : await body(req), req.headers['content-type'])
    }
    return refusal(404, 'NOT_FOUND', `${method} /app/api${path}: the web console has no such call`)
  }

  private async track(id: string, format: 'gpx' | 'geojson', url: URL): Promise<Answer> {
    const limit = url.searchParams.get('limit') ?? '10000'
    // F1: read through its schema, as the CLI's history is; the limit as the page gave it (the broker says what it takes).
    const path = `/api/devices/${encodeURIComponent(id)}/history?limit=${encodeURIComponent(limit)}`
    const { history } = await this.ctx.api.read(HistoryReplySchema, 'GET', path)
    const name = id.replace(/[^A-Za-z0-9_-]/g, '_')
    if (format === 'gpx') {
      return { status: 200, type: 'application/gpx+xml', body: toGpx(id, history), disposition: `attachment; filename="${name}.gpx"` }
    }
    return {
      status: 200,
      type: 'application/geo+json',
      body: JSON.stringify(toGeoJson(id, history)),
      disposition: `attachment; filename="${name}.geojson"`,
    }
  }

  private async commandList(id: string): Promise<Answer> {
    const [{ now, commands }, { device }] = await Promise.all([this.ctx.api.commands(id), this.ctx.api.device(id)])
    return json(200, { now, device: id, commands: commands.map((c) => this.explain(c, now, device.online)) })
  }

  /**
   * A command with what the CLI says of it (cli/command-words: one not finished yet said as the phone's data channel
   * stands), and whether this console can vouch for its receipt.
   */
  private explain(view: CommandView, now: number, online: boolean): CommandView & { text: string; receiptText: string; verified: boolean } {
    return { ...view, text: describe(view, now, online), ...receiptOf(view, this.ctx.keys, this.ctx.receipts) }
  }

  /** F2: checks what the page asked for, signs it with the owner's key here, and submits it. */
  private async issue(id: string, raw: Buffer): Promise<Answer> {
    const decoded = decodeJson(PageCommandSchema, raw.toString('utf8') || '{}')
    if (!decoded.ok) return refusal(400, 'BAD_REQUEST', `bad command: ${decoded.reason}`)
    const { type, args, expiresMs, confirm } = decoded.value
    // Each problem by its field and what the field takes, with the value given: read by a curl user, not only the page.
    const checked = CommandArgsSchemas[type].safeParse(args, { reportInput: true })
    if (!checked.success) return refusal(400, 'BAD_REQUEST', `bad ${type} arguments: ${issuesText(checked.error)}`)
    if (type === 'wipe' && confirm !== id) return refusal(400, 'NOT_CONFIRMED', 'not confirmed: nothing was sent')
    let signed
    try {
      signed = await signCommand(this.ctx.api, this.ctx.keys, id, type, checked.data as never, expiresMs)
    } catch (err) {
      if (err instanceof ConsoleApiError) throw err
      return refusal(409, 'NO_OWNER_KEY', (err as Error).message)
    }
    const submitted = await this.relay(
      'POST',
      `/devices/${encodeURIComponent(id)}/commands`,
      undefined,
      Buffer.from(JSON.stringify(signed.command)),
    )
    if (submitted.status !== 201) return submitted
    // F2: the command as the broker took it, read through its schema before the page is told it was sent.
    const reply = decodeJson(CommandReplySchema, submitted.body)
    if (!reply.ok) return badAnswer('POST', `/devices/${encodeURIComponent(id)}/commands`, reply.reason)
    const { command } = reply.value
    return json(201, { command: this.explain(command, signed.command.issuedAt, signed.device.online) })
  }

  /**
   * The broker's answer to the same call under /api, status and body as they are, over the console client's node:http call
   * (the console token added there); unreachable, or cut off mid-answer, it is a ConsoleApiError with status 0 (a 502).
   */
  private async relay(method: string, path: string, url: URL | undefined, payload?: Buffer, type = 'application/json'): Promise<Answer> {
    // Only the routes above get here: GET, POST and DELETE.
    const verb = method as 'GET' | 'POST' | 'DELETE'
    const res = await this.ctx.api.call(verb, `/api${path}${url?.search ?? ''}`, payload, payload === undefined ? undefined : type)
    // The broker's 401 is about the console token, not the page's session: said as the broker's trouble, not "signed out".
    // Its reason as the broker said it; a body that is no broker's refusal (a proxy's) says what came back.
    if (res.status === 401) throw this.ctx.api.refusal(res)
    const answer: Answer = {
      status: res.status,
      // The broker types every answer: JSON, or a download's octet stream. Something else at its address (a proxy's error
      // page) may not: an untyped answer goes on as bytes; an undefined header threw in writeHead and ended the process.
      type: res.headers['content-type'] ?? 'application/octet-stream',
      body: res.body,
    }
    const disposition = res.headers['content-disposition']
    if (disposition !== undefined) answer.disposition = disposition
    const schema = res.status === 200 ? CHECKED.find(([pattern]) => pattern.test(path))?.[1] : undefined
    const decoded = schema && decodeJson(schema, res.body)
    if (decoded && !decoded.ok) return badAnswer('GET', path, decoded.reason)
    return answer
  }
}

/** A refusal of the page's own making. */
class PageError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** A path segment, %-escapes decoded; a malformed one is the page's mistake. */
function segment(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new PageError(400, 'BAD_REQUEST', `bad request: ${quoted(s)} has a malformed %-escape`)
  }
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const bytes = await readBodyBytes(req, MAX_PAGE_BODY_BYTES)
  if (bytes === null) throw new PageError(413, 'TOO_LARGE', `the request body is over ${MAX_PAGE_BODY_BYTES} bytes`)
  return bytes
}
