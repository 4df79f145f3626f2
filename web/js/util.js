// Small helpers shared by the page's modules: building elements, calling the page API, words for times and sizes.
import { formatBytes } from './format-bytes.js'
import { formatAge, utcDate, utcText } from './format-time.js'

/** An element with attributes (on* are listeners) and children, arrays of them at any depth (strings become text, never HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'text') el.textContent = v
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c)
  return el
}

/** A refusal from the page API: `message` is the cloud's (or the console's) own words. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.error ?? `HTTP ${status}`)
    this.status = status
    this.code = body.code
    /** The technical reason behind a broker the console cannot reach (Node's or MQTT's words). */
    this.detail = body.detail
  }
}

/** What the page says when this console's own server does not answer (the browser's own words are "Failed to fetch"). */
export const CONSOLE_AWAY = 'this web console is not answering: was it stopped (Ctrl-C in its terminal)?'

/** What the page says once the console no longer knows this browser (it was restarted: its sessions live in its memory). */
export const SIGNED_OUT =
  'You are signed out of this console: you signed out (here or in another tab), it was restarted, or this browser never ' +
  'signed in. Open the sign-in link that ' +
  '`fakephone demo` or `fakephone console web` printed when it started (a link works once; ' +
  '`fakephone console web-link URL` makes a new one from the console token).'

/**
 * One page-API call; resolves with the JSON answer, rejects with an ApiError (status 0: the console did not answer).
 * With `signal` (a device page's, aborted when the page is left): the request is cancelled, and a call whose page was
 * left neither resolves nor rejects, even one already answered, so nothing after it runs -- a late answer of a left page
 * draws nowhere (not in the pane that shows the next phone's page, not on the map) and says no error.
 */
export function api(method, path, body, signal) {
  const answer = call(method, path, body, signal)
  if (signal === undefined) return answer
  const dropped = () => new Promise(() => {})
  return answer.then(
    (a) => (signal.aborted ? dropped() : a),
    (err) => (signal.aborted ? dropped() : Promise.reject(err)),
  )
}

async function call(method, path, body, signal) {
  const init = { method, headers: {}, signal }
  if (method !== 'GET') init.headers['x-fakephone-page'] = '1'
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  let res
  try {
    res = await fetch(`/app/api${path}`, init)
  } catch {
    throw new ApiError(0, { error: CONSOLE_AWAY, code: 'CONSOLE_AWAY' })
  }
  const answer = await res.json()
  if (res.status === 401) banner(SIGNED_OUT)
  if (!res.ok) throw new ApiError(res.status, answer)
  return answer
}

/**
 * A line under the header that stays until it is taken back (banner(null)): the console's connection, in words; the
 * technical reason, when there is one, in its tooltip and in a details element under it that the keyboard and a screen
 * reader reach (a tooltip alone they do not).
 */
export function banner(text, detail) {
  const el = document.getElementById('banner')
  // Signed out stays: nothing this page does signs it in again.
  if (el.textContent === SIGNED_OUT && !el.hidden) return
  el.textContent = text ?? ''
  el.title = detail ? `Technical reason: ${detail}` : ''
  el.hidden = text === null
  const reason = document.getElementById('banner-reason')
  reason.querySelector('code').textContent = detail ?? ''
  reason.hidden = el.hidden || !detail
}

/** A time of this computer's clock as HH:MM:SS (when the console last had the broker: real time, not the cloud's). */
export function clockTime(ms) {
  const d = new Date(ms)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

export const enc = encodeURIComponent

/** "3m 12s" the way the CLI says it: its own formatAge, "0s" for a time a message's delay ahead (FOLLOW_SKEW_MS). */
export const age = formatAge

/** "3m 12s ago" for a time `ms` in the past; a time further ahead than the skew is "in the future", never "… ago". */
export function ago(ms) {
  const text = age(ms)
  return text === 'in the future' ? text : `${text} ago`
}

/**
 * "3m 12s ago" for a time `at`, as an element that goes on counting: the page's tick (app.js, every second and whenever
 * it learns the cloud's time anew) rewrites each from the cloud's time as the page knows it (tickAges), so an age read
 * once -- a backup's, a notification's, the account's last activity, a command's -- neither stays what it was when read
 * nor lags a move of the cloud clock until the next reread. `now`: the cloud's time the age is drawn at.
 */
export const since = (at, now) => ticking('since', at, now)

/** "3d 1h" since a time `at` ("off for 3d 1h"), counting on as since()'s ages do. */
export const lasting = (at, now) => ticking('lasting', at, now)

/** "30d 0h" to a time `at` to come ("in 30d 0h"), counting down as since()'s ages count on. */
export const countdown = (at, now) => ticking('countdown', at, now)

/** The words of each kind of ticking time, from the cloud's time `now`. */
const TICKS = { since: (at, now) => ago(now - at), lasting: (at, now) => age(now - at), countdown: (at, now) => age(at - now) }

const ticking = (kind, at, now) => h('span', { 'data-tick': kind, 'data-at': at, text: TICKS[kind](at, now) })

/** Brings every age and countdown since(), lasting() and countdown() drew to `now`, the cloud's time. */
export function tickAges(now) {
  for (const el of document.querySelectorAll('[data-tick]')) el.textContent = TICKS[el.dataset.tick](Number(el.dataset.at), now)
}

/**
 * F2: where a phone was seen last: its newest heartbeat's fix, or the fix a verified locate brought (`d.located`, set
 * by app.js while it is newer than that heartbeat).
 */
export const lastFix = (d) => d.located ?? d.last

/** The words that say a fix came from a locate, with its time (the label on the map, the list, the device page). */
export const locatedAt = (fix) => `fix from locate at ${whenText(fix.at)}`

/**
 * A time for people, as the CLI's tables and the header's cloud time say it: "2027-03-01 12:00:05 UTC", never the raw
 * ISO form. In UTC, as the header's cloud time is: the cloud's clock may be simulated, days ahead of this computer's, so
 * a time read beside it in another zone would mislead. Where only text can go (a label, the header's line, a slider's
 * words); elsewhere when().
 */
export const whenText = (ms) => (ms === null || ms === undefined ? '-' : utcText(ms))

/** The one way the page shows a time: whenText's words in a <time> that keeps the exact ISO instant (datetime, tooltip). */
export function when(ms) {
  if (ms === null || ms === undefined) return '-'
  const exact = new Date(ms).toISOString()
  return h('time', { datetime: exact, title: exact, text: whenText(ms) })
}

/**
 * What a move of the cloud clock did, in the CLI's words (cli/account-commands.ts renderAdvance) on one line: the cloud
 * log's new entries by rule and account, the commands and notifications that expired or were queued, or that no rule
 * had anything to do -- not how many timers woke, which the rules also do just to look again. Its times as both say every
 * time (whenText, the CLI's utcText).
 */
export function advanceText(moved) {
  const e = moved.effects
  const count = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
  const done = []
  if (e.log.length > 0) {
    const entries = e.log.reduce((n, r) => n + r.entries, 0)
    const rules = e.log.map((r) => `${r.rule} ${r.entries}`).join(', ')
    done.push(`${entries} cloud-log ${entries === 1 ? 'entry' : 'entries'} (${rules}) for ${e.accounts.join(', ')}`)
  }
  if (e.commandsExpired > 0) done.push(`${count(e.commandsExpired, 'command')} expired`)
  if (e.notificationsQueued > 0) done.push(`${count(e.notificationsQueued, 'notification')} queued`)
  if (e.notificationsExpired > 0) done.push(`${count(e.notificationsExpired, 'notification')} expired`)
  const what = done.length === 0 ? 'No rule had anything to do on the way.' : `On the way: ${done.join('; ')}.`
  return `Moved the cloud clock from ${whenText(moved.from)} to ${whenText(moved.now)}. ${what}`
}

/**
 * M2: a device's data channel in the CLI's words (cli/render.ts stateCell): online here, or, for one this cloud told to
 * follow its account's migration, where it went -- moved, to follow when it is back, or missed -- else offline.
 */
export function dataState(d) {
  if (d.online) return { class: 'on', text: 'online' }
  const m = d.moved
  if (m === null) return { class: 'off', text: 'offline' }
  const date = utcDate
  if (m.notice === 'delivered') return { class: 'muted', text: `moved to ${m.to} on ${date(m.deliveredAt)}` }
  if (m.notice === 'queued') return { class: 'off', text: `offline: follows to ${m.to} when back (told ${date(m.at)})` }
  return { class: 'off', text: `offline: missed the move to ${m.to} (told ${date(m.at)})` }
}

/** Sizes as the CLI and the cloud's refusals say them ("5.0 GB" for 5 GiB): the one formatter, served from the build. */
export const bytes = formatBytes

/**
 * For reads of one thing that may answer out of order (a live update asks again while an earlier read is on its way):
 * `const fresh = order()` as a read is asked; once it has answered, `fresh()` says whether to take its answer -- not when
 * a read asked later was taken already, whose answer is newer.
 */
export function inOrder() {
  let asked = 0
  let taken = 0
  return () => {
    const n = ++asked
    return () => {
      if (n <= taken) return false
      taken = n
      return true
    }
  }
}

/**
 * A reread the live stream asked for. If it fails, the console or the broker is away: the banner says so, and the
 * page reads everything again when the stream is back. Not an uncaught error.
 */
export function quietly(promise) {
  promise.catch(() => {})
}

/**
 * A button pressed from the keyboard is disabled while its request is on the way, and a disabled button loses the focus
 * to the page's body: no focus ring, and Enter or Space no longer do anything. Once enabled again it gets the focus
 * back, unless the person moved it meanwhile; one still disabled (or gone) gives it to `instead`.
 */
export function keepFocus(el, instead) {
  if (!el || el === document.body || document.activeElement !== document.body) return
  // A button that stays disabled once answered (Wipe, its confirmation cleared): the focus goes to `instead`, beside it.
  const target = el.isConnected && !el.disabled ? el : instead
  if (target?.isConnected && !target.disabled) target.focus()
}

/** What names a control for redraw(): the key of its row (data-key), its tag, its name and its words. */
const focusKey = (el) =>
  [el.closest('[data-key]')?.dataset.key ?? '', el.tagName, el.name ?? '', el.getAttribute('aria-label') ?? el.textContent].join('|')

/**
 * Replaces what `container` shows with `children` without losing the keyboard's place: the control that had the focus
 * in it gets it back in what is drawn (the same control -- tag, name, words -- in the row of the same data-key), or,
 * when it is gone (a Cancel once its command is no longer queued, a bin entry restored), `fallback` takes it. Before,
 * every reread drew new buttons and links, and one that had the focus lost it to the page's body: a heartbeat, a live
 * reread or the button's own action sent a keyboard user back to the top of the page.
 */
export function redraw(container, children, fallback) {
  const had = document.activeElement
  const inside = had !== null && had !== container && container.contains(had)
  const key = inside ? focusKey(had) : null
  container.replaceChildren(...children)
  if (!inside || document.activeElement !== document.body) return
  const twin = [...container.querySelectorAll(had.tagName)].find((el) => focusKey(el) === key)
  ;(twin ?? fallback)?.focus()
}

let toastTimer
/**
 * Says something to the person at the page, in the one of two live regions (index.html) that fits it: an error
 * interrupts a screen reader (role=alert) and stays until the next message (or 12 s); a success waits its turn
 * (role=status) and goes after 5 s. Each region keeps its role: before, one region switched between status and alert as
 * its words changed, which screen readers read badly (or not at all). A new message empties the other region, so one
 * shows at a time; emptying a region says nothing.
 */
export function toast(text, kind = 'error') {
  const error = kind === 'error'
  const el = document.getElementById(error ? 'toast-alert' : 'toast-status')
  document.getElementById(error ? 'toast-status' : 'toast-alert').textContent = ''
  el.textContent = text
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => (el.textContent = ''), error ? 12000 : 5000)
}

/** Runs an action of the page; a refusal is shown with the cloud's words (the same the CLI prints after "error:"). */
export async function attempt(fn, done) {
  try {
    const result = await fn()
    if (done) toast(done, 'info')
    return result
  } catch (err) {
    toast(`error: ${err.message}`)
    return undefined
  }
}
