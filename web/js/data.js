// The cloud's data for the device's account, and what the rules did to it: the account (tier, quota bar, service,
// last activity), items per category, the recycle bin with days left (restore, delete for good), backups with their
// state (active / read-only / cleaning), drive files (upload, download, share links), the service's retirement (M1:
// its phase, dates, and this account's deadline, access and purge date; once purged, what the purge deleted and what the
// cloud keeps), and the cloud log as a timeline.
import { api, attempt, bytes, countdown, enc, h, lasting, redraw, since, when } from './util.js'
import { plural } from './plural.js'

const BACKUP_STATE_CLASS = { active: 'on', 'read-only': 'warn', cleaning: 'bad' }
/** M1: what the owner may still do with the account, in the CLI's words (`console service status`). */
const ACCESS = { full: 'full', 'read-only': 'read-only', closed: 'CLOSED (410)', purged: 'PURGED' }
/** M1: what a part of a purged account says in place of the broker's 410 (which points a terminal at the record). */
const PURGED = 'Deleted when the service shut down: its purge record is under Service retirement.'

export class DataPanel {
  constructor(el, account, ctx) {
    this.el = el
    this.account = account
    this.ctx = ctx
    // Each part under the panel's heading (h3, as the device page's other parts): the place the keyboard goes when what had
    // the focus in the part is drawn no more (redraw).
    this.titles = {}
    const part = (id, title) => {
      const body = h('div', { id: `${id}-body` })
      this.titles[id] = h('h4', { id: `${id}-title`, tabindex: -1, text: title })
      return [this.titles[id], body]
    }
    const [accountTitle, accountBody] = part('account', `Account ${account}`)
    const [itemsTitle, itemsBody] = part('items', 'Synced items')
    const [binTitle, binBody] = part('bin', 'Recycle bin')
    const [backupsTitle, backupsBody] = part('backups', 'Backups')
    const [driveTitle, driveBody] = part('drive', 'Drive')
    const [retirementTitle, retirementBody] = part('retirement', 'Service retirement (M1)')
    const [logTitle, logBody] = part('log', 'What the cloud did (newest first)')
    this.parts = {
      account: accountBody,
      items: itemsBody,
      bin: binBody,
      backups: backupsBody,
      drive: driveBody,
      retirement: retirementBody,
      log: logBody,
    }
    // The panel follows the cloud: the live feed says when this account's data changed (a phone synced, an item went to
    // the recycle bin, a backup, the quota, a rule acted) or the clock moved, and the panel rereads it (changed()). It
    // says when it was read, and its button reads it again.
    this.readAt = h('span', { class: 'muted small', id: 'data-read-at' })
    el.append(
      h('h3', { id: 'data-title', text: 'Cloud data' }),
      h('p', {}, h('button', { type: 'button', onclick: () => this.refresh(), text: 'Reload cloud data' }), ' ', this.readAt),
      accountTitle,
      accountBody,
      itemsTitle,
      itemsBody,
      binTitle,
      binBody,
      backupsTitle,
      backupsBody,
      driveTitle,
      driveBody,
      retirementTitle,
      retirementBody,
      logTitle,
      logBody,
    )
  }

  path(rest = '') {
    return `/accounts/${enc(this.account)}${rest}`
  }

  /**
   * The account's data changed: one reread at a time, and one more after it when more changes came meanwhile, so a
   * phone syncing a thousand photos costs a few rereads, not a thousand.
   */
  changed() {
    if (this.rereading) {
      this.again = true
      return
    }
    this.rereading = (async () => {
      do {
        this.again = false
        await this.refresh()
      } while (this.again)
      this.rereading = null
    })()
  }

  async refresh() {
    const at = Math.floor(this.ctx.cloudNow() / 1000) * 1000
    const failed = await Promise.all([
      this.show('account', () => this.loadAccount()).then(async (f) => (await this.show('drive', () => this.loadDrive())) ?? f),
      this.show('items', () => this.loadItems()),
      this.show('bin', () => this.loadBin()),
      this.show('backups', () => this.loadBackups()),
      this.show('retirement', () => this.loadRetirement()),
      this.show('log', () => this.loadLog()),
    ])
    // The console or the broker did not answer: what the panel shows is what it read before, not the cloud as of now.
    const away = failed.find((err) => err !== undefined)
    this.readAt.className = away ? 'bad small' : 'muted small'
    this.readAt.replaceChildren(
      ...(away
        ? [
            'not read at ',
            when(at),
            `: ${away.message}`,
            ...(this.readOk ? [' (shown: as the cloud had it at ', when(this.readOk), ')'] : []),
          ]
        : ['as the cloud had it at ', when(at)]),
    )
    if (!away) this.readOk = at
  }

  /**
   * Fills one part; a refusal (a frozen account, the drive while the service is off) is shown in its place, in the cloud's
   * words. When nobody answered (the console or the broker away: status 0 or 502) the part keeps what it showed, and the
   * error is returned for the panel's "read at" line.
   */
  async show(name, load) {
    try {
      const shown = await load()
      redraw(this.parts[name], shown, this.titles[name])
      return undefined
    } catch (err) {
      if (err.status === 0 || err.status === 502) return err
      // M1: every part of a purged account is refused alike; said once in full, as its purge record (loadRetirement).
      const text = err.code === 'ACCOUNT_PURGED' ? PURGED : err.message
      redraw(this.parts[name], [h('p', { class: 'warn', text })], this.titles[name])
      return undefined
    }
  }

  async loadAccount() {
    // The list, not GET /accounts/:id: opening an account counts as the owner signing in (A3), and a page that
    // refreshes itself must not keep the account from ever freezing.
    const { now, accounts } = await this.ctx.read('/accounts')
    const a = accounts.find((x) => x.id === this.account)
    this.view = a
    if (!a) return [h('p', { class: 'muted', text: 'No such account.' })]
    const share = a.quotaBytes === 0 ? 1 : Math.min(1, a.usedBytes / a.quotaBytes)
    const quotaText = `${Math.floor(share * 100)}% ${bytes(a.usedBytes)} of ${bytes(a.quotaBytes)}`
    const service =
      a.frozenAt !== null ? ['FROZEN since ', when(a.frozenAt)] : a.serviceOn ? 'on' : ['off for ', lasting(a.serviceOffAt, now)]
    return [
      h(
        'dl',
        {},
        h('dt', { text: 'Membership' }),
        h('dd', {}, a.tier, a.premiumUntil === null ? '' : [' until ', when(a.premiumUntil)]),
        h('dt', { id: 'quota-label', text: 'Quota' }),
        h(
          'dd',
          {},
          h('progress', {
            class: 'quota',
            max: a.quotaBytes,
            value: a.usedBytes,
            'aria-labelledby': 'quota-label',
            'aria-valuetext': quotaText,
          }),
          h('div', { id: 'quota-text', text: quotaText }),
        ),
        h('dt', { text: 'Cloud service' }),
        h('dd', { id: 'service', class: a.serviceOn && a.frozenAt === null ? 'on' : 'warn' }, service),
        h('dt', { text: 'Last activity' }),
        h('dd', { id: 'last-activity' }, `${a.lastActivity}, `, since(a.lastActivityAt, now)),
        h('dt', { text: 'Freezes' }),
        h(
          'dd',
          {},
          a.frozenAt !== null
            ? ['frozen since ', when(a.frozenAt), ', cloud data cleared ']
            : ['a year without activity: ', when(a.freezesAt)],
          // A3: a sign-in brings a frozen account back, empty (the page's own reads never count as one: see above).
          ...(a.frozenAt === null
            ? []
            : [h('button', { type: 'button', onclick: () => this.signIn(), text: 'Sign in (brings it back, empty)' })]),
        ),
        // A3: when a freeze cleared the account, said also once it is signed in again (no longer frozen).
        ...(a.clearedAt === null
          ? []
          : [
              h('dt', { text: 'Cloud data' }),
              h('dd', { id: 'cleared', class: 'warn' }, 'cleared on ', when(a.clearedAt), ' (a year without activity, A3)'),
            ]),
      ),
    ]
  }

  /** A3: the owner opens the account, the sign-in that brings a frozen account back; its phones then upload what they hold. */
  async signIn() {
    await attempt(() => api('GET', this.path()), 'Signed in: the account is back, its cloud data still cleared.')
    await this.refresh()
  }

  async loadItems() {
    const { totals, items } = await this.ctx.read(this.path('/items'))
    const categories = Object.entries(totals)
    return [
      h(
        'table',
        { id: 'items-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Category', 'Items', 'Size'].map((t) => h('th', { scope: 'col', text: t })),
          ),
        ),
        h(
          'tbody',
          {},
          categories.map(([c, t]) =>
            h('tr', {}, h('td', { text: c }), h('td', { text: String(t.count) }), h('td', { text: bytes(t.bytes) })),
          ),
        ),
      ),
      h(
        'details',
        {},
        h('summary', { text: plural(items.length, 'item') }),
        h(
          'ul',
          {},
          items
            .slice(0, 200)
            .map((i) =>
              h(
                'li',
                {},
                h('span', { title: 'in the cloud', 'aria-label': 'in the cloud', text: '☁ ' }),
                `${i.category}/${i.id} (${bytes(i.size)})`,
              ),
            ),
        ),
      ),
    ]
  }

  async loadBin() {
    const { windowDays, entries } = await this.ctx.read(this.path('/bin'))
    const rows = entries.map((e) =>
      h(
        'tr',
        { 'data-key': `${e.category}/${e.id}` },
        h('td', { class: 'wrap', text: `${e.category}/${e.id}` }),
        h('td', { text: bytes(e.size) }),
        // R1, R2: the days left, and when it goes (a day after the notice at the earliest), as `console bin` says them.
        h('td', { class: e.daysLeft <= 3 ? 'warn' : '', text: `${plural(e.daysLeft, 'day')} left` }),
        h('td', {}, 'purged ', when(e.purgeAt)),
        h(
          'td',
          {},
          h('button', { type: 'button', onclick: () => this.binAction('POST', e, '/restore', 'Restored.'), text: 'Restore' }),
          ' ',
          h('button', { type: 'button', onclick: () => this.purge(e), text: 'Delete for good' }),
        ),
      ),
    )
    return [
      h('p', { class: 'muted', text: `Deleted items stay ${windowDays} days, then go for good.` }),
      entries.length === 0 ? h('p', { text: 'The recycle bin is empty.' }) : h('table', { id: 'bin-table' }, h('tbody', {}, rows)),
    ]
  }

  async binAction(method, e, rest, done) {
    await attempt(() => api(method, this.path(`/bin/${enc(e.category)}/${enc(e.id)}${rest}`)), done)
    await this.refresh()
  }

  purge(e) {
    if (window.confirm(`Delete ${e.category}/${e.id} for good? It cannot be recovered.`))
      return this.binAction('DELETE', e, '', 'Deleted for good.')
  }

  async loadBackups() {
    const { now, retention, backups } = await this.ctx.read(this.path('/backups'))
    const dates = [
      ['Service off at', retention.serviceOffAt],
      ['Read-only from', retention.readOnlyAt],
      ['Cleaning from', retention.cleaningFrom],
      ['Next clean-up batch', retention.nextBatchAt],
    ].filter(([, at]) => at !== null)
    return [
      h('p', {}, 'State: ', h('strong', { id: 'backup-state', class: BACKUP_STATE_CLASS[retention.state], text: retention.state })),
      dates.length === 0
        ? ''
        : h(
            'dl',
            {},
            dates.flatMap(([k, at]) => [h('dt', { text: k }), h('dd', {}, when(at))]),
          ),
      backups.length === 0
        ? h('p', { text: 'No backups.' })
        : h(
            'table',
            { id: 'backup-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Backup', 'Device', 'Made', 'Size'].map((t) => h('th', { scope: 'col', text: t })),
              ),
            ),
            h(
              'tbody',
              {},
              backups.map((b) =>
                h(
                  'tr',
                  {},
                  h('td', { text: b.id.slice(0, 8) }),
                  h('td', { text: b.device }),
                  h('td', {}, since(b.createdAt, now)),
                  h('td', { text: bytes(b.size) }),
                ),
              ),
            ),
          ),
    ]
  }

  async loadRetirement() {
    const s = await this.ctx.read('/service')
    const plan = s.plan
    if (!plan) return [h('p', { id: 'retirement-phase', text: 'In service: no retirement is planned.' })]
    const mine = s.accounts.find((a) => a.account === this.account)
    const next = s.next ? [`${s.next.phase} on `, when(s.next.at), ' (in ', countdown(s.next.at, s.now), ')'] : 'none: the service is gone'
    const deadline = mine ? [when(mine.deadlineAt), mine.ownDeadline ? ' (this account’s own)' : ''] : when(plan.deadlineAt)
    const rows = [
      ['Phase', h('strong', { id: 'retirement-phase', class: ['planned', 'announced'].includes(s.phase) ? 'warn' : 'bad', text: s.phase })],
      ['Next', next],
      ['Announced', when(plan.announceAt)],
      ['Sync off', [when(plan.syncOffAt), ' (read-only, uploads refused)']],
      ['Migration deadline', [deadline, ' (not migrated or exported: access closed)']],
      ['Shutdown', when(plan.shutdownAt)],
    ]
    if (mine) {
      const moved = mine.migration
        ? [`${mine.migration.how === 'migrate' ? 'migrated' : 'exported'} `, when(mine.migration.at)]
        : 'not migrated'
      const purge = mine.purgedAt === null ? ['data purged from ', when(mine.purgeAt)] : ['data purged ', when(mine.purgedAt)]
      rows.push(['This account', [`access ${ACCESS[mine.access]}; `, moved, '; ', purge]])
    }
    return [
      h(
        'dl',
        { id: 'retirement' },
        rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]),
      ),
      // What the purge deleted, kind by kind, and what the cloud keeps: its cloud-log entry, as `console service status`
      // prints it. Under the dates, the panel's width: the account's own parts answer 410 from now on.
      mine?.purged ? h('p', { id: 'retirement-purged' }, h('strong', { text: 'Purge record: ' }), mine.purged) : '',
    ]
  }

  async loadDrive() {
    // D3: the cloud refuses the drive while the service is off or the account frozen; said here in its words, not asked.
    if (this.view && this.view.frozenAt !== null) return [h('p', { class: 'warn', text: 'the account is frozen: its drive was cleared' })]
    if (this.view && !this.view.serviceOn) {
      return [h('p', { class: 'warn', text: "cloud service is not enabled: turn it on in the phone's settings" })]
    }
    const upload = h('input', { type: 'file', id: 'drive-upload', onchange: (e) => this.upload(e.target) })
    const head = h('p', {}, h('label', { for: 'drive-upload', text: 'Upload a file ' }), upload)
    const { files } = await this.ctx.read(this.path('/drive/files'))
    if (files.length === 0) return [head, h('p', { text: 'No files.' })]
    return [
      head,
      h(
        'table',
        { id: 'drive-table' },
        h(
          'tbody',
          {},
          files.map((f) => {
            const link = h('span')
            return h(
              'tr',
              { 'data-key': f.id },
              h('td', { class: 'wrap', text: `${f.folder === '/' ? '' : f.folder}/${f.name}` }),
              h('td', { text: bytes(f.size) }),
              h('td', { class: 'muted', text: f.uploadedBy }),
              h(
                'td',
                {},
                h('a', { href: `/app/api${this.path(`/drive/files/${enc(f.id)}/content`)}`, download: f.name, text: 'Download' }),
                ' ',
                h('button', { type: 'button', onclick: () => this.share(f, link), text: 'Share link' }),
                ' ',
                link,
              ),
            )
          }),
        ),
      ),
    ]
  }

  async upload(input) {
    const file = input.files[0]
    if (!file) return
    await attempt(async () => {
      const res = await fetch(`/app/api${this.path(`/drive/files?name=${enc(file.name)}&folder=%2F`)}`, {
        method: 'POST',
        headers: { 'x-fakephone-page': '1', 'content-type': 'application/octet-stream' },
        body: file,
      })
      if (!res.ok) throw new Error((await res.json()).error)
    }, `Uploaded ${file.name}.`)
    await this.show('drive', () => this.loadDrive())
    await this.show('account', () => this.loadAccount())
  }

  async share(f, link) {
    const made = await attempt(() => api('POST', this.path(`/drive/files/${enc(f.id)}/shares`), {}))
    if (made) link.replaceChildren(h('a', { href: made.url, text: made.url }))
  }

  async loadLog() {
    const { log } = await this.ctx.read(this.path('/log?limit=100'))
    if (log.length === 0) return [h('p', { class: 'muted', text: 'No rule has acted on this account yet.' })]
    return [
      h(
        'ol',
        { class: 'timeline', id: 'timeline' },
        log.map((e) => h('li', { 'data-rule': e.rule }, when(e.at), ` · ${e.rule} · ${e.count}`, e.message)),
      ),
    ]
  }
}
