// The web console's page: the device list and map kept live by the console's event stream (/events), the cloud clock
// with its advance buttons, and the device page (device.js) chosen by the address (#/device/ID). The header and the
// banner under it say, in words, when the page is not live: the broker or the console away, or this browser signed out.
// Every phone's row and dot follow its commands too (F2), whichever page is open: the stream says where each phone's
// newest command stands and brings the fix of its newest verified locate (cli/web/outcomes.ts).
import {
  CONSOLE_AWAY,
  SIGNED_OUT,
  advanceText,
  age,
  ago,
  api,
  attempt,
  banner,
  clockTime,
  dataState,
  enc,
  h,
  keepFocus,
  quietly,
  redraw,
  tickAges,
  toast,
} from './util.js'
import { DeviceMap } from './map.js'
import { DevicePage } from './device.js'

const state = {
  devices: new Map(),
  rows: new Map(),
  /** F2: per device, the newest fix a verified locate brought (its receipt's data), from the stream or the device page. */
  located: new Map(),
  /** F2: per device, its newest command as the stream last said it ({type, state, final, reason, receiptText, verified}). */
  commands: new Map(),
  offset: 0,
  simulated: false,
  page: null,
  liveTick: 0,
  touched: new Map(),
  /** The header's word for the connection ('live', 'broker unreachable', …): connection() sets it. */
  link: 'connecting…',
  /** F1: the words of a clock move that ended while the page was not live, said when it is again (moveSays). */
  held: null,
}
const cloudNow = () => Date.now() + state.offset
const byId = (id) => document.getElementById(id)
/** app.css's one-column layout (list, map and device page one under the other). */
const stacked = window.matchMedia('(max-width: 800px)')

function dataCell(d) {
  // M2: a device that followed its account's migration says where it went, whatever this cloud last heard of it.
  if (d.locationOffAt !== null && (d.online || d.moved === null)) return h('span', { class: 'warn', text: 'location off' })
  return h('span', dataState(d))
}

/** F2: under the data channel, lost mode once the owner has switched it (the list stays narrow enough for the map). */
function lostLine(d) {
  if (d.lostMode === null) return null
  return h('div', { class: `lost ${d.lostMode.on ? 'warn' : 'muted'}`, text: `lost mode ${d.lostMode.on ? 'on' : 'off'}` })
}

/**
 * The device as the list and the map show it: with `located`, the fix of its newest verified locate, while that is newer
 * than its last heartbeat (a heartbeat after it wins again).
 */
const shown = (d) => ({ ...d, located: locatedFix(d) })

function locatedFix(d) {
  const fix = state.located.get(d.id)
  return fix && (!d.last || fix.at > d.last.at) ? fix : null
}

/** The list's "Last fix": how old, and "(locate)" when it is the fix a locate brought. */
function fixAge(d) {
  const located = locatedFix(d)
  if (located) return `${ago(cloudNow() - located.at)} (locate)`
  return d.last ? ago(cloudNow() - d.last.at) : '-'
}

/**
 * F2: under the data channel, the phone's newest command and where it stands, in the CLI's words for a refusal or a
 * failure (cli/command-words: "ring failed: …"), and whether its receipt is verified; the receipt's line under it, in
 * words the keyboard and a screen reader reach too (a tooltip they do not).
 */
function commandLine(d) {
  const c = state.commands.get(d.id)
  if (!c) return null
  const receipt = c.verified ? ' · verified' : c.receiptText === 'no receipt' ? '' : ' · receipt NOT verified'
  const kind = c.state === 'succeeded' ? (c.verified ? 'on' : 'bad') : c.final ? 'bad' : 'warn'
  return [
    h('div', { class: `last-command small ${kind}`, text: `${c.type} ${c.state}${c.reason === null ? '' : `: ${c.reason}`}${receipt}` }),
    c.receiptText === 'no receipt' ? null : h('div', { class: 'receipt small muted wrap', text: c.receiptText }),
  ]
}

function rowCells(d) {
  const last = d.last
  return [
    h('td', {}, h('a', { href: `#/device/${enc(d.id)}`, text: d.id }), h('div', { class: 'muted', text: d.account })),
    h('td', {}, dataCell(d), lostLine(d), commandLine(d)),
    h('td', { text: fixAge(d) }),
    h('td', { text: last ? `${last.battery}%${last.charging ? '+' : ''}` : '-' }),
    h('td', { text: last ? last.network : '-' }),
  ]
}

/** Draws `d`'s row in the list; `d` as shown() makes it. */
function renderRow(d) {
  let row = state.rows.get(d.id)
  if (!row) {
    row = h('tr', { 'data-device': d.id })
    state.rows.set(d.id, row)
    byId('device-table').tBodies[0].append(row)
  }
  // A heartbeat redraws the row: its link keeps the focus it had.
  redraw(row, rowCells(d))
  row.classList.toggle('selected', state.page?.id === d.id)
}

function applyFilter() {
  const q = byId('filter').value.trim().toLowerCase()
  for (const [id, row] of state.rows) row.hidden = q !== '' && !`${id} ${state.devices.get(id).account}`.toLowerCase().includes(q)
}

function merge(devices) {
  for (const d of devices) {
    state.devices.set(d.id, d)
    renderRow(shown(d))
    if (state.page?.id === d.id) state.page.onDevice(d)
  }
  state.map.update(devices.map(shown), state.devices.size)
  byId('device-count').textContent = `(${state.devices.size})`
  applyFilter()
}

/** Devices no longer registered (removed): gone from the list, the map and the count; an open page of one goes to the list. */
function drop(ids) {
  for (const id of ids) {
    if (!state.devices.delete(id)) continue
    state.rows.get(id)?.remove()
    state.rows.delete(id)
    state.commands.delete(id)
    state.map.remove(id)
    if (state.page?.id === id) location.hash = '#/'
  }
  byId('device-count').textContent = `(${state.devices.size})`
}

function applyDevices({ now, devices }) {
  state.offset = now - Date.now()
  merge(devices)
}

/**
 * Every registered device as the cloud has it now. One the page shows that the read no longer names was removed meanwhile
 * (its removal may have come while the page's stream was cut): it goes, as when the stream says so.
 */
async function loadDevices() {
  const since = state.liveTick
  const answer = await api('GET', '/devices')
  const registered = new Set(answer.devices.map((d) => d.id))
  // A device the live stream updated while this read was on its way keeps the newer view.
  const older = (id) => (state.touched.get(id) ?? 0) <= since
  answer.devices = answer.devices.filter((d) => older(d.id))
  applyDevices(answer)
  drop([...state.devices.keys()].filter((id) => !registered.has(id) && older(id)))
}

function renderClock() {
  const el = byId('clock')
  const text = `cloud time ${new Date(cloudNow()).toISOString().slice(0, 19).replace('T', ' ')} UTC`
  el.textContent = state.simulated ? `${text} (simulated, ${age(state.ahead)} ahead)` : `${text} (real time)`
}

function applyClock(c) {
  state.offset = c.now - Date.now()
  state.simulated = c.simulated
  state.ahead = c.aheadMs
  byId('advance').hidden = !c.simulated
  tick()
}

/**
 * Every second, and at once when the page learns the cloud's time (a move of its clock): the header's clock and every
 * age on the page from it -- the list's last fixes, the device page's, and each since(), lasting() and countdown() drew
 * (a backup's age, the cloud service's time off, the retirement's next step).
 */
function tick() {
  renderClock()
  for (const d of state.devices.values()) {
    const row = state.rows.get(d.id)
    if (row) row.children[2].textContent = fixAge(d)
  }
  tickAges(cloudNow())
  state.page?.tick()
}

async function loadClock() {
  applyClock(await api('GET', '/clock'))
}

async function advance(by) {
  // One move per press: a double click on "1 y" must not move the cloud two years. The buttons come back once the page
  // shows what the move changed (or could not reread it).
  const buttons = [...byId('advance').querySelectorAll('button')]
  const focused = document.activeElement
  for (const b of buttons) b.disabled = true
  // A long move runs every rule on the way and takes a while: said at once, not the last move's words left standing
  // (while the page is live: a broker known to be away stays said).
  const live = byId('live')
  const before = live.textContent
  if (state.link === 'live') live.textContent = `Moving the cloud clock ${by} ahead…`
  const moved = await attempt(() => api('POST', '/clock/advance', { by }))
  if (!moved) {
    // Refused: the line goes back to what it said (the banner or the toast says why).
    if (live.textContent.startsWith('Moving the cloud clock')) live.textContent = before
  } else {
    // Said once the page shows what the move changed; a reread the broker did not answer is the banner's to say.
    await onClock().catch(() => {})
    moveSays(advanceText(moved))
  }
  for (const b of buttons) b.disabled = false
  keepFocus(focused)
}

/**
 * F1, M1: what a move of the clock did, in the header while the page is live. A move that ends once the page knows the
 * broker (or the console) is away does not hide that: its words wait, and show when the page is live again.
 */
function moveSays(words) {
  if (state.link === 'live') byId('live').textContent = words
  else state.held = words
}

/**
 * F2: a verified locate of `id` brought `fix` ({lat, lon, accuracy, at}): the list and the map show it (and say so)
 * until a newer heartbeat comes.
 */
function located(id, fix) {
  const known = state.located.get(id)
  if (known && known.at >= fix.at) return
  state.located.set(id, fix)
  const d = state.devices.get(id)
  if (!d) return
  renderRow(shown(d))
  state.map.update([shown(d)], state.devices.size)
  state.page?.renderFacts()
}

/** F2: where these phones' commands stand (cli/web/outcomes.ts): each row says its newest, a verified locate moves its dot. */
function outcomes(list) {
  for (const o of list) {
    if (o.command) state.commands.set(o.device, o.command)
    // None (the cloud cleared the phone's commands, A3): its row and its dot forget them.
    else state.commands.delete(o.device)
    if (o.located) located(o.device, o.located)
    else state.located.delete(o.device)
    const d = state.devices.get(o.device)
    if (!d) continue
    renderRow(shown(d))
    if (!o.located) state.map.update([shown(d)], state.devices.size)
  }
}

async function onClock() {
  await loadClock()
  await loadDevices()
  await state.page?.onClock()
}

async function route() {
  const m = /^#\/device\/(.+)$/.exec(location.hash)
  const id = m ? decodeURIComponent(m[1]) : null
  if (state.page?.id === id) return
  const was = state.page?.id
  state.page?.close()
  state.page = null
  const detail = byId('detail')
  for (const [rid, row] of state.rows) row.classList.toggle('selected', rid === id)
  // The pane is a region named by its title: "Choose a device", or the device's id once its page is drawn.
  detail.setAttribute('aria-labelledby', id === null ? 'choose-title' : 'device-title')
  if (id === null) {
    detail.replaceChildren(
      h('h2', { id: 'choose-title', text: 'Choose a device' }),
      h('p', { class: 'muted', text: 'Pick a phone in the list or on the map.' }),
    )
    // Back from a device page ("← all devices", drawn no more): the keyboard is at that phone's line in the list, not
    // sent to the top of the page.
    if (document.activeElement === document.body) state.rows.get(was)?.querySelector('a')?.focus()
    return
  }
  const page = new DevicePage(detail, id, { map: state.map, cloudNow, located, shown })
  state.page = page
  // Where the keyboard was as the page was asked for (the phone's link, its dot's button).
  const from = document.activeElement
  try {
    await page.open()
    // Another page was asked for while this one read the cloud: that one draws and takes the keyboard, not this one.
    if (state.page !== page) return
    // The keyboard goes to the device page unless the person moved it on while the page read the cloud: before, it was
    // taken from wherever they had got to -- Enter on a dot, Tab on to the next one, and its Space pressed the page's
    // pane instead when the page finished loading between the Tab and the Space.
    if (document.activeElement === from || document.activeElement === document.body) detail.focus({ preventScroll: true })
    // On a phone-sized screen the page stacks the list, the map and the device: bring the device page into view, or a tap
    // on a phone in the list only highlights its row above the map while its page opens out of sight below.
    if (stacked.matches) detail.scrollIntoView({ block: 'start' })
  } catch (err) {
    if (state.page !== page) return
    detail.replaceChildren(
      h('p', { class: 'bad', text: `error: ${err.message}` }),
      h('p', {}, h('a', { href: '#/', text: '← all devices' })),
    )
  }
}

/** The broker away, as the console's feed says why (its words, the technical reason, when it last had the broker). */
const brokerAway = (b) => `${b.text} Retrying… Last contact ${clockTime(b.lastContactAt)}; the page shows what the broker said then.`
const CONSOLE_GONE = 'This web console is not answering (was it stopped?): the page shows what it said last; reconnecting…'

/** The header's word for the connection, and the banner that says more when it is not live. */
function connection(word, text, detail) {
  state.link = word
  // Live again: a move that ended meanwhile says what it did (moveSays), in place of the word.
  const held = word === 'live' ? state.held : null
  if (word === 'live') state.held = null
  byId('live').textContent = held ?? word
  banner(text, detail)
}

/**
 * The live stream. The browser reconnects by itself when the console goes away; it gives up for good when the console
 * (or a proxy in front of it) answers with an error: then the page asks why and says so, and opens a new stream after
 * 2 s unless this browser was signed out. Every stream that opens -- the first, the browser's own reconnect, the page's
 * new one -- rereads what the page shows (liveAgain()), so nothing a gap missed stays missed: a device removed meanwhile
 * goes, one added comes, the clock and the open device page are read again.
 */
function listen() {
  const events = new EventSource('/events')
  events.onopen = liveAgain
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) return void refused()
    connection('reconnecting…', CONSOLE_GONE)
  }
  events.addEventListener('broker', (e) => {
    const broker = JSON.parse(e.data)
    if (broker.connected) liveAgain()
    else connection(broker.state, brokerAway(broker), broker.detail)
  })
  events.addEventListener('devices', (e) => {
    const { devices, gone } = JSON.parse(e.data)
    state.liveTick++
    for (const d of devices) state.touched.set(d.id, state.liveTick)
    merge(devices)
    drop(gone)
  })
  events.addEventListener('commands', (e) => {
    if (state.page && JSON.parse(e.data).devices.includes(state.page.id)) quietly(state.page.loadCommands())
  })
  events.addEventListener('outcomes', (e) => outcomes(JSON.parse(e.data).outcomes))
  events.addEventListener('accounts', (e) => state.page?.onAccounts(JSON.parse(e.data).accounts))
  events.addEventListener('clock', () => quietly(onClock()))
}

/**
 * F1: a stream opened, whichever way it came to open, or the feed found the broker again: live, and what the page shows
 * read again (what came while nothing was told is in no event). The one place the page rereads after a gap.
 */
function liveAgain() {
  connection('live', null)
  void reread()
}

/** After a gap: the clock, the devices and the open device page as the cloud has them now. */
async function reread() {
  await attempt(() => onClock())
}

/** The stream was refused: signed out (said by api()), or the console answered with an error; a new stream when it may work. */
async function refused() {
  try {
    await api('GET', '/clock')
  } catch (err) {
    if (err.status === 401) return connection('signed out', SIGNED_OUT)
  }
  connection('reconnecting…', CONSOLE_GONE)
  setTimeout(listen, 2000)
}

/** The first read, again every 2 s until the console and the broker answer (a page opened while either was away). */
async function firstRead() {
  for (;;) {
    try {
      return await Promise.all([api('GET', '/clock'), api('GET', '/devices')])
    } catch (err) {
      if (err.status === 401) {
        connection('signed out', SIGNED_OUT)
        return null
      }
      connection('not connected', `${err.message} Trying again…`, err.detail)
      await new Promise((resolve) => setTimeout(resolve, 2000))
    }
  }
}

/** Ends this browser's session (a shared computer): the console forgets it, and the page says how to sign in again. */
async function signOut() {
  const button = byId('sign-out')
  button.disabled = true
  try {
    const res = await fetch('/logout', { method: 'POST', headers: { 'x-fakephone-page': '1' } })
    const answer = await res.json()
    // Already signed out (another tab did it, or the console was restarted): the same place says so.
    if (res.ok || res.status === 401) return void location.assign('/signed-out')
    toast(`error: ${answer.error}`)
  } catch {
    toast(`error: ${CONSOLE_AWAY}`)
  }
  button.disabled = false
}

async function start() {
  // Everything the first frame needs is asked for at once (index.html preloads the same addresses).
  const config = fetch('/config.json').then((r) => r.json())
  const first = firstRead()
  state.map = new DeviceMap(byId('map'), (id) => (location.hash = `#/device/${enc(id)}`))
  for (const b of byId('advance').querySelectorAll('button')) b.addEventListener('click', () => advance(b.dataset.by))
  byId('filter').addEventListener('input', applyFilter)
  byId('sign-out').addEventListener('click', () => void signOut())
  window.addEventListener('hashchange', () => void route())
  // For the browser tests and the bench: where the map shows a phone, its label and colour, the Leaflet map.
  window.fakephone = {
    position: (id) => state.map.position(id),
    label: (id) => state.map.label(id),
    fill: (id) => state.map.fill(id),
    leaflet: state.map.map,
    ready: false,
  }
  const read = await first
  if (read === null) return
  connection('connecting…', null)
  applyClock(read[0])
  applyDevices(read[1])
  // The first frame with the phones on the map (read by `npm run bench -- --only web`).
  window.requestAnimationFrame(() => (window.fakephone.drawnAt = performance.now()))
  listen()
  // The base map goes under the phones once they show.
  await Promise.all([state.map.base(await config), route()])
  setInterval(tick, 1000)
  window.fakephone.ready = true
  window.fakephone.readyAt = performance.now()
}

void start()
