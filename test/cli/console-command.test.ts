/**
 * `fakephone console`'s subcommand groups are loaded when a command line names one of theirs (M2's cold start: `console
 * migrate` loads the migration's code only): each group adds exactly the names it is listed with, a command line adds
 * the one group it names (after the console's own options), and one that names none of them (help, a typo) lists them
 * all, in the order the help lists them, from their summaries (cli/console-summaries.ts) without loading their modules.
 */
import t from 'tap'
import { Command } from 'commander'
import { CONSOLE_GROUPS, PlainFrames, consoleCommand, subcommandOf } from '../../cli/console-command.js'
import { run, testIo } from '../fixtures/io.js'

const OWN = ['devices', 'history', 'watch']
const names = (cmd: Command): string[] => cmd.commands.map((c) => c.name())

t.test('each group adds exactly the subcommands it is listed with', async (t) => {
  const { io } = testIo()
  for (const group of CONSOLE_GROUPS) {
    const cmd = new Command('console')
    const wiring = {
      cmd,
      io,
      client: () => Promise.reject(new Error('not called')),
      opts: () => ({ api: '', data: '' }),
      json: () => false,
    }
    ;(await group.load())(wiring)
    t.same(names(cmd), group.names, group.names.join(', '))
  }
  const all = CONSOLE_GROUPS.flatMap((g) => g.names)
  t.equal(new Set([...OWN, ...all]).size, OWN.length + all.length, 'no name is in two groups')
})

t.test('a command line adds the group of the subcommand it names, and no other', async (t) => {
  const { io } = testIo()
  const all = [...OWN, ...CONSOLE_GROUPS.flatMap((g) => g.names)]
  t.same(names(await consoleCommand(io, ['--api', 'http://127.0.0.1:1', '--json', 'migrate', 'a', '--to', 'x'])), [...OWN, 'migrate'])
  t.same(names(await consoleCommand(io, ['--data', 'd', '--token-file', 'f', 'export', 'a'])), [...OWN, 'export', 'import'])
  t.same(names(await consoleCommand(io, ['devices'])), OWN, "the console's own subcommand: no group")
  t.same(names(await consoleCommand(io, [])), all, 'none named: every group, in the order of the help')
  t.same(names(await consoleCommand(io, ['--help'])), all)
  t.same(names(await consoleCommand(io, ['help', 'migrate'])), all)
  t.same(names(await consoleCommand(io)), all)
})

t.test("the console's help lists the groups' subcommands from their summaries, as their modules would", async (t) => {
  const { io } = testIo()
  const summarized = await consoleCommand(io, ['--help'])
  const loaded = await consoleCommand(io, ['help'])
  t.equal(summarized.helpInformation(), loaded.helpInformation(), 'console-summaries.ts says what each module adds')
  const locate = (cmd: Command): Command | undefined => cmd.commands.find((c) => c.name() === 'locate')
  t.same(locate(summarized)?.options, [], 'a summary: no module loaded for it')
  t.not(locate(loaded)?.options.length, 0, 'the remote commands module, loaded for `console help locate`')
})

t.test('the subcommand is the first word that is not an option or its value', async (t) => {
  const cmd = await consoleCommand(testIo().io, ['devices'])
  t.equal(subcommandOf(cmd, ['--api', 'migrate', 'web']), 'web', "--api's value is not the subcommand")
  t.equal(subcommandOf(cmd, ['--api=http://x', 'migrate']), 'migrate')
  t.equal(subcommandOf(cmd, ['--json', '--', 'locate']), 'locate')
  t.equal(subcommandOf(cmd, ['--json']), undefined)
  t.equal(subcommandOf(cmd, ['--api']), undefined)
})

t.test('through main: a typo still gets its "did you mean", a named group runs as before', async (t) => {
  const typo = await run(['console', '--api', 'http://127.0.0.1:1', 'migrat', 'a'])
  t.equal(typo.code, 1)
  t.match(typo.err, /unknown command 'migrat'[\s\S]*Did you mean migrate\?/)
  const help = await run(['console', 'migrate', '--help'])
  t.equal(help.code, 0)
  t.match(help.out, /--to-token-file <file>/)
})

t.test('a group named without a subcommand prints its help and exits 1, with no "error:" line of commander\'s own', async (t) => {
  for (const argv of [['console'], ['console', 'service'], ['fleet'], ['bag']]) {
    const got = await run(argv)
    t.equal(got.code, 1, argv.join(' '))
    t.match(got.out + got.err, /Usage: fakephone /, argv.join(' '))
    t.notMatch(got.err, /error:/, argv.join(' '))
  }
})

t.test('a live view off a terminal prints a table or its guide again only when it changed, not every redraw', async (t) => {
  const plain = new PlainFrames()
  t.equal(plain.frame('H1\n', 'table A\n', 'guide 1\n'), 'H1\ntable A\n\nguide 1\n', 'the first draw: header, table and guide')
  t.equal(plain.frame('H2\n', 'table A\n', 'guide 1\n'), undefined, 'the same table and guide: nothing, though the time moved')
  t.equal(plain.frame('H3\n', 'table B\n', 'guide 1\n'), 'H3\ntable B\n', 'a changed table, with its time, without the guide')
  t.equal(plain.frame('H4\n', 'table B\n', 'guide 2\n'), '\nguide 2\n', 'a changed guide (a used sign-in link) alone')
  t.equal(plain.frame('H5\n', 'table B\n', 'guide 2\n'), undefined)
  t.equal(plain.frame('H6\n', 'table B, 1s ago\n', 'guide 2\n', 'B'), 'H6\ntable B, 1s ago\n', 'a new state is printed')
  t.equal(plain.frame('H7\n', 'table B, 2s ago\n', 'guide 2\n', 'B'), undefined, 'its ages alone growing is not a change')
})
