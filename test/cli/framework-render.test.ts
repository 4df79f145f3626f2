/** The framework's words for people (X1-X3) in the states the end-to-end CLI tests do not reach. */
import t from 'tap'
import { renderChannels, renderInbox } from '../../cli/framework-render.js'

t.test('the device view says when a device was last on its push channel, and counts in words', (t) => {
  const view = {
    now: 600_000,
    device: 'phone-a',
    data: { online: false, cloudService: false, since: null },
    push: { connected: false, since: 540_000 },
    notifications: { queued: 1, delivered: 0, expired: 0 },
    logs: { events: 1, lastReceivedAt: 0 },
  }
  t.equal(
    renderChannels(view),
    [
      'device        phone-a',
      'data channel  offline (cloud service off)',
      'push channel  disconnected since 1m 0s ago',
      'notifications 1 queued, 0 delivered, 0 expired',
      'behaviour log 1 event received, the last 10m 0s ago',
      '',
    ].join('\n'),
  )
  t.equal(renderInbox([]), 'No notifications shown yet.\n')
  t.end()
})
