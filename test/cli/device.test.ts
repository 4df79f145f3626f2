/** `fakephone device ...` and the CLI's help and errors, in-process. */
import t from 'tap'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DB_FILE } from '../../broker/db.js'
import { duration, formatDuration } from '../../cli/options.js'
import { ACCOUNT_NAME_RULE } from '../../common/contract.js'
import { forTerminal } from '../../common/terminal-text.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

/** `console migrate ACCOUNT` to an unreachable cloud with `extra` flags: refused on its names before any request. */
const migrateArgs = (account: string, ...extra: string[]): string[] => [
  ...['console', '--api', 'http://127.0.0.1:1', 'migrate', account],
  ...['--to', 'http://127.0.0.1:1', '--to-token-file', 'f', '--job', 'j', ...extra],
]

t.test('--help lists every subcommand; an unknown command is an error', async (t) => {
  const help = await run(['--help'])
  t.equal(help.code, 0)
  for (const cmd of ['broker', 'device', 'agent', 'phone', 'console', 'demo']) t.match(help.out, new RegExp(`\\b${cmd}\\b`), cmd)
  const sub = await run(['device', 'add', '--help'])
  t.match(sub.out, /--account <name>/)
  const bad = await run(['teleport'])
  t.equal(bad.code, 1)
  t.match(bad.err, /unknown command 'teleport'/)
  const bare = await run([])
  t.equal(bare.code, 0, 'bare fakephone is not an error')
  t.equal(bare.out, help.out, 'bare fakephone prints the help on stdout')
  t.equal(bare.err, '')
  const version = await run(['--version'])
  t.equal(version.out.trim(), '0.1.0')
})

t.test("F2 an option's value that begins like --version (a console token may: base64url) is the value, not the version", async (t) => {
  // `fleet run --json --console-token -V…` printed "0.1.0" (exit 0) for its report: the run never started.
  for (const value of ['-Vx8k', '--version']) {
    const r = await run(['fleet', 'run', '--count', '1', '--profile', value])
    t.equal(r.code, 1, value)
    t.equal(r.out, '', 'no version printed')
    t.equal(r.err, `error: --profile "${value}": the one profile is owntracks\n`)
  }
  const misplaced = await run(['fleet', 'run', '--count', '1', '-V'])
  t.equal(misplaced.code, 1, '--version is asked before the command')
  t.match(misplaced.err, /unknown option '-V'/)
})

t.test('the top-level help lists each command with the description and options its own help has', async (t) => {
  // `fakephone --help` lists the commands from their summaries (cli/command-summaries.ts), loading none of them;
  // `--help console` loads every command and lists them from what each one says of itself: the two are the same.
  const help = await run(['--help'])
  const loaded = await run(['--help', 'console'])
  t.equal(loaded.code, 0)
  t.equal(help.out, loaded.out)
  t.match(help.out, /\n {2}device {13}register, list/, 'a command without options of its own')
  t.match(help.out, /\n {2}console \[options\] {2}the owner's console/, 'a command with options of its own')
  t.equal((await run(['help'])).out, help.out)
})

t.test('help shows each default in the form its flag accepts', async (t) => {
  const lock = (await run(['console', 'lock', '--help'])).out
  t.match(lock, /--expires <duration>\s+how long the command stays valid \(default 7d\)/)
  t.match(lock, /--wait <duration>\s+how long to wait for the device to answer \(default: 30s\)/)
  t.match((await run(['console', 'ring', '--help'])).out, /\(default 10m\)/)
  t.match((await run(['console', 'watch', '--help'])).out, /redraw interval \(default: 1s\)/)
  t.match((await run(['demo', '--help'])).out, /time between heartbeats \(default: 5s\)/)
  const agent = (await run(['agent', '--help'])).out
  t.match(agent, /--interval <duration>\s+time between heartbeats, e\.g\. 30s \(default: 30s\)/)
  t.notMatch(agent, /default: \d{4,}\)/, 'no duration in milliseconds')
  const broker = (await run(['broker', '--help'])).out
  t.match(broker, /e\.g\. 1h\s+\(default: never\)/, 'a duration whose default means "never" says so')
  t.notMatch(broker, /0ms/, 'and not as a duration of 0')
  for (const [ms, text] of [
    [0, '0ms'],
    [1500, '1s500ms'],
    [90_000, '1m30s'],
    [86_400_000, '1d'],
    [97_200_000, '1d3h'],
  ] as const) {
    t.equal(formatDuration(ms), text)
    t.equal(duration(text), ms, `${text} reads back`)
  }
})

t.test('device add prints the credentials once; list and remove; errors say what is wrong', async (t) => {
  const data = tempDir(t)
  const keys = tempDir(t)
  const added = await run(['device', 'add', 'pi-kitchen', '--account', 'bob', '--data', data, '--keys', keys])
  t.equal(added.code, 0)
  t.match(added.out, /Registered device pi-kitchen \(account bob\)/)
  const secret = /Secret \(shown once, stored only as a hash\): (\S+)/.exec(added.out)?.[1]
  t.ok(secret && secret.length > 30, 'the secret is printed')

  const toFile = await run([
    'device',
    'add',
    'pi-hall',
    '--data',
    data,
    '--keys',
    keys,
    '--secret-out',
    join(data, 'hall.secret'),
    '--json',
  ])
  const json = JSON.parse(toFile.out)
  t.match(json, { id: 'pi-hall', account: 'default', secretFile: join(data, 'hall.secret') })
  t.notOk('secret' in json, 'the secret went to the file, not the terminal')
  t.equal(statSync(join(data, 'hall.secret')).mode & 0o777, 0o600)
  t.ok(readFileSync(join(data, 'hall.secret'), 'utf8').trim().length > 30)
  const plainFile = await run(['device', 'add', 'pi-attic', '--data', data, '--keys', keys, '--secret-out', join(data, 'attic.secret')])
  t.match(plainFile.out, /Secret written to .*attic\.secret/)
  t.match((await run(['device', 'add', 'pi-cellar', '--data', data, '--keys', keys, '--json'])).out, /"secret":"/)

  const list = await run(['device', 'list', '--data', data])
  t.match(list.out, /DEVICE\s+ACCOUNT\s+REGISTERED\n/)
  t.match(list.out, /pi-kitchen\s+bob/)
  t.same(
    JSON.parse((await run(['device', 'list', '--data', data, '--json'])).out).devices.map((d: { id: string }) => d.id),
    ['pi-attic', 'pi-cellar', 'pi-hall', 'pi-kitchen'],
  )

  const dup = await run(['device', 'add', 'pi-kitchen', '--data', data, '--keys', keys])
  t.equal(dup.code, 1)
  t.equal(
    dup.err,
    'error: device "pi-kitchen" is already registered; for a new secret (the old one lost), remove it with ' +
      '`fakephone device remove pi-kitchen` (its history goes too) and add it again\n',
    'and how to give it a new secret',
  )
  t.match((await run(['device', 'add', 'Not/OK', '--data', data, '--keys', keys])).err, /invalid device id/)
  const taken = await run(['device', 'add', 'pi-hall', '--data', data, '--keys', keys, '--secret-out', join(data, 'taken.secret')])
  t.match(taken.err, /^error: device "pi-hall" is already registered; /)
  t.notOk(existsSync(join(data, 'taken.secret')), 'a refused add leaves no secret file behind')
  for (const [file, why] of [
    [join(data, 'hall.secret'), 'the file exists and is not replaced'],
    [join(data, 'no', 'such', 'dir.secret'), 'cannot write it: ENOENT'],
  ] as const) {
    const refused = await run(['device', 'add', 'pi-porch', '--data', data, '--keys', keys, '--secret-out', file])
    t.equal(refused.code, 1)
    t.match(refused.err, new RegExp(`^error: --secret-out .*: ${why}.*; no device was registered\n$`))
  }
  t.notMatch(
    (await run(['device', 'list', '--data', data])).out,
    /pi-porch/,
    'a secret file refused registers no device whose secret would be nowhere',
  )

  // A keys folder that cannot be made (a file in the way; /proc, where Node's recursive mkdir spun) refuses before the
  // device is registered, whose secret would be shown nowhere; a data folder that cannot be made is one line too.
  for (const [keysDir, why] of [
    [join(data, 'hall.secret', 'keys'), "ENOTDIR: not a directory, mkdir '.*hall\\.secret/keys/devices'"],
    ['/proc/self/fakephone-test', "ENOENT: no such file or directory, mkdir '/proc/self/fakephone-test'"],
  ] as const) {
    const noKeys = await run(['device', 'add', 'pi-porch', '--data', data, '--keys', keysDir])
    t.equal(noKeys.code, 1)
    t.match(noKeys.err, new RegExp(`^error: ${why}\n$`))
  }
  t.notMatch((await run(['device', 'list', '--data', data])).out, /pi-porch/, 'a keys folder refused registers no device')
  t.equal(
    (await run(['device', 'add', 'pi-porch', '--data', '/proc/self/fakephone-test', '--keys', keys])).err,
    "error: ENOENT: no such file or directory, mkdir '/proc/self/fakephone-test'\n",
  )
  // A database file that is not one, or a folder where it goes, is one line naming it and what to do, not a stack.
  const notADb = tempDir(t)
  writeFileSync(join(notADb, DB_FILE), 'garbage{')
  const folderDb = tempDir(t)
  mkdirSync(join(folderDb, DB_FILE))
  for (const [dir, why] of [
    [notADb, 'it is not a database \\(another file, or a damaged one\\) \\(SQLITE_NOTADB\\)'],
    [folderDb, 'it cannot be opened \\(a folder, or a path this user may not use\\) \\(SQLITE_CANTOPEN\\)'],
  ] as const) {
    const refused = await run(['device', 'list', '--data', dir])
    t.equal(refused.code, 1)
    t.match(
      refused.err,
      new RegExp(
        `^error: the database .*cloud\\.sqlite cannot be used: ${why}; restore it from a backup, or give another data directory\n$`,
      ),
    )
  }
  t.equal(readFileSync(join(notADb, DB_FILE), 'utf8'), 'garbage{', 'the file is left as it was')
  t.match((await run(['device', 'remove', 'pi-kitchen', '--data', data])).out, /Removed device pi-kitchen/)
  t.equal((await run(['device', 'remove', 'pi-kitchen', '--data', data])).err, 'error: no device "pi-kitchen" is registered\n')
  t.equal((await run(['device', 'add', 'pi-json', '--data', data, '--keys', keys])).code, 0)
  const removed = await run(['device', 'remove', 'pi-json', '--data', data, '--json'])
  t.same([removed.code, removed.out], [0, '{"removed":"pi-json"}\n'], 'F1: device remove --json, for a provisioning script')
  t.same(JSON.parse((await run(['device', 'remove', 'pi-json', '--data', data, '--json'])).err), {
    error: 'no device "pi-json" is registered',
    code: 'ERROR',
  })
  const none = tempDir(t)
  t.equal((await run(['device', 'add', 'pi-gone', '--data', none, '--keys', keys])).code, 0)
  t.match((await run(['device', 'remove', 'pi-gone', '--data', none])).out, /Removed device pi-gone/)
  t.equal((await run(['device', 'list', '--data', none])).out, 'No devices registered.\n')
})

t.test('F1 device commands on a directory that holds no broker data say so, instead of making an empty cloud there', async (t) => {
  // A broker run with --data cloud, then `device list` without --data (or with a typo): an empty database was made in
  // ./data and the answer was "No devices registered."; `device add` there registered a phone no running broker knows.
  const dir = tempDir(t)
  const cloud = join(dir, 'cloud')
  const keys = join(dir, 'keys')
  const first = await run(['device', 'add', 'pi', '--account', 'me', '--data', cloud, '--keys', keys])
  t.equal(first.code, 0)
  t.equal(
    first.err,
    `note: ${cloud} held no broker data, so a new cloud was made there: only a broker started with --data ${cloud} knows pi ` +
      '(a broker already running elsewhere does not)\n',
  )
  const second = await run(['device', 'add', 'laptop', '--account', 'me', '--data', cloud, '--keys', keys])
  t.equal(second.err, '', 'no note once the directory holds the cloud')
  const typo = join(dir, 'clod')
  for (const argv of [
    ['device', 'list', '--data', typo],
    ['device', 'list', '--data', typo, '--json'],
    ['device', 'remove', 'pi', '--data', typo],
  ]) {
    const r = await run(argv)
    t.equal(r.code, 1, argv.join(' '))
    t.equal(r.out, '')
    const why =
      `${typo} holds no broker data (no cloud.sqlite): give --data the directory the broker runs on ` +
      '(it says it at start: "its console: fakephone console --api … --data DIR"); nothing was made there'
    t.equal(r.err, argv.includes('--json') ? `${JSON.stringify({ error: why, code: 'ERROR' })}\n` : `error: ${why}\n`)
  }
  t.same(readdirSync(dir).sort(), ['cloud', 'keys'], 'nothing made at the typo')
  t.match((await run(['device', 'list', '--data', cloud])).out, /laptop\s+me[\s\S]*pi\s+me/, 'both phones where the broker is')
})

t.test('F2 device add makes no second key pair for an account that has devices: its owner could command none of the new', async (t) => {
  const data = tempDir(t)
  const owner = tempDir(t)
  t.equal((await run(['device', 'add', 'kitchen-pi', '--account', 'me', '--data', data, '--keys', owner])).code, 0)
  // The README's services move the keys folder to its owner; the next `device add` run as before names an empty one.
  const elsewhere = tempDir(t)
  const secretFile = join(data, 'attic.secret')
  const split = await run(['device', 'add', 'attic', '--account', 'me', '--data', data, '--keys', elsewhere, '--secret-out', secretFile])
  t.equal(split.code, 1)
  t.equal(
    split.err,
    `error: account me has 1 device already, obeying the owner key made with the first, and ${elsewhere} holds no key ` +
      "of it: give --keys the owner's keys folder (the one with me.key)\n",
  )
  t.notOk(existsSync(join(elsewhere, 'me.key')), 'no second key pair')
  t.notOk(existsSync(secretFile), 'no secret file for a device that was not registered')
  t.notMatch((await run(['device', 'list', '--data', data])).out, /attic/)
  const pub = readFileSync(join(owner, 'me.pub'), 'utf8')
  const added = await run(['device', 'add', 'attic', '--account', 'me', '--data', data, '--keys', owner, '--json'])
  t.equal(added.code, 0, added.err)
  t.equal(readFileSync(JSON.parse(added.out).ownerKeyFile, 'utf8'), pub, 'the phone gets the key its owner signs with')
  t.equal((await run(['device', 'add', 'porch', '--account', 'you', '--data', data, '--keys', elsewhere])).code, 0, 'a new account may')
})

t.test('bad option values are refused with the reason, before anything runs', async (t) => {
  // Exit 1 for a bad option; 78 (EX_CONFIG: systemd does not restart it) for a config the daemon cannot use, and for a
  // daemon's command line (under systemd, its unit's ExecStart), but not for the command a person runs under one.
  const cases: [string[], RegExp, number?][] = [
    [['broker', '--mqtt-port', '99999'], /port number from 0 to 65535/, 78],
    [['broker', '--max-packet-bytes', '0'], /whole number above 0/, 78],
    [['broker', '--mqtt-prot', '1883'], /unknown option '--mqtt-prot'\n\(Did you mean --mqtt-port\?\)/, 78],
    [['agent', '--id', 'x', '--secret-file', 'f', '--interval', 'soon'], /not a duration/, 78],
    [['agent', '--id', 'x', '--secret-file', 'f', '--jitter', '1.5'], /from 0 up to/, 78],
    [['agent', '--id', 'x', '--secret-file', 'f', '--fixed', '91,0'], /LAT,LON/, 78],
    [['agent', '--id', 'x', '--secret-file', 'f', '--fixed', '1,2', '--gpx', 'g'], /cannot be used with/, 78],
    [['agent', '--id', 'x', '--secret-fiel', 'f'], /unknown option '--secret-fiel'/, 78],
    [['agent', 'seed-data', '--bogus'], /unknown option '--bogus'/],
    [['console', '--bogus', 'devices'], /unknown option '--bogus'/],
    [['phone', 'find-device', 'maybe'], /"on" or "off"/],
    [['phone', 'network', '6g'], /wifi, mobile or none/],
    [['agent', '--secret-file', 'f'], /id: missing; set it in the config file, as FAKEPHONE_AGENT_ID or with --id/, 78],
    // M3: an import makes the account, M2 a migration makes it at the destination: its name meets the rule.
    [
      ['console', '--api', 'http://127.0.0.1:1', 'import', 'bag', '--account', 'Bob Smith'],
      /argument 'Bob Smith' is invalid\. account name: 1-64/,
    ],
    [
      migrateArgs('Bob Smith'),
      /^error: the account there would be "Bob Smith": account name: 1-64 .*; give --to-account with a name that meets it\n$/,
    ],
    [migrateArgs('bob', '--to-account', '../x'), /^error: the account there would be "\.\.\/x": account name: 1-64 [^;]*$/],
  ]
  for (const [argv, reason, code = 1] of cases) {
    const r = await run(argv)
    t.equal(r.code, code, argv.join(' '))
    t.match(r.err, reason, argv.join(' '))
  }
})

t.test("F1 a console --api that is not the broker's HTTP address says which to give, not Node's stack trace", async (t) => {
  // The broker prints both addresses ("Broker on mqtt://127.0.0.1:N and http://127.0.0.1:M"): the MQTT one, a ws:// one
  // and a bare HOST:PORT were taken as given, and the first request died with "fatal: TypeError [ERR_INVALID_PROTOCOL]".
  const said = (instead: string): string =>
    `must be the broker's HTTP address: ${instead} (the broker says it at start: "Broker on mqtt://… and http://…")\n`
  const refused: [string, string][] = [
    ['mqtt://127.0.0.1:37889', 'that is the MQTT address; the console talks to the HTTP one, http://127.0.0.1:HTTP-PORT'],
    ['ws://127.0.0.1:39653/mqtt', 'that is MQTT over WebSocket; the console talks to http://127.0.0.1:39653'],
    ['127.0.0.1:39653', 'give it as http://127.0.0.1:39653'],
    ['localhost:39653/', 'give it as http://localhost:39653'],
    ['https://127.0.0.1:39653', 'the broker serves plain HTTP, http://HOST:PORT'],
    ['the-broker', 'http://HOST:PORT'],
  ]
  for (const [api, instead] of refused) {
    for (const argv of [
      ['console', '--api', api, 'devices'],
      ['console', '--api', 'http://127.0.0.1:1', 'migrate', 'a', '--to', api, '--to-token-file', 'f', '--job', 'j'],
      ['fleet', 'run', '--count', '1', '--api', api],
    ]) {
      const r = await run(argv)
      t.equal(r.code, 1, argv.join(' '))
      t.equal(r.err, `error: option '${argv.includes('--to') ? '--to' : '--api'} <url>' argument '${api}' is invalid. ${said(instead)}`)
    }
  }
})

t.test(
  'device add refuses an account name the rule refuses, naming the rule, before the data directory or keys folder is touched',
  async (t) => {
    const dir = tempDir(t)
    for (const name of ['a/b', '../../etc/x', 'owner+', 'owner#', 'Bob Smith', 'x'.repeat(65), 'bell\u0007', '.hidden', '-dash']) {
      const r = await run(['device', 'add', 'p-1', '--account', name, '--data', join(dir, 'cloud'), '--keys', join(dir, 'keys')])
      t.equal(r.code, 1, JSON.stringify(name))
      // What was typed is quoted as the terminal shows any name from others: the bell as \x07, not rung.
      t.equal(r.err, `error: option '--account <name>' argument '${forTerminal(name)}' is invalid. ${ACCOUNT_NAME_RULE}\n`)
    }
    t.same(readdirSync(dir), [], 'nothing made')
    for (const name of ['alice', 'alice@example.com', 'qa-fleet-0001']) {
      const r = await run([
        'device',
        'add',
        `p-${name.length}`,
        '--account',
        name,
        '--data',
        join(dir, 'cloud'),
        '--keys',
        join(dir, 'keys'),
      ])
      t.equal(r.code, 0, r.err)
      t.ok(statSync(join(dir, 'keys', `${name}.key`)).isFile(), `${name}: its owner key is ${name}.key`)
    }
  },
)
