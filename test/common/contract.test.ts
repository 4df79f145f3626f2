import t from 'tap'
import { readFileSync } from 'node:fs'
import {
  ACCOUNT_NAME_RULE,
  AccountNameSchema,
  DEVICE_PUBLISH_KINDS,
  TOPICS,
  accountSegment,
  decodePayload,
  decodeValue,
  encodePayload,
  parseTopic,
  payloadDecoder,
  topicFor,
} from '../../common/contract.js'
import { owntracksTopic, parseOwnTracksTopic } from '../../common/owntracks.js'
import { heartbeat } from '../fixtures/cloud.js'

t.test('topics are built and split the same way', (t) => {
  t.equal(topicFor('pi-1', 'heartbeat'), 'fp/v1/pi-1/heartbeat')
  t.same(parseTopic('fp/v1/pi-1/heartbeat'), { deviceId: 'pi-1', kind: 'heartbeat' })
  for (const bad of ['fp/v1/+/heartbeat', 'fp/v1/pi-1/#', 'fp/v2/pi-1/heartbeat', 'fp/v1/pi-1/a/b', 'x'])
    t.equal(parseTopic(bad), null, bad)
  t.ok(DEVICE_PUBLISH_KINDS.has('heartbeat') && DEVICE_PUBLISH_KINDS.has('presence') && DEVICE_PUBLISH_KINDS.has('status'))
  t.end()
})

t.test('F1 heartbeat payloads are checked field by field', (t) => {
  t.same(decodePayload('heartbeat', JSON.stringify(heartbeat(1))), { ok: true, value: heartbeat(1) })
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"seq":', /not valid JSON/],
    ['latitude out of range', JSON.stringify(heartbeat(1, { lat: 91 })), /lat/],
    ['unknown network', JSON.stringify({ ...heartbeat(1), network: '5g' }), /network/],
    ['extra field', JSON.stringify({ ...heartbeat(1), evil: true }), /evil/],
    ['missing field', JSON.stringify({ seq: 1 }), /at/],
  ]
  for (const [name, payload, reason] of cases) {
    const d = decodePayload('heartbeat', Buffer.from(payload))
    t.equal(d.ok, false, name)
    if (!d.ok) t.match(d.reason, reason, name)
  }
  t.throws(() => encodePayload('heartbeat', heartbeat(1, { battery: 101 })), 'our own bugs never reach the wire')
  t.end()
})

t.test('docs/CONTRACT.md documents every topic of the contract', (t) => {
  const doc = readFileSync(new URL('../../docs/CONTRACT.md', import.meta.url), 'utf8')
  for (const [kind, spec] of Object.entries(TOPICS)) {
    t.match(doc, `fp/v1/<device>/${kind}`, `${kind} is documented`)
    t.match(doc, spec.direction, `${kind} direction is documented`)
  }
  t.end()
})

t.test('X2 a behaviour-log batch is checked event by event', (t) => {
  const event = { seq: 0, at: 1, type: 'app-opened', detail: 'Weather' }
  t.equal(decodePayload('logs', JSON.stringify({ events: [event] })).ok, true)
  for (const [name, batch] of [
    ['empty', { events: [] }],
    ['unknown type', { events: [{ ...event, type: 'keystroke' }] }],
    ['too long a detail', { events: [{ ...event, detail: 'x'.repeat(201) }] }],
    ['more than 500 events', { events: Array.from({ length: 501 }, (_, seq) => ({ ...event, seq })) }],
  ] as const) {
    t.equal(decodePayload('logs', JSON.stringify(batch)).ok, false, name)
  }
  t.end()
})

t.test('issue 14: payloadDecoder(kind) decides every payload as decodePayload(kind) does, with a compiled check or with zod', (t) => {
  const event = { seq: 0, at: 1, type: 'app-opened', detail: 'Weather' }
  const payloads = {
    heartbeat: [
      JSON.stringify(heartbeat(1)),
      '{"seq":',
      JSON.stringify(heartbeat(1, { lat: 91 })),
      JSON.stringify({ ...heartbeat(1), evil: true }),
      JSON.stringify({ seq: 1 }),
    ],
    // The logs schema has an array: zod alone checks it (no compiled check).
    logs: [JSON.stringify({ events: [event] }), JSON.stringify({ events: [] }), 'not json'],
  } as const
  for (const kind of ['heartbeat', 'logs'] as const) {
    const decode = payloadDecoder(kind)
    for (const payload of payloads[kind]) {
      // Twice: the first call looks the compiled check up, the second uses what it found.
      for (const round of [1, 2]) t.same(decode(Buffer.from(payload)), decodePayload(kind, payload), `${kind} ${payload} (${round})`)
    }
  }
  t.end()
})

t.test('account names: real-looking names pass; a name that could leave a file, a topic level or a path is refused with the rule', (t) => {
  for (const good of ['alice', 'alice@example.com', 'qa-fleet-0001', 'qa-owner-001', 'default', 'a', 'first.last', '_svc', 'x'.repeat(64)])
    t.ok(AccountNameSchema.safeParse(good).success, good)
  const bad = [
    '',
    '.alice',
    '..',
    '-a',
    'a/b',
    '../keys',
    'a b',
    'a\u0000b',
    'tab\there',
    'a+b',
    'a#',
    '$SYS',
    'Alice',
    'x'.repeat(65),
    'a%2F',
  ]
  for (const name of bad)
    t.same(decodeValue(AccountNameSchema, name), { ok: false, reason: `✖ ${ACCOUNT_NAME_RULE}` }, JSON.stringify(name))
  t.match(ACCOUNT_NAME_RULE, /1-64 of a-z, 0-9, "\.", "_", "-" and "@", not starting with "\." or "-"/)
  t.end()
})

t.test('an account name made before the rule is one safe segment: encoded, never a path, a wildcard or a name the rule allows', (t) => {
  for (const good of ['alice', 'alice@example.com', 'qa-owner-001']) t.equal(accountSegment(good), good, 'a name the rule accepts is kept')
  const legacy = ['a/b', '../keys', '..', '.', 'Bob Smith', '+', '#', 'a\nb', 'Ünïcode', '~x', '%41', 'A', 'x'.repeat(65), 'x/'.repeat(200)]
  const segments = legacy.map(accountSegment)
  for (const [i, seg] of segments.entries()) {
    t.match(seg, /^~[A-Za-z0-9_@%-]+$|^~~[0-9a-f]{64}$/, `${JSON.stringify(legacy[i])} -> ${seg}`)
    t.ok(seg.length <= 120, 'short enough for a file name')
    t.notOk(AccountNameSchema.safeParse(seg).success, 'never a name the rule allows (no two accounts share it)')
  }
  t.equal(new Set(segments).size, legacy.length, 'no two names share a segment')
  t.equal(accountSegment('Bob Smith'), '~%42ob%20%53mith')
  t.equal(accountSegment('x/'.repeat(200)), accountSegment('x/'.repeat(200)), 'a long name hashes the same every time')
  // OwnTracks: USER is one topic level whatever the name.
  t.equal(owntracksTopic('alice', 'p-1'), 'owntracks/alice/p-1')
  t.same(parseOwnTracksTopic(owntracksTopic('a/b', 'p-1', 'cmd')), { user: '~a%2Fb', device: 'p-1', sub: 'cmd' })
  t.same(parseOwnTracksTopic(owntracksTopic('+', 'p-1')), { user: '~%2B', device: 'p-1', sub: null }, 'no wildcard')
  t.end()
})
