/**
 * F1, X1 (with F2, S3, M2): a device removed and added again gets a new secret; its agent reads it from its secret file
 * before a refused retry, and from then on every part that sends the secret or uses what is derived from it sends the
 * new one -- the data channel, the push channel's hello, the cloud calls behind sync, the command receipts, the check of
 * a `cloud-moved` notice -- though each had used the old one before (its copy, had it kept one, would be stale).
 * agent/credentials.ts is that one copy.
 */
import t from 'tap'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import type { KeyObject } from 'node:crypto'
import type { ManualClock } from '../../common/clock.js'
import { CLOUD_MOVED, secretVerifier, signMove } from '../../common/cloud/cloud-move.js'
import { deviceKeys, signPayload, verifyPayload } from '../../common/signing.js'
import { DeviceCredentials } from '../../agent/credentials.js'
import { addDevice, deviceOnDisk, firstFix, startAgent, startCloud } from '../fixtures/cloud.js'
import { notify, pushConnected } from '../fixtures/framework.js'
import type { LogLine } from '../fixtures/logs.js'
import { listening, makeOwner, run, signed } from '../fixtures/owner.js'

t.test(
  'F1, X1: after a new secret read from its file, the phone sends it everywhere: data channel, push hello, ' +
    'the cloud calls of sync (S3), command receipts (F2) and the cloud-moved check (M2)',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const owner = makeOwner(t)
    const { secret, secretFile, phoneDir } = await deviceOnDisk(t, cloud, 'phone-a')
    owner.keys.rememberDevice('phone-a', secret)
    const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir: phoneDir, secretFile, ownerKey: owner.publicKey })
    await firstFix(cloud, agent)
    await pushConnected(agent)
    await listening(cloud, 'phone-a')
    /** The next log line from now on that `match`es (an earlier one is not it). */
    const next = (match: (l: LogLine) => boolean): Promise<LogLine> => {
      const from = cloud.logs.lines.length
      return cloud.logs.waitFor((l) => match(l) && cloud.logs.lines.indexOf(l) >= from)
    }
    const locate = async (): Promise<boolean> => {
      const view = await run(cloud, signed(owner, 'phone-a', 'locate', {}, clock.now()))
      const receipt = view.receipt as NonNullable<typeof view.receipt>
      return view.state === 'succeeded' && verifyPayload(receipt, owner.keys.deviceKey('phone-a') as KeyObject)
    }
    const photoInCloud = async (): Promise<boolean> => {
      const photo = await agent.takePhoto()
      await agent.sync?.idle()
      return agent.inCloud('photos', photo.id) === true
    }
    /** M2: a cloud-moved notice to where the phone is, signed for `secret`: taken as its cloud's ("already there"), or refused. */
    const movedHere = async (secret: string): Promise<string> => {
      const to = { mqtt: cloud.mqttUrl, push: cloud.pushUrl, cloud: cloud.apiUrl }
      const move = { v: 1 as const, device: 'phone-a', account: 'alice', to, at: clock.now() }
      const verdict = next((l) => l.msg === 'cloud moved: already there' || String(l.msg).startsWith('cloud-moved notice refused'))
      notify(cloud, 'phone-a', { kind: CLOUD_MOVED, title: 'moved', body: JSON.stringify(signMove(move, secretVerifier(secret))) })
      return (await verdict).msg
    }
    // Each part has used the old secret once (and kept what it derived from it, were it to keep copies).
    t.ok(await locate(), 'a receipt with the old secret verifies')
    t.ok(await photoInCloud(), 'a photo reaches the cloud with the old secret')
    t.equal(await movedHere(secret), 'cloud moved: already there', 'a cloud-moved notice signed for the old secret is taken')

    // Removed (both channels closed), added again: the new secret is written where the agent reads it.
    cloud.broker.registry.remove('phone-a')
    const fresh = await addDevice(cloud, 'phone-a')
    owner.keys.rememberDevice('phone-a', fresh)
    writeFileSync(secretFile, fresh + '\n')
    // The push gateway refuses the old secret at once; the data channel was disconnected. The next retry reads the file.
    await cloud.logs.waitFor((l) => l.msg === 'mqtt disconnected, retrying')
    await cloud.logs.waitFor((l) => String(l.msg).startsWith('push refused this device'))
    const read = next((l) => l.msg === `new device secret read from ${secretFile}; connecting again`)
    const push = next((l) => l.module === 'agent' && (l.msg === 'push connected' || l.msg === 'push refused this device again, retrying'))
    clock.advance(1000)
    await read
    if (!t.equal((await push).msg, 'push connected', 'the push channel connects with the new secret, its hello refused no more')) return
    // The data channel's retry may have gone just before the file was read (with the old secret, refused): the next one
    // (its backoff on the manual clock) connects.
    for (let tries = 0; tries < 3 && agent.status().dataChannel !== 'connected'; tries++) {
      if (agent.status().dataChannel === 'waiting') clock.advance(1000)
      await once(agent, 'channel')
    }
    if (!t.equal(agent.status().dataChannel, 'connected', 'the data channel connects with the new secret')) return
    t.ok(cloud.broker.isConnected('phone-a'), 'the broker has it')

    t.ok(await photoInCloud(), 'a photo taken now reaches the cloud: its calls carry the new secret')
    await listening(cloud, 'phone-a')
    t.ok(await locate(), 'a receipt now verifies with the key of the new secret')
    t.equal(await movedHere(fresh), 'cloud moved: already there', 'a cloud-moved notice signed for the new secret is taken')
    t.notOk(JSON.stringify(cloud.logs.lines).includes(fresh), 'the new secret is in no log line')
  },
)

t.test('F1, X1: the credentials derive the Basic header and the receipt key once per secret, again after a new one', (t) => {
  const creds = new DeviceCredentials('phone-a', 'old')
  t.equal(creds.authorization, `Basic ${Buffer.from('phone-a:old').toString('base64')}`)
  const key = creds.receiptKey
  t.equal(creds.receiptKey, key, 'derived once, kept while the secret stays')
  t.ok(verifyPayload(signPayload({ n: 1 }, key), deviceKeys('old').publicKey), 'the key of the old secret')
  t.equal(creds.replace('old'), false, 'the same secret again is no change')
  t.equal(creds.receiptKey, key, 'and keeps what was derived')

  t.equal(creds.replace('new'), true, 'a new secret is a change')
  t.equal(creds.secret, 'new')
  t.equal(creds.authorization, `Basic ${Buffer.from('phone-a:new').toString('base64')}`, 'the header says the new secret')
  t.ok(verifyPayload(signPayload({ n: 1 }, creds.receiptKey), deviceKeys('new').publicKey), 'the receipt key is the new secret’s')
  t.end()
})
