/** A daemon's life after start-up: tell systemd it is ready, run until SIGINT/SIGTERM, say it is stopping, stop. */
import { SystemdNotifier } from '../common/sd-notify.js'
import type { Logger } from '../common/log.js'
import { untilAborted, type Io } from './io.js'

export async function serveUntilAborted(io: Io, log: Logger, status: string, stop: () => Promise<void>): Promise<void> {
  const notifier = new SystemdNotifier({ env: io.env, clock: io.clock, log })
  await notifier.ready(status)
  await untilAborted(io.signal)
  await notifier.stopping()
  await stop()
}
