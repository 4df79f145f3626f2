/** The push channel's frames (X1, X3) are checked the same way on both sides. */
import t from 'tap'
import { ClientFrameSchema, ServerFrameSchema, decodeFrame, encodeFrame } from '../../common/push-protocol.js'

const id = '0d3c7a52-8e0b-4d4e-9f3a-6b1c2d3e4f50'

t.test('push frames are checked field by field; binary frames are not part of the protocol', (t) => {
  t.same(decodeFrame(ClientFrameSchema, JSON.stringify({ type: 'ack', id }), false), { ok: true, value: { type: 'ack', id } })
  t.match(decodeFrame(ClientFrameSchema, Buffer.from('{}'), true), { ok: false, reason: /binary/ })
  const notification = { type: 'notification', id, kind: 'weather', title: 'Gale', body: '', createdAt: 1, expiresAt: 2 }
  t.equal(decodeFrame(ServerFrameSchema, JSON.stringify(notification), false).ok, true)
  const refused: [string, unknown][] = [
    ['no title', { ...notification, title: '' }],
    ['an id that is not a UUID', { ...notification, id: '42' }],
    ['an unknown kind', { ...notification, kind: 'ad' }],
    ['an unknown frame type', { type: 'reboot' }],
  ]
  for (const [name, frame] of refused) t.equal(decodeFrame(ServerFrameSchema, JSON.stringify(frame), false).ok, false, name)
  t.throws(() => encodeFrame(ClientFrameSchema, { type: 'hello', v: 1, device: 'Bad Id', secret: 's' }), 'our own bugs never reach the wire')
  t.end()
})
