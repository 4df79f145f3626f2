/**
 * MQTT over WebSocket (broker/mqtt/ws-connection.ts) behind the packet guard: a packet Aedes writes in pieces goes out
 * as one WebSocket message, and the guard's rules hold on WebSocket connections as on TCP.
 */
import t from 'tap'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import { WebSocket } from 'ws'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

/** A raw WebSocket on the broker's /mqtt endpoint; resolves once it is open. */
async function rawWebSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, 'mqtt')
  ws.on('error', () => {})
  await once(ws, 'open')
  return ws
}

t.test('over WebSocket a CONNACK is one message, and junk before CONNECT is dropped with its reason', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const ws = await rawWebSocket(cloud.wsUrl)
  const messages: Buffer[] = []
  ws.on('message', (m: Buffer) => messages.push(m))
  ws.send(mqttPacket.generate({ cmd: 'connect', clientId: 'phone-a', username: 'phone-a', password: Buffer.from(secret), clean: true }))
  await once(ws, 'message')
  t.same([...(messages[0] as Buffer)], [0x20, 0x02, 0x00, 0x00], 'CONNACK, accepted: its four bytes in one message')
  ws.close()
  await once(ws, 'close')

  const junk = await rawWebSocket(cloud.wsUrl)
  junk.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'))
  await once(junk, 'close')
  t.equal(cloud.broker.counters.dropped, 1)
  t.ok(cloud.logs.lines.some((l) => l.msg === 'connection dropped' && l.reason === 'first packet is not CONNECT'))
})
