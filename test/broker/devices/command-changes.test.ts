/**
 * F2: the broker says to the console, as it happens, that a command's state changed -- queued, cancelled, expired, or a
 * step its phone reported -- on a topic only the console may hear: how a console watching the broker learns of a
 * command queued for a phone that is away, which goes out on no device topic. Only ids and the state: no arguments.
 */
import t from 'tap'
import { ConsoleClient } from '../../../cli/console-client.js'
import { ManualClock, SimulatedClock } from '../../../common/clock.js'
import {
  COMMAND_CHANGES_FILTER,
  CommandChangedSchema,
  commandChangedTopic,
  decodeValue,
  isCommandChangedTopic,
  type CommandChanged,
} from '../../../common/contract.js'
import { addDevice, connectConsole, connectDevice, recordMessages, startCloud, subackCode } from '../../fixtures/cloud.js'
import { makeOwner, signed } from '../../fixtures/owner.js'

t.test('F2 a command queued for a phone that is away, its cancel and its expiry reach the console, and nothing else', async (t) => {
  const clock = new SimulatedClock(new ManualClock())
  const cloud = await startCloud(t, {}, clock)
  await addDevice(cloud, 'phone-a', 'alice')
  const owner = makeOwner(t)
  const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
  // No console listens yet: nothing is said (and nothing is kept for one that comes later).
  const unheard = await api.submit(signed(owner, 'phone-a', 'ring', { seconds: 1 }, clock.now()))
  t.equal(unheard.command.state, 'queued')

  const console_ = await connectConsole(t, cloud)
  const said: [string, unknown][] = []
  console_.on('message', (topic, payload) => said.push([topic, JSON.parse(payload.toString())]))
  t.equal(await subackCode(console_, COMMAND_CHANGES_FILTER), 1)
  const heard = recordMessages(console_)
  const next = (want: CommandChanged): Promise<unknown> =>
    heard.waitFor((topic, payload) => topic === commandChangedTopic(want.device) && JSON.stringify(payload) === JSON.stringify(want))

  const ring = signed(owner, 'phone-a', 'ring', { seconds: 3 }, clock.now())
  t.equal((await api.submit(ring)).command.state, 'queued')
  t.same(await next({ device: 'phone-a', command: ring.id, state: 'queued' }), { device: 'phone-a', command: ring.id, state: 'queued' })
  t.equal(commandChangedTopic('phone-a'), 'fp/v1/commands/phone-a/changed')
  t.ok(isCommandChangedTopic('fp/v1/commands/phone-a/changed'))
  t.notOk(isCommandChangedTopic('fp/v1/phone-a/cmd'))

  await api.cancel(ring.id)
  t.ok(await next({ device: 'phone-a', command: ring.id, state: 'cancelled' }), 'its cancel')

  await api.send('POST', '/api/clock/advance', { by: '1h' })
  t.ok(await next({ device: 'phone-a', command: unheard.command.id, state: 'expired' }), 'an expiry')

  for (const [topic, payload] of said) {
    t.ok(isCommandChangedTopic(topic), topic)
    t.ok(decodeValue(CommandChangedSchema, payload).ok, 'the contract holds: ids and a state, no arguments')
  }
  t.same(
    said.map(([, p]) => (p as CommandChanged).state),
    ['queued', 'cancelled', 'expired'],
    'one event per change; none for the command submitted while no console listened',
  )
})

t.test('F2 a phone may not hear command changes, not even its own', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a', 'alice')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  t.equal(await subackCode(phone, commandChangedTopic('phone-a')), 128)
  t.equal(await subackCode(phone, COMMAND_CHANGES_FILTER), 128)
  t.equal(await subackCode(phone, 'fp/v1/commands/#'), 128)
})
