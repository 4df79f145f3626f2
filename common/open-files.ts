/**
 * How many connections the broker can hold, from its open-file limit.
 *
 * Every MQTT connection (TCP or WebSocket) and every push channel is one
 * file descriptor, so the soft RLIMIT_NOFILE caps the fleet. Node itself
 * raises the soft limit to the hard limit when it starts (src/node.cc,
 * PlatformInit: setrlimit(RLIMIT_NOFILE) up to rlim_max), so there is
 * nothing left to raise from JavaScript: the broker reads the limit it got
 * and says in its log how many connections fit, and how many complete phones
 * that is (each holds two: its data channel and its push channel), and warns
 * when that is fewer than a 10,000-phone fleet needs. Past the room the OS
 * refuses new sockets (EMFILE) and Node closes them unanswered, without an
 * event the broker could log, so this line is the place to say it. The hard limit is the operator's: under
 * systemd it is LimitNOFILE= (524,288 by default since systemd 240), in a
 * shell `ulimit -Hn` (raised in /etc/security/limits.conf).
 */
import { readFileSync, readdirSync } from 'node:fs'
import type { Logger } from './log.js'

export interface OpenFileLimit {
  soft: number
  hard: number
}

/** Descriptors kept for the database (with its WAL and shared memory), the listeners, backups and logs. */
export const RESERVED_FILES = 64
/** A fleet this size of complete phones should fit; fewer gets a warning with the fix. */
export const FLEET_TARGET = 10_000
/** Connections one complete phone holds on the broker: its data channel (MQTT) and its push channel (WebSocket). */
export const CONNECTIONS_PER_PHONE = 2

/** The open-file limits in a `/proc/<pid>/limits` text; undefined when it has none. */
export function parseOpenFileLimit(limits: string): OpenFileLimit | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits)
  if (!m) return undefined
  const value = (v: string): number => (v === 'unlimited' ? Infinity : Number(v))
  return { soft: value(m[1] as string), hard: value(m[2] as string) }
}

/** What the broker logs at start: the limit, the descriptors already open, and the connections that fit. */
export interface ConnectionRoom {
  limit: OpenFileLimit
  open: number
  connections: number
}

/** The room for connections in this process; undefined where /proc is not there to ask (not Linux). */
export function connectionRoom(proc = '/proc/self'): ConnectionRoom | undefined {
  let limit: OpenFileLimit | undefined
  let open: number
  try {
    limit = parseOpenFileLimit(readFileSync(`${proc}/limits`, 'utf8'))
    open = readdirSync(`${proc}/fd`).length
  } catch {
    return undefined
  }
  if (!limit) return undefined
  return { limit, open, connections: Math.max(0, limit.soft - open - RESERVED_FILES) }
}

/** Says in the log how many connections the broker can hold, and how to make room when that is short of a fleet. */
export function logConnectionRoom(log: Logger, room: ConnectionRoom | undefined): void {
  if (!room) return log.info('open-file limit unknown (no /proc): the connections the broker can hold are not known')
  const { limit, open, connections } = room
  const phones = Math.floor(connections / CONNECTIONS_PER_PHONE)
  const fields = { openFilesSoft: limit.soft, openFilesHard: limit.hard, openFiles: open, connections, phones }
  const fit = `about ${connections} connections (${phones} phones with both channels)`
  if (phones >= FLEET_TARGET) return log.info(fields, `open-file limit ${limit.soft}: room for ${fit}`)
  log.warn(
    fields,
    `open-file limit ${limit.soft}: room for only ${fit}; the OS refuses connections past it, ` +
      'unlogged; raise the hard limit (LimitNOFILE= in the systemd unit, or `ulimit -Hn` / limits.conf for a shell) and restart',
  )
}
