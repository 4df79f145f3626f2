/**
 * Words and tables for the resident framework (X1-X3): both channels of a
 * device, its notifications with their states and delays, the behaviour
 * logs the cloud received, and the phone's own view. `--json` bypasses this.
 */
import type { FrameworkStatus } from '../agent/framework.js'
import type { ShownNotification } from '../agent/push-inbox.js'
import type { ChannelsView, NotificationRecord, ReceivedEvent } from '../common/console-api.js'
import { formatAge, utcSeconds, utcText } from '../common/clock.js'
import { channelWaitingText, plural, table } from './render.js'
import { forTerminal, quoted } from '../common/terminal-text.js'
import { CLOUD_MOVED, CloudMoveSchema } from '../common/cloud/cloud-move.js'
import { decodeJson } from '../common/contract.js'

const ago = (now: number, at: number): string => `${formatAge(now - at)} ago`

/** `console device ID`: the data channel and the push channel side by side, then what went through each. */
export function renderChannels(v: ChannelsView): string {
  const service = v.data.cloudService === null ? 'cloud service not reported yet' : `cloud service ${v.data.cloudService ? 'on' : 'off'}`
  const data = `${v.data.online ? 'online' : 'offline'}${v.data.since === null ? '' : ` since ${ago(v.now, v.data.since)}`} (${service})`
  const push =
    v.push.since === null
      ? 'not connected since the broker started'
      : `${v.push.connected ? 'connected' : 'disconnected'} since ${ago(v.now, v.push.since)}`
  const n = v.notifications
  const logs =
    v.logs.lastReceivedAt === null
      ? 'none received'
      : `${plural(v.logs.events, 'event')} received, the last ${ago(v.now, v.logs.lastReceivedAt)}`
  return (
    [
      `device        ${v.device}`,
      `data channel  ${data}`,
      `push channel  ${push}`,
      `notifications ${n.queued} queued, ${n.delivered} delivered, ${n.expired} expired`,
      `behaviour log ${logs}`,
    ].join('\n') + '\n'
  )
}

/** What became of a notification, for people. */
function deliveryCell(r: NotificationRecord, now: number): string {
  if (r.state === 'delivered') return `delivered ${formatAge(r.delayMs as number)} late`
  if (r.state === 'expired') return `expired ${ago(now, r.expiredAt as number)}, never delivered`
  return `queued, expires in ${formatAge(r.expiresAt - now)}`
}

export function renderNotifications(id: string, rows: NotificationRecord[], now: number): string {
  if (rows.length === 0) return `No notifications for ${id}.\n`
  return table(
    ['ID', 'KIND', 'TITLE', 'QUEUED', 'STATE'],
    rows.map((r) => [r.id, r.kind, r.title, ago(now, r.createdAt), deliveryCell(r, now)]),
  )
}

export function renderLogs(id: string, total: number, events: ReceivedEvent[], now: number): string {
  if (events.length === 0) return `The cloud received no behaviour logs from ${id}.\n`
  const rows = events.map((e) => [String(e.seq), utcSeconds(e.at), e.type, e.detail || '-', ago(now, e.receivedAt)])
  return (
    `${plural(total, 'event')} received from ${id}; the newest ${events.length}:\n` +
    table(['SEQ', 'TIME (UTC)', 'TYPE', 'DETAIL', 'RECEIVED'], rows)
  )
}

/** The phone's lines for the framework, after the ones `phone status` always shows. */
export function renderFrameworkStatus(f: FrameworkStatus): string {
  const n = f.notifications
  const last = n.recent[0]
  const shown =
    `${n.shown} shown, ${plural(n.duplicatesSuppressed, 'duplicate')} ` +
    `suppressed${last ? `; last: ${last.kind} ${quoted(last.title)}, ${formatAge(last.delayMs)} late` : ''}`
  const l = f.logs
  const deferred = l.deferred ? ` (waiting: ${l.deferred})` : ''
  const service = n.service
  const cloud = service
    ? [
        service.state === 'moved'
          ? `cloud         moved: ${forTerminal(service.title)} (${utcText(service.at)})`
          : `cloud         ${service.state === 'gone' ? 'GONE' : 'retiring'}: ${forTerminal(service.title)} (${utcText(service.at)}): ` +
            forTerminal(service.body),
      ]
    : []
  return (
    [
      ...cloud,
      `push channel  ${f.pushChannel}${channelWaitingText(f.pushChannelWaiting)}`,
      `framework     network permission ${f.networkPermission ? 'on' : 'off'}, behaviour logs over mobile data ` +
        `${f.logsOverMobile ? 'on' : 'off'}`,
      `notifications ${shown}`,
      `behaviour log ${l.waiting} waiting${deferred}, ${l.uploaded} uploaded, ${l.notCollected} not collected while the cloud ` +
        `service was off`,
    ].join('\n') + '\n'
  )
}

/**
 * M2: a `cloud-moved` notice's body is the signed move (JSON) the phone checked before it showed it (a refused one is not
 * shown): said in words, what the phone now talks to; `--json` keeps the body as it came.
 */
function inboxBody(n: ShownNotification): string {
  if (n.kind !== CLOUD_MOVED) return n.body
  const move = decodeJson(CloudMoveSchema, n.body)
  if (!move.ok) return n.body
  const { to, account } = move.value
  return (
    `this phone follows its account ${account} there: data channel ${to.mqtt}, push ${to.push}, cloud ${to.cloud} ` +
    '(signed by its old cloud, checked)'
  )
}

/** `phone notifications`: what the phone showed, newest first, with how late each was. */
export function renderInbox(recent: ShownNotification[]): string {
  if (recent.length === 0) return 'No notifications shown yet.\n'
  return table(
    ['SHOWN (UTC)', 'KIND', 'TITLE', 'LATE', 'BODY'],
    recent.map((n) => [utcSeconds(n.shownAt), n.kind, n.title, formatAge(n.delayMs), inboxBody(n)]),
  )
}
