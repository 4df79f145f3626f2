/**
 * F1: the heartbeat loop and its seqs around the cloud's word on which seqs it holds, on real settings files and the
 * injected clock (the phone against a real broker: test/agent/agent.test.ts, the restored settings.json).
 */
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Battery } from '../../agent/battery.js'
import { HeartbeatLoop } from '../../agent/heartbeat.js'
import { SeqReserve } from '../../agent/heartbeat-seq.js'
import { FixedSource } from '../../agent/location.js'
import { PhoneSettings } from '../../agent/settings.js'
import { ManualClock } from '../../common/clock.js'
import type { Heartbeat } from '../../common/contract.js'
import { LogCapture } from '../fixtures/logs.js'

async function loop(dir: string): Promise<{ clock: ManualClock; sent: Heartbeat[]; beats: HeartbeatLoop; seqs: SeqReserve }> {
  const clock = new ManualClock()
  const settings = new PhoneSettings(dir)
  await settings.load({ nextSeq: 10 })
  const seqs = new SeqReserve(settings, 5)
  seqs.load()
  const sent: Heartbeat[] = []
  const beats = new HeartbeatLoop({
    clock,
    log: new LogCapture().logger(),
    location: new FixedSource({ lat: 1, lon: 2 }),
    random: () => 0.5,
    heartbeatMs: 1000,
    jitter: 0,
    battery: new Battery({ level: 80, at: 0 }),
    settings,
    seqs,
    connected: () => true,
    send: (hb) => {
      sent.push(hb)
      return true
    },
  })
  return { clock, sent, beats, seqs }
}

t.test('F1 heartbeats due before the cloud said which seqs it holds wait for it, and go once, numbered past them', async (t) => {
  const { clock, sent, beats, seqs } = await loop(t.testdir())
  beats.start()
  t.teardown(() => beats.stop())
  beats.connecting()
  t.notOk(beats.ready)
  clock.advance(1000)
  clock.advance(1000)
  // A stop waits for any heartbeat being sent: none is.
  await beats.stop()
  t.same(sent, [], 'nothing goes while the cloud has not answered')
  beats.start()
  seqs.skipPast(41)
  beats.channelUp()
  t.ok(beats.ready)
  await once(beats, 'heartbeat')
  t.same(
    sent.map((hb) => hb.seq),
    [42],
    'the due heartbeats go as one, past the seq the cloud holds',
  )

  // A connection later (the first heartbeat of the run went): nothing was due while waiting, nothing extra goes.
  beats.connecting()
  beats.channelUp()
  clock.advance(1000)
  await once(beats, 'heartbeat')
  t.same(
    sent.map((hb) => hb.seq),
    [42, 43],
  )
  // And one due while waiting on a later connection goes when the cloud answers, not an interval later.
  beats.connecting()
  clock.advance(1000)
  beats.channelUp()
  await once(beats, 'heartbeat')
  t.same(
    sent.map((hb) => hb.seq),
    [42, 43, 44],
  )
  t.equal(clock.now() - (sent[2] as Heartbeat).at, 0)
})

t.test('F1 a skip while a block is being saved: the number handed out is inside a block saved on disk', async (t) => {
  const dir = t.testdir()
  const { seqs } = await loop(dir)
  const taken = seqs.take()
  // The block 10..14 is being saved; the cloud says it holds up to 100 meanwhile.
  t.equal(seqs.skipPast(100), true)
  t.equal(await taken, 101)
  const saved = JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8')) as { nextSeq: number }
  t.equal(saved.nextSeq, 106, 'a crash now starts above 101')
  t.equal(seqs.skipPast(50), false, 'a seq below the next changes nothing')
  t.equal(await seqs.take(), 102)
})
