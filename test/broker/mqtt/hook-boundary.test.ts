/** Whatever an Aedes hook or a broker event handler throws is logged, counted and answered with a refusal; it never reaches the process. */
import t from 'tap'
import type { Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import { AccessControl } from '../../../broker/mqtt/access.js'
import type { DeviceRegistry } from '../../../broker/devices/registry.js'
import { addDevice, connectDevice, heartbeat, startCloud, storedHeartbeats } from '../../fixtures/cloud.js'
import { LogCapture } from '../../fixtures/logs.js'

const boom = (): never => {
  throw new Error('boom')
}

/** AccessControl over a registry stub; the hooks are called as Aedes calls them, with stand-in clients. */
function access(registry: Partial<DeviceRegistry>): {
  hooks: ReturnType<AccessControl['hooks']>
  control: AccessControl
  logs: LogCapture
} {
  const logs = new LogCapture()
  const control = new AccessControl(registry as DeviceRegistry, 'token', logs.logger())
  return { hooks: control.hooks(), control, logs }
}

const client = (id: string): Client => ({ id }) as Client // a stand-in: the hooks read only the id and use the object as a key

/** Authenticates `c` as device `id` through the hooks. */
async function authenticated(hooks: ReturnType<AccessControl['hooks']>, c: Client, id: string): Promise<void> {
  await new Promise<void>((resolve, reject) => hooks.authenticate(c, id, Buffer.from('s'), (err) => (err ? reject(err) : resolve())))
}

t.test('a hook that throws refuses the client and logs why; a rejected secret check refuses too', async (t) => {
  const { hooks, control, logs } = access({ verifiedAccountNow: () => 'acct', exists: boom })
  const throwingPacket = {
    get clientId(): string {
      return boom()
    },
  } as unknown as ConnectPacket
  hooks.preConnect(client('a'), throwingPacket, (err, ok) => t.match([err, ok], [Error, false], 'preConnect refuses'))

  const refused = await new Promise<unknown>((resolve) =>
    access({ verifiedAccountNow: boom }).hooks.authenticate(client('b'), 'b', Buffer.from('s'), (err) => resolve(err)),
  )
  t.match(refused, { returnCode: 4 }, 'authenticate refuses when the secret check throws')
  const rejected = await new Promise<unknown>((resolve) =>
    access({ verifiedAccountNow: () => Promise.reject(new Error('disk gone')) }).hooks.authenticate(
      client('c'),
      'c',
      Buffer.from('s'),
      (err) => resolve(err),
    ),
  )
  t.match(rejected, { returnCode: 4 }, 'authenticate refuses when the secret check rejects')

  const device = client('phone-a')
  await authenticated(hooks, device, 'phone-a')
  const packet = { topic: 'fp/v1/phone-a/heartbeat', payload: Buffer.from(JSON.stringify(heartbeat(1))) } as PublishPacket
  hooks.authorizePublish(device, packet, (err) => t.match(err, Error, 'authorizePublish refuses'))
  hooks.authorizeSubscribe(device, { topic: 'fp/v1/phone-a/cmd', qos: 1 } as Subscription, (err, sub) =>
    t.same([err, sub], [null, null], 'authorizeSubscribe refuses'),
  )
  t.equal(control.hookFailures, 3)
  t.equal(logs.lines.filter((l) => l.msg === 'broker hook failed; the client is refused').length, 3, 'each failure logged')
})

t.test('authorizePublish answers once: an accepted publish whose answer throws is logged and counted, not answered again', async (t) => {
  let refused = 0
  const logs = new LogCapture()
  const control = new AccessControl(
    { verifiedAccountNow: () => 'acct', exists: () => true } as Partial<DeviceRegistry> as DeviceRegistry,
    'token',
    logs.logger(),
    () => refused++,
  )
  const hooks = control.hooks()
  const device = client('phone-a')
  await authenticated(hooks, device, 'phone-a')
  const packet = { topic: 'fp/v1/phone-a/heartbeat', payload: Buffer.from(JSON.stringify(heartbeat(1))) } as PublishPacket
  let answers = 0
  hooks.authorizePublish(device, packet, () => {
    answers++
    boom()
  })
  t.equal(answers, 1)
  t.equal(control.hookFailures, 1)
  t.ok(control.accepted(packet), 'the publish was accepted before its answer threw')
  const copy = { ...packet, topic: 'fp/v1/phone-b/heartbeat' }
  t.ok(control.accepted(copy), 'a spread copy of the accepted packet carries its message (symbol keys are copied)')
  hooks.authorizePublish(device, copy, (err) => t.match(err, Error, 'refused'))
  t.equal(refused, 1, 'a refusal is reported to the broker')
  t.equal(control.accepted(copy), undefined, 'issue 14: the refused copy no longer carries the message it was copied with')
  t.ok(control.accepted(packet), 'the accepted packet still does')
  const other = { topic: 'fp/v1/phone-a/heartbeat', payload: packet.payload } as PublishPacket
  t.equal(control.accepted(other), undefined, 'a packet this access control never judged carries nothing')
})

t.test('ingest that throws in the published path is logged and counted; the device stays connected and served', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const phone = await connectDevice(t, cloud, 'phone-a', secret)
  cloud.broker.framework.ingestLogs = boom
  await phone.publishAsync('fp/v1/phone-a/logs', JSON.stringify({ events: [{ seq: 0, at: 1, type: 'screen-on', detail: '' }] }), {
    qos: 1,
  })
  t.match(await cloud.logs.waitFor((l) => l.msg === 'broker event handler failed'), { event: 'published' })
  t.equal(cloud.broker.counters.handlerFailures, 1)
  const stored = storedHeartbeats(cloud, 1)
  await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(1)), { qos: 1 })
  await stored
  t.equal(cloud.broker.store.history('phone-a', 10).length, 1, 'the next message is stored')
})

t.test('a broker event handler that throws is logged and counted; the broker keeps serving', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  await addDevice(cloud, 'phone-b')
  cloud.broker.store.forget = boom
  cloud.broker.registry.remove('phone-b')
  t.equal(cloud.broker.counters.handlerFailures, 1)
  t.match(await cloud.logs.waitFor((l) => l.msg === 'broker event handler failed'), { event: 'removed' })
  t.ok(await connectDevice(t, cloud, 'phone-a', secret), 'a device still connects')
})

interface Emitter {
  on(topic: string, notify: (message: unknown, done: () => void) => void): void
  emit(message: object, done?: () => void): void
  readonly length: number
}

t.test('a burst of heartbeats behind 150 slow deliveries does not overflow the stack when the deliveries finish', async (t) => {
  const cloud = await startCloud(t)
  // Aedes' types leave out its message emitter (mqemitter), which is what queued and recursed.
  const mq = (cloud.broker.aedes as unknown as { mq: Emitter }).mq
  const held: (() => void)[] = []
  // A subscriber whose deliveries wait (a console reading slowly): Aedes' default cap queued every message behind 100 of them.
  mq.on('fp/v1/slow/status', (_message: unknown, done: () => void) => held.push(done))
  for (let i = 0; i < 150; i++) mq.emit({ topic: 'fp/v1/slow/status', payload: '', cmd: 'publish', qos: 0, dup: false, retain: false })
  let handled = 0
  for (let i = 0; i < 50_000; i++)
    mq.emit({ topic: 'fp/v1/nobody/heartbeat', payload: '', cmd: 'publish', qos: 0, dup: false, retain: false }, () => handled++)
  t.equal(handled, 50_000, 'the messages nobody subscribes to are handled at once, not queued')
  t.doesNotThrow(() => held.forEach((done) => done()), 'the slow deliveries finish without a stack overflow')
  t.equal(mq.length, 0, 'nothing is left queued')
})
