/**
 * F1: the web console speaks plain HTTP (no TLS). On loopback that stays on this machine; on any other address, whoever
 * can watch the network between a browser and the console can read its pages and take a sign-in link or a session
 * cookie -- and with it send signed commands (a wipe) as the owner. The console does not refuse (a lab network may be
 * what you want), it says so at every start, in its log at warn level, with the safer ways.
 */
import { isIP } from 'node:net'
import type { Logger } from '../../common/log.js'

/** Whether `host` keeps the console on this machine: 127.0.0.0/8, ::1 (or IPv4-mapped 127.x), or the name localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** What the log says when the console listens on `host`:`port` beyond loopback. */
export function plainHttpWarning(host: string, port: number): string {
  return (
    `the web console listens on ${host}:${port} in plain HTTP (no TLS): anyone who can watch the network between a ` +
    'browser and it can read its pages and take a sign-in link or session cookie, and with it send signed commands ' +
    `(a wipe) as the owner. Keep it on 127.0.0.1 and reach it through SSH (ssh -L ${port}:127.0.0.1:${port} THIS-HOST), ` +
    'or put a TLS proxy in front of it'
  )
}

/** Logs the warning at warn level if `host` is not loopback; says nothing on loopback. */
export function warnIfExposed(log: Logger, host: string, port: number): void {
  if (!isLoopback(host)) log.warn({ host, port }, plainHttpWarning(host, port))
}
