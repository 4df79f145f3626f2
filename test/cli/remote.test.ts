/** `fakephone console locate | ring | lock | lost-mode | wipe | commands | cancel`, in-process against a real broker and agent (F2-F4). */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../cli/main.js'
import { ConsoleClient, type ApiAnswer } from '../../cli/console-client.js'
import { describe } from '../../cli/command-words.js'
import { lastKnownText, receiptLine } from '../../cli/remote-commands.js'
import type { CommandView } from '../../broker/devices/commands.js'
import { OwnerKeys, deviceKeys, signPayload } from '../../common/signing.js'
import type { ManualClock } from '../../common/clock.js'
import type { Result } from '../../common/contract.js'
import type { LocationSource } from '../../agent/location.js'
import { connectDevice, startAgent, startCloud, type TestAgentOptions } from '../fixtures/cloud.js'
import { serveControl } from '../../agent/control.js'
import { run, testIo } from '../fixtures/io.js'
import { listening, makeOwner, provision, signed } from '../fixtures/owner.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

async function setup(t: Test, extra: TestAgentOptions = {}) {
  const cloud = await startCloud(t)
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  const dataDir = tempDir(t)
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey, ...extra })
  await listening(cloud, 'phone-a')
  const control = await serveControl(agent, dataDir, cloud.logs.logger())
  onEnd(t, () => control.close())
  const con = (...args: string[]) =>
    run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args, '--keys', owner.keys.dir], cloud.clock)
  return { cloud, owner, secret, dataDir, agent, con }
}

/** A console client that keeps every request it sends ("METHOD path") and can say when its next long poll goes out. */
class CountingClient extends ConsoleClient {
  readonly sent: string[] = []
  private onPoll: (() => void) | undefined

  override call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: Uint8Array, contentType?: string): Promise<ApiAnswer> {
    this.sent.push(`${method} ${path}`)
    if (path.startsWith('/api/commands/')) this.onPoll?.()
    return super.call(method, path, body, contentType)
  }

  /** Resolves when the next GET /api/commands/:cid goes out. */
  nextPoll(): Promise<void> {
    return new Promise((resolve) => (this.onPoll = resolve))
  }
}

/** A succeeded command of device p as the console API shows it, without a receipt. */
function commandView(fields: Pick<CommandView, 'id' | 'type' | 'data'>): CommandView {
  return {
    device: 'p',
    args: {},
    state: 'succeeded',
    reason: null,
    receipt: null,
    createdAt: 0,
    updatedAt: 0,
    expiresAt: 600_000,
    sentAt: null,
    ...fields,
  } as unknown as CommandView
}

t.test('F2 a submit that waits answers with the final, verified command in one request when the phone answers', async (t) => {
  const { cloud, owner } = await setup(t)
  const client = new CountingClient(cloud.apiUrl, cloud.consoleToken)
  const locate = signed(owner, 'phone-a', 'locate', {}, cloud.clock.now())
  const reply = await client.submitAndWait(locate, 30_000)
  t.same(client.sent, ['POST /api/devices/phone-a/commands?wait=30000'], 'one request: no long poll after it')
  t.match(reply, { now: Number, command: { id: locate.id, state: 'succeeded', data: { lat: Number, lon: Number } } })
  t.match(receiptLine(reply.command, owner.keys), /^verified receipt signed by phone-a at /)
  const raw = await fetch(`${cloud.apiUrl}/api/devices/phone-a/commands?wait=30000`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.consoleToken}` },
    body: JSON.stringify(signed(owner, 'phone-a', 'ring', { seconds: 1 }, cloud.clock.now())),
  })
  t.equal(raw.status, 201, 'created, final or not')
  t.match(await raw.json(), { command: { state: 'succeeded', receipt: { state: 'succeeded' } } })
})

t.test('F2 a submit whose wait runs out answers the pending view; a longer wait long polls until the phone answers', async (t) => {
  const { cloud, owner, agent, secret, dataDir } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  const short = new CountingClient(cloud.apiUrl, cloud.consoleToken, 20)
  const ring = signed(owner, 'phone-a', 'ring', { seconds: 1 }, cloud.clock.now())
  t.match(await short.submitAndWait(ring, 50), { command: { id: ring.id, state: 'queued', receipt: null } }, 'the pending view')
  t.same(
    short.sent,
    ['POST /api/devices/phone-a/commands?wait=20', `GET /api/commands/${ring.id}?wait=20`, `GET /api/commands/${ring.id}?wait=10`],
    "a wait over one request's cap goes on in long polls, each within the cap, 50 ms in all",
  )

  const long = new CountingClient(cloud.apiUrl, cloud.consoleToken, 100)
  const locate = signed(owner, 'phone-a', 'locate', {}, cloud.clock.now())
  const answered = long.submitAndWait(locate, 30_000)
  await long.nextPoll()
  await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  t.match(await answered, { command: { id: locate.id, state: 'succeeded' } }, 'the phone came back while the console long polled')
  t.equal(long.sent[0], 'POST /api/devices/phone-a/commands?wait=100')
  t.ok(long.sent.length >= 2, 'it long polled after the submit')
})

t.test('F2 from the console: locate, ring, lock, lost mode, each with a verified receipt', async (t) => {
  const { con, agent, dataDir, cloud, owner } = await setup(t)
  const locate = await con('locate', 'phone-a')
  t.equal(locate.code, 0, locate.err)
  t.match(
    locate.out,
    /^phone-a is at 55\.94860,-3\.19990 \(±10 m\), fix taken 0s ago\ncommand [0-9a-f-]{36}: verified receipt signed by phone-a at /,
  )
  t.match((await con('ring', 'phone-a', '--seconds', '3')).out, /phone-a is ringing for 3 s/)
  t.match((await con('lock', 'phone-a', '--message', 'Call me', '--phone', '555')).out, /phone-a is locked/)
  t.same(agent.status().lock, { message: 'Call me', phone: '555' })
  t.match(
    (await con('lost-mode', 'phone-a', 'on', '--message', 'Lost', '--phone', '555')).out,
    /in lost mode: locked, reporting more often/,
  )
  t.match((await run(['phone', '--data', dataDir, 'status'])).out, /lost mode     ON\nscreen        LOCKED: "Lost" -- call 555/)
  t.match((await con('lost-mode', 'phone-a', 'on')).err, /lost-mode on needs --message and --phone/)
  t.match((await con('lost-mode', 'phone-a', 'off')).out, /phone-a left lost mode/)
  const phone = (...args: string[]) => run(['phone', '--data', dataDir, ...args])
  t.match(
    (await phone('status')).out,
    /lost mode     off\nscreen        LOCKED: "Lost" -- call 555\nringing       until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/,
    'the phone shows its lock screen and that it rings',
  )
  t.equal((await phone('unlock', '0000')).err, 'error: wrong PIN\n')
  t.match((await phone('unlock', '1234')).out, /screen        unlocked/)
  // F2 a phone that is not locked: said so, whatever the PIN, not "wrong PIN".
  t.equal((await phone('unlock', '9999')).err, 'error: the screen is not locked: nothing to unlock\n')
  t.equal((await phone('unlock', '1234')).code, 1, 'the right PIN too: there is no lock screen to type it into')
  const asJson = JSON.parse((await con('--json', 'locate', 'phone-a')).out)
  t.match(asJson, { type: 'locate', state: 'succeeded', verified: true })

  const list = await con('commands', 'phone-a')
  t.match(list.out, /COMMAND\s+TYPE\s+STATE\s+ISSUED\s+DETAIL\s+RECEIPT/)
  t.equal(list.out.match(/succeeded .* verified/g)?.length, 6, 'six commands, six verified receipts')
  t.match(JSON.parse((await con('--json', 'commands', 'phone-a')).out), { now: Number, device: 'phone-a', commands: { length: 6 } })
  t.equal((await con('commands', 'phone-b')).err, 'error: device "phone-b" not found\n')
  const strangerView = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'commands', 'phone-a', '--keys', tempDir(t)])
  t.equal(strangerView.out.match(/NOT verified/g)?.length, 6, 'a console without the device key cannot vouch for the receipts')
  const verifiedOf = async (...keys: string[]): Promise<boolean[]> => {
    const answer = await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, '--json', 'commands', 'phone-a', ...keys])
    return (JSON.parse(answer.out) as { commands: { verified: boolean }[] }).commands.map((c) => c.verified)
  }
  t.same(await verifiedOf('--keys', owner.keys.dir), Array(6).fill(true), 'F2: --json says verified per command, as the table')
  t.same(await verifiedOf('--keys', tempDir(t)), Array(6).fill(false), 'and not verified without the device key')
  t.match((await con('locate', 'phone-a', '--wait', '2m')).out, /^phone-a is at /, "a wait over the cloud's 60 s cap works")
  // The lock screen's words are the owner's, not the phone user's: `phone status` shows them escaped, on one line.
  await con('lock', 'phone-a', '--message', 'Call\x1b[2J\nlost mode     off', '--phone', '555\\x07')
  t.match((await phone('status')).out, /\nscreen        LOCKED: "Call\\x1B\[2J\\x0Alost mode     off" -- call 555\\\\x07\n/)
})

t.test('F2 wipe asks for confirmation, and says what it removed and kept', async (t) => {
  const { cloud, owner, dataDir, con } = await setup(t)
  mkdirSync(join(dataDir, 'user'))
  writeFileSync(join(dataDir, 'user', 'a'), '12345')
  const noTty = await con('wipe', 'phone-a')
  t.equal(noTty.code, 1)
  t.match(noTty.err, /run it in a terminal to confirm, or add --yes/)
  const args = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'wipe', 'phone-a', '--keys', owner.keys.dir]
  const wrong = testIo(cloud.clock)
  wrong.io.prompt = async (q) => (q.includes('phone-a') ? 'phone-b' : '')
  t.equal(await main(args, wrong.io), 1)
  t.match(wrong.err(), /not confirmed: nothing was sent/)
  t.ok(existsSync(join(dataDir, 'user', 'a')), 'nothing was wiped')
  const right = testIo(cloud.clock)
  right.io.prompt = async () => 'phone-a\n'
  t.equal(await main(args, right.io), 0, right.err())
  t.match(
    right.out(),
    /phone-a was wiped: 1 file, 5 bytes removed; external storage kept; Find Device pairing kept\ncommand .*: verified receipt/,
  )
  const scripted = await con('wipe', 'phone-a', '--yes', '--erase-sdcard', '--clear-find-device')
  t.match(scripted.out, /external storage erased; Find Device pairing cleared/)
})

t.test('F2 a phone online that has not answered when the console stops waiting: said as the web console says it', async (t) => {
  const { cloud, agent, con, secret } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  // Online (connected with its credentials) but never answering: the command stays queued while the console waits.
  const online = once(cloud.broker.store, 'presence')
  await connectDevice(t, cloud, 'phone-a', secret, { clean: true })
  await online
  const ring = await con('ring', 'phone-a', '--wait', '10ms', '--expires', '1h')
  t.match(
    ring.out,
    new RegExp(
      String.raw`^ring sent to phone-a: waiting for its receipt \(expires in 1h 0m\)\ncommand [0-9a-f-]{36} is queued; follow it with: ` +
        `fakephone console --api ${cloud.apiUrl} --data ${cloud.dataDir} commands phone-a\n$`,
    ),
    'not "offline": the cloud knows the phone is online',
  )
  t.match(
    (await con('commands', 'phone-a')).out,
    /\n\S+  ring +queued +\S+ ago +ring sent to phone-a: waiting for its receipt \(expires in 1h 0m\) +-\n/,
  )
})

t.test('F2 waiting on an offline phone says so once: the expiry counting down meanwhile is not news', async (t) => {
  const { cloud, agent, con } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  const submitted = once(cloud.broker.commands, 'changed')
  const ring = con('ring', 'phone-a', '--wait', '200ms', '--expires', '1h')
  await submitted
  ;(cloud.clock as ManualClock).advance(2000)
  const out = (await ring).out
  t.match(out, /^phone-a is offline: ring is queued and runs when it comes back \(expires in 1h 0m\)\ncommand [0-9a-f-]{36} is queued; /)
  t.equal(out.split('\n').length, 3, `two lines, said before the wait and not again after it: ${out}`)
})

t.test('F2 a command for an offline phone stays queued and can be cancelled; F3 refusals and missing keys are errors', async (t) => {
  const { cloud, agent, con, owner } = await setup(t)
  const off = once(cloud.broker.store, 'status')
  await agent.setSwitch('findDevice', false)
  await off
  const refused = await con('ring', 'phone-a')
  t.equal(refused.code, 1)
  t.equal(refused.err, 'error: this device has not enabled Find Device\n')
  await agent.setSwitch('findDevice', true)
  // F3: the cloud service off refuses in the same words, while `phone status` says "Find Device on": said which switch.
  const serviceOff = once(cloud.broker.store, 'status')
  await agent.setSwitch('cloudService', false)
  await serviceOff
  const offline = await con('ring', 'phone-a')
  t.equal(offline.code, 1)
  t.equal(
    offline.err,
    "error: this device has not enabled Find Device: the phone's cloud service is off, and Find Device with it (turn it " +
      "on in the phone's settings)\n",
    'the switch that is off is named',
  )
  // The cloud's own refusal, as it came: a script reads its code as for Find Device off (before, ERROR).
  t.match(JSON.parse((await con('--json', 'ring', 'phone-a')).err), {
    error: /^this device has not enabled Find Device: the phone's cloud service is off/,
    code: 'NOT_ENABLED',
    status: 409,
  })
  // The cloud has the phone's "on" before it stops (the phone says it once connected again).
  const serviceOn = once(cloud.broker.store, 'status')
  await agent.setSwitch('cloudService', true)
  await serviceOn
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  const queued = await con('ring', 'phone-a', '--wait', '50ms', '--expires', '1h')
  t.match(
    queued.out,
    new RegExp(
      String.raw`^phone-a is offline: ring is queued and runs when it comes back \(expires in 1h 0m\)\ncommand ` +
        String.raw`([0-9a-f-]{36}) is queued; follow it with: ` +
        `fakephone console --api ${cloud.apiUrl} --data ${cloud.dataDir} commands phone-a\n$`,
    ),
    "offline is said first, in the web console's words, with the flags that reach this broker; the wait changed nothing, so nothing more",
  )
  const id = /command ([0-9a-f-]{36}) is queued/.exec(queued.out)?.[1] as string
  const listed = (await con('commands', 'phone-a')).out
  t.match(
    listed,
    /  phone-a is offline: ring is queued and runs when it comes back \(expires in 1h 0m\)  +-\n/,
    'the table says it the same way',
  )
  const listedId = /\n(\S+)\s+ring\s+queued/.exec(listed)?.[1]
  t.equal(listedId, id, 'the id in the commands table is the one cancel takes')
  const cancel = (...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args], cloud.clock)
  t.equal((await cancel('cancel', id)).out, `Cancelled ring ${id} for phone-a.\n`)
  t.match((await cancel('cancel', id)).err, /it is already cancelled/)
  const unknown = '00000000-0000-4000-8000-000000000000'
  const get = await fetch(`${cloud.apiUrl}/api/commands/${unknown}`, { headers: { authorization: `Bearer ${cloud.consoleToken}` } })
  const notCancelled = (await cancel('cancel', unknown)).err
  t.equal(notCancelled, `error: ${(await get.json()).error as string}\n`, 'F2: an unknown command is said one way by GET and cancel')
  t.equal(notCancelled, `error: command "${unknown}" not found\n`)
  const second = JSON.parse((await con('--json', 'locate', 'phone-a', '--wait', '10ms')).out)
  t.match(JSON.parse((await cancel('--json', 'cancel', second.id)).out), {
    id: second.id,
    state: 'cancelled',
    reason: 'cancelled by the owner',
  })
  t.match((await con('commands', 'phone-a')).out, /ring\s+cancelled\s+\S+ ago\s+cancelled by the owner\s+-/)
  const tokenFile = join(cloud.dataDir, 'console.token')
  const byToken = await run(
    ['console', '--api', cloud.apiUrl, '--token-file', tokenFile, 'ring', 'phone-a', '--wait', '10ms', '--keys', owner.keys.dir],
    cloud.clock,
  )
  t.match(byToken.out, `follow it with: fakephone console --api ${cloud.apiUrl} --token-file ${tokenFile} commands phone-a\n`)
  await provision(cloud, owner, 'phone-c')
  t.equal((await con('commands', 'phone-c')).out, 'No commands for phone-c.\n')
  t.match(
    (await run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, 'ring', 'phone-a', '--keys', tempDir(t)], cloud.clock)).err,
    /no owner key for account "alice" in .*: use the keys folder the device was provisioned with/,
  )
  t.match((await con('ring', 'ghost')).err, /device "ghost" not found/)
})

t.test(
  'F1, F2 a command the phone cannot carry out is reported as failed with why, and the console exits 1, with --json too; a ' +
    'locate without a fix says where the last heartbeat put the phone',
  async (t) => {
    const waiting = {
      kind: 'gpsd',
      host: '127.0.0.1',
      port: 2947,
      state: 'waiting',
      retryInMs: 0,
      attempt: 1,
      lost: false,
      fix: null,
      maxAgeMs: 0,
    }
    // gpsd had a fix as the phone connected (its first heartbeat), then went away.
    let gpsdUp = true
    const fix = { lat: 55.9486, lon: -3.1999, accuracy: 6, speed: 0 }
    const location = { fix: () => (gpsdUp ? fix : null), describe: () => waiting } as LocationSource
    const { cloud, con } = await setup(t, { location })
    while (!cloud.broker.store.devices()[0]?.last) await once(cloud.broker.store, 'stored')
    gpsdUp = false
    ;(cloud.clock as ManualClock).advance(120_000)
    const r = await con('locate', 'phone-a')
    t.equal(r.code, 1)
    const why = 'no location fix: gpsd 127.0.0.1:2947 is not connected (is gpsd running?)'
    t.match(r.out, /^command .*: verified receipt.*\nlast known position: 55\.94860,-3\.19990 \(±6 m\) from its heartbeat 2m 0s ago\n$/)
    t.equal(r.err, `error: locate failed: ${why}\n`, 'the error line says it failed and why, not that it "did not run"')
    const j = await con('--json', 'locate', 'phone-a')
    t.equal(j.code, 1, 'a script reading --json learns from the exit code that the command failed, as without --json')
    t.match(JSON.parse(j.out), { type: 'locate', state: 'failed', reason: why, verified: true }, 'stdout is the command view alone')
    t.same(JSON.parse(j.err), { error: `locate failed: ${why}`, code: 'FAILED' }, 'stderr is its error as JSON, naming the state')
    t.equal(lastKnownText(null, 0), 'it has sent no position yet\n', 'a phone that never sent one says so')
  },
)

t.test('F2 a command that expires before the phone takes it exits 1, with and without --json', async (t) => {
  const { cloud, agent, con } = await setup(t)
  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  for (const json of [[], ['--json']]) {
    const submitted = once(cloud.broker.commands, 'changed')
    const ring = con(...json, 'ring', 'phone-a', '--wait', '30s', '--expires', '1s')
    await submitted
    ;(cloud.clock as ManualClock).advance(2000)
    const r = await ring
    t.equal(r.code, 1, `${json.join('') || 'human'}: a ring that never rang is no success`)
    const why = 'ring expired: it expired before the device received it'
    if (json.length) {
      t.match(JSON.parse(r.out), { state: 'expired', receipt: null, verified: false })
      t.same(JSON.parse(r.err), { error: why, code: 'EXPIRED' })
    } else {
      t.match(r.out, /\ncommand [0-9a-f-]{36}: no receipt\n$/)
      t.equal(r.err, `error: ${why}\n`)
    }
  }
})

t.test('the console API answers a broken body with 400 and an oversized one with 413, each with a code and a reason', async (t) => {
  const { cloud } = await setup(t)
  const post = (body: string) =>
    fetch(`${cloud.apiUrl}/api/devices/phone-a/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cloud.consoleToken}` },
      body,
    })
  const broken = await post('{"id":')
  t.equal(broken.status, 400)
  t.match(await broken.json(), { code: 'BAD_REQUEST', error: /^bad request: / })
  const huge = await post(JSON.stringify({ pad: 'x'.repeat(70_000) }))
  t.equal(huge.status, 413)
  t.match(await huge.json(), { code: 'TOO_LARGE', error: 'the request body is over 65536 bytes' })
  const empty = await fetch(`${cloud.apiUrl}/api/commands/nope/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.consoleToken}` },
  })
  t.equal(empty.status, 404, 'a POST without a body is routed like any other')
})

t.test(
  'F2: a genuine receipt of another command, or one that says another outcome or position than the cloud shows, is not ' +
    'called verified',
  (t) => {
    const keys = new OwnerKeys(tempDir(t))
    keys.rememberDevice('p', 'some-secret')
    const device = deviceKeys('some-secret').privateKey
    const view = commandView({ id: 'c2', type: 'locate', data: { lat: 55.9, lon: -3.2, accuracy: 8, at: 0 } })
    const receipt = (r: Partial<Result>): Result =>
      signPayload({ command: 'c2', device: 'p', state: 'succeeded', at: 0, data: view.data ?? undefined, ...r } as Result, device)
    t.match(receiptLine({ ...view, receipt: receipt({}) }, keys), /^verified receipt signed by p at /, "this command's own receipt")
    // Whoever controls the broker shows an earlier command's genuine receipt, or changes what a genuine one is shown with.
    t.equal(
      receiptLine({ ...view, receipt: receipt({ command: 'c1' }) }, keys),
      "receipt NOT verified: it is p's receipt of command c1, not of this one",
    )
    t.match(receiptLine({ ...view, receipt: receipt({ device: 'q' }) }, keys), /NOT verified: it is q's receipt/)
    t.match(
      receiptLine({ ...view, receipt: receipt({}), data: { lat: 48.85, lon: 2.35, accuracy: 8, at: 0 } }, keys),
      /^receipt NOT verified: the device's receipt says .*"lat":55\.9.*, not what the cloud shows$/,
      'a moved position',
    )
    t.match(
      receiptLine({ ...view, receipt: receipt({ state: 'failed', reason: 'no fix', data: undefined }) }, keys),
      /NOT verified: the device's receipt says \{"data":null,"reason":"no fix","state":"failed"\}/,
      'a failure shown as a success',
    )
    t.end()
  },
)

t.test('receipts are verified against the key the owner provisioned, and results are said in words', (t) => {
  const keys = new OwnerKeys(tempDir(t))
  const base = commandView({ id: 'c', type: 'ring', data: { seconds: 3 } })
  t.equal(receiptLine(base, keys), 'no receipt')
  const withReceipt = { ...base, receipt: { command: 'c', device: 'p', state: 'succeeded', at: 0, sig: 'AAAA' } } as CommandView
  t.match(receiptLine(withReceipt, keys), /NOT verified: this keys folder did not provision p/)
  keys.rememberDevice('p', 'some-secret')
  t.equal(receiptLine(withReceipt, keys), "receipt NOT verified: the signature is not p's")
  t.equal(
    describe({ ...base, state: 'failed', reason: 'no location fix', type: 'locate' } as CommandView, 0, true),
    'locate failed: no location fix',
  )
  t.equal(describe({ ...base, state: 'expired', reason: 'too late' } as CommandView, 0, false), 'ring expired: too late')
  t.end()
})
