/** M3 (and M2's building blocks) on the console API: the blob routes and every refusal of the idempotent import, record by record. */
import t from 'tap'
import { createHash } from 'node:crypto'
import { DEFAULT_BROKER_OPTIONS } from '../../../broker/server.js'
import { ConsoleApiError, ConsoleClient } from '../../../cli/console-client.js'
import type { ImportReply, ImportRequest } from '../../../common/cloud/transfer-api.js'
import { PACKAGE_FORMAT, PART_NAMES } from '../../../common/cloud/backup-api.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('M3: blob routes and import refusals, each with its reason', async (t) => {
  const cloud = await startCloud(t, {
    cloud: { ...DEFAULT_BROKER_OPTIONS.cloud, accounts: { ...DEFAULT_BROKER_OPTIONS.cloud.accounts, freeQuotaBytes: 1000 } },
  })
  await addDevice(cloud, 'phone-x', 'xavier')
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  const post = (account: string, req: ImportRequest): Promise<ImportReply> => api.request(`/api/accounts/${account}/import`, req)
  const now = cloud.clock.now()

  await t.rejects(api.request('/api/accounts/nobody/export'), { status: 404, message: 'account "nobody" not found' })
  t.same(await post('zoe', {}), {
    now,
    account: 'zoe',
    imported: 1,
    present: 0,
    failed: 0,
    outcomes: [{ kind: 'account', id: 'zoe', result: 'imported' }],
  })
  t.match(await post('zoe', { account: { tier: 'premium', premiumUntil: null, createdAt: 1 } }), {
    outcomes: [{ kind: 'account', id: 'zoe', result: 'present' }],
  })
  t.match(await api.request('/api/accounts/zoe/export'), { account: { id: 'zoe', tier: 'free', createdAt: now, lastActivity: 'import' } })

  const bytes = Buffer.from('0123456789')
  await t.rejects(api.request('/api/accounts/zoe/blobs/nothex?size=1'), { status: 400, message: /SHA-256 in lower-case hex/ })
  await t.rejects(api.stream('GET', `/api/accounts/zoe/blobs/${sha(bytes)}/content`), { status: 404, message: /is not in account "zoe"/ })
  const half = await api.bytes('PUT', `/api/accounts/zoe/blobs/${sha(bytes)}?size=10&offset=0`, new Uint8Array(bytes.subarray(0, 4)))
  t.match(JSON.parse(half.toString()), { stored: false, offset: 4 }, 'a cut upload keeps what arrived')
  t.match(await api.request(`/api/accounts/zoe/blobs/${sha(bytes)}?size=10`), { stored: false, offset: 4 })
  const rest = await api.stream('PUT', `/api/accounts/zoe/blobs/${sha(bytes)}?size=10&offset=4`, new Uint8Array(bytes.subarray(4)))
  t.equal(rest.statusCode, 201)
  rest.resume()
  const big = Buffer.alloc(2000, 1)
  await t.rejects(api.request(`/api/accounts/zoe/blobs/${sha(big)}?size=2000`), { status: 507, message: /over quota/ })

  const item = { category: 'notes' as const, id: 'n1.txt', sha256: sha(bytes), size: 10, meta: { title: 'n' }, modifiedAt: now }
  const row = { ...item, seq: 1, changedBy: 'phone-x', deletedAt: null, purgeAt: null, daysLeft: null }
  const missing = Buffer.from('never uploaded')
  const manifest = {
    format: PACKAGE_FORMAT as typeof PACKAGE_FORMAT,
    device: 'phone-x',
    createdAt: now,
    size: 10,
    parts: PART_NAMES.map((name) => ({ name, files: 0, bytes: 0, count: 0 })),
  }
  const file = { id: 'f1', name: 'a.txt', folder: '/', sha256: sha(bytes), size: 10, createdAt: now, updatedAt: now, uploadedBy: 'console' }
  const reply = await post('zoe', {
    devices: [{ id: 'phone-x', createdAt: now }],
    items: [row, { ...row, id: 'n2.txt', sha256: sha(missing), size: missing.length }, { ...row, id: 'n3.txt', size: 11 }],
    drive: [file, { ...file, id: 'f2' }],
    backups: [{ id: 'b1', device: 'phone-x', sha256: sha(bytes), size: 10, createdAt: now, planId: null, manifest }],
    locations: [
      {
        device: 'phone-x',
        seq: 1,
        at: now,
        lat: 1,
        lon: 2,
        accuracy: 3,
        speed: 0,
        battery: 50,
        charging: true,
        network: 'wifi',
        receivedAt: now,
      },
    ],
  })
  t.same(reply.outcomes, [
    {
      kind: 'device',
      id: 'phone-x',
      result: 'failed',
      // M3: which account holds it, and the two ways on.
      error:
        'device phone-x is registered to account "xavier" on this cloud: import into that account, or remove the device ' +
        'there first (fakephone device remove phone-x --data DIR)',
    },
    { kind: 'item', id: 'notes/n1.txt', result: 'imported' },
    { kind: 'item', id: 'notes/n2.txt', result: 'failed', error: `blob ${sha(missing)} has not been uploaded; upload it first` },
    { kind: 'item', id: 'notes/n3.txt', result: 'failed', error: `the record says 11 bytes but blob ${sha(bytes)} has 10` },
    { kind: 'drive', id: 'f1', result: 'imported' },
    { kind: 'drive', id: 'f2', result: 'failed', error: 'duplicate name: / already holds a file named "a.txt" (id f1)' },
    { kind: 'backup', id: 'b1', result: 'imported' },
    {
      kind: 'locations',
      id: 'phone-x',
      result: 'failed',
      error: 'device phone-x is not a device of zoe here: account "xavier" holds it',
    },
  ])
  // A device no account here holds: its history is refused, and nothing names an owner.
  const fix = { seq: 1, at: now, lat: 1, lon: 2, accuracy: 3, speed: 0, battery: 50, charging: true, network: 'wifi' as const }
  t.match(await post('zoe', { locations: [{ ...fix, device: 'phone-nobody', receivedAt: now }] }), {
    outcomes: [{ kind: 'locations', result: 'failed', error: /^device phone-nobody is not a device of zoe here$/ }],
  })
  // A device and its history in one request: the history goes in with it.
  t.match(
    await post('walt', { devices: [{ id: 'phone-w', createdAt: now }], locations: [{ ...fix, device: 'phone-w', receivedAt: now }] }),
    {
      failed: 0,
      outcomes: [{ kind: 'account' }, { kind: 'device', result: 'imported' }, { kind: 'locations', id: 'phone-w', result: 'imported' }],
    },
  )
  // A device named as the console signs in to MQTT (an old cloud's, before the rule) is refused as device add refuses
  // it, with its history: it could never connect here.
  t.same(
    (await post('walt', { devices: [{ id: 'console', createdAt: now }], locations: [{ ...fix, device: 'console', receivedAt: now }] }))
      .outcomes,
    [
      {
        kind: 'device',
        id: 'console',
        result: 'failed',
        error: `invalid device id "console": it is the console's MQTT user name; give the device another id`,
      },
      { kind: 'locations', id: 'console', result: 'failed', error: 'device console is not a device of walt here' },
    ],
  )
  t.match(await post('zoe', { items: [{ ...row, sha256: sha(missing), size: missing.length }] }), {
    outcomes: [{ result: 'failed', error: `a different version of notes/n1.txt is here already (SHA-256 ${sha(bytes)})` }],
  })
  // Each record is charged: 10 + 10 + 10 bytes of 1000; a record that does not fit fails alone (its blob is here, uploaded by xavier).
  const nine = Buffer.alloc(980, 9)
  await api.bytes('PUT', `/api/accounts/xavier/blobs/${sha(nine)}?size=980&offset=0`, new Uint8Array(nine))
  t.match(await post('zoe', { items: [{ ...row, id: 'big.txt', sha256: sha(nine), size: 980 }] }), {
    failed: 1,
    outcomes: [{ result: 'failed', error: /^over quota: notes\/big.txt \(980 bytes\) needs 980 B but 970 B of 1000 B is free/ }],
  })
  t.match(await api.request('/api/accounts/zoe/log?limit=1'), {
    log: [{ rule: 'import', message: 'imported 3 records (0 already here, 5 refused)', count: 3 }],
  })
  // M3: one record is "1 record" in the cloud log (the account made before an import's records, say), as on the terminal.
  t.match(await post('yara', { account: { tier: 'free', premiumUntil: null, createdAt: now } }), { imported: 1 })
  t.match(await api.request('/api/accounts/yara/log?limit=1'), {
    log: [{ rule: 'import', message: 'imported 1 record (0 already here, 0 refused)', count: 1 }],
  })
  await t.rejects(post('zoe', { items: [{ nonsense: true }] } as unknown as ImportRequest), ConsoleApiError)

  // History of a device of the account itself: imported once, then present.
  const history: ImportRequest = {
    locations: [
      {
        device: 'phone-x',
        seq: 1,
        at: now,
        lat: 1,
        lon: 2,
        accuracy: 3,
        speed: 0,
        battery: 50,
        charging: true,
        network: 'wifi',
        receivedAt: now,
      },
    ],
    commands: [
      {
        id: 'c1',
        device: 'phone-x',
        type: 'ring',
        state: 'cancelled',
        reason: 'cancelled by the owner',
        data: null,
        receipt: null,
        command: { id: 'c1', device: 'phone-x', type: 'ring', args: { seconds: 1 } },
        createdAt: now,
        updatedAt: now,
        expiresAt: now + 1,
        sentAt: null,
      },
    ],
  }
  t.match(await post('xavier', history), { imported: 2 })
  t.match(await post('xavier', history), { imported: 0, present: 2 })
  t.match(await api.request('/api/accounts/xavier/export'), {
    locations: [{ device: 'phone-x', seq: 1, charging: true }],
    commands: [{ id: 'c1', state: 'cancelled', data: null, receipt: null }],
  })
})

t.test(
  'M3: an import (from a bag, an untrusted file) naming a device, sync item or drive file as the cloud never would is refused ' +
    'with the reason, and nothing is stored',
  async (t) => {
    const cloud = await startCloud(t)
    const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
    const post = (req: ImportRequest): Promise<ImportReply> => api.request('/api/accounts/zoe/import', req)
    const now = cloud.clock.now()
    await post({})
    const bytes = Buffer.from('0123456789')
    const stored = await api.stream('PUT', `/api/accounts/zoe/blobs/${sha(bytes)}?size=10&offset=0`, new Uint8Array(bytes))
    stored.resume()
    const row = { category: 'notes' as const, id: 'n1.txt', sha256: sha(bytes), size: 10, meta: {}, modifiedAt: now }
    const item = { ...row, seq: 1, changedBy: 'console', deletedAt: null, purgeAt: null, daysLeft: null }
    const file = { id: 'f1', name: 'a.txt', folder: '/', sha256: sha(bytes), size: 10, createdAt: now, updatedAt: now, uploadedBy: 'x' }
    for (const [req, where] of [
      // A topic level with wildcards, and one that is two levels: fp/v1/<id>/cmd would not be this device's topic.
      [{ devices: [{ id: 'phone+#', createdAt: now }] }, /devices\[0\]\.id/],
      [{ devices: [{ id: 'a/b', createdAt: now }] }, /devices\[0\]\.id/],
      // Phones write a pulled item to <category folder>/<id>.
      [{ items: [{ ...item, id: '../../.profile' }] }, /items\[0\]\.id/],
      [{ drive: [{ ...file, name: '../x' }] }, /drive\[0\]\.name/],
      [{ drive: [{ ...file, folder: '/a/../../b' }] }, /drive\[0\]\.folder/],
    ] as const) {
      await t.rejects(post(req as unknown as ImportRequest), { status: 400, message: where }, JSON.stringify(req).slice(0, 80))
    }
    const snapshot = await api.request<{ devices: unknown[]; items: unknown[]; drive: unknown[] }>('/api/accounts/zoe/export')
    t.same([snapshot.devices, snapshot.items, snapshot.drive], [[], [], []], 'nothing of them was stored')
    t.match(await post({ devices: [{ id: 'phone-z', createdAt: now }], items: [item], drive: [file] }), { failed: 0 }, 'good names go in')
  },
)
