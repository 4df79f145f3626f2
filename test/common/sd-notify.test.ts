/**
 * Telling systemd that a daemon is ready, alive and stopping, through the
 * real systemd-notify program and a stand-in for the service manager's socket.
 */
import t from 'tap'
import { once } from 'node:events'
import { ManualClock } from '../../common/clock.js'
import { SystemdNotifier } from '../../common/sd-notify.js'
import { LogCapture } from '../fixtures/logs.js'
import { fakeServiceManager, noServiceManager } from '../fixtures/service-manager.js'

t.test('outside systemd (no NOTIFY_SOCKET) nothing is sent and there is no watchdog', async (t) => {
  const clock = new ManualClock()
  const notifier = new SystemdNotifier({ env: { WATCHDOG_USEC: '1000000' }, clock, log: new LogCapture().logger() })
  t.equal(notifier.enabled, false)
  t.equal(notifier.watchdogEveryMs, null)
  let sent = 0
  notifier.on('sent', () => sent++)
  await notifier.ready('up')
  await notifier.stopping()
  t.equal(sent, 0)
  t.equal(clock.waiting, 0, 'no watchdog timer')
})

t.test('the watchdog interval is half of WatchdogSec=, for this process only', (t) => {
  const make = (env: Record<string, string>): SystemdNotifier =>
    new SystemdNotifier({ env: { NOTIFY_SOCKET: '/run/x', ...env }, clock: new ManualClock(), log: new LogCapture().logger(), pid: 42 })
  t.equal(make({ WATCHDOG_USEC: '30000000' }).watchdogEveryMs, 15_000)
  t.equal(make({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }).watchdogEveryMs, 15_000)
  t.equal(make({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }).watchdogEveryMs, null, "another process's watchdog")
  t.equal(make({ WATCHDOG_USEC: '1' }).watchdogEveryMs, 1, 'never less than 1 ms')
  const own = new SystemdNotifier({
    env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '4000', WATCHDOG_PID: String(process.pid) },
    clock: new ManualClock(),
    log: new LogCapture().logger(),
  })
  t.equal(own.watchdogEveryMs, 2, 'this process by default')
  t.equal(make({}).watchdogEveryMs, null, 'no WatchdogSec=')
  t.equal(make({ WATCHDOG_USEC: 'soon' }).watchdogEveryMs, null)
  t.end()
})

t.test(
  'READY=1, WATCHDOG=1 on the injected clock and STOPPING=1 reach the service manager through systemd-notify',
  { skip: noServiceManager },
  async (t) => {
    const manager = await fakeServiceManager(t)
    const clock = new ManualClock()
    const env = { NOTIFY_SOCKET: manager.socket, WATCHDOG_USEC: '2000000', PATH: process.env.PATH }
    const notifier = new SystemdNotifier({ env, clock, log: new LogCapture().logger() })
    await notifier.ready('listening on 127.0.0.1')
    t.equal(await manager.waitFor('READY=1'), 'READY=1 STATUS=listening on 127.0.0.1')
    t.equal(clock.waiting, 1, 'a watchdog timer waits')
    const petted = once(notifier, 'sent')
    clock.advance(1000)
    t.same(await petted, [['WATCHDOG=1'], true], 'the watchdog is petted at half of WatchdogSec=')
    t.ok(await manager.waitFor('WATCHDOG=1'))
    await notifier.stopping()
    t.ok(await manager.waitFor('STOPPING=1'))
    clock.advance(10_000)
    t.equal(manager.messages.filter((m) => m === 'WATCHDOG=1').length, 1, 'no watchdog after stopping')
  },
)

t.test('a notify program that is missing or fails is logged, never thrown', async (t) => {
  const logs = new LogCapture()
  const clock = new ManualClock()
  const missing = new SystemdNotifier({
    env: { NOTIFY_SOCKET: '/run/x' },
    clock,
    log: logs.logger(),
    command: '/nonexistent/systemd-notify',
  })
  const sent = once(missing, 'sent')
  await missing.ready('up')
  t.same(await sent, [['READY=1', 'STATUS=up'], false])
  t.match(await logs.waitFor((l) => l.msg === 'could not notify systemd'), { why: /ENOENT/ })
  const failing = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, clock, log: logs.logger(), command: '/bin/false' })
  await failing.stopping()
  t.ok(
    logs.lines.some((l) => typeof l.why === 'string' && l.why.startsWith('Command failed: /bin/false STOPPING=1')),
    'a failing systemd-notify is logged',
  )
  const fired = new SystemdNotifier({
    env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '2000' },
    clock,
    log: logs.logger(),
    command: '/bin/true',
  })
  await fired.ready('up')
  fired.close()
  clock.advance(5)
  t.equal(clock.waiting, 0, 'closing stops the watchdog')
})
