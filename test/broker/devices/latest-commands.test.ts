/**
 * F2: GET /api/commands/latest on a real broker over real HTTP: every device that has commands, with its newest command
 * and its newest locate that succeeded among the commands its list shows -- what the web console needs to recall every
 * phone's outcome in one read instead of one per phone.
 */
import t from 'tap'
import { ManualClock } from '../../../common/clock.js'
import type { LatestCommandsReply } from '../../../common/console-api.js'
import { startCloud, cloudCall, type Cloud } from '../../fixtures/cloud.js'
import { answered, makeOwner, provision } from '../../fixtures/owner.js'
import { COMMAND_LIST_LIMIT } from '../../../broker/devices/commands.js'

const latest = async (cloud: Cloud, query = ''): Promise<LatestCommandsReply> => {
  const reply = await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', `/api/commands/latest${query}`)
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${JSON.stringify(reply.body)}`)
  return reply.body as unknown as LatestCommandsReply
}

t.test(
  'F2: the latest commands of every device that has any: the newest, and the newest locate that succeeded (not one that failed)',
  async (t) => {
    const clock = new ManualClock()
    const cloud = await startCloud(t, {}, clock)
    const owner = makeOwner(t)
    const step = (): void => clock.advance(1000)
    const a = await provision(cloud, owner, 'phone-a')
    const b = await provision(cloud, owner, 'phone-b')
    const c = await provision(cloud, owner, 'phone-c')
    await provision(cloud, owner, 'phone-quiet')
    // phone-a: a locate that succeeded, then one that failed, then a ring: the ring is its newest, the first locate its fix.
    const located = answered(cloud, owner, 'phone-a', a, 'locate', 'succeeded', { lat: 1, lon: 2, accuracy: 3, at: 4 })
    step()
    answered(cloud, owner, 'phone-a', a, 'locate', 'failed')
    step()
    const ring = answered(cloud, owner, 'phone-a', a, 'ring', 'succeeded')
    // phone-b: its only locate failed; phone-c: its newest command is the locate that succeeded.
    const failed = answered(cloud, owner, 'phone-b', b, 'locate', 'failed')
    const own = answered(cloud, owner, 'phone-c', c, 'locate', 'succeeded', { lat: 5, lon: 6, accuracy: 7, at: 8 })

    const reply = await latest(cloud)
    t.same(
      reply.latest.map((l) => l.device),
      ['phone-a', 'phone-b', 'phone-c'],
      'phone-quiet never had a command: absent',
    )
    t.same(reply.latest[0], { device: 'phone-a', newest: ring, locate: located }, 'the views as its command list has them')
    t.same(reply.latest[1], { device: 'phone-b', newest: failed, locate: null }, 'a locate that failed is not taken')
    t.same(reply.latest[2], { device: 'phone-c', newest: own, locate: own })
    t.equal(reply.next, null, 'one page')
    t.equal(reply.now, cloud.clock.now())

    // Paged by device id: each page says where the next one starts.
    const first = await latest(cloud, '?limit=2')
    t.same([first.latest.map((l) => l.device), first.next], [['phone-a', 'phone-b'], 'phone-b'])
    const second = await latest(cloud, `?limit=2&after=${first.next}`)
    t.same([second.latest.map((l) => l.device), second.next], [['phone-c'], null])

    // A locate further back than the COMMAND_LIST_LIMIT newest commands is not in the list the console reads: not taken.
    for (let i = 0; i < COMMAND_LIST_LIMIT - 1; i++) {
      step()
      answered(cloud, owner, 'phone-c', c, 'ring', 'succeeded')
    }
    t.same((await latest(cloud, '?after=phone-b')).latest[0]?.locate, own, 'the 50th newest command is still in the list')
    step()
    const newest = answered(cloud, owner, 'phone-c', c, 'ring', 'succeeded')
    t.same((await latest(cloud, '?after=phone-b')).latest, [{ device: 'phone-c', newest, locate: null }], 'the 51st is not')
  },
)

t.test('F2: the latest commands answer only the console token, as the other console routes', async (t) => {
  const cloud = await startCloud(t)
  t.same(await cloudCall(cloud, 'Bearer wrong', 'GET', '/api/commands/latest'), {
    status: 401,
    body: { error: 'missing or wrong console token', code: 'UNAUTHORIZED' },
  })
  t.same(await cloudCall(cloud, `Bearer ${cloud.consoleToken}`, 'GET', '/api/commands/latest?limit=1001'), {
    status: 400,
    body: { error: 'limit must be a whole number from 1 to 1000', code: 'BAD_REQUEST' },
  })
  t.same(await latest(cloud), { now: cloud.clock.now(), latest: [], next: null }, 'no device has commands')
})
