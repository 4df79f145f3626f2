/**
 * The resident framework's subcommands (X1-X3), added to `fakephone console`
 * (device, notify, notifications, logs) and to `fakephone phone`
 * (network-permission, logs-over-mobile, notifications).
 */
import { Option, type Command } from 'commander'
import { sendControl, type ControlRequest } from '../agent/control.js'
import type { ConsoleClient } from './console-client.js'
import { FrameworkConsole } from './framework-client.js'
import { formatAge } from '../common/clock.js'
import { NotificationKindSchema, type NotificationKind } from '../common/push-protocol.js'
import { renderChannels, renderInbox, renderLogs, renderNotifications } from './framework-render.js'
import type { Io } from './io.js'
import { duration, onOff, positiveInt } from './options.js'
import { linesForTerminal } from '../common/terminal-text.js'

export function addFrameworkConsoleCommands(cmd: Command, io: Io, api: () => Promise<ConsoleClient>, json: () => boolean): void {
  const framework = async (): Promise<FrameworkConsole> => new FrameworkConsole(await api())
  const print = (value: unknown, text: string): void => io.out(json() ? JSON.stringify(value) + '\n' : linesForTerminal(text))
  cmd
    .command('device <id>')
    .description("one device's data channel and push channel, its notifications and the behaviour logs the cloud received")
    .action(async (id: string) => {
      const view = await (await framework()).channels(id)
      print(view, renderChannels(view))
    })
  cmd
    .command('notify <id>')
    .description('queue a notification for a device: it goes out over the push channel now, or when the device is back')
    .addOption(new Option('--kind <kind>', 'what it is').choices(NotificationKindSchema.options).default('message'))
    .requiredOption('--title <text>', 'its title (1-120 characters)')
    .option('--body <text>', 'its text', '')
    .option('--ttl <duration>', 'time to live, e.g. 6h (default 28d): not delivered by then, it is marked expired', duration)
    .action(async (id: string, o: { kind: NotificationKind; title: string; body: string; ttl?: number }) => {
      const { now, notification: n } = await (await framework()).notify(id, { kind: o.kind, title: o.title, body: o.body, ttlMs: o.ttl })
      print(n, `Queued ${n.kind} notification ${n.id} for ${id}; it expires in ${formatAge(n.expiresAt - now)}.\n`)
    })
  cmd
    .command('notifications <id>')
    .description("a device's newest notifications: queued, delivered (and how late) or expired")
    .option('--limit <n>', 'how many', positiveInt, 20)
    .action(async (id: string, o: { limit: number }) => {
      const { now, notifications } = await (await framework()).notifications(id, o.limit)
      print({ now, device: id, notifications }, renderNotifications(id, notifications, now))
    })
  cmd
    .command('logs <id>')
    .description('the behaviour-log events the cloud received from a device, newest first')
    .option('--limit <n>', 'how many', positiveInt, 20)
    .action(async (id: string, o: { limit: number }) => {
      const { now, total, events } = await (await framework()).logs(id, o.limit)
      print({ now, device: id, total, events }, renderLogs(id, total, events, now))
    })
}

export function addFrameworkPhoneCommands(cmd: Command, io: Io, send: (req: ControlRequest) => Promise<void>): void {
  cmd
    .command('network-permission <on|off>')
    .description("grant or revoke the framework's network permission (off: no push connection; notifications wait in the cloud)")
    .action((v: string) => send({ op: 'network-permission', on: onOff(v) }))
  cmd
    .command('logs-over-mobile <on|off>')
    .description('may behaviour logs go up over mobile data (off by default: Wi-Fi only)')
    .action((v: string) => send({ op: 'logs-over-mobile', on: onOff(v) }))
  cmd
    .command('notifications')
    .description('the notifications this phone showed, newest first, with how late each arrived')
    .action(async () => {
      const o = cmd.opts<{ data: string; json?: boolean }>()
      const { recent } = (await sendControl(o.data, { op: 'status' })).framework.notifications
      io.out(o.json ? JSON.stringify({ recent }) + '\n' : linesForTerminal(renderInbox(recent)))
    })
}
