/**
 * The console's HTTP API (JSON, bearer token = the console token), routes on
 * the broker's one HTTP router. The `fakephone console` command and any other
 * tool act on the cloud through it; its request and response shapes are in
 * common/console-api.ts.
 *   GET  /api/devices                      every device with presence and last fix (F1)
 *   GET  /api/devices/:id                  one device
 *   GET  /api/devices/:id/history          location history, newest first (?limit=N, at most 10,000)
 *   GET  /api/devices/:id/commands         its remote commands, newest first (F2)
 *   POST /api/devices/:id/commands         submit a signed command (F2), 201; 409 when Find Device is off (F3);
 *                                          ?wait=MS: the same request then waits as the GET below does (one request per round trip)
 *   GET  /api/commands/latest              every device's newest command and newest succeeded locate, by device id,
 *                                          paged (?after=ID&limit=N, at most 1,000): one read for the web console (F2)
 *   GET  /api/commands/:cid                one command (?wait=MS waits up to 60 s for a final state)
 *   POST /api/commands/:cid/cancel         cancel a command still queued
 * A refused command answers `{error, code, command}` (code BAD_COMMAND,
 * NOT_ENABLED, DUPLICATE, NOT_FOUND or NOT_CANCELLABLE).
 */
import { z } from 'zod'
import { FINAL_STATES } from '../../common/contract.js'
import { MAX_COMMAND_WAIT_MS, MAX_LATEST_COMMANDS_PAGE } from '../../common/console-api.js'
import type { CommandCenter, CommandError, CommandErrorCode, CommandView } from './commands.js'
import { HttpError, intParam, type HttpRouter } from '../http/router.js'
import type { DeviceView, StateStore } from './state-store.js'
import { quoted } from '../../common/terminal-text.js'

export interface ConsoleApiContext {
  store: StateStore
  commands: CommandCenter
  now(): number
}

/** Largest request body (a signed command), bytes. */
export const MAX_CONSOLE_BODY_BYTES = 64 * 1024

/** The submit's body as parsed (CommandCenter.submit checks it): one schema, not a new one built and tried per request. */
const ANY_BODY = z.unknown()

const STATUS_OF: Record<CommandErrorCode, number> = {
  BAD_COMMAND: 400,
  NOT_ENABLED: 409,
  DUPLICATE: 409,
  NOT_FOUND: 404,
  NOT_CANCELLABLE: 409,
}

/** What `fn` made of a command; a CommandError is the HTTP refusal it stands for. */
function commandOrRefusal(fn: () => CommandView): CommandView {
  try {
    return fn()
  } catch (err) {
    const e = err as CommandError
    throw new HttpError(STATUS_OF[e.code], e.code, e.message, { command: e.view })
  }
}

/** `?wait=MS` of the GET and of the submit, one schema: a whole number of ms from 0 (no wait, the default) to 60 s. */
function waitParam(url: URL): number {
  return intParam(url, 'wait', 0, 0, MAX_COMMAND_WAIT_MS)
}

/**
 * Resolves with the command once it is final (the view the change announced: the row as its write returned it, not read
 * again), or as it is after `ms`; undefined when it went meanwhile (its device was removed).
 */
function waitForFinal(commands: CommandCenter, id: string, ms: number): Promise<CommandView | undefined> {
  return new Promise((resolve) => {
    const done = (view: CommandView | undefined): void => {
      clearTimeout(timer)
      commands.off('changed', onChange)
      resolve(view)
    }
    const onChange = (view: CommandView): void => {
      if (view.id === id && FINAL_STATES.has(view.state)) done(view)
    }
    const timer = setTimeout(() => done(commands.get(id)), ms)
    commands.on('changed', onChange)
  })
}

/** `view` once it is final, or as it stands after `wait` ms (none when 0 or already final); a 404 when its device went meanwhile. */
async function settled(commands: CommandCenter, view: CommandView, wait: number): Promise<CommandView> {
  // waitForFinal listens from this very turn: an answer to a command just submitted cannot come in before it does.
  const command = wait > 0 && !FINAL_STATES.has(view.state) ? await waitForFinal(commands, view.id, wait) : view
  if (!command) throw new HttpError(404, 'NOT_FOUND', `command ${view.id} is gone: its device was removed while the request waited`)
  return command
}

/** The broker's health, for monitors: 200 `ok` while it serves and stores, 503 `degraded` while its database refuses writes. */
export const HEALTH_PATH = '/health'

/** Adds the console API's routes (and the health a monitor reads); apart from the store and the commands they touch nothing. */
export function addConsoleRoutes(router: HttpRouter, ctx: ConsoleApiContext): void {
  const device = (id: string): DeviceView => {
    const found = ctx.store.device(id)
    if (!found) throw new HttpError(404, 'NOT_FOUND', `device ${quoted(id)} not found`)
    return found
  }
  const CONSOLE = ['console'] as const
  // For a monitor (an uptime checker, a load balancer, a container's health check): no token, nothing about devices.
  router.add('GET', HEALTH_PATH, ['public'], () => {
    const holding = ctx.store.holdingNow()
    if (!holding) return { status: 200, body: { status: 'ok', now: ctx.now() } }
    const reason = `the database cannot take writes: ${holding.reason}; ${holding.held} acknowledged heartbeats held in memory`
    return { status: 503, body: { status: 'degraded', now: ctx.now(), reason } }
  })
  router.add('GET', '/api/devices', CONSOLE, () => ({ status: 200, body: { now: ctx.now(), devices: ctx.store.devices() } }))
  router.add('GET', '/api/devices/:id', CONSOLE, (r) => ({ status: 200, body: { now: ctx.now(), device: device(r.params.id as string) } }))
  router.add('GET', '/api/devices/:id/history', CONSOLE, (r) => {
    const { id } = device(r.params.id as string)
    const limit = intParam(r.url, 'limit', 100, 1, 10_000)
    return { status: 200, body: { now: ctx.now(), device: id, history: ctx.store.history(id, limit) } }
  })
  router.add('GET', '/api/devices/:id/commands', CONSOLE, (r) => {
    const { id } = device(r.params.id as string)
    return { status: 200, body: { now: ctx.now(), commands: ctx.commands.list(id) } }
  })
  router.add('POST', '/api/devices/:id/commands', CONSOLE, async (r) => {
    const id = r.params.id as string
    // A bad wait is the request's own fault, refused (400) before anything is looked up or submitted.
    const wait = waitParam(r.url)
    // Known or 404 before the body is read; the switches are all a submit reads, so the heartbeats queued stay queued.
    if (!ctx.store.switches(id)) throw new HttpError(404, 'NOT_FOUND', `device ${quoted(id)} not found`)
    const body = await r.json(ANY_BODY, { maxBytes: MAX_CONSOLE_BODY_BYTES })
    const submitted = commandOrRefusal(() => ctx.commands.submit(id, body))
    // 201 whether or not the wait saw it final: the command was created either way; its state says where it stands.
    const command = await settled(ctx.commands, submitted, wait)
    return { status: 201, body: { now: ctx.now(), command } }
  })
  // Before /api/commands/:id, which would take "latest" for a command id (they are UUIDs).
  router.add('GET', '/api/commands/latest', CONSOLE, (r) => {
    const limit = intParam(r.url, 'limit', MAX_LATEST_COMMANDS_PAGE, 1, MAX_LATEST_COMMANDS_PAGE)
    const { latest, more } = ctx.commands.latest(r.url.searchParams.get('after') ?? '', limit)
    const next = more ? (latest[latest.length - 1] as { device: string }).device : null
    return { status: 200, body: { now: ctx.now(), latest, next } }
  })
  router.add('GET', '/api/commands/:id', CONSOLE, async (r) => {
    // A bad wait is a 400 whether or not the command is known: the request is wrong either way.
    const wait = waitParam(r.url)
    const view = ctx.commands.get(r.params.id as string)
    if (!view) throw new HttpError(404, 'NOT_FOUND', `command ${quoted(r.params.id as string)} not found`)
    const command = await settled(ctx.commands, view, wait)
    return { status: 200, body: { now: ctx.now(), command } }
  })
  router.add('POST', '/api/commands/:id/cancel', CONSOLE, (r) => ({
    status: 200,
    body: { command: commandOrRefusal(() => ctx.commands.cancel(r.params.id as string)) },
  }))
}
