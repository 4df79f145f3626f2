/**
 * A seeded MQTT fuzzer: valid packets of every protocol level (3.1, 3.1.1,
 * 5), mutated -- bit flips, truncation, broken remaining-length fields,
 * junk bytes, duplicated and reordered packets -- and sent before and after
 * a CONNECT, pipelined in one write or one packet per event-loop turn.
 * The same seed always gives the same cases. Used by the suite's fuzz test
 * (a few hundred cases) and by `npm run fuzz` (as many as asked).
 */
import { connect as tcpConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { Heartbeat } from '../common/contract.js'
import { seededRandom } from '../common/random.js'

export type Level = 3 | 4 | 5

export interface FuzzCredentials {
  deviceId: string
  secret: string
}

export interface FuzzCase {
  /** The packets, already mutated, in the order they are sent. */
  packets: Buffer[]
  /** One write for everything, or one packet per event-loop turn. */
  pipelined: boolean
  /** Event-loop turns to wait after the first packet (when not pipelined). */
  gap: number
}

const HEARTBEAT: Heartbeat = { seq: 1, at: 1, lat: 1, lon: 1, accuracy: 1, speed: 0, battery: 50, charging: false, network: 'wifi' }

/** Makes the cases: pure, so a seed reproduces a failure. */
export class FuzzCases {
  private readonly random: () => number

  constructor(
    seed: number,
    /** A registered device the fuzzer may log in as, so the paths after an accepted CONNECT are fuzzed too. */
    private readonly creds: FuzzCredentials,
  ) {
    this.random = seededRandom(seed)
  }

  next(): FuzzCase {
    const level = this.pick<Level>([3, 4, 5])
    const packets: Buffer[] = []
    const withConnect = this.random() < 0.85
    if (withConnect) packets.push(this.connect(level))
    const n = 1 + Math.floor(this.random() * 6)
    for (let i = 0; i < n; i++) packets.push(this.packet(level))
    const mutated = packets.map((p, i) => (this.random() < (i === 0 && withConnect ? 0.3 : 0.5) ? this.mutate(p) : p))
    if (this.random() < 0.15) this.shuffle(mutated)
    if (this.random() < 0.1) mutated.push(...mutated.slice(0, 2))
    return { packets: mutated, pipelined: this.random() < 0.5, gap: Math.floor(this.random() * 3) }
  }

  private connect(level: Level): Buffer {
    const r = this.random()
    const { deviceId, secret } = this.creds
    // mqtt-packet generates an empty client id only for 3.1.1 and 5 with a clean session.
    const clientId =
      r < 0.5 && level !== 3
        ? deviceId
        : r < 0.7 || level === 3
          ? 'x'.repeat(1 + Math.floor(this.random() * 40))
          : r < 0.8
            ? ''
            : `console.${deviceId}`
    const good = this.random() < 0.6
    const packet: mqttPacket.IConnectPacket = {
      cmd: 'connect',
      protocolId: level === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: level,
      clientId,
      clean: clientId === '' || this.random() < 0.7,
      keepalive: this.pick([0, 1, 30, 65535]),
      ...(this.random() < 0.9 ? { username: r < 0.7 ? deviceId : 'console', password: Buffer.from(good ? secret : 'wrong') } : {}),
      ...(this.random() < 0.2
        ? { will: { topic: `fp/v1/${deviceId}/presence`, payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true } }
        : {}),
    }
    return this.generate(packet, level)
  }

  private packet(level: Level): Buffer {
    const id = this.creds.deviceId
    const messageId = 1 + Math.floor(this.random() * 65535)
    const topic = this.pick([
      `fp/v1/${id}/heartbeat`,
      `fp/v1/${id}/logs`,
      `fp/v1/${id}/result`,
      `fp/v1/${id}/cmd`,
      'fp/v1/other/heartbeat',
      '$SYS/x',
      'a/b',
    ])
    const payload = this.pick([JSON.stringify(HEARTBEAT), '{"events":[{"seq":1,"at":1,"type":"screen-on","detail":""}]}', 'not json', ''])
    const qos = this.pick<0 | 1 | 2>([0, 1, 2])
    const packets: mqttPacket.Packet[] = [
      { cmd: 'publish', topic, payload, qos, messageId, retain: this.random() < 0.1, dup: false },
      {
        cmd: 'subscribe',
        messageId,
        subscriptions: [{ topic: this.pick([`fp/v1/${id}/cmd`, `fp/v1/${id}/plan`, '#', 'fp/v1/#', '$SYS/#']), qos }],
      },
      { cmd: 'unsubscribe', messageId, unsubscriptions: [topic] },
      { cmd: 'puback', messageId },
      { cmd: 'pubrec', messageId },
      { cmd: 'pubrel', messageId },
      { cmd: 'pubcomp', messageId },
      { cmd: 'pingreq' },
      { cmd: 'disconnect' },
      ...(level === 5 ? [{ cmd: 'auth', reasonCode: 0x18 } as mqttPacket.IAuthPacket] : []),
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 30 },
    ]
    return this.generate(this.pick(packets), level)
  }

  private generate(packet: mqttPacket.Packet, level: Level): Buffer {
    return mqttPacket.generate(packet, { protocolVersion: level })
  }

  /** One mutation of a valid packet. */
  private mutate(p: Buffer): Buffer {
    const b = Buffer.from(p)
    const at = Math.floor(this.random() * b.length)
    switch (Math.floor(this.random() * 6)) {
      case 0: // a bit flip
        b[at] = (b[at] as number) ^ (1 << Math.floor(this.random() * 8))
        return b
      case 1: // truncated
        return b.subarray(0, at)
      case 2: // a remaining-length field that lies
        if (b.length > 1) b[1] = Math.floor(this.random() * 256)
        return b
      case 3: // a remaining length that keeps going
        return Buffer.concat([b.subarray(0, 1), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), b.subarray(2)])
      case 4: // junk inserted
        return Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + Math.floor(this.random() * 16) }, () => Math.floor(this.random() * 256))),
          b.subarray(at),
        ])
      default: // a different packet type in the first byte
        b[0] = Math.floor(this.random() * 256)
        return b
    }
  }

  private shuffle<T>(items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[items[i], items[j]] = [items[j] as T, items[i] as T]
    }
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T
  }
}

const PINGREQ = Buffer.from([0xc0, 0x00])
const PINGRESP = Buffer.from([0xd0, 0x00])
/** How long a case waits for that answer before it hangs up anyway (a truncated packet leaves the broker waiting for bytes). */
const SETTLE_MS = 300

export interface CaseOutcome {
  /** The broker closed the connection (or it was still open when the case ended and was closed by us). */
  closedByBroker: boolean
  answeredBytes: number
}

/** Sends one case to the broker and half-closes; resolves when the connection is gone (at most `boundMs`). */
async function sendCase(port: number, c: FuzzCase, boundMs = 5_000): Promise<CaseOutcome> {
  const socket = tcpConnect(port, '127.0.0.1')
  socket.setNoDelay(true)
  let answeredBytes = 0
  let closedByBroker = true
  let last: Buffer = Buffer.alloc(0)
  let settled = (): void => {}
  socket.on('data', (d: Buffer) => {
    answeredBytes += d.length
    last = d
    if (last.subarray(-2).equals(PINGRESP)) settled()
  })
  socket.on('error', () => {}) // resets are an expected answer to garbage
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const bound = setTimeout(() => {
    closedByBroker = false
    socket.destroy()
  }, boundMs)
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()).once('close', () => resolve()))
  if (c.pipelined) socket.write(Buffer.concat(c.packets))
  else {
    // Let the broker accept first, so the packets really arrive one per turn (and some while it still answers a CONNECT).
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
    for (const [i, p] of c.packets.entries()) {
      if (socket.destroyed) break
      socket.write(p)
      for (let turn = 0; turn < (i === 0 ? 1 + c.gap : 1); turn++) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  // A PINGREQ last: its answer says the broker handled everything before it (it answers in order).
  if (!socket.destroyed) socket.write(PINGREQ)
  const answered = new Promise<void>((resolve) => (settled = resolve))
  const waited = setTimeout(() => settled(), SETTLE_MS)
  await Promise.race([answered, gone])
  clearTimeout(waited)
  socket.end()
  await gone
  clearTimeout(bound)
  return { closedByBroker, answeredBytes }
}

export interface FuzzStats {
  cases: number
  /** Cases the broker did not finish within the bound (it kept the half-closed connection). */
  lingering: number
  answeredBytes: number
}

/** Runs `count` cases from `seed`, `parallel` at a time. */
export async function fuzz(
  port: number,
  creds: FuzzCredentials,
  seed: number,
  count: number,
  parallel = 8,
  onCase?: (i: number) => Promise<void> | void,
): Promise<FuzzStats> {
  const cases = new FuzzCases(seed, creds)
  const stats: FuzzStats = { cases: 0, lingering: 0, answeredBytes: 0 }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const outcome = await sendCase(port, cases.next())
      stats.cases++
      if (!outcome.closedByBroker) stats.lingering++
      stats.answeredBytes += outcome.answeredBytes
      await onCase?.(i)
    }
  }
  await Promise.all(Array.from({ length: parallel }, () => worker()))
  return stats
}
