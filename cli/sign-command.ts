/**
 * F2 on the console's side: a remote command signed with the owner's key from
 * the keys folder, stamped with the cloud's time. Shared by `fakephone console
 * locate|ring|lock|lost-mode|wipe` and the web console (cli/web/), so both
 * sign the same way and the key never leaves the console's process.
 */
import { randomUUID, type KeyObject } from 'node:crypto'
import type { Command, CommandArgs, CommandType, UnsignedCommand } from '../common/contract.js'
import type { DeviceView } from '../common/console-api.js'
import { signPayload, type OwnerKeys } from '../common/signing.js'
import type { ConsoleClient } from './console-client.js'
import { UserError } from './io.js'
import { forTerminal, quoted } from '../common/terminal-text.js'

/** Defaults people expect: minutes for ring and locate, days for lock, lost mode and wipe. */
export const DEFAULT_EXPIRY: Record<CommandType, number> = {
  locate: 10 * 60_000,
  ring: 10 * 60_000,
  lock: 7 * 86_400_000,
  'lost-mode': 7 * 86_400_000,
  wipe: 7 * 86_400_000,
}

/** The command for `id`, signed with its account's key; the device as the cloud sees it now. */
export async function signCommand<T extends CommandType>(
  client: ConsoleClient,
  keys: OwnerKeys,
  id: string,
  type: T,
  args: CommandArgs<T>,
  expiresMs?: number,
): Promise<{ command: Command; device: DeviceView }> {
  // The cloud's clock is the authority: sign with its time (the phone checks the window on the cloud's time too).
  const { device, now } = await client.device(id)
  const key = keys.existingSigningKey(device.account)
  if (!key)
    throw new UserError(
      `no owner key for account ${quoted(device.account)} in ${forTerminal(keys.dir)}: use the keys folder the device was ` +
        `provisioned with (--keys)`,
    )
  return { command: commandAt(keys, key, { id: randomUUID(), device: id, type, args, now, expiresMs }), device }
}

/** A command stamped at the cloud's `now` (its window, the device's next seq) and signed with `key`; the fleet signs this way too. */
export function commandAt<T extends CommandType>(
  keys: OwnerKeys,
  key: KeyObject,
  c: { id: string; device: string; type: T; args: CommandArgs<T>; now: number; expiresMs?: number | undefined },
): Command {
  const unsigned = {
    id: c.id,
    device: c.device,
    type: c.type,
    args: c.args,
    issuedAt: c.now,
    expiresAt: c.now + (c.expiresMs ?? DEFAULT_EXPIRY[c.type]),
    seq: keys.nextSeq(c.device, c.now),
  } as UnsignedCommand
  return signPayload(unsigned, key) as Command
}
