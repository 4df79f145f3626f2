// One device's page: its state (F1), its track (growing with each live fix) with a replay slider and GPX/GeoJSON
// export, the remote commands (F2, signed by the console process with the owner's key), the command list with receipts,
// push notifications (X3), and the cloud data of its account (data.js).
import {
  ApiError,
  ago,
  api,
  attempt,
  dataState,
  enc,
  h,
  inOrder,
  keepFocus,
  lastFix,
  locatedAt,
  quietly,
  redraw,
  since,
  toast,
  when,
  whenText,
} from './util.js'
import { DataPanel } from './data.js'
import { PushPanel } from './push.js'

const TRACK_FIXES = 500

const yesNo = (v, yes, no) =>
  v === null ? h('span', { class: 'muted', text: 'not reported' }) : h('span', { class: v ? 'on' : 'off', text: v ? yes : no })

/** F2: lost mode as the device's last signed receipt left it. */
function lostMode(l) {
  if (l === null) return h('span', { class: 'muted', text: 'never switched on' })
  if (!l.on) return h('span', { class: 'off' }, 'off since ', when(l.at))
  return h('span', { class: 'warn' }, 'on since ', when(l.at), `: “${l.message}”, call ${l.phone}`)
}

export class DevicePage {
  constructor(el, id, ctx) {
    this.el = el
    this.id = id
    // Aborted when the page is left (close()): the reads of this page and of its panels (ctx.read) answer no more, so a
    // late answer of a left page is dropped -- before, one drew this phone's page over the next phone's, in the pane
    // they share, and its track on the map under it.
    this.left = new AbortController()
    this.ctx = { ...ctx, read: (path) => api('GET', path, undefined, this.left.signal) }
    this.points = []
    this.timer = null
    this.channelsOrder = inOrder()
    this.commandsOrder = inOrder()
  }

  async open() {
    const { device } = await this.ctx.read(`/devices/${enc(this.id)}`)
    // A live update that came while the read was on its way is the newer (as the list keeps it: app.js loadDevices).
    this.device = this.live ?? device
    this.el.replaceChildren(
      h('p', {}, h('a', { href: '#/', text: '← all devices' })),
      h('h2', { id: 'device-title', text: device.id }),
      h('p', { class: 'muted', text: `account ${device.account}` }),
      (this.facts = h('dl', { id: 'facts' })),
      this.trackSection(),
      this.commandSection(),
      (this.pushEl = h('section', { id: 'push', 'aria-labelledby': 'push-title' })),
      (this.dataEl = h('section', { id: 'data', 'aria-labelledby': 'data-title' })),
    )
    this.push = new PushPanel(this.pushEl, device.id, this.ctx)
    this.data = new DataPanel(this.dataEl, device.account, this.ctx)
    this.renderFacts()
    await Promise.all([this.loadChannels(), this.loadTrack(), this.loadCommands(), this.push.refresh(), this.data.refresh()])
    if (this.points.length === 0) this.ctx.map.focus(device.id)
  }

  close() {
    this.left.abort()
    clearInterval(this.timer)
    this.ctx.map.clearTrack()
  }

  /** A live update of this device (SSE). */
  onDevice(device) {
    // Still opening: open() draws the device as it reads it, or as this says, which is newer than its read's answer.
    if (!this.data) {
      this.live = device
      return
    }
    const before = this.device
    this.device = device
    this.renderFacts()
    // F1: a new fix joins the track; the slider follows it unless the owner moved it back to replay.
    const newest = this.points[this.points.length - 1]
    if (device.last && (!newest || device.last.at > newest.at)) this.addFix(device.last)
    void this.loadChannels()
    quietly(this.push.refresh())
    // A switch flipped on the phone changes what the cloud keeps and allows: reread its data.
    if (before.cloudService !== device.cloudService || before.findDevice !== device.findDevice) void this.data.refresh()
  }

  /** The cloud data of these accounts (null: of every account) changed: the data panel rereads it, if it shows one of them. */
  onAccounts(accounts) {
    if (this.data && (accounts === null || accounts.includes(this.data.account))) this.data.changed()
  }

  async onClock() {
    // Still opening (a stream opened meanwhile): open() reads all of it itself.
    if (!this.data) return
    await Promise.all([this.loadCommands(), this.push.refresh(), this.data.refresh()])
    this.renderFacts()
  }

  /** The facts' last fix age; the other ages on the page (a queued command's "issued …") tick by themselves (since()). */
  tick() {
    this.renderFacts()
  }

  renderFacts() {
    // The clock ticks while the page is still opening: nothing to draw yet.
    if (!this.facts) return
    const d = this.device
    const now = this.ctx.cloudNow()
    const last = d.last
    // F2: the fix a verified locate brought, while it is newer than the last heartbeat's (as the map and the list say).
    const fix = lastFix(this.ctx.shown(d))
    const rows = [
      ['Data channel', h('span', dataState(d))],
      ['Push channel', this.channels ? yesNo(this.channels.push.connected, 'connected', 'not connected') : '…'],
      ['Cloud service', yesNo(d.cloudService, 'on', 'off')],
      ['Find Device', yesNo(d.findDevice, 'on', 'off')],
      [
        'Last fix',
        fix
          ? `${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)} (±${Math.round(fix.accuracy)} m), ${ago(now - fix.at)}` +
            (fix === last ? '' : `: ${locatedAt(fix)}`)
          : h('span', { class: 'muted', text: 'none yet' }),
      ],
      ['Lost mode', lostMode(d.lostMode)],
      ['Battery', last ? `${last.battery}%${last.charging ? ', charging' : ''}` : '-'],
      ['Network', last ? last.network : '-'],
    ]
    if (d.locationOffAt !== null) rows.push(['Location', h('span', { class: 'warn' }, 'offline on the map since ', when(d.locationOffAt))])
    this.facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]))
  }

  async loadChannels() {
    // Each live update rereads them: an answer older than one already shown is not (the page's first read, say).
    const fresh = this.channelsOrder()
    const channels = await this.ctx.read(`/devices/${enc(this.id)}/channels`).catch(() => null)
    if (!fresh()) return
    this.channels = channels
    this.renderFacts()
  }

  trackSection() {
    this.slider = h('input', {
      type: 'range',
      id: 'replay',
      class: 'replay',
      min: 0,
      max: 0,
      value: 0,
      disabled: true,
      oninput: () => this.seek(),
    })
    // Not a live region: a screen reader would read it out at every heartbeat, and every 150 ms while the track plays; the
    // slider says the same fix as its value (aria-valuetext) when the owner moves it.
    this.trackText = h('p', { id: 'replay-at', class: 'muted', text: 'no track yet' })
    this.playButton = h('button', { type: 'button', id: 'play', onclick: () => this.play(), text: 'Play' })
    const base = `/app/api/devices/${enc(this.id)}/track`
    return h(
      'section',
      { id: 'track', 'aria-labelledby': 'track-title' },
      h('h3', { id: 'track-title', text: 'Track' }),
      h('label', { for: 'replay', text: 'Replay: move through the fixes' }),
      this.slider,
      this.trackText,
      h(
        'p',
        {},
        this.playButton,
        ' ',
        h('button', { type: 'button', onclick: () => this.loadTrack(), text: 'Reload track' }),
        ' Export: ',
        h('a', { href: `${base}.gpx`, download: `${this.id}.gpx`, text: 'GPX' }),
        ' · ',
        h('a', { href: `${base}.geojson`, download: `${this.id}.geojson`, text: 'GeoJSON' }),
      ),
    )
  }

  async loadTrack() {
    const { history } = await this.ctx.read(`/devices/${enc(this.id)}/history?limit=${TRACK_FIXES}`)
    // Newest first. A live fix newer than its newest came while it was read: it stays on the track.
    const newest = history[0]?.at ?? -Infinity
    this.points = [...history.reverse(), ...this.points.filter((p) => p.at > newest)]
    this.ctx.map.showTrack(this.points)
    this.slider.max = String(Math.max(0, this.points.length - 1))
    this.slider.value = this.slider.max
    this.slider.disabled = this.points.length < 2
    this.seek()
  }

  addFix(fix) {
    const atEnd = this.slider.value === this.slider.max
    this.points.push(fix)
    this.ctx.map.extendTrack(fix)
    this.slider.max = String(this.points.length - 1)
    this.slider.disabled = this.points.length < 2
    if (atEnd && !this.timer) this.slider.value = this.slider.max
    this.seek()
  }

  seek() {
    const i = Number(this.slider.value)
    const p = this.points[i]
    if (!p) {
      this.trackText.textContent = 'no fixes yet'
      return
    }
    this.ctx.map.replayAt(p)
    const where = `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`
    const text = `fix ${i + 1} of ${this.points.length}: ${whenText(p.at)} at ${where}, battery ${p.battery}%`
    this.trackText.textContent = text
    this.slider.setAttribute('aria-valuetext', text)
  }

  play() {
    if (this.timer) {
      clearInterval(this.timer)
      this.timer = null
      this.playButton.textContent = 'Play'
      return
    }
    if (Number(this.slider.value) >= this.points.length - 1) this.slider.value = '0'
    this.playButton.textContent = 'Pause'
    this.timer = setInterval(() => {
      const next = Number(this.slider.value) + 1
      if (next >= this.points.length) return this.play()
      this.slider.value = String(next)
      this.seek()
    }, 150)
  }

  commandSection() {
    const id = this.id
    const field = (name, label, type = 'text', value = '', limits = {}) =>
      h('label', {}, `${label} `, h('input', { name, type, value, required: true, ...limits }))
    const form = (name, legend, children, onsubmit) =>
      h(
        'form',
        { name, onsubmit: (e) => (e.preventDefault(), onsubmit(new FormData(e.target), e.submitter)) },
        h('fieldset', {}, h('legend', { text: legend }), children),
      )
    this.confirmInput = h('input', {
      name: 'confirm',
      id: 'wipe-confirm',
      type: 'text',
      autocomplete: 'off',
      oninput: () => this.checkConfirm(),
    })
    this.wipeButton = h('button', { type: 'submit', class: 'danger', disabled: true, text: 'Wipe' })
    this.result = h('p', { id: 'command-result', 'aria-live': 'polite' })
    this.commandRows = h('tbody')
    return h(
      'section',
      { id: 'commands', 'aria-labelledby': 'commands-title' },
      h('h3', { id: 'commands-title', text: 'Remote commands' }),
      h('p', {}, h('button', { type: 'button', onclick: () => this.issue('locate', {}), text: 'Locate' }), ' '),
      form(
        'ring',
        'Ring',
        [field('seconds', 'Seconds', 'number', '30', { min: 1, max: 600, step: 1 }), h('button', { type: 'submit', text: 'Ring' })],
        (f) => this.issue('ring', { seconds: Number(f.get('seconds')) }),
      ),
      form(
        'lock',
        'Lock the screen',
        [field('message', 'Message'), field('phone', 'Phone to call', 'tel'), h('button', { type: 'submit', text: 'Lock' })],
        (f) => this.issue('lock', { message: f.get('message'), phone: f.get('phone') }),
      ),
      form(
        'lost',
        'Lost mode (locked, reporting more often; leaving it starts the 72 h guard)',
        [
          h('label', {}, 'Message ', h('input', { name: 'message', type: 'text' })),
          h('label', {}, 'Phone to call ', h('input', { name: 'phone', type: 'tel' })),
          h('button', { type: 'submit', value: 'on', text: 'Lost mode on' }),
          ' ',
          h('button', { type: 'submit', value: 'off', formnovalidate: true, text: 'Lost mode off' }),
        ],
        (f, submitter) => {
          if (submitter?.value === 'off') return this.issue('lost-mode', { on: false })
          if (!f.get('message') || !f.get('phone')) return toast('error: lost-mode on needs a message and a phone number')
          return this.issue('lost-mode', { on: true, message: f.get('message'), phone: f.get('phone') })
        },
      ),
      form(
        'wipe',
        'Wipe: erases the data on the phone',
        [
          h('label', {}, h('input', { type: 'checkbox', name: 'eraseSdcard' }), ' also erase external storage'),
          h('label', {}, h('input', { type: 'checkbox', name: 'clearFindDevice' }), ' also clear the Find Device pairing'),
          h('br'),
          h('label', { for: 'wipe-confirm', text: `Type the device id (${id}) to confirm ` }),
          this.confirmInput,
          ' ',
          this.wipeButton,
        ],
        (f) =>
          this.issue(
            'wipe',
            { eraseSdcard: f.get('eraseSdcard') === 'on', keepFindDevice: f.get('clearFindDevice') !== 'on' },
            String(f.get('confirm')),
          ),
      ),
      this.result,
      (this.commandTable = h(
        'table',
        { id: 'command-table', tabindex: -1 },
        h('caption', { class: 'muted', text: 'Commands, newest first' }),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Type', 'State', 'What happened', ''].map((t) => h('th', { scope: 'col', text: t })),
          ),
        ),
        this.commandRows,
      )),
    )
  }

  checkConfirm() {
    this.wipeButton.disabled = this.confirmInput.value.trim() !== this.id
  }

  async issue(type, args, confirm) {
    const body = { type, args }
    if (confirm !== undefined) body.confirm = confirm.trim()
    // One command per press: a double click (or Enter held down) must not sign and send a second ring, lock or wipe.
    const buttons = [...this.el.querySelectorAll('#commands form button, #commands > p > button')].filter((b) => !b.disabled)
    const focused = document.activeElement
    for (const b of buttons) b.disabled = true
    this.result.className = ''
    this.result.textContent = `Signing ${type} with the owner's key and sending it to ${this.id}…`
    // The line is this command's now: a reread of the list (the live feed's) does not put the one before back on it.
    this.pending = null
    try {
      await this.send(type, body)
    } finally {
      for (const b of buttons) b.disabled = false
      this.checkConfirm()
      // A Wipe pressed from the keyboard stays disabled (its confirmation is cleared): the focus goes to that field.
      keepFocus(focused, this.confirmInput)
    }
  }

  async send(type, body) {
    try {
      const { command } = await api('POST', `/devices/${enc(this.id)}/commands`, body)
      this.pending = command.id
      this.result.textContent = command.text
      if (type === 'wipe') {
        this.confirmInput.value = ''
        this.checkConfirm()
      }
      await this.loadCommands()
    } catch (err) {
      // F3: the cloud's words say which switch is off when it refuses (broker/devices/commands.ts SERVICE_OFF).
      this.result.textContent = `error: ${err.message}`
      this.result.className = 'bad'
      if (!(err instanceof ApiError)) throw err
      return
    }
    this.result.className = ''
  }

  async loadCommands() {
    // The live feed, a command sent and the page's first read each read them: an answer older than one shown is not.
    const fresh = this.commandsOrder()
    const { commands } = await this.ctx.read(`/devices/${enc(this.id)}/commands`)
    if (!fresh()) return
    const now = this.ctx.cloudNow()
    // A Cancel that had the focus keeps it; once its command is cancelled the table (named by its caption) takes it.
    redraw(
      this.commandRows,
      commands.map((c) =>
        h(
          'tr',
          { 'data-command': c.id, 'data-key': c.id, 'data-state': c.state },
          h('td', { text: c.type }),
          // Four columns, not six: the receipt's line under what happened, so the table fits beside the map and on a phone.
          h(
            'td',
            {},
            h('span', { class: c.state === 'succeeded' ? 'on' : c.state === 'queued' ? 'warn' : '', text: c.state }),
            h('div', { class: 'muted small' }, 'issued ', since(c.createdAt, now)),
          ),
          h(
            'td',
            {},
            h('div', { class: 'wrap', text: c.text }),
            h('div', { class: `wrap small ${c.verified ? 'on' : c.receipt ? 'bad' : 'muted'}`, text: c.receiptText }),
          ),
          h(
            'td',
            {},
            c.state === 'queued'
              ? h('button', { type: 'button', onclick: () => this.cancel(c.id), 'aria-label': `Cancel ${c.type} ${c.id}`, text: 'Cancel' })
              : '',
          ),
        ),
      ),
      this.commandTable,
    )
    const mine = commands.find((c) => c.id === this.pending)
    if (mine) this.result.textContent = mine.receipt ? `${mine.text} — ${mine.receiptText}` : mine.text
    // F2: the newest locate's fix, when this console verified the phone's signed receipt of it, goes on the map and the list.
    const locate = commands.find((c) => c.type === 'locate' && c.state === 'succeeded' && c.verified)
    if (locate) {
      const { lat, lon, accuracy, at } = locate.data
      this.ctx.located(this.id, { lat, lon, accuracy, at })
    }
  }

  async cancel(commandId) {
    await attempt(() => api('POST', `/commands/${enc(commandId)}/cancel`, {}), 'Cancelled.')
    await this.loadCommands()
  }
}
