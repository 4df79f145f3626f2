/**
 * `fakephone console locate | ring | lock | lost-mode | wipe | commands | cancel`:
 * the owner's remote commands (F2). The console signs each command with the
 * account's key from the keys folder, submits it through the console API,
 * waits for the device's receipt and checks the device's signature on it.
 */
import type { Command } from 'commander'
import { formatAge, utcText } from '../common/clock.js'
import { FINAL_STATES, type CommandType, type CommandArgs } from '../common/contract.js'
import { OwnerKeys, canonical, verifyPayload } from '../common/signing.js'
import type { CommandView } from '../common/console-api.js'
import type { ConsoleClient } from './console-client.js'
import type { ConsoleOptions } from './console-command.js'
import { UserError, type Io } from './io.js'
import { DEFAULT_KEYS_DIR, duration, formatDuration, onOff, positiveInt } from './options.js'
import { table } from './render.js'
import { DEFAULT_EXPIRY, signCommand } from './sign-command.js'
import { forTerminal } from '../common/terminal-text.js'
import { describe, fixText, pendingText } from './command-words.js'
import type { VerifiedReceipts } from './verified-receipts.js'

interface IssueOptions {
  keys: string
  expires?: number
  wait: number
}

/**
 * "verified receipt from X" when the device's key signed it, it is the receipt of this very command, and it says the
 * outcome the cloud shows (state, reason, data); in words otherwise. A signature alone is not enough: whoever controls
 * the broker could show a genuine receipt of another command (an earlier wipe's under a new wipe) or change the
 * position a signed receipt of a locate carries. With `verified` (the web console's), a signature it checked before is
 * not checked again (the rest is, every time).
 */
export function receiptLine(view: CommandView, keys: OwnerKeys, verified?: VerifiedReceipts): string {
  const receipt = view.receipt
  if (!receipt) return 'no receipt'
  const key = keys.deviceKey(view.device)
  if (!key) return `receipt NOT verified: this keys folder did not provision ${view.device}`
  const signed = verified ? verified.signedBy(view.id, receipt, key) : verifyPayload(receipt, key)
  if (!signed) return `receipt NOT verified: the signature is not ${view.device}'s`
  if (receipt.command !== view.id || receipt.device !== view.device)
    return `receipt NOT verified: it is ${receipt.device}'s receipt of command ${receipt.command}, not of this one`
  const said = (o: { state: string; reason?: string | null | undefined; data?: unknown }): string =>
    canonical({ state: o.state, reason: o.reason ?? null, data: o.data ?? null })
  if (said(receipt) !== said(view)) return `receipt NOT verified: the device's receipt says ${said(receipt)}, not what the cloud shows`
  return `verified receipt signed by ${view.device} at ${utcText(receipt.at)}`
}

/** F1: the position a phone's last heartbeat gave, for a locate that found no fix. */
export function lastKnownText(last: { lat: number; lon: number; accuracy: number; at: number } | null, now: number): string {
  if (!last) return 'it has sent no position yet\n'
  return `last known position: ${fixText(last.lat, last.lon, last.accuracy)} from its heartbeat ${formatAge(now - last.at)} ago\n`
}

/** `fakephone console` with where this one found the broker and its token, so a line it prints works as printed. */
function consoleLine(o: ConsoleOptions): string {
  return `fakephone console --api ${o.api} ${o.tokenFile === undefined ? `--data ${o.data}` : `--token-file ${o.tokenFile}`}`
}

export function addRemoteCommands(root: Command, io: Io, api: () => Promise<ConsoleClient>): void {
  const json = (): boolean => Boolean(root.opts<{ json?: boolean }>().json)

  async function issue<T extends CommandType>(type: T, id: string, args: CommandArgs<T>, o: IssueOptions): Promise<void> {
    const client = await api()
    const keys = new OwnerKeys(o.keys)
    const { command, device } = await signCommand(client, keys, id, type, args, o.expires)
    const follow = `follow it with: ${consoleLine(root.opts<ConsoleOptions>())} commands ${id}`
    // An offline phone is said before waiting, so nobody waits on a phone the cloud already knows is away; an online
    // phone's answer comes back in the submit's own request.
    let said = ''
    const unfinished = (view: CommandView, at: number, online: boolean): void => {
      // Lines already on the screen are not printed twice when the wait changed nothing but the expiry counting down.
      const news = `${view.state} ${String(online)}`
      if (news !== said) io.out(`${describe(view, at, online, forTerminal)}\ncommand ${view.id} is ${view.state}; ${follow}\n`)
      said = news
    }
    const sayOffline = !device.online && !json() ? (submitted: CommandView) => unfinished(submitted, submitted.createdAt, false) : undefined
    // F3: a refusal says which switch is off in the cloud's own words (broker/devices/commands.ts SERVICE_OFF).
    const { command: view, now: at } = await client.submitAndWait(command, o.wait, sayOffline)
    // A command that ended without doing what was asked (failed, rejected, expired, cancelled) exits 1 with and without
    // --json alike, so a script reads the outcome from the exit code; still unfinished when the wait ran out is 0.
    const notDone = FINAL_STATES.has(view.state) && view.state !== 'succeeded'
    const outcome = describe(view, at, true, forTerminal)
    const failure = (): UserError => new UserError(outcome, 1, view.state.toUpperCase())
    if (json()) {
      io.out(JSON.stringify({ ...view, verified: receiptLine(view, keys).startsWith('verified') }) + '\n')
      if (notDone) throw failure()
      return
    }
    // Given up waiting: said as the device's data channel stands now, as `console commands` and the web console say it.
    if (!FINAL_STATES.has(view.state)) return unfinished(view, at, (await client.device(id)).device.online)
    // A command that did not succeed is the error line, with the phone's reason (it ran: "did not run" misled).
    if (!notDone) io.out(`${outcome}\n`)
    io.out(`command ${view.id}: ${forTerminal(receiptLine(view, keys))}\n`)
    // F1, F2: a locate the phone could not answer (no fix: gpsd down, no sky) still says where it last reported itself.
    if (type === 'locate' && view.state === 'failed') io.out(lastKnownText((await client.device(id)).device.last, at))
    if (notDone) throw failure()
  }

  const withIssueOptions = (cmd: Command, type: CommandType): Command =>
    cmd
      .option('--keys <dir>', "the owner's keys folder", DEFAULT_KEYS_DIR)
      .option('--expires <duration>', `how long the command stays valid (default ${formatDuration(DEFAULT_EXPIRY[type])})`, duration)
      .option('--wait <duration>', 'how long to wait for the device to answer', duration, 30_000)

  withIssueOptions(root.command('locate <id>').description('F2: ask the phone for a fresh fix'), 'locate').action(
    (id: string, o: IssueOptions) => issue('locate', id, {}, o),
  )
  withIssueOptions(root.command('ring <id>').description('F2: make the phone ring'), 'ring')
    .option('--seconds <n>', 'how long to ring', positiveInt, 30)
    .action((id: string, o: IssueOptions & { seconds: number }) => issue('ring', id, { seconds: o.seconds }, o))
  withIssueOptions(root.command('lock <id>').description('F2: lock the screen, showing a message and a number to call'), 'lock')
    .requiredOption('--message <text>', 'shown on the lock screen')
    .requiredOption('--phone <number>', 'a number to call, shown on the lock screen')
    .action((id: string, o: IssueOptions & { message: string; phone: string }) =>
      issue('lock', id, { message: o.message, phone: o.phone }, o),
    )
  withIssueOptions(
    root.command('lost-mode <id> <on|off>').description('F2/F4: lost mode (locked, frequent heartbeats); off starts the 72 h guard'),
    'lost-mode',
  )
    .option('--message <text>', 'shown on the lock screen (with on)')
    .option('--phone <number>', 'a number to call (with on)')
    .action((id: string, state: string, o: IssueOptions & { message?: string; phone?: string }) => {
      if (!onOff(state)) return issue('lost-mode', id, { on: false }, o)
      if (!o.message || !o.phone) throw new UserError('lost-mode on needs --message and --phone')
      return issue('lost-mode', id, { on: true, message: o.message, phone: o.phone }, o)
    })
  withIssueOptions(root.command('wipe <id>').description("F2: erase the phone's data (asks for confirmation)"), 'wipe')
    .option('--erase-sdcard', 'also erase external storage (kept by default)')
    .option('--clear-find-device', 'also clear the Find Device pairing (kept by default: factory-reset protection)')
    .option('--yes', 'do not ask for confirmation (for scripts)')
    .action(async (id: string, o: IssueOptions & { eraseSdcard?: boolean; clearFindDevice?: boolean; yes?: boolean }) => {
      if (!o.yes) {
        if (!io.prompt) throw new UserError('wipe erases the device: run it in a terminal to confirm, or add --yes')
        const answer = await io.prompt(`This erases the data on ${id}. Type the device id to confirm: `)
        if (answer.trim() !== id) throw new UserError('not confirmed: nothing was sent')
      }
      return issue('wipe', id, { eraseSdcard: Boolean(o.eraseSdcard), keepFindDevice: !o.clearFindDevice }, o)
    })

  root
    .command('commands <id>')
    .description("a device's remote commands with their state and receipt, newest first")
    .option('--keys <dir>', "the owner's keys folder, to verify receipts", DEFAULT_KEYS_DIR)
    .action(async (id: string, o: { keys: string }) => {
      const client = await api()
      const { now, commands } = await client.commands(id)
      const keys = new OwnerKeys(o.keys)
      // Each with `verified`, as a command just issued has it: the RECEIPT column a script cannot otherwise read.
      const verified = commands.map((c) => ({ ...c, verified: receiptLine(c, keys).startsWith('verified') }))
      if (json()) return io.out(JSON.stringify({ now, device: id, commands: verified }) + '\n')
      if (commands.length === 0) return io.out(`No commands for ${forTerminal(id)}.\n`)
      // An unfinished command's detail is said as the web console says it, by whether the device is online now.
      const online = commands.every((c) => FINAL_STATES.has(c.state)) || (await client.device(id)).device.online
      io.out(
        table(
          ['COMMAND', 'TYPE', 'STATE', 'ISSUED', 'DETAIL', 'RECEIPT'],
          verified.map((c) => [
            c.id,
            c.type,
            c.state,
            `${formatAge(now - c.createdAt)} ago`,
            pendingText(c, now, online) ?? c.reason ?? '',
            c.receipt ? (c.verified ? 'verified' : 'NOT verified') : '-',
          ]),
        ),
      )
    })
  root
    .command('cancel <command-id>')
    .description('cancel a command the device has not received yet')
    .action(async (commandId: string) => {
      const { command } = await (await api()).cancel(commandId)
      io.out(json() ? JSON.stringify(command) + '\n' : `Cancelled ${command.type} ${command.id} for ${forTerminal(command.device)}.\n`)
    })
}
