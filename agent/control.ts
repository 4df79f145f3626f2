/**
 * The phone's local control: what its user does with their thumbs. A running
 * agent listens on a Unix socket in its data directory (`control.sock`,
 * mode 0600): a client sends one JSON request line, the agent answers one
 * JSON line and closes the connection.
 * `fakephone phone --data DIR ...` is its client.
 */
import { chmod, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { z } from 'zod'
import { NetworkSchema, decodeJson } from '../common/contract.js'
import { storageFailure } from '../common/storage-errors.js'
import { FakephoneError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { PhoneStatusSchema, type PhoneStatus } from '../common/phone-status.js'
import { SyncCategorySchema } from '../common/cloud/sync-api.js'
import type { Agent, AgentStatus } from './agent.js'
import { DRIVE_CONTROL_REQUESTS, handleDriveControl } from './drive/drive-control.js'
import type { SyncEngine } from './sync/engine.js'
import { DataRequestSchema, handleData, type DataReply, type DataRequest } from './phone-data/control-ops.js'
import { BackupRequestSchema, runBackupRequest } from './backup/control-ops.js'

export const ControlRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('status') }),
  z.strictObject({ op: z.literal('switch'), name: z.enum(['cloudService', 'findDevice']), on: z.boolean() }),
  z.strictObject({ op: z.literal('network'), network: NetworkSchema }),
  z.strictObject({ op: z.literal('unlock'), pin: z.string().max(16) }),
  z.strictObject({ op: z.literal('network-permission'), on: z.boolean() }),
  z.strictObject({ op: z.literal('logs-over-mobile'), on: z.boolean() }),
  ...DRIVE_CONTROL_REQUESTS,
  z.strictObject({ op: z.literal('sync'), category: SyncCategorySchema, on: z.boolean() }),
  /** Sync now rather than at the next scheduled pass; `wait` for it to finish. */
  z.strictObject({ op: z.literal('sync-now'), wait: z.boolean() }),
  z.strictObject({ op: z.literal('photo-switch'), name: z.enum(['galleryBackup', 'albumSync']), on: z.boolean() }),
  z.strictObject({ op: z.literal('data'), data: DataRequestSchema }),
  z.strictObject({ op: z.literal('backup'), backup: BackupRequestSchema }),
])
export type ControlRequest = z.infer<typeof ControlRequestSchema>
/**
 * `result` carries what a request other than a switch answers (a drive
 * listing, a share link, the phone's data); a refusal carries the error's
 * code when it has one (NOT_FOUND, BAD_ID, ...). The status is the agent's
 * AgentStatus as the contract has it (PhoneStatus): the compiler holds the
 * one to the other here, and the client holds the other to the one below.
 */
export type ControlReply = { ok: true; status: PhoneStatus; result?: unknown } | { ok: false; error: string; code?: string }

/**
 * What the client checks of an agent's answer: the envelope and the whole status (common/phone-status: the switches,
 * F1's location, the framework, sync and backup parts...), so a status it cannot show is one line, not a stack. An agent
 * older than `home` or `location` leaves it out, which the client shows as nothing rather than refusing.
 */
const ControlReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: PhoneStatusSchema, result: z.unknown().optional() }),
  z.object({ ok: z.literal(false), error: z.string(), code: z.string().optional() }),
])

export const controlSocketPath = (dataDir: string): string => join(dataDir, 'control.sock')

/** S1, S3: the phone's sync, which needs a cloud to talk to. */
function syncOf(agent: Agent): SyncEngine {
  if (!agent.sync)
    throw new FakephoneError('NO_CLOUD', 'this phone has no cloud to sync with: start the agent with --cloud http://host:port')
  return agent.sync
}

export async function handleControl(agent: Agent, line: string): Promise<ControlReply> {
  const decoded = decodeJson(ControlRequestSchema, line)
  if (!decoded.ok) return { ok: false, error: `bad request: ${decoded.reason}` }
  const req = decoded.value
  try {
    switch (req.op) {
      case 'status':
        return { ok: true, status: agent.status() }
      case 'switch':
        return { ok: true, status: await agent.setSwitch(req.name, req.on) }
      case 'network':
        return { ok: true, status: await agent.setNetwork(req.network) }
      case 'unlock':
        return { ok: true, status: await agent.unlock(req.pin) }
      case 'network-permission':
        await agent.framework.setNetworkPermission(req.on)
        return { ok: true, status: agent.status() }
      case 'logs-over-mobile':
        await agent.framework.setLogsOverMobile(req.on)
        return { ok: true, status: agent.status() }
      case 'drive-list':
      case 'drive-upload':
      case 'drive-download':
      case 'drive-share':
      case 'drive-sync':
        return { ok: true, status: agent.status(), result: await handleDriveControl(agent.drive, req) }
      case 'sync':
        await syncOf(agent).setCategory(req.category, req.on)
        return { ok: true, status: agent.status() }
      case 'sync-now': {
        const sync = syncOf(agent)
        sync.kick()
        if (req.wait) await sync.idle()
        return { ok: true, status: agent.status() }
      }
      case 'photo-switch':
        await syncOf(agent).setPhotoSwitch(req.name, req.on)
        return { ok: true, status: agent.status() }
      case 'data':
        return { ok: true, status: agent.status(), result: await handleData(agent, req.data) }
      case 'backup': {
        const result = await runBackupRequest(agent.backup, req.backup)
        return { ok: true, status: agent.status(), result }
      }
    }
  } catch (err) {
    // A full or failing disk is said as the CLI says it (cli/main.ts): the reason first, then Node's words naming the file.
    const storage = storageFailure(err)
    const error = storage ? `${storage}: ${(err as Error).message}` : (err as Error).message
    return { ok: false, error, ...(err instanceof FakephoneError ? { code: err.code } : {}) }
  }
}

/** Serves `agent` on its control socket until the returned server is closed. */
export async function serveControl(agent: Agent, dataDir: string, log: Logger): Promise<Server> {
  const path = controlSocketPath(dataDir)
  await rm(path, { force: true })
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const lines = createInterface({ input: socket })
    lines.once('line', (line) => {
      void handleControl(agent, line).then((reply) => {
        if (!reply.ok) log.warn({ error: reply.error }, 'control request refused')
        socket.end(JSON.stringify(reply) + '\n')
      })
    })
    // readline re-emits the socket's errors (a client that hung up): nothing to answer then.
    lines.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => resolve())
  })
  await chmod(path, 0o600)
  return server
}

export class ControlError extends FakephoneError {
  constructor(
    message: string,
    /** The agent's own error code for a refusal, when it gave one. */
    readonly reason?: string,
  ) {
    super('ECONTROL', message)
  }
}

/** Sends one request to the agent whose data directory is `dataDir`. */
export async function sendControl(dataDir: string, req: ControlRequest): Promise<AgentStatus> {
  return (await askControl(dataDir, req)).status
}

/** Sends one request about the phone's data (S1-S4). */
export async function sendDataControl(dataDir: string, data: DataRequest): Promise<DataReply> {
  return (await askControl(dataDir, { op: 'data', data })).result as DataReply
}

/** Sends one request and resolves with the whole answer: the phone's status and the request's result. */
export function askControl(dataDir: string, req: ControlRequest): Promise<{ status: AgentStatus; result?: unknown }> {
  const path = controlSocketPath(dataDir)
  return new Promise((resolve, reject) => {
    const socket = createConnection(path)
    socket.on('error', (err: NodeJS.ErrnoException) =>
      reject(new ControlError(`no agent is running with data directory ${dataDir} (${err.message})`)),
    )
    socket.on('connect', () => socket.end(JSON.stringify(req) + '\n'))
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('end', () => {
      // An agent stopped (or killed) mid-request closes the socket without a word: said as such, not a JSON stack.
      if (text.trim() === '')
        return reject(new ControlError(`the agent with data directory ${dataDir} closed the connection without an answer: did it stop?`))
      const decoded = decodeJson(ControlReplySchema, text)
      if (!decoded.ok)
        return reject(
          new ControlError(`the agent with data directory ${dataDir} gave an answer this client cannot read: ${decoded.reason}`),
        )
      const reply = decoded.value
      if (!reply.ok) return reject(new ControlError(reply.error, reply.code))
      const { home, location, ...status } = reply.status
      resolve({ result: reply.result, status: { ...status, home: home ?? null, location: location ?? null } })
    })
  })
}
