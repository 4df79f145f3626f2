/**
 * One time for the whole system, the way a user runs it: broker, agent and
 * `console clock advance` as separate processes of the built CLI; device add
 * and the console and phone commands run `main` in this test's process on the real
 * clock, as a CLI process of their own would (neither the cloud's nor the
 * phone's process: the cloud's time reaches them only over the API, the
 * control socket and the data directory), at a fraction of a process's CPU.
 * After `console clock advance 73h` remote commands still run, the console shows
 * the phone's fixes as fresh, and the phone's own commands say "0s ago"
 * (clock-restart.test.ts: the data directory and a restarted broker).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SystemClock } from '../../common/clock.js'
import { assertBuilt, runCli, spawnCli } from '../fixtures/child.js'
import { connect, nextMessage, recordMessages } from '../fixtures/cloud.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

/** A CLI command line run in this process, on the real clock as in a process of its own. */
const cli = (argv: string[]): ReturnType<typeof run> => run(argv, new SystemClock())

const DAY = 86_400_000

/**
 * B1's schedule kept clear of the 73 h jump: monthly at 03:00 UTC on the day of the month five days from `now`, so it
 * next fires over four days on. At the default daily 03:00 the jump crosses three planned backups, and the phone makes
 * the one left open in its own process while this test runs: `phone backup now` below was refused with "a backup is
 * already being made" whenever that backup took longer than the commands before it.
 */
const cronClearOfTheJump = (now: number): string => `0 3 ${new Date(now + 5 * DAY).getUTCDate()} * *`

t.test('after `console clock advance 73h` the console, the phone in its own process and its CLI all read the cloud time', async (t) => {
  assertBuilt()
  const data = tempDir(t)
  const keys = join(data, 'keys')
  const secretFile = join(data, 'phone.secret')
  const phoneDir = join(data, 'phone')
  t.equal(
    (await cli(['device', 'add', 'clock-phone', '--account', 'qa', '--data', data, '--keys', keys, '--secret-out', secretFile])).code,
    0,
  )

  const broker = spawnCli(t, [
    'broker',
    '--simulated-time',
    '--data',
    data,
    '--mqtt-port',
    '0',
    '--http-port',
    '0',
    '--backup-cron',
    cronClearOfTheJump(Date.now()),
  ])
  const up = await broker.waitForLog((l) => l.msg === 'broker listening')
  const mqttUrl = `mqtt://127.0.0.1:${String(up.mqttPort)}`
  const api = ['console', '--api', `http://127.0.0.1:${String(up.httpPort)}`, '--data', data]
  const token = readFileSync(join(data, 'console.token'), 'utf8').trim()
  const watcher = await connect(t, mqttUrl, { clientId: 'console.clock', username: 'console', password: token })
  await watcher.subscribeAsync('fp/v1/clock-phone/heartbeat', { qos: 1 })
  const messages = recordMessages(watcher)
  const agent = spawnCli(t, [
    'agent',
    '--id',
    'clock-phone',
    '--secret-file',
    secretFile,
    '--owner-key',
    join(keys, 'qa.pub'),
    '--broker',
    mqttUrl,
    '--data',
    phoneDir,
    '--interval',
    '200ms',
    '--push',
    `ws://127.0.0.1:${String(up.httpPort)}/push`,
  ])
  await messages.waitFor(() => true)

  const advanced = await runCli([...api, '--json', 'clock', 'advance', '73h'])
  t.equal(advanced.code, 0, advanced.err)
  const cloudNow = (JSON.parse(advanced.out) as { now: number }).now
  const plans = JSON.parse((await cli([...api, '--json', 'backups', 'qa'])).out) as { plans: unknown[]; nextPlanAt: number }
  t.same(plans.plans, [], 'the jump crossed no planned backup: nothing runs beside `phone backup now` below')
  t.ok(plans.nextPlanAt > cloudNow, 'the schedule fires after the jump')

  const locate = await cli([...api, 'locate', 'clock-phone', '--keys', keys])
  t.equal(locate.code, 0, `a command signed after the jump runs: ${locate.err}`)
  t.match(locate.out, /clock-phone is at [\d.,-]+ \(±\d+ m\), fix taken \d+s ago\ncommand \S+: verified receipt/)

  const [, next] = await nextMessage(watcher)
  t.ok((JSON.parse(next.toString()) as { at: number }).at >= cloudNow, 'the next heartbeat is stamped in cloud time')
  const devices = await cli([...api, 'devices'])
  t.match(
    devices.out,
    /clock-phone\s+qa\s+online\s+\S+\s+\d+s\s/,
    'the phone in its own process stamps in cloud time: its fix is seconds old, not 73 h',
  )

  t.equal((await cli(['phone', '--data', phoneDir, 'backup', 'now'])).code, 0)
  const backups = await cli(['phone', '--data', phoneDir, 'backup', 'list'])
  t.match(backups.out, /\(\d+s ago\)/, 'the phone lists the cloud-stamped backup as just made')
  t.notMatch(backups.out, /in the future/)
  const sync = await cli(['phone', '--data', phoneDir, 'sync', 'now'])
  t.match(sync.out, /photos .* \d+s ago/, 'the phone says its last sync was just now')
  t.notMatch(sync.out, /in the future/)

  t.equal(await agent.stop(), 0)
  t.equal(await broker.stop(), 0)
})
