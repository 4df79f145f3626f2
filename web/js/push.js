// X3 on the device page: the notifications the cloud holds for the phone (queued / delivered, with the delay / expired)
// and a form to send one over the push channel.
import { age, api, attempt, enc, h, inOrder, since, when } from './util.js'

export class PushPanel {
  constructor(el, id, ctx) {
    this.el = el
    this.id = id
    this.ctx = ctx
    this.order = inOrder()
    this.rows = h('tbody')
    this.summary = h('p', { class: 'muted' })
    el.append(
      h('h3', { id: 'push-title', text: 'Push notifications' }),
      this.summary,
      h(
        'form',
        { name: 'notify', onsubmit: (e) => (e.preventDefault(), this.send(new FormData(e.target), e.target)) },
        h('label', {}, 'Title ', h('input', { name: 'title', type: 'text', required: true })),
        h('label', {}, 'Text ', h('input', { name: 'body', type: 'text' })),
        h('button', { type: 'submit', text: 'Send' }),
      ),
      h(
        'table',
        { id: 'push-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Title', 'State', 'Sent', 'Detail'].map((t) => h('th', { scope: 'col', text: t })),
          ),
        ),
        this.rows,
      ),
    )
  }

  async refresh() {
    // A heartbeat rereads them while an earlier read may be on its way: an answer older than one shown is not.
    const fresh = this.order()
    const { notifications } = await this.ctx.read(`/devices/${enc(this.id)}/notifications?limit=20`)
    if (!fresh()) return
    const now = this.ctx.cloudNow()
    const detail = (n) => {
      if (n.state === 'delivered') return `delivered after ${age(n.delayMs)}`
      if (n.state === 'expired') return ['expired ', when(n.expiredAt)]
      return ['waits until the phone connects (expires ', when(n.expiresAt), ')']
    }
    this.summary.textContent = notifications.length === 0 ? 'No notifications.' : ''
    this.rows.replaceChildren(
      ...notifications.map((n) =>
        h(
          'tr',
          { 'data-state': n.state },
          h('td', { text: n.title }),
          h('td', { class: n.state === 'delivered' ? 'on' : n.state === 'queued' ? 'warn' : 'off', text: n.state }),
          h('td', {}, since(n.createdAt, now)),
          h('td', {}, detail(n)),
        ),
      ),
    )
  }

  async send(form, el) {
    const sent = await attempt(
      () => api('POST', `/devices/${enc(this.id)}/notifications`, { title: form.get('title'), body: form.get('body') }),
      'Notification queued.',
    )
    if (sent) el.reset()
    await this.refresh()
  }
}
