/**
 * `fakephone phone`: the phone's user at a running agent, through its control socket (agent/control.ts). A module apart
 * from the agent's (cli/agent-command.ts), which loads the phone's config, its cloud client and push channel (ws) and
 * pino: a `phone status` needs none of them.
 */
import type { PhoneStatus } from '../common/phone-status.js'
import { Command } from 'commander'
import { sendControl, type ControlRequest } from '../agent/control.js'
import { NetworkSchema } from '../common/contract.js'
import { utcText } from '../common/clock.js'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { addDrivePhoneCommands } from './drive-commands.js'
import { addBackupPhoneCommands } from './backup-commands.js'
import { addFrameworkPhoneCommands } from './framework-commands.js'
import { addSyncPhoneCommands } from './sync-commands.js'
import { addPhoneDataCommands } from './phone-data-commands.js'
import { addPhoneExportCommand } from './transfer/transfer-commands.js'
import { renderFrameworkStatus } from './framework-render.js'
import { channelWaitingText, dataChannelRefused, locationSourceText } from './render.js'
import { UserError, type Io } from './io.js'
import { onOff } from './options.js'
import { forTerminal, linesForTerminal, quoted } from '../common/terminal-text.js'

/** After the data channel's state: why it is not connected, when the phone knows (refused, or waiting since when and why). */
function dataChannelWhy(status: PhoneStatus): string {
  if (status.dataChannelRefused) return `: ${dataChannelRefused(status.id)}`
  return channelWaitingText(status.dataChannelWaiting)
}

export function phoneCommand(io: Io): Command {
  const cmd = new Command('phone')
    .description(COMMAND_SUMMARIES.phone.description)
    .option('--data <dir>', "the phone's data directory", './phone')
    .option('--json', 'machine-readable output')
  const send = async (req: ControlRequest): Promise<void> => {
    const o = cmd.opts<{ data: string; json?: boolean }>()
    const status = await sendControl(o.data, req)
    if (o.json) return io.out(JSON.stringify(status) + '\n')
    // The lock message and notification titles come from others: shown terminal-safe.
    const lock = status.lock
    io.out(
      linesForTerminal(
        [
          `device        ${status.id}`,
          `data channel  ${status.dataChannel}${dataChannelWhy(status)}`,
          `cloud service ${status.cloudService ? 'on' : 'off'}`,
          `Find Device   ${status.findDevice ? 'on' : 'off'}`,
          `network       ${status.network}`,
          `heartbeats    ${status.heartbeatsSent} sent this run`,
          ...(status.location === null ? [] : [`location      ${locationSourceText(status.location)}`]),
          `lost mode     ${status.lostMode ? 'ON' : 'off'}`,
          `screen        ${lock === null ? 'unlocked' : `LOCKED: ${quoted(lock.message)} -- call ${forTerminal(lock.phone)}`}`,
          ...(status.ringingUntil === null ? [] : [`ringing       until ${utcText(status.ringingUntil)}`]),
        ].join('\n') +
          '\n' +
          renderFrameworkStatus(status.framework),
      ),
    )
  }
  cmd
    .command('status')
    .description('show the phone')
    .action(() => send({ op: 'status' }))
  cmd
    .command('find-device <on|off>')
    .description('switch Find Device (off: no more heartbeats, the map position goes offline)')
    .action((v: string) => send({ op: 'switch', name: 'findDevice', on: onOff(v) }))
  cmd
    .command('cloud-service <on|off>')
    .description('switch the whole cloud service')
    .action((v: string) => send({ op: 'switch', name: 'cloudService', on: onOff(v) }))
  cmd
    .command('unlock <pin>')
    .description('unlock a screen locked remotely, with the PIN (default 1234)')
    .action((pin: string) => send({ op: 'unlock', pin }))
  cmd
    .command('network <wifi|mobile|none>')
    .description('what the phone is connected through')
    .action((v: string) => {
      const network = NetworkSchema.safeParse(v)
      if (!network.success) throw new UserError('network must be wifi, mobile or none')
      return send({ op: 'network', network: network.data })
    })
  addFrameworkPhoneCommands(cmd, io, send)
  addDrivePhoneCommands(cmd, io)
  addSyncPhoneCommands(cmd, io)
  addPhoneDataCommands(cmd, io)
  addBackupPhoneCommands(cmd, io)
  addPhoneExportCommand(cmd, io)
  return cmd
}
