/**
 * How many connections the broker can hold, from its open-file limit.
 *
 * Every MQTT connection (TCP or WebSocket) and every push channel is one
 * file descriptor, so the soft RLIMIT_NOFILE caps the fleet. Node itself
 * raises the soft limit to the hard limit when it starts (src/node.cc,
 * PlatformInit: setrlimit(RLIMIT_NOFILE) up to rlim_max), so there is
 * nothing left to raise from JavaScript: the broker reads the limit it got
 * and says in its log how many connections fit, and how many complete phones
 * that is (each holds two: its data channel and its push channel), at info
 * always, and warns with the fix only when that is fewer than a modest fleet
 * of 1,000 phones needs (a hobbyist's one phone on a 20,000 hard limit, room
 * for ~9,960, is told the room, not warned at every start; `fleet run` warns
 * itself when the count it is asked for would not fit the broker it starts,
 * fleet/workers.ts brokerRoomWarning). Past the room the OS
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
/** The target fleet, 10,000 complete phones: what `fleet run` and the benchmarks are measured against. */
export const FLEET_TARGET = 10_000
/**
 * Room for fewer complete phones than this gets a warning with the fix. 1,000 is a modest fleet (a class or a test
 * rig, 2,000 connections): a hard limit of 1,024 or 4,096, as some containers and older distributions set, falls under
 * it, the stock systemd 524,288 and this project's 20,000 do not. Between it and FLEET_TARGET the info line says the room.
 */
export const MODEST_FLEET = 1_000
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

/** How to make more room, for every message that says there is too little. */
export const RAISE_THE_LIMIT = 'raise the hard limit (LimitNOFILE= in the systemd unit, or `ulimit -Hn` / limits.conf for a shell)'

/**
 * Says in the log how many connections the broker can hold (info, always), and warns with the fix when that is short of
 * a modest fleet (MODEST_FLEET).
 */
export function logConnectionRoom(log: Logger, room: ConnectionRoom | undefined): void {
  if (!room) return log.info('open-file limit unknown (no /proc): the connections the broker can hold are not known')
  const { limit, open, connections } = room
  const phones = Math.floor(connections / CONNECTIONS_PER_PHONE)
  const fields = { openFilesSoft: limit.soft, openFilesHard: limit.hard, openFiles: open, connections, phones }
  log.info(fields, `open-file limit ${limit.soft}: room for about ${connections} connections (${phones} phones with both channels)`)
  if (phones >= MODEST_FLEET) return
  log.warn(
    fields,
    `open-file limit ${limit.soft}: room for only ${phones} phones, under a modest fleet of ${MODEST_FLEET}; the OS refuses ` +
      `connections past it, unlogged; ${RAISE_THE_LIMIT} and restart`,
  )
}
