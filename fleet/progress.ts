/**
 * The live view of a run: phones connected / target and what has flowed so
 * far, from one process's run or summed over a `--workers` run's workers
 * (each sends its own about once a second), drawn as one line on a terminal.
 */
import type { FleetRun } from './runner.js'

export interface Progress {
  elapsedMs: number
  connected: number
  target: number
  heartbeatsSent: number
  heartbeatsAcked: number
  commandsAnswered: number
  notificationsShown: number
  startFailures: number
}

export function progressOf(run: FleetRun): Progress {
  const up = run.phonesUp()
  const t = run.tally
  return {
    elapsedMs: run.elapsed,
    connected: up.connected,
    target: up.target,
    heartbeatsSent: t.heartbeats.sent,
    heartbeatsAcked: t.heartbeats.acked,
    commandsAnswered: t.commands.answered,
    notificationsShown: t.notifications.shown,
    startFailures: t.phones.startFailures,
  }
}

/** Several workers' progress as one: counts add up, the time is the longest. */
export function sumProgress(parts: readonly Progress[]): Progress {
  const total: Progress = {
    elapsedMs: 0,
    connected: 0,
    target: 0,
    heartbeatsSent: 0,
    heartbeatsAcked: 0,
    commandsAnswered: 0,
    notificationsShown: 0,
    startFailures: 0,
  }
  for (const p of parts) for (const k of Object.keys(total) as (keyof Progress)[]) total[k] += p[k]
  total.elapsedMs = Math.max(0, ...parts.map((p) => p.elapsedMs))
  return total
}

/** The live one-line view on a terminal, redrawn in place. */
export function liveLine(p: Progress): string {
  return (
    `\r\x1b[K${(p.elapsedMs / 1000).toFixed(0)} s: ${p.connected}/${p.target} connected, ` +
    `${p.heartbeatsSent} heartbeats (${p.heartbeatsAcked} acked), ${p.commandsAnswered} commands answered, ` +
    `${p.notificationsShown} notifications shown, ${p.startFailures} start failures`
  )
}
