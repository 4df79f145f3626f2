/**
 * A name someone chose before the account-name rule (an escape sequence and a line break in it, written into the
 * database as an older fakephone left it) is shown by the CLI's human output, never obeyed by the terminal: no
 * colour, no cursor move, no forged line. --json gives it exactly.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDb } from '../../broker/db.js'
import { hashSecret } from '../../broker/devices/registry.js'
import { validateBag } from '../../common/bagit/validate.js'
import { ManualClock } from '../../common/clock.js'
import { ACCOUNT_NAME_RULE } from '../../common/contract.js'
import { Progress } from '../../cli/transfer/progress.js'
import { BAG_FIX, renderImport } from '../../cli/transfer/transfer-commands.js'
import { renderJob } from '../../cli/transfer/migrate-command.js'
import { renderFrameworkStatus } from '../../cli/framework-render.js'
import { renderSyncStatus } from '../../cli/sync-commands.js'
import { startCloud } from '../fixtures/cloud.js'
import { forTerminal } from '../../common/terminal-text.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

const LEGACY = 'evil\x1b[31mred\nline'
const SHOWN = 'evil\\x1B[31mred\\x0Aline'
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/

t.test('an account name with ESC[31m and a newline is shown escaped in every human view; --json keeps it exact', async (t) => {
  const data = join(tempDir(t), 'cloud')
  const db = openDb(data)
  db.prepare('INSERT INTO accounts (id, last_activity_at, created_at) VALUES (?, 0, 0)').run(LEGACY)
  db.prepare('INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, 0)').run('old-phone', LEGACY, hashSecret('s'))
  db.prepare('INSERT INTO device_state (device_id) VALUES (?)').run('old-phone')
  db.close()
  const cloud = await startCloud(t, { dataDir: data })
  const console_ = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
  const bag = join(tempDir(t), 'bag')
  const views: [string[], RegExp][] = [
    [[...console_, 'accounts'], new RegExp(`^${escape(SHOWN)}  +free `, 'm')],
    [[...console_, 'account', LEGACY], new RegExp(`^account        ${escape(SHOWN)}\n`)],
    [[...console_, 'devices'], new RegExp(`^old-phone  ${escape(SHOWN)}  offline`, 'm')],
    [['device', 'list', '--data', cloud.dataDir], new RegExp(`^old-phone  ${escape(SHOWN)}  `, 'm')],
    [[...console_, 'export', LEGACY, '--out', bag], new RegExp(`^Exported account ${escape(SHOWN)} to `)],
  ]
  for (const [argv, shown] of views) {
    const r = await run(argv)
    t.equal(r.code, 0, r.err)
    t.match(r.out, shown, argv.slice(-2).join(' '))
    t.notMatch(r.out, RAW, 'no control character reaches the terminal')
  }
  t.same((await validateBag(bag)).problems, [], "the bag's bag-info.txt folds the name's line break")

  // An error message carrying a name (the broker's refusal quotes it as JSON, which leaves a C1 CSI raw) is escaped too.
  const refused = await run([...console_, 'account', 'x\x9b2J'])
  t.equal(refused.code, 1)
  t.match(refused.err, /^error: .*bad account "x\\x9B2J"/)
  t.notMatch(refused.err, RAW)

  // The progress line of the export names the account too.
  const line = new Progress(null, new ManualClock(), `exporting ${LEGACY}`, { items: 1, bytes: 1 }).line()
  t.match(line, `exporting ${SHOWN}: 0/1 item,`)
  t.notMatch(line, RAW)

  const json = await run([...console_, '--json', 'accounts'])
  t.equal((JSON.parse(json.out) as { accounts: { id: string }[] }).accounts[0]?.id, LEGACY, '--json: the name exactly')
})

function escape(s: string): string {
  return s.replace(/[\\[\]]/g, (c) => `\\${c}`)
}

t.test(
  "commander's own errors and Node's about a path quote what was typed escaped: no colour, no forged line; its 'did you mean' stays a line",
  async (t) => {
    const lines: [string[], string][] = [
      [['console', '\x1b[31mx'], "error: unknown command '\\x1B[31mx'\n"],
      [['console', 'x\nerror: forged'], "error: unknown command 'x\\x0Aerror: forged'\n"],
      [['console', '\\x1B'], "error: unknown command '\\\\x1B'\n"],
      [['console', 'migrat\x07'], "error: unknown command 'migrat\\x07'\n(Did you mean migrate?)\n"],
      [['console', 'devices', '--\x1b]0;pwned\x07'], "error: unknown option '--\\x1B]0;pwned\\x07'\n"],
      [
        ['console', 'locate', 'p', '--wait', '\x9b2J'],
        `error: option '--wait <duration>' argument '\\x9B2J' is invalid. not a duration: "\\x9B2J" (use e.g. 500ms, 30s, 5m, 73h, 7d)\n`,
      ],
      [
        ['device', 'add', 'p', '--account', 'a\u202eb'],
        `error: option '--account <name>' argument 'a\\u{202E}b' is invalid. ${ACCOUNT_NAME_RULE}\n`,
      ],
      [['\x1b[2Jx'], "error: unknown command '\\x1B[2Jx'\n(add --help for usage)\n"],
      [['console', 'locate'], "error: missing required argument 'id'\n"],
      // Node's words for a path that cannot be used quote the path: escaped the same way.
      [
        ['device', 'add', 'p', '--data', '/proc/self/fakephone-\x1b[31mtest\\', '--keys', tempDir(t)],
        "error: ENOENT: no such file or directory, mkdir '/proc/self/fakephone-\\x1B[31mtest\\\\'\n",
      ],
    ]
    for (const [argv, said] of lines) {
      const r = await run(argv)
      t.equal(r.code, 1, argv.join(' '))
      t.equal(r.err, said, 'the line a user sees')
      t.notMatch(r.err, RAW, 'no control character reaches the terminal')
      t.notMatch(r.err, /\u202e/)
    }
  },
)

t.test("M3 bag validate shows the bag's file names and lines escaped one way, as every name from others", async (t) => {
  const bag = join(tempDir(t), 'bag\x1b[2J')
  mkdirSync(join(bag, 'data'), { recursive: true })
  writeFileSync(join(bag, 'bagit.txt'), 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')
  writeFileSync(join(bag, 'manifest-sha256.txt'), 'zz \x9b2J\n')
  writeFileSync(join(bag, 'data', 'evil\x1b[31m\n.txt'), '')
  writeFileSync(join(bag, 'data', '\\x1B.txt'), '')
  const r = await run(['bag', 'validate', bag])
  t.equal(r.code, 1)
  const shownBag = forTerminal(bag)
  t.equal(
    r.err,
    `error: ${shownBag} is not a valid bag: 3 problems\n` +
      `  "data/\\\\x1B.txt": not listed in manifest-sha256.txt (a payload file the bag does not account for)\n` +
      `  "data/evil\\x1B[31m\\x0A.txt": not listed in manifest-sha256.txt (a payload file the bag does not account for)\n` +
      `  "manifest-sha256.txt": line 1 is not "<sha256 checksum> <path>": "zz \\x9B2J"\n` +
      `${BAG_FIX}\n`,
    'an ESC is \\x1B wherever it is (not \\u001b in one place and \\x9B in another); the text \\x1B is \\\\x1B',
  )
  t.notMatch(r.err, RAW)
  t.match(shownBag, /bag\\x1B\[2J$/)
  const json = JSON.parse((await run(['bag', '--json', 'validate', bag])).out) as { problems: { path: string; problem: string }[] }
  t.ok(
    json.problems.some((p) => p.path === 'data/evil\x1b[31m\n.txt'),
    '--json gives the name exactly',
  )
})

t.test("M3 an import's refused records are named escaped: a record id from the bag cannot forge a line", async (t) => {
  const said = renderImport({
    now: 0,
    account: 'alice',
    imported: 1,
    present: 0,
    failed: 1,
    outcomes: [
      { kind: 'item', id: 'photos/a', result: 'imported' },
      { kind: 'item', id: 'notes/x\nImported into account alice: 9 records', result: 'failed', error: 'bad id "x\x1b[2J"' },
    ],
  })
  t.equal(
    said,
    'Imported into account alice: 1 record added, 0 already there, 1 refused\n' +
      "  of the bag's 2 records: 2 items\n" +
      '  item notes/x\\x0AImported into account alice: 9 records: bad id "x\\x1B[2J"\n',
  )
})

t.test(
  "others' words outside tables (a notification's title, the cloud's notice, an error, a migration's report) shown escaped",
  async (t) => {
    const evil = 'x\x1b[2J\nforged'
    const shown = 'x\\x1B[2J\\x0Aforged'
    const framework = renderFrameworkStatus({
      pushChannel: 'connected',
      networkPermission: true,
      logsOverMobile: false,
      notifications: {
        shown: 1,
        duplicatesSuppressed: 0,
        recent: [{ kind: 'message', title: evil, delayMs: 0 }],
        service: { state: 'retiring', title: evil, at: 0, body: evil },
      },
      logs: { waiting: 0, uploaded: 0, notCollected: 0, deferred: null },
    } as unknown as Parameters<typeof renderFrameworkStatus>[0])
    t.match(framework, `cloud         retiring: ${shown} (1970-01-01 00:00:00 UTC): ${shown}\n`)
    t.match(framework, `; last: message "${shown}", 0s late`)
    const sync = renderSyncStatus(
      {
        switches: { galleryBackup: true, albumSync: false },
        running: false,
        categories: { photos: { sync: true, uploads: true, local: 1, inCloud: 0, pending: 1, lastSync: null, lastError: evil } },
      } as unknown as Parameters<typeof renderSyncStatus>[0],
      0,
    )
    t.match(sync, `\n             last error: ${shown}\n`)
    const job = renderJob({
      account: 'alice',
      to: 'http://127.0.0.1:1',
      toAccount: 'alice',
      state: 'failed',
      summary: evil,
      report: [
        { kind: 'drive', id: evil, identical: false, error: evil, transit: [] },
        { kind: 'item', id: 'photos/a', identical: true, transit: [evil] },
      ],
      others: [{ kind: 'device', id: evil, error: evil }],
      phones: { to: { cloud: 'http://127.0.0.1:1' }, devices: ['p\x07'] },
    } as unknown as Parameters<typeof renderJob>[0])
    t.match(
      job,
      `: failed. ${shown}\n  of the 2: 1 item, 1 drive file\n  drive ${shown}: ${shown}\n  device ${shown}: ${shown}\n` +
        `  item photos/a: identical after a retry; ${shown}\n`,
    )
    t.match(job, ': p\\x07\n')
    for (const text of [framework, sync, job]) t.notMatch(text, RAW, 'no control character reaches the terminal')
  },
)

t.test(
  "a broker's refusal quotes a name as the terminal shows names, escaped once: ESC, a line break, a backslash and a quote",
  async (t) => {
    const cloud = await startCloud(t)
    const console_ = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]
    const name = 'x\x1b[2J\n\\"y'
    // \x1B and \x0A for the controls, \\ for the backslash, \" for the quote: one backslash starts each escape, none is doubled.
    const shown = '"x\\x1B[2J\\x0A\\\\\\"y"'
    const history = await run([...console_, 'history', name])
    t.equal(history.code, 1)
    t.equal(history.err, `error: device ${shown} not found\n`)
    const account = await run([...console_, 'account', name])
    t.equal(account.code, 1)
    t.equal(account.err, `error: bad account ${shown}: ✖ ${ACCOUNT_NAME_RULE}\n`, 'where the JSON quoting said "x\\u001b[2J\\n\\\\\\"y"')
  },
)

t.test(
  "a value the user typed is shown escaped in the error it is in, a typed line break as \\x0A; the error's own lines stay",
  async (t) => {
    const dir = tempDir(t)
    const lines: [string[], string][] = [
      [['bag', 'validate', `${dir}/no\nsuch`], `error: ${dir}/no\\x0Asuch does not exist\n`],
      [['phone', 'sync', 'x\ny', 'on', '--data', dir], 'error: unknown category "x\\x0Ay": use photos, contacts, notes, recordings\n'],
      [
        ['install', '--prefix', dir, '--bin', 'rel\n\\"x'],
        'error: --bin must start with an absolute path (systemd does no PATH lookup): "rel\\x0A\\\\\\"x"\n',
      ],
      [
        ['fleet', 'provision', '--count', '1', '--account-prefix', 'A\nB', '--data', dir, '--keys', dir],
        'error: --account-prefix "A\\x0AB": 1-41 of a-z, 0-9 and "-", not starting with "-"\n',
      ],
      [['config', 'check', `${dir}/x\ny.json`], `error: ${dir}/x\\x0Ay.json: cannot read it: no such file (ENOENT)\n`],
      [
        ['console', 'web-link', 'ftp://x\n', '--data', dir],
        'error: "ftp://x\\x0A" is not the web console\'s address: give it as printed, e.g. http://127.0.0.1:41234/\n',
      ],
    ]
    for (const [argv, said] of lines) {
      const r = await run(argv)
      t.equal(r.code, 1, argv.join(' '))
      t.equal(r.err, said, 'one line: the typed line break cannot forge a second')
    }
    // An error of several lines keeps them; the typed path in its first line is escaped.
    const bag = join(dir, 'bag\nforged')
    mkdirSync(join(bag, 'data'), { recursive: true })
    const r = await run(['bag', 'validate', bag])
    t.equal(r.code, 1)
    t.match(r.err, /^error: [^\n]*\/bag\\x0Aforged is not a valid bag: \d+ problems?\n {2}"/)
  },
)
