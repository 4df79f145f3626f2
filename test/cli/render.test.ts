/** What the console says about devices: F1 position and age, F3 offline positions. */
import t from 'tap'
import { locationSourceText, renderDevices, renderHistory, table } from '../../cli/render.js'
import type { DeviceView } from '../../broker/devices/state-store.js'
import { deviceView, heartbeat } from '../fixtures/cloud.js'

const now = Date.UTC(2026, 0, 1, 12)
const base: DeviceView = deviceView({ id: 'p', account: 'a', presenceAt: now })
const last = { ...heartbeat(3, { at: now - 5000, lat: 1.5, lon: 2.25, battery: 42.4, charging: true }), receivedAt: now }

t.test('F1/F3: each device row says where it is, how old that is, or why its position is offline; F2: lost mode', (t) => {
  const out = renderDevices(
    [
      { ...base, id: 'moving', last },
      { ...base, id: 'no-find', findDevice: false, locationOffAt: now, last },
      { ...base, id: 'no-cloud', online: false, cloudService: false, locationOffAt: now, last },
      { ...base, id: 'new' },
      { ...base, id: 'lost', lostMode: { on: true, message: 'm', phone: 'p', at: now } },
      { ...base, id: 'found', lostMode: { on: false, message: null, phone: null, at: now } },
    ],
    now,
  )
  t.match(out, /moving\s+a\s+online\s+1\.50000,2\.25000\s+5s\s+42% charging\s+wifi/)
  t.match(out, /no-find\s+a\s+online\s+offline \(Find Device off\)\s+-\s+42% charging/)
  t.match(out, /no-cloud\s+a\s+offline\s+offline \(cloud service off\)\s+-/)
  t.match(out, /new\s+a\s+online\s+no fix yet\s+-\s+-\s+-\s+-\n/)
  t.match(out, /lost\s+a\s+online\s+no fix yet\s+-\s+-\s+-\s+on\n/, 'F2: lost mode on')
  t.match(out, /found\s+a\s+online\s+no fix yet\s+-\s+-\s+-\s+off\n/, 'F2: lost mode off')
  t.equal(renderDevices([], now), 'No devices registered. Add one with: fakephone device add ID\n')
  t.equal(renderHistory('p', [], now), 'No locations recorded for p.\n')
  t.equal(table(['A', 'LONG'], [['xyz', 'b']]), 'A    LONG\nxyz  b\n', 'columns are as wide as their widest cell')
  t.end()
})

t.test('M2: a device told to follow its account to another cloud says where it went, not just "offline"', (t) => {
  const to = { to: 'http://127.0.0.1:19180', account: 'a', at: now - 60_000 }
  const out = renderDevices(
    [
      { ...base, id: 'followed', online: false, last, moved: { ...to, notice: 'delivered', deliveredAt: now - 30_000 } },
      { ...base, id: 'away', online: false, moved: { ...to, notice: 'queued', deliveredAt: null } },
      { ...base, id: 'missed', online: false, moved: { ...to, notice: 'expired', deliveredAt: null } },
      { ...base, id: 'back', moved: { ...to, notice: 'queued', deliveredAt: null } },
    ],
    now,
  )
  t.match(out, /followed\s+a\s+moved to http:\/\/127\.0\.0\.1:19180 on 2026-01-01 11:59 UTC\s+1\.50000,2\.25000/)
  t.match(out, /away\s+a\s+offline: follows to http:\/\/127\.0\.0\.1:19180 when back \(told 2026-01-01 11:59 UTC\)\s+no fix yet/)
  t.match(out, /missed\s+a\s+offline: missed the move to http:\/\/127\.0\.0\.1:19180 \(told 2026-01-01 11:59 UTC\)/)
  t.match(out, /back\s+a\s+online\s+no fix yet/, 'a device connected here is online here, whatever it was told')
  t.end()
})

t.test('F1: phone status names a gpsd it is still connecting to', (t) => {
  const gpsd = { kind: 'gpsd', host: 'gps.local', port: 2947, retryInMs: 0, attempt: 0, lost: false, fix: null, maxAgeMs: 10_000 } as const
  t.equal(locationSourceText({ ...gpsd, state: 'connecting' }), 'gpsd gps.local:2947: connecting')
  t.end()
})
