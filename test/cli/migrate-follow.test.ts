/**
 * M2 across devices: two real brokers on 127.0.0.1 (each its own data
 * directory and ports) and real agents in process. After `migrate` completes
 * verified, the source tells each phone over the push channel (a signed
 * `cloud-moved` notice); the phone moves its data channel, push channel and
 * cloud transfers to the destination, which takes it with the same secret;
 * heartbeats and new photos arrive there, nothing the migration copied is
 * uploaded again, a restart stays there, a phone that was away follows when
 * it comes back, and a notice that is malformed, for another device or not
 * signed by its cloud is refused with the reason.
 */
import t from 'tap'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Agent } from '../../agent/agent.js'
import { ConsoleApiError, ConsoleClient } from '../../cli/console-client.js'
import { migrate } from '../../cli/transfer/migrate.js'
import { Progress } from '../../cli/transfer/progress.js'
import { renderJob } from '../../cli/transfer/migrate-command.js'
import { renderFrameworkStatus, renderInbox } from '../../cli/framework-render.js'
import { renderDevices } from '../../cli/render.js'
import { utcDate } from '../../common/clock.js'
import { DeviceMovedSchema, type DevicesReply, type NotificationRecord } from '../../common/console-api.js'
import { ManualClock } from '../../common/clock.js'
import { CLOUD_MOVED, endpointsOf, secretVerifier, signMove } from '../../common/cloud/cloud-move.js'
import { addDevice, agentConnected, startAgent, startCloud, storedHeartbeats, type Cloud } from '../fixtures/cloud.js'
import { delivered, notify, pushAtCloud, pushConnected } from '../fixtures/framework.js'
import { tempDir } from '../fixtures/scope.js'
import { run } from '../fixtures/io.js'

const client = (cloud: Cloud): ConsoleClient => new ConsoleClient(cloud.apiUrl, cloud.consoleToken)

/** The cloud-moved notice `cloud` queued for the device. */
const noticeOf = (cloud: Cloud, id: string): NotificationRecord =>
  cloud.broker.framework.queue.list(id, 100).find((n) => n.kind === CLOUD_MOVED) as NotificationRecord

/** Resolves once the agent's data channel is up at `cloud`. */
async function connectedTo(cloud: Cloud, agent: Agent, id: string): Promise<void> {
  await pushAtCloud(cloud, id, true)
  await agentConnected(agent)
  const hb = storedHeartbeats(cloud, 1)
  ;(cloud.clock as ManualClock).advance(30_000)
  await hb
}

t.test('M2: the phones follow a verified migration to the other cloud', async (top) => {
  // One clock for both clouds and the phones: the destination takes the phone's heartbeats on the same time.
  const clock = new ManualClock()
  const source = await startCloud(top, {}, clock)
  const dest = await startCloud(top, {}, clock)
  const secret = await addDevice(source, 'phone-a', 'alice')
  const awaySecret = await addDevice(source, 'phone-b', 'alice')
  const dataDir = tempDir(top)
  let agent = await startAgent(top, source, 'phone-a', secret, { dataDir })
  await agentConnected(agent)
  await pushConnected(agent)
  const before = [await agent.takePhoto(), await agent.takePhoto()]
  await agent.sync?.idle()
  top.equal(source.broker.cloud.items.live('alice').items.length, 2, 'two photos in the source cloud')

  // Every upload the destination takes from a phone (the migration's own import does not go through here).
  let uploads = 0
  const items = dest.broker.cloud.items
  const put = items.put.bind(items)
  items.put = (...args) => {
    uploads++
    return put(...args)
  }

  await top.test('the phone is told over push, switches every channel, and carries on there with nothing uploaded twice', async (t) => {
    const job = await migrate({
      source: client(source),
      dest: client(dest),
      account: 'alice',
      to: dest.apiUrl,
      toAccount: 'alice',
      jobFile: join(tempDir(t), 'job.json'),
      signal: new AbortController().signal,
      now: () => clock.now(),
      progress: (total) => new Progress(null, clock, 'x', total),
    })
    t.match(job, { state: 'completed', phones: { devices: ['phone-a', 'phone-b'], to: endpointsOf(dest.apiUrl) } })
    t.match(renderJob(job), `Phones told over push to follow to ${dest.apiUrl}: phone-a, phone-b\n`)
    await connectedTo(dest, agent, 'phone-a')
    await pushAtCloud(source, 'phone-a', false)
    t.notOk(source.broker.isConnected('phone-a'), 'gone from the source')
    t.match(renderFrameworkStatus(agent.status().framework), `cloud         moved: Your cloud moved to ${dest.apiUrl} (`)
    // `phone notifications` says in words what the phone now talks to, not the signed JSON it checked.
    const to = endpointsOf(dest.apiUrl)
    t.match(
      renderInbox(agent.status().framework.notifications.recent),
      `cloud-moved  Your cloud moved to ${dest.apiUrl}  0s    this phone follows its account alice there: data channel ` +
        `${to.mqtt}, push ${to.push}, cloud ${to.cloud} (signed by its old cloud, checked)\n`,
      'M2: the notice in words',
    )
    t.match(agent.status().home, { to: endpointsOf(dest.apiUrl), account: 'alice', from: { mqtt: source.mqttUrl, cloud: source.apiUrl } })
    t.match(await source.logs.waitFor((l) => l.msg === `cloud moved: the phone follows its account to ${dest.apiUrl}`), {
      from: { mqtt: source.mqttUrl },
      to: { mqtt: endpointsOf(dest.apiUrl).mqtt },
    })
    t.match(
      dest.broker.cloud.cloudLog.list('alice', 20).find((e) => e.rule === 'migration-credentials'),
      { message: /of 2 devices from/, count: 2 },
      'the destination took the verifiers; the log counts the devices it says',
    )
    t.match(source.broker.cloud.cloudLog.list('alice', 20), [{ rule: 'migration-followed', message: /told 2 phones to follow/, count: 2 }])

    // M2: the old cloud's device views say where its phones went: phone-a took the notice; phone-b, away, gets it when back.
    await delivered(source, 'phone-a', noticeOf(source, 'phone-a').id)
    const { devices } = await client(source).devices()
    t.match(devices, [
      { id: 'phone-a', online: false, moved: { to: dest.apiUrl, account: 'alice', notice: 'delivered', deliveredAt: Number } },
      { id: 'phone-b', online: false, moved: { to: dest.apiUrl, account: 'alice', notice: 'queued', deliveredAt: null } },
    ])
    t.ok(
      devices.every((d) => DeviceMovedSchema.safeParse(d.moved).success),
      'the contract holds',
    )
    t.match(
      renderDevices(devices, clock.now()),
      `phone-b  alice    offline: follows to ${dest.apiUrl} when back (told ${utcDate(noticeOf(source, 'phone-b').createdAt)})`,
    )
    t.match((await client(dest).devices()).devices, [{ id: 'phone-a', moved: null }], 'the new cloud has nothing to say of a move')

    // Sync runs against the destination: what the migration copied is already there (same ids, same bytes).
    agent.sync?.kick()
    await agent.sync?.idle()
    t.equal(uploads, 0, 'nothing the migration copied is uploaded again')
    t.ok(
      before.every((p) => agent.inCloud('photos', p.id)),
      'the copied photos keep their "in the cloud" marker',
    )
    const fresh = await agent.takePhoto()
    await agent.sync?.idle()
    t.equal(uploads, 1, 'the new photo, once')
    t.same(
      dest.broker.cloud.items
        .live('alice')
        .items.map((i) => i.id)
        .sort(),
      [...before.map((p) => p.id), fresh.id].sort(),
    )
    t.equal(source.broker.cloud.items.live('alice').items.length, 2, 'nothing new at the source')
  })

  await top.test('a restart keeps the destination, whatever URLs the phone is started with', async (t) => {
    await agent.stop()
    // Started for the rest of the file (the next subtests use it).
    agent = await startAgent(top, source, 'phone-a', secret, { dataDir })
    await connectedTo(dest, agent, 'phone-a')
    t.match(agent.status().home, { to: { cloud: dest.apiUrl } })
    t.notOk(source.broker.isConnected('phone-a'))
    // A move while the push channel is blocked (X3) takes effect when it may connect again.
    await agent.framework.setNetworkPermission(false)
    agent.framework.movePush(dest.pushUrl)
    t.equal(agent.status().framework.pushChannel, 'blocked')
    await agent.framework.setNetworkPermission(true)
    await pushConnected(agent)
    t.same(endpointsOf('https://cloud.example:8443/'), {
      mqtt: 'wss://cloud.example:8443/mqtt',
      push: 'wss://cloud.example:8443/push',
      cloud: 'https://cloud.example:8443',
    })
  })

  await top.test('a phone that was away gets the notice when it is back, and follows', async (t) => {
    const away = await startAgent(t, source, 'phone-b', awaySecret)
    await connectedTo(dest, away, 'phone-b')
    t.match(away.status().home, { to: { cloud: dest.apiUrl } })
  })

  await top.test("M2: the old cloud's table says each phone moved to the new cloud and when, not offline, across a restart", async (t) => {
    await delivered(source, 'phone-b', noticeOf(source, 'phone-b').id)
    await source.restart()
    const console = ['console', '--api', source.apiUrl, '--data', source.dataDir]
    const table = await run([...console, 'devices'], clock)
    t.equal(table.code, 0)
    for (const id of ['phone-a', 'phone-b'])
      t.match(table.out, `${id}  alice    moved to ${dest.apiUrl} on ${utcDate(noticeOf(source, id).deliveredAt as number)}  `)
    t.notMatch(table.out, /offline/)
    const json = await run([...console, '--json', 'devices'], clock)
    const { devices } = JSON.parse(json.out) as DevicesReply
    t.same(
      devices.map((d) => DeviceMovedSchema.parse(d.moved).notice),
      ['delivered', 'delivered'],
      'the JSON carries it, as the contract says',
    )
  })

  await top.test(
    'M2: a phone that followed and came back is online at the old cloud, and offline there, not moved, once it goes',
    async (t) => {
      // After the notice was taken: a phone started afresh (no cloud-home.json) signs in at the old cloud again.
      clock.advance(1000)
      const back = await startAgent(t, source, 'phone-b', awaySecret)
      await connectedTo(source, back, 'phone-b')
      t.match((await client(source).device('phone-b')).device, { online: true })
      await back.stop()
      const { device } = await client(source).device('phone-b')
      t.match(device, { online: false, moved: null }, 'what was said of its move no longer holds')
      t.match(renderDevices([device], clock.now()), /phone-b {2}alice {4}offline /)
      t.match((await client(source).device('phone-a')).device.moved, { notice: 'delivered' }, 'a phone that stayed away is still moved')
    },
  )

  await top.test(
    'a cloud-moved notice that is malformed, for another device or not signed by its cloud is refused, said why',
    async (t) => {
      const payload = { v: 1 as const, device: 'phone-a', account: 'alice', to: endpointsOf('http://127.0.0.1:9'), at: clock.now() }
      const refused = async (body: string, reason: RegExp): Promise<void> => {
        const n = notify(dest, 'phone-a', { kind: CLOUD_MOVED, title: 'moved', body })
        await delivered(dest, 'phone-a', n.id)
        t.match(await source.logs.waitFor((l) => l.msg.startsWith('cloud-moved notice refused') && l.id === n.id), { reason })
      }
      await refused('not json', /not valid JSON/)
      await refused(JSON.stringify({ ...payload, to: { mqtt: 'ftp://x' } }), /to\.mqtt/)
      await refused(
        JSON.stringify(signMove({ ...payload, account: 'alice' }, secretVerifier(secret))).replace('"alice"', '"a/b"'),
        /account name: 1-64/,
      )
      await refused(JSON.stringify(signMove({ ...payload, device: 'phone-b' }, secretVerifier(awaySecret))), /for device phone-b/)
      await refused(JSON.stringify(signMove(payload, secretVerifier('not the secret'))), /signature is not that of this device/)
      t.match(agent.status().home, { to: { cloud: dest.apiUrl } }, 'still at the destination')

      // Signed right, to where it already is: nothing moves.
      const here = notify(dest, 'phone-a', {
        kind: CLOUD_MOVED,
        title: 'moved',
        body: JSON.stringify(signMove({ ...payload, to: endpointsOf(dest.apiUrl) }, secretVerifier(secret))),
      })
      await delivered(dest, 'phone-a', here.id)
      await source.logs.waitFor((l) => l.msg === 'cloud moved: already there')
      // Signed right, but the new home cannot be written: the phone stays where it is and says so.
      mkdirSync(join(dataDir, 'cloud-home.json.tmp'))
      notify(dest, 'phone-a', { kind: CLOUD_MOVED, title: 'moved', body: JSON.stringify(signMove(payload, secretVerifier(secret))) })
      await source.logs.waitFor((l) => l.msg === 'cloud moved, but the phone cannot keep its new home: it stays')
      rmSync(join(dataDir, 'cloud-home.json.tmp'), { recursive: true })
      t.match(agent.status().home, { to: { cloud: dest.apiUrl } })
      t.ok(dest.broker.isConnected('phone-a'))
    },
  )

  await top.test(
    'the clouds refuse what does not fit: an unmigrated account, devices that are not there, a broken home file',
    async (t) => {
      const bob = await addDevice(source, 'phone-c', 'bob')
      // M2: the account named at the destination was made there by the migration, so it meets the account-name rule.
      await t.rejects(client(source).request('/api/accounts/bob/moved', { account: 'Bob Smith', to: endpointsOf(dest.apiUrl) }), {
        status: 400,
        message: /bad move: .*account name: 1-64/,
      })
      await t.rejects(client(source).request('/api/accounts/bob/moved', { account: 'bob', to: endpointsOf(dest.apiUrl) }), {
        status: 409,
        message: /"bob" has no verified migration here: its phones stay/,
      })
      await t.rejects(
        client(dest).send('PUT', '/api/accounts/alice/device-verifiers', { devices: [{ id: 'phone-c', verifier: secretVerifier(bob) }] }),
        ConsoleApiError,
      )
      const broken = tempDir(t)
      writeFileSync(join(broken, 'cloud-home.json'), '{}')
      await t.rejects(startAgent(t, source, 'phone-c', bob, { dataDir: broken }), /cloud-home\.json: /)
      const dir = tempDir(t)
      mkdirSync(join(dir, 'cloud-home.json'))
      await t.rejects(startAgent(t, source, 'phone-c', bob, { dataDir: dir }), { code: 'EISDIR' })
    },
  )
})
