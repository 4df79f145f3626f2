/**
 * Readiness and watchdog for systemd units of Type=notify. Node cannot send
 * a datagram to a unix socket, so each message is sent by running
 * `systemd-notify VAR=VALUE ...` (the units set NotifyAccess=all, since the
 * message then comes from a child process). Outside systemd ($NOTIFY_SOCKET
 * unset) every call does nothing.
 */
import { execFile } from 'node:child_process'
import { EventEmitter } from 'node:events'
import type { Clock, Timer } from './clock.js'
import type { Env } from './config.js'
import type { Logger } from './log.js'

export interface NotifierOptions {
  env: Env
  clock: Clock
  log: Logger
  /** The program that sends one message; `systemd-notify` from PATH by default. */
  command?: string
  /** This process's id, compared with $WATCHDOG_PID. */
  pid?: number
}

interface NotifierEvents {
  /** A message was handed to systemd-notify and it exited (ok: with status 0). */
  sent: [assignments: string[], ok: boolean]
}

export class SystemdNotifier extends EventEmitter<NotifierEvents> {
  private watchdog: Timer | null = null

  constructor(private readonly opts: NotifierOptions) {
    super()
  }

  /** Whether the service manager listens (the process runs under a Type=notify unit). */
  get enabled(): boolean {
    return Boolean(this.opts.env.NOTIFY_SOCKET)
  }

  /** How often to pet the watchdog, ms: half of WatchdogSec=, or null when there is no watchdog for this process. */
  get watchdogEveryMs(): number | null {
    const usec = Number(this.opts.env.WATCHDOG_USEC)
    const pid = this.opts.env.WATCHDOG_PID
    if (!this.enabled || !(usec > 0) || (pid !== undefined && Number(pid) !== (this.opts.pid ?? process.pid))) return null
    return Math.max(1, Math.floor(usec / 2000))
  }

  /** The daemon is up: READY=1, then WATCHDOG=1 on schedule until `close`. */
  ready(status: string): Promise<void> {
    const every = this.watchdogEveryMs
    if (every !== null) this.pet(every)
    return this.send(['READY=1', `STATUS=${status}`])
  }

  /** The daemon is shutting down; stops the watchdog. */
  stopping(): Promise<void> {
    this.close()
    return this.send(['STOPPING=1'])
  }

  close(): void {
    this.watchdog?.cancel()
  }

  private pet(every: number): void {
    this.watchdog = this.opts.clock.after(every, () => {
      void this.send(['WATCHDOG=1'])
      this.pet(every)
    })
  }

  /** Resolves when the message is sent or could not be; a failure is logged, never thrown. */
  private send(assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve()
    const command = this.opts.command ?? 'systemd-notify'
    return new Promise((resolve) => {
      execFile(command, assignments, { env: { ...this.opts.env } }, (err) => {
        if (err) this.opts.log.warn({ command, assignments, why: err.message }, 'could not notify systemd')
        this.emit('sent', assignments, !err)
        resolve()
      })
    })
  }
}
