/**
 * Every `fakephone …` command line the README and docs/ write (in code blocks and in inline code, `npx fakephone …`,
 * `sudo fakephone …`, `node dist/cli/main.js …`, `npm start -- …`) names a subcommand that exists and only options that
 * subcommand (or a command above it) declares, as the real commander program parses them. Nothing is run: each line is
 * parsed by the program `cli/main.ts` builds for it, with every action replaced by one that only records which command
 * it reached. The README's CLI table names every command there is.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { program } from '../../cli/main.js'
import { testIo } from '../fixtures/io.js'
import { docCommands, fakephoneArgv, resolve, resolveDoc, shellCommands, synopsisArgvs } from '../fixtures/doc-commands.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join('docs', f)),
]

// ---- the tests --------------------------------------------------------------------------------------------------------

t.test('the extractor reads shell lines as the shell does', (t) => {
  t.same(shellCommands(`a --m "x y" 'z' # c`), [['a', '--m', 'x y', 'z']])
  t.same(shellCommands('a | b && c; d > f 2>&1 < g'), [['a'], ['b'], ['c'], ['d']])
  t.same(shellCommands('a $P b', new Map([['P', '--data d']])), [['a', '--data', 'd', 'b']])
  t.same(shellCommands('a $(cat f) `b`'), [['a', '$SUBSTITUTION:$(cat f)', '$SUBSTITUTION']])
  t.same(fakephoneArgv(['sudo', '-u', 'fakephone', 'fakephone', 'device', 'list'], false)?.argv, ['device', 'list'])
  t.same(fakephoneArgv(['node', '--max-semi-space-size=4', 'dist/cli/main.js', 'demo'], false)?.argv, ['demo'])
  t.same(fakephoneArgv(['npm', 'start', '--', '--mqtt-port', 'N'], false)?.argv, ['demo', '--mqtt-port', 'N'])
  t.same(fakephoneArgv(['its', 'console:', 'fakephone', 'console'], true), { before: ['its', 'console:'], argv: ['console'] })
  t.same(synopsisArgvs('phone --data DIR backup status \\| off [--delete-data]').rest[0]?.words, ['off', '--delete-data'])
  t.end()
})

t.test('the resolver parses with the real program and runs nothing', async (t) => {
  t.same(await resolve(['console', '--data', 'DIR', 'history', 'ID', '--limit', '5']), { reached: 'console history' })
  t.match((await resolve(['console', 'devics'])).error, /unknown command 'devics'/)
  t.match((await resolve(['console', 'history', 'ID', '--limt', '5'])).error, /unknown option '--limt'/)
  t.match((await resolve(['console', 'devices', 'extra'])).error, /too many arguments/)
  t.match((await resolve(['console', 'watch', '--every', '1x'])).error, /not a duration/)
  t.same(await resolve(['console', 'watch', '--every', 'N']), { reached: 'console watch' }, 'a placeholder value is not parsed')
  t.same(await resolve(['console', 'drive', 'token', 'ACCOUNT']), { reached: 'console drive token' }, 'a mandatory option may be left out')
  t.match((await resolve(['agent', '--gpx', 'F', '--fixed', '1,2'])).error, /cannot be used with/)
  t.same(
    await resolve(['agent', '--gpx', 'F', '--fixed', '1,2'], true),
    { reached: 'agent' },
    'a synopsis lists exclusive options together',
  )
})

const all = docs.flatMap((doc) => docCommands(doc, readFileSync(join(root, doc), 'utf8')))

t.test('every fakephone command line in the README and docs/ names a subcommand and options that exist', async (t) => {
  t.ok(all.length > 200, `the docs write ${all.length} fakephone command lines`)
  for (const c of all) {
    const { errors, reached } = await resolveDoc(c)
    if (process.env.DOCS_COMMANDS_DUMP)
      console.error(`${c.doc}:${c.line} ${c.synopsis ? 'S' : c.inline ? 'I' : 'B'} ${JSON.stringify(c.argvs)} -> ${reached.join(', ')}`)
    for (const e of errors) t.fail(`${c.doc}:${c.line}: ${e}\n    the line: ${c.text}`)
  }
})

t.test("the README's CLI table names every command", async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const start = readme.indexOf('\n## The CLI\n')
  t.ok(start > 0, 'the README has a section "The CLI"')
  const end = readme.indexOf('\n## ', start + 1)
  const firstLine = readme.slice(0, start).split('\n').length + 1
  const lastLine = readme.slice(0, end).split('\n').length
  const named = new Set<string>()
  for (const c of all.filter((c) => c.doc === 'README.md' && c.line >= firstLine && c.line <= lastLine)) {
    for (const r of (await resolveDoc(c)).reached) named.add(r)
  }
  // Every command, the console's included: a program built for `console NAME` has NAME's group of subcommands whole
  // (the others as their summaries only).
  const commands = new Set<string>()
  const walk = (cmd: Command, path: string[]): void => {
    if ((cmd as unknown as { _actionHandler: unknown })._actionHandler) commands.add(path.join(' '))
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()])
  }
  const every = await program(testIo().io, ['help', 'console'])
  walk(every, [])
  for (const group of (every.commands.find((c) => c.name() === 'console') as Command).commands) {
    const prog = await program(testIo().io, ['console', group.name()])
    walk((prog.commands[0] as Command).commands.find((c) => c.name() === group.name()) as Command, ['console', group.name()])
  }
  t.ok(commands.size > 80, `${commands.size} commands`)
  const missing = [...commands].filter((c) => !named.has(c))
  t.same(missing, [], 'commands the CLI table does not name')
})
