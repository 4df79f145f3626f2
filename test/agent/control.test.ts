/** The phone's local control socket: what `fakephone phone ...` talks to. */
import t from 'tap'
import { statSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { controlSocketPath, handleControl, sendControl, serveControl, type ControlRequest } from '../../agent/control.js'
import { addDevice, agentConnected, startAgent, startCloud } from '../fixtures/cloud.js'
import { aStatus, fakeAgent } from '../fixtures/fake-agent.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

t.test('a running agent answers status and switch requests on its 0600 control socket', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const dataDir = tempDir(t)
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir })
  await agentConnected(agent)
  const server = await serveControl(agent, dataDir, cloud.logs.logger())
  onEnd(t, () => server.close())
  t.equal(statSync(controlSocketPath(dataDir)).mode & 0o777, 0o600, 'only the owner may control the phone')
  const status = await sendControl(dataDir, { op: 'status' })
  t.match(status, { id: 'phone-a', dataChannel: 'connected', cloudService: true, findDevice: true, network: 'wifi' })
  t.equal((await sendControl(dataDir, { op: 'switch', name: 'findDevice', on: false })).findDevice, false)
  t.equal((await sendControl(dataDir, { op: 'network', network: 'mobile' })).network, 'mobile')
  t.equal(agent.status().findDevice, false, 'the agent itself changed')

  const raw = createConnection(controlSocketPath(dataDir))
  raw.write('{"op":"reboot"}\n')
  const [reply] = (await once(raw, 'data')) as [Buffer]
  t.match(JSON.parse(reply.toString()), { ok: false, error: /bad request/ }, 'an unknown request is refused with a reason')
  raw.destroy()
  t.ok(await cloud.logs.waitFor((l) => l.msg === 'control request refused'))

  await t.rejects(
    sendControl(dataDir, { op: 'reboot' } as unknown as ControlRequest),
    { code: 'ECONTROL', message: /bad request/ },
    'the client reports a refusal',
  )

  // A connection that fails on the agent's side (as when a client resets it) is closed and forgotten.
  const serverSide = once(server, 'connection') as Promise<[Socket]>
  const rude = createConnection(controlSocketPath(dataDir))
  rude.on('error', () => {})
  const [accepted] = await serverSide
  const gone = once(rude, 'close')
  accepted.destroy(new Error('connection reset'))
  await gone
  t.equal((await sendControl(dataDir, { op: 'status' })).id, 'phone-a', 'a client that hangs up mid-request does not hurt the agent')
})

t.test('a control request that fails inside the agent is answered with its reason', async (t) => {
  const failing = {
    setSwitch: () => Promise.reject(new Error('disk full')),
  } as unknown as Parameters<typeof handleControl>[0]
  t.same(await handleControl(failing, '{"op":"switch","name":"findDevice","on":false}'), { ok: false, error: 'disk full' })
})

t.test('with no agent running, the control client says so', async (t) => {
  await t.rejects(sendControl(tempDir(t), { op: 'status' }), { code: 'ECONTROL', message: /no agent is running with data directory/ })
})

t.test('F1: the location in a status reply is read against the contract; an agent that predates it says none', async (t) => {
  const dataDir = tempDir(t)
  const fake = await fakeAgent(t, dataDir)
  const { location, home, ...older } = aStatus()
  t.ok(location)
  t.equal(home, null)
  fake.answer({ ok: true, status: older })
  t.match(await sendControl(dataDir, { op: 'status' }), { location: null, home: null }, 'an older agent: no location, not a crash')
  fake.answer({ ok: true, status: { ...older, location: { kind: 'gpsd', host: '127.0.0.1' } } })
  await t.rejects(
    sendControl(dataDir, { op: 'status' }),
    { code: 'ECONTROL', message: /gave an answer this client cannot read: .*location/ },
    'a location that breaks the contract is refused, not shown',
  )
})

t.test('X1 S1 B1: the framework, sync and backup parts of a status are read against the contract too', async (t) => {
  const dataDir = tempDir(t)
  const fake = await fakeAgent(t, dataDir)
  const refused = (part: string): { code: string; message: RegExp } => ({
    code: 'ECONTROL',
    message: new RegExp(`^the agent with data directory ${dataDir} gave an answer this client cannot read: [^\\n]*status\\.${part}`),
  })
  const status = aStatus()
  fake.answer({ ok: true, status: { ...status, framework: { ...status.framework, pushChannel: 'sideways' } } })
  await t.rejects(sendControl(dataDir, { op: 'status' }), refused('framework\\.pushChannel'), 'a push channel state there is none of')
  fake.answer({ ok: true, status: { ...status, framework: { ...status.framework, notifications: { shown: 1 } } } })
  await t.rejects(sendControl(dataDir, { op: 'status' }), refused('framework\\.notifications'), 'half the notifications part')
  const photos = { ...status.sync?.categories.photos, local: 'many' }
  fake.answer({ ok: true, status: { ...status, sync: { ...status.sync, categories: { ...status.sync?.categories, photos } } } })
  await t.rejects(sendControl(dataDir, { op: 'status' }), refused('sync\\.categories\\.photos\\.local'), 'a count that is not one')
  const { backup, ...noBackup } = status
  t.ok(backup)
  fake.answer({ ok: true, status: noBackup })
  await t.rejects(sendControl(dataDir, { op: 'status' }), refused('backup'), 'no backup part')
  fake.answer({ ok: true, status: { ...status, sync: null, battery: 'a part a newer agent added' } })
  const read = await sendControl(dataDir, { op: 'status' })
  t.equal(read.sync, null, 'a phone without a cloud: no sync part')
  t.notOk('battery' in read, 'a part this client does not know is dropped, not refused')
  t.same(read.framework, status.framework)
  t.same(read.backup, status.backup)
})

t.test('an agent that closes without an answer, or answers what is not a reply, is one error line naming its data directory', async (t) => {
  const dataDir = tempDir(t)
  let answer = ''
  const fake = createServer((socket) => socket.once('data', () => socket.end(answer)))
  await new Promise<void>((resolve) => fake.listen(controlSocketPath(dataDir), resolve))
  onEnd(t, () => fake.close())
  await t.rejects(
    sendControl(dataDir, { op: 'status' }),
    { code: 'ECONTROL', message: `the agent with data directory ${dataDir} closed the connection without an answer: did it stop?` },
    'an agent killed mid-request: said, not a SyntaxError stack',
  )
  answer = '{"ok": tru'
  await t.rejects(
    sendControl(dataDir, { op: 'status' }),
    {
      code: 'ECONTROL',
      message: `the agent with data directory ${dataDir} gave an answer this client cannot read: payload is not valid JSON`,
    },
    'half a reply',
  )
  answer = JSON.stringify({ ok: true, status: { lostMode: false } })
  await t.rejects(sendControl(dataDir, { op: 'status' }), { code: 'ECONTROL', message: /cannot read: .*id/ }, 'a status without its phone')
  answer = JSON.stringify({ ok: false, error: 'no such switch', code: 'BAD_ID' })
  await t.rejects(
    sendControl(dataDir, { op: 'status' }),
    { code: 'ECONTROL', reason: 'BAD_ID', message: 'no such switch' },
    'a refusal is passed on as it came',
  )
})
