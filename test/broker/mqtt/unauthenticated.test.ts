/** No packet from anyone stops the broker: packets pipelined behind a refused CONNECT reach no hook as an authenticated client. */
import t from 'tap'
import { once } from 'node:events'
import { connect as tcpConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { addDevice, connectDevice, heartbeat, startCloud, storedHeartbeats, type Cloud } from '../../fixtures/cloud.js'

const gen = (packet: mqttPacket.Packet, protocolVersion: 3 | 4 | 5 = 3): Buffer => mqttPacket.generate(packet, { protocolVersion })
/** The packets in `bytes`, as MQTT 3.1 frames them. */
function parse(bytes: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 3 })
  const packets: mqttPacket.Packet[] = []
  parser.on('packet', (p) => packets.push(p))
  parser.parse(bytes)
  return packets
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Sends a CONNECT alone, then one packet per event-loop turn after `gap`
 * turns, until the broker closes the connection; resolves with what it answered.
 * Aedes parses a packet that arrives while it is still answering a CONNECT
 * (between its own setImmediate turns), so some gap lands one inside that window.
 */
async function connectThenPipeline(cloud: Cloud, connect: Buffer, after: Buffer[], gap: number): Promise<Buffer> {
  const socket = tcpConnect(cloud.mqttPort, '127.0.0.1')
  socket.setNoDelay(true)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {}) // the broker resets a refused connection that still had bytes in flight
  const closedSocket = new Promise((resolve) => socket.once('close', resolve))
  await once(socket, 'connect')
  for (let i = 0; i < 3; i++) await turn() // the broker accepts the connection first: the CONNECT then arrives on its own
  socket.write(connect)
  for (let i = 0; i < gap; i++) await turn()
  for (let i = 0; i < 20 && !socket.destroyed; i++) {
    socket.write(after[i % after.length] as Buffer)
    await turn()
  }
  socket.destroy()
  await closedSocket
  return Buffer.concat(chunks)
}

t.test(
  'an MQTT 3.1 CONNECT with a long client id gets CONNACK 2; a SUBSCRIBE and PUBLISH pipelined behind it are refused, not fatal',
  async (t) => {
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const connect = gen({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'x'.repeat(30), clean: true, keepalive: 30 })
    const after = [
      gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fp/v1/#', qos: 1 }] }),
      gen({
        cmd: 'publish',
        topic: 'fp/v1/phone-a/heartbeat',
        payload: JSON.stringify(heartbeat(1)),
        qos: 1,
        messageId: 2,
        retain: false,
        dup: false,
      }),
    ]
    for (let gap = 0; gap < 4; gap++) {
      for (const order of [after, [...after].reverse()]) {
        const [connack, ...rest] = parse(await connectThenPipeline(cloud, connect, order, gap))
        t.match(connack, { cmd: 'connack', returnCode: 2 }, `gap ${gap}: CONNACK 2, identifier rejected`)
        t.ok(
          rest.every((p) => p.cmd === 'suback' && p.granted.every((g) => g === 128)),
          `gap ${gap}: nothing after it but refused subscriptions (${rest.map((p) => p.cmd).join(', ')})`,
        )
      }
    }
    t.ok(
      cloud.logs.lines.some((l) => l.msg === 'subscription refused' && l.reason === 'not authenticated'),
      'a SUBSCRIBE reached the broker and was refused with its reason',
    )
    t.ok(
      cloud.logs.lines.some((l) => l.msg === 'publish refused' && l.reason === 'not authenticated'),
      'a PUBLISH reached the broker and was refused with its reason',
    )
    t.equal(cloud.broker.store.history('phone-a', 10).length, 0, 'the unauthenticated heartbeat is not stored')

    const phone = await connectDevice(t, cloud, 'phone-a', secret)
    const stored = storedHeartbeats(cloud, 1)
    await phone.publishAsync('fp/v1/phone-a/heartbeat', JSON.stringify(heartbeat(2)), { qos: 1 })
    await stored
    t.equal(cloud.broker.store.history('phone-a', 10).length, 1, 'the broker still serves a device')
  },
)
