/**
 * F2 trust: what someone who controls the broker can and cannot make a phone
 * do. Forged commands are published straight onto the device's command
 * topic, as a broker operator could; replays of a valid wipe arrive live,
 * after an agent restart and after a broker restart. Nothing forged runs and
 * the valid wipe runs exactly once.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ManualClock } from '../../common/clock.js'
import { COMMAND_TYPES, type Command, type CommandType } from '../../common/contract.js'
import { signPayload } from '../../common/signing.js'
import { CLOCK_SKEW_MS } from '../../agent/verify.js'
import { restartUnder, startAgent, startCloud } from '../fixtures/cloud.js'
import { commandState, listening, makeOwner, provision, signed, strangerKey, unsigned } from '../fixtures/owner.js'
import { tempDir } from '../fixtures/scope.js'

const ARGS: { [T in CommandType]: Command['args'] } = {
  locate: {},
  ring: { seconds: 5 },
  lock: { message: 'pwned', phone: '000' },
  'lost-mode': { on: true, message: 'pwned', phone: '000' },
  wipe: { eraseSdcard: true, keepFindDevice: false },
}

async function setup(t: Test) {
  const cloud = await startCloud(t)
  const clock = cloud.clock as ManualClock
  const owner = makeOwner(t)
  const secret = await provision(cloud, owner, 'phone-a')
  await provision(cloud, owner, 'phone-b')
  const dataDir = tempDir(t)
  const seed = (): void => {
    mkdirSync(join(dataDir, 'user'), { recursive: true })
    writeFileSync(join(dataDir, 'user', 'precious.txt'), 'family photos')
  }
  seed()
  const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  await listening(cloud, 'phone-a')
  return { cloud, clock, owner, secret, dataDir, agent, seed }
}

t.test(
  'F2 forged commands -- bad signature, wrong key, wrong device, tampered arguments, expired, not yet valid, replayed -- are ' +
    'rejected with no effect',
  async (t) => {
    const { cloud, clock, owner, agent, dataDir } = await setup(t)
    const now = clock.now()
    const other = strangerKey()
    const forgeries: [string, () => Command][] = [
      [
        'random signature',
        () => ({
          ...signed(owner, 'phone-a', pick(), args(), now),
          sig: Buffer.from(crypto.getRandomValues(new Uint8Array(64))).toString('base64'),
        }),
      ],
      ['signed by another key', () => signPayload(unsigned('phone-a', pick(), args(), now), other) as Command],
      ['signed for another device', () => signed(owner, 'phone-b', pick(), args(), now)],
      [
        'arguments tampered after signing',
        () =>
          ({
            ...signed(owner, 'phone-a', 'wipe', { eraseSdcard: false, keepFindDevice: true }, now),
            args: { eraseSdcard: true, keepFindDevice: false },
          }) as Command,
      ],
      ['type changed after signing', () => ({ ...signed(owner, 'phone-a', 'locate', {}, now), type: 'wipe', args: ARGS.wipe }) as Command],
      [
        'expiry extended after signing',
        () => ({ ...signed(owner, 'phone-a', pick(), args(), now - 10_000, { expiresAt: now - 1 }), expiresAt: now + 60_000 }) as Command,
      ],
      ['expired', () => signed(owner, 'phone-a', pick(), args(), now - 20_000, { expiresAt: now - 1 })],
      [
        'not yet valid',
        () => signed(owner, 'phone-a', pick(), args(), now + CLOCK_SKEW_MS + 1000, { expiresAt: now + CLOCK_SKEW_MS + 600_000 }),
      ],
      ['replayed sequence number', () => signed(owner, 'phone-a', pick(), args(), now, { seq: 1 })],
      ['not a command at all', () => ({ hello: 'world' }) as unknown as Command],
    ]
    let pickIndex = 0
    function pick(): CommandType {
      return COMMAND_TYPES[pickIndex++ % COMMAND_TYPES.length] as CommandType
    }
    function args(): never {
      return ARGS[COMMAND_TYPES[(pickIndex - 1) % COMMAND_TYPES.length] as CommandType] as never
    }
    // Raise the device's last seen sequence number so "replayed" has something to replay.
    const legit = signed(owner, 'phone-a', 'locate', {}, now)
    const legitDone = commandState(cloud, legit.id)
    cloud.broker.commands.submit('phone-a', legit)
    await legitDone

    const rejectedBefore = cloud.logs.lines.filter((l) => l.msg === 'command rejected').length
    let sent = 0
    for (let round = 0; round < 35; round++) {
      for (const [, forge] of forgeries) {
        const settled = once(agent.remote, 'settled')
        cloud.broker.sendToDevice('phone-a', JSON.stringify(forge()))
        const [, handling] = (await settled) as [string | null, string]
        if (handling !== 'rejected') t.fail(`a forgery was ${handling}`)
        sent++
      }
    }
    const rejections = cloud.logs.lines.filter((l) => l.msg === 'command rejected').slice(rejectedBefore)
    t.equal(rejections.length, sent, `all ${sent} forgeries rejected`)
    for (const [name, reason] of [
      ['bad signature', "the signature is not the owner's"],
      ['wrong device', 'the command is for phone-b'],
      ['expired', 'the command has expired'],
      ['not yet valid', 'the command is not valid yet'],
      ['replay', 'the command was already seen (replay)'],
      ['garbage', 'malformed command'],
    ]) {
      t.ok(
        rejections.some((l) => String(l.reason).startsWith(reason as string)),
        `${name} rejected with the reason "${reason}"`,
      )
    }
    t.ok(existsSync(join(dataDir, 'user', 'precious.txt')), 'no data was wiped')
    t.match(agent.status(), { lock: null, lostMode: false, ringingUntil: null, findDevice: true }, 'the phone is untouched')
    t.equal(Object.keys(agent.remote.journal.unfinished()).length, 0)
    t.equal(agent.remote.journal.entry(legit.id)?.step, 'done', 'only the genuine command is in the journal')
  },
)

t.test('F2 one valid wipe replayed live, after an agent restart and after a broker restart executes exactly once', async (t) => {
  const { cloud, clock, owner, secret, dataDir, agent, seed } = await setup(t)
  const wipe = signed(owner, 'phone-a', 'wipe', { eraseSdcard: true, keepFindDevice: true }, clock.now())
  const done = commandState(cloud, wipe.id)
  cloud.broker.commands.submit('phone-a', wipe)
  const first = await done
  t.match(first.data, { files: 1 })
  const replay = async (who: typeof agent, times: number): Promise<void> => {
    seed()
    for (let i = 0; i < times; i++) {
      const settled = once(who.remote, 'settled')
      cloud.broker.sendToDevice('phone-a', JSON.stringify(wipe))
      t.same((await settled)[1], 'repeat')
    }
    t.ok(existsSync(join(dataDir, 'user', 'precious.txt')), `data written after the wipe survives ${times} replays`)
  }
  await replay(agent, 50)

  await agent.stop()
  while (cloud.broker.isConnected('phone-a')) await once(cloud.broker.store, 'presence')
  const restarted = await startAgent(t, cloud, 'phone-a', secret, { dataDir, ownerKey: owner.publicKey })
  await listening(cloud, 'phone-a')
  await replay(restarted, 20)

  await restartUnder(cloud, restarted)
  clock.advance(1000)
  await listening(cloud, 'phone-a')
  await replay(restarted, 20)
  t.equal(cloud.broker.commands.get(wipe.id)?.state, 'succeeded')
  t.same(cloud.broker.commands.get(wipe.id)?.receipt, first.receipt, 'the receipt is the same one, resent')
})
