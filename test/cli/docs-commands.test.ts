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
import { CommanderError, type Command } from 'commander'
import { program } from '../../cli/main.js'
import { testIo } from '../fixtures/io.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join('docs', f)),
]

/** One command line a doc writes: where, as written, and the words that follow `fakephone`. */
export interface DocCommand {
  doc: string
  line: number
  text: string
  /** A synopsis (`[--opt X]`, `a \| b`, `…`) rather than a line to run: read leniently, see `synopsisArgvs`. */
  synopsis: boolean
  /** Inline code in prose, which may name an option without its value (`fleet run --api`). */
  inline: boolean
  argvs: string[][]
  /** For each of `argvs`, the leading words it may follow (a synopsis's later alternatives); none: it stands alone. */
  prefixes?: string[][][]
}

// ---- shell words ------------------------------------------------------------------------------------------------------

const OPERATORS = new Set(['|', '||', '&&', ';', '&'])
const REDIRECT = /^(\d*>>?|\d*>&\d*|<<?|&>)$/

/**
 * A shell line's simple commands, each as its words: quotes and backslashes resolved, `#` comments, redirections and
 * their targets dropped, `$NAME` expanded from `vars` (unquoted: split at spaces; unknown: kept as written, a
 * placeholder), `$(…)` and backquotes one placeholder word.
 */
export function shellCommands(line: string, vars: ReadonlyMap<string, string> = new Map()): string[][] {
  const commands: string[][] = [[]]
  let word: string | null = null
  const end = (): void => {
    if (word !== null) (commands[commands.length - 1] as string[]).push(word)
    word = null
  }
  const add = (s: string): void => void (word = (word ?? '') + s)
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (/\s/.test(c)) end()
    else if (c === '#' && word === null) break
    else if (c === '\\') add(line[++i] ?? '')
    else if (c === "'") {
      const close = line.indexOf("'", i + 1)
      add(line.slice(i + 1, close < 0 ? undefined : close))
      i = close < 0 ? line.length : close
    } else if (c === '"') {
      let s = ''
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && /["\\$`]/.test(line[i + 1] ?? '')) s += line[++i]
        else if (line[i] === '$') {
          const v = /^\$(?:\{(\w+)\}|(\w+))/.exec(line.slice(i))
          if (v) {
            s += vars.get((v[1] ?? v[2]) as string) ?? v[0]
            i += v[0].length - 1
          } else s += '$'
        } else s += line[i]
      }
      add(s)
    } else if (c === '$' && line[i + 1] === '(') {
      let depth = 0
      const start = i
      for (; i < line.length; i++) {
        if (line[i] === '(') depth++
        else if (line[i] === ')' && --depth === 0) break
      }
      add(`$SUBSTITUTION:${line.slice(start, i + 1)}`)
    } else if (c === '`') {
      const close = line.indexOf('`', i + 1)
      add('$SUBSTITUTION')
      i = close < 0 ? line.length : close
    } else if (c === '$' && /[\w{]/.test(line[i + 1] ?? '')) {
      const v = /^\$(?:\{(\w+)\}|(\w+))/.exec(line.slice(i)) as RegExpExecArray
      const value = vars.get((v[1] ?? v[2]) as string)
      i += v[0].length - 1
      if (value === undefined) add(v[0])
      else {
        const [first = '', ...rest] = value.split(/\s+/).filter(Boolean)
        add(first)
        for (const w of rest) {
          end()
          add(w)
        }
      }
    } else if (/[|&;<>]/.test(c) && !(c === '&' && word !== null && /^\d*>$/.test(word))) {
      const op = /^(\|\||&&|\d*>>|&>|>&\d*|<<|[|&;<>])/.exec(line.slice(i)) as RegExpExecArray
      if (word !== null && /^\d+$/.test(word) && /^[<>]/.test(op[0])) word = null // 2>
      end()
      i += op[0].length - 1
      if (OPERATORS.has(op[0])) commands.push([])
      else if (REDIRECT.test(op[0]) || /^>&/.test(op[0])) {
        // the redirection's target is the next word: skip it
        while (/\s/.test(line[i + 1] ?? '')) i++
        if (!/^>&\d/.test(op[0])) {
          const target = /^\S+/.exec(line.slice(i + 1))
          if (target && !/^[|&;]/.test(target[0])) i += target[0].length
        }
      }
    } else add(c)
  }
  end()
  return commands.filter((c) => c.length > 0)
}

/**
 * The words that follow the command's name, when `words` (one simple command) runs fakephone: after `sudo [-u USER]`,
 * `VAR=value`, `env`, `npx`, `exec`, `time` or `do`, the word `fakephone`, `node [node's options] …dist/cli/main.js`
 * or `npm start [-- …]` (the demo); `before`: the words ahead of it. For inline code in prose (`its console: fakephone
 * console …`) fakephone may come after other words (`anywhere`).
 */
export function fakephoneArgv(words: readonly string[], anywhere: boolean): { before: string[]; argv: string[] } | undefined {
  let i = 0
  for (;;) {
    const w = words[i]
    if (w === 'sudo') {
      i++
      while (words[i]?.startsWith('-')) i += /^-[ug]$/.test(words[i] as string) ? 2 : 1
    } else if (w !== undefined && (/^\w+=/.test(w) || ['env', 'npx', 'exec', 'time', 'do', 'then'].includes(w))) i++
    else break
  }
  for (let j = i; j < (anywhere ? words.length : i + 1); j++) {
    const w = words[j] as string
    const before = words.slice(i, j)
    if (w === 'fakephone') return { before, argv: words.slice(j + 1) }
    if (w === 'node') {
      let k = j + 1
      while (words[k]?.startsWith('-')) k++
      if (/(^|\/)dist\/cli\/main\.js$/.test(words[k] ?? '')) return { before, argv: words.slice(k + 1) }
    }
    if (w === 'npm' && words[j + 1] === 'start') {
      const rest = words.slice(j + 2)
      if (rest[0] === '--') return { before, argv: ['demo', ...rest.slice(1)] }
      if (rest.length === 0) return { before, argv: ['demo'] }
    }
  }
  return undefined
}

// ---- synopses ---------------------------------------------------------------------------------------------------------

/**
 * A synopsis's command lines. `[…]` marks optional parts: they are kept (their options must exist too). `a|b` inside a
 * word is a choice of values: the first is taken. ` | ` inside brackets separates options that exclude each other:
 * all are kept. ` | ` outside brackets separates subcommands sharing the first one's leading words: each alternative
 * is given as `prefixes` (the first alternative's leading words, longest first), for `resolve` to try in turn.
 * `…` and `...` stand for what the line leaves out and are dropped.
 */
export function synopsisArgvs(text: string): { first: string[]; rest: { prefixes: string[][]; words: string[] }[] } {
  const s = text.replace(/\\\|/g, '|').replace(/([^\s|[\]]+)(?:\|[^\s|[\]]+)+/g, '$1')
  const alternatives: string[] = ['']
  let depth = 0
  for (const c of s) {
    if (c === '[') depth++
    else if (c === ']') depth--
    if (c === '|' && depth === 0) alternatives.push('')
    else alternatives[alternatives.length - 1] += c === '|' || c === '[' || c === ']' ? ' ' : c
  }
  const words = alternatives.map((a) =>
    (shellCommands(a.replace(/…|\.\.\./g, ' ').replace(/[|&;<>]/g, ' '))[0] ?? []).filter((w) => w.length > 0),
  )
  const first = words[0] as string[]
  const prefixes: string[][] = []
  for (let k = first.length - 1; k >= 1; k--) prefixes.push(first.slice(0, k))
  return { first, rest: words.slice(1).map((w) => ({ prefixes, words: w })) }
}

// ---- extraction -------------------------------------------------------------------------------------------------------

/** The top-level commands, as the help lists them. */
const TOP_LEVEL: ReadonlySet<string> = new Set((await program(testIo().io, [])).commands.map((c) => c.name()))

const SHELL_BLOCK = new Set(['', 'sh', 'bash', 'shell', 'console', 'text'])

/** Every fakephone command line of one Markdown file. */
export function docCommands(doc: string, markdown: string): DocCommand[] {
  const found: DocCommand[] = []
  const lines = markdown.split('\n')
  const prose: string[] = []
  // A variable the prose sets in inline code (`P="--data DIR"`) holds for the doc's blocks.
  const vars = new Map<string, string>()
  for (const [, name, value] of markdown.matchAll(/`(\w+)=((?:"[^"`]*"|'[^'`]*'|[^\s`]+))`/g)) {
    vars.set(name as string, (shellCommands(value as string)[0] ?? []).join(' '))
  }
  for (let i = 0; i < lines.length; i++) {
    const fence = /^\s*(```+|~~~+)\s*(\S*)/.exec(lines[i] as string)
    // An indented code line that runs fakephone (a 4-space code block).
    if (/^( {4,}|\t)(\$ )?((sudo|npx) )*fakephone\s/.test(lines[i] as string)) {
      found.push(...blockCommands(doc, [{ text: (lines[i] as string).trim(), line: i + 1 }], vars))
      prose.push('')
      continue
    }
    if (!fence) {
      prose.push(lines[i] as string)
      continue
    }
    prose.push('')
    const lang = fence[2] as string
    const block: { text: string; line: number }[] = []
    for (i++; i < lines.length && !(lines[i] as string).trimStart().startsWith(fence[1] as string); i++) {
      block.push({ text: lines[i] as string, line: i + 1 })
      prose.push('')
    }
    prose.push('')
    if (SHELL_BLOCK.has(lang)) found.push(...blockCommands(doc, block, vars))
  }
  found.push(...proseCommands(doc, prose.join('\n')))
  return found.sort((a, b) => a.line - b.line)
}

/** A shell block's commands: `\` continuations joined, heredoc bodies skipped; in a block of `$ ` prompts, only those lines. */
function blockCommands(doc: string, block: { text: string; line: number }[], docVars: ReadonlyMap<string, string>): DocCommand[] {
  const found: DocCommand[] = []
  const prompts = block.some((l) => /^\s*\$ /.test(l.text))
  const vars = new Map(docVars)
  for (let i = 0; i < block.length; i++) {
    const start = block[i] as { text: string; line: number }
    let text = start.text
    // Output and comments may quote a command to run (`its console: fakephone console …`, `` `fakephone device add …` ``).
    const said = /^\s*#/.test(text) ? text.replace(/^\s*#\s*/, '') : prompts && !/^\s*\$ /.test(text) ? text : undefined
    if (said !== undefined) {
      found.push(...proseCommands(doc, said, start.line))
      continue
    }
    text = text.replace(/^\s*\$ /, '')
    while (text.endsWith('\\') && i + 1 < block.length) text = text.slice(0, -1) + ' ' + (block[++i] as { text: string }).text
    const heredoc = /<<-?\s*'?"?(\w+)'?"?/.exec(text)
    if (heredoc) while (i + 1 < block.length && (block[i + 1] as { text: string }).text.trim() !== heredoc[1]) i++
    if (heredoc) i++
    for (const words of shellCommands(text, vars)) {
      const assignment = words.length === 1 || words[0] === 'export' ? /^(\w+)=(.*)$/s.exec(words[words.length - 1] as string) : null
      if (assignment && words.length <= 2) vars.set(assignment[1] as string, assignment[2] as string)
      const argv = fakephoneArgv(words, false)?.argv
      if (argv) found.push({ doc, line: start.line, text: text.trim(), synopsis: false, inline: false, argvs: [argv] })
    }
  }
  return found
}

/**
 * Whether inline code that has `before` ahead of the word fakephone and `next` after it writes a fakephone command:
 * fakephone first (after sudo, npx…), or after a colon a top-level command (`its console: fakephone console …`), not a
 * message's words (`interrupted: fakephone … stopped`, `like a fakephone broker`) or another program's argument
 * (`connect-ramp.js fakephone 1000`).
 */
function commandFirst(before: string, next: string | undefined): boolean {
  return /^((sudo( -u \S+)?|npx|env|\w+=\S*)\s*)*$/.test(before.trim()) || (/[:;(]$/.test(before.trim()) && TOP_LEVEL.has(next ?? ''))
}

/**
 * Inline code in prose (a span may wrap onto the next line, not past a blank one; one in double backquotes may quote
 * single-backquoted ones), and in a block's comment or output line (`line`: that line) a command after a colon.
 */
function proseCommands(doc: string, prose: string, line?: number): DocCommand[] {
  const found: DocCommand[] = []
  const lineAt = (offset: number): number => line ?? prose.slice(0, offset).split('\n').length
  const spans = (text: string, base: number): void => {
    for (const m of text.matchAll(/(?<!`)(`+)(?!`)((?:(?!\n\s*\n)[\s\S])+?)(?<!`)\1(?!`)/g)) {
      const at = base + (m.index as number) + (m[1] as string).length
      if ((m[1] as string).length > 1 && (m[2] as string).includes('`')) spans(m[2] as string, at)
      else found.push(...codeCommands(doc, lineAt(at), (m[2] as string).replace(/\s*\n\s*/g, ' ').trim()))
    }
  }
  spans(prose, 0)
  const quoted = line === undefined ? null : /:\s+((?:sudo |npx )*fakephone\s[^`]*)$/.exec(prose.replace(/`[^`]*`/g, ''))
  if (quoted) found.push(...codeCommands(doc, line as number, (quoted[1] as string).trim()))
  return found
}

/** The fakephone commands of one piece of inline code: a command line, or a synopsis (`[--opt X]`, `a \| b`, `…`). */
function codeCommands(doc: string, line: number, code: string): DocCommand[] {
  if (!/(^|\s)(fakephone|npm start)(\s|$)|dist\/cli\/main\.js\s/.test(code)) return []
  if (/\[|\||…|\.\.\./.test(code)) {
    const start = /(^|\s)(fakephone|node (?:-\S+ +)*\S*dist\/cli\/main\.js|npm start --)\s/.exec(code)
    const after = code.slice((start?.index ?? 0) + (start?.[0].length ?? 0))
    if (!start || !commandFirst(code.slice(0, start.index), after.split(/\s/)[0] as string)) return []
    const { first, rest } = synopsisArgvs(start[2] === 'npm start --' ? `demo ${after}` : after)
    const argvs = [first, ...rest.map((r) => r.words)]
    return [{ doc, line, text: code, synopsis: true, inline: true, argvs, prefixes: [[], ...rest.map((r) => r.prefixes)] }]
  }
  const found: DocCommand[] = []
  for (const words of shellCommands(code)) {
    const command = fakephoneArgv(words, true)
    if (command && commandFirst(command.before.join(' '), command.argv[0])) {
      found.push({ doc, line, text: code, synopsis: false, inline: true, argvs: [command.argv] })
    }
  }
  return found
}

// ---- resolution against the real program ------------------------------------------------------------------------------

/** A value written as a placeholder (`N`, `DIR`, `LAT,LON`, `http://HOST:PORT`, `$P`, `5GB`…): not given to the option's parser. */
const placeholder = (value: string): boolean => /(^|[^A-Za-z])[A-Z][A-Z_]*([^A-Za-z]|$)|\$|<|…/.test(value)

/** What commander says of a doc's command line that is wrong; placeholders, missing arguments and mandatory options aside. */
const WRONG = new Set([
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.excessArguments',
  'commander.optionMissingArgument',
  'commander.invalidArgument',
  'commander.conflictingOption',
])

interface Resolution {
  /** The command the line reaches, `console locate`, or undefined when it stops at a help or a missing part. */
  reached?: string
  /** Commander's error when the line is wrong. */
  error?: string
  /** The words parsed (a synopsis's alternative after the leading words it was read with). */
  argv?: readonly string[]
}

/**
 * Parses `argv` with the program main() would build for it, every action replaced by a recorder and every option or
 * argument parser skipped for a placeholder value, so nothing runs and no file, port or network is touched.
 */
export async function resolve(argv: readonly string[], synopsis = false): Promise<Resolution> {
  const { io } = testIo()
  const prog = await program(io, argv)
  let reached: string | undefined
  const disarm = (cmd: Command): void => {
    // commander keeps the action in a private field; only a command that has one gets the recorder (a group without one
    // must still say "unknown command" for a word it does not know).
    if ((cmd as unknown as { _actionHandler: unknown })._actionHandler) {
      cmd.action((...args: unknown[]) => {
        const names: string[] = []
        for (let c: Command | null = args[args.length - 1] as Command; c && c !== prog; c = c.parent) names.unshift(c.name())
        reached = names.join(' ')
      })
    }
    // A synopsis lists options that exclude each other (`[--gpx FILE | --fixed LAT,LON]`) side by side.
    // (commander keeps them in a field its types leave out)
    if (synopsis) for (const o of cmd.options) (o as unknown as { conflictsWith: string[] }).conflictsWith = []
    // A mandatory option left out is no error here (prose names `drive token` without its `--app`), and commander checks
    // for it before it looks for unknown options, which it would hide.
    for (const o of cmd.options) o.mandatory = false
    for (const o of [...cmd.options, ...cmd.registeredArguments]) {
      const parse = o.parseArg
      if (parse) o.parseArg = <T>(value: string, previous: T): T => (placeholder(value) ? (value as T) : parse(value, previous))
    }
    cmd.commands.forEach(disarm)
  }
  disarm(prog)
  try {
    await prog.parseAsync([...argv], { from: 'user' })
  } catch (e) {
    if (!(e instanceof CommanderError)) return { error: `not commander's: ${(e as Error).message}` }
    if (WRONG.has(e.code)) return { error: e.message.split('\n').join(' '), argv }
  }
  return { reached }
}

/**
 * Resolves a doc's command. A synopsis's later alternative is read after the first's leading words that make it reach
 * a command named by its own first word (`backup status | now`: `phone --data DIR backup now`), longest first; failing
 * that, the first that parses.
 */
async function resolveDoc(c: DocCommand): Promise<{ errors: string[]; reached: string[] }> {
  const errors: string[] = []
  const reached: string[] = []
  for (let k = 0; k < c.argvs.length; k++) {
    const words = c.argvs[k] as string[]
    const prefixes = c.prefixes?.[k]?.length ? (c.prefixes[k] as string[][]) : [[]]
    const tries: Resolution[] = []
    for (const prefix of prefixes) tries.push(await resolve([...prefix, ...words], c.synopsis))
    const names = (r: Resolution): string[] => r.reached?.split(' ') ?? []
    const r = (tries.find((r) => !r.error && (words[0]?.startsWith('-') || names(r).includes(words[0] as string))) ??
      tries.find((r) => !r.error) ??
      tries[0]) as Resolution
    const ignored = c.inline && /argument missing/.test(r.error ?? '')
    if (r.error && !ignored) errors.push(`\`fakephone ${(r.argv ?? words).join(' ')}\`: ${r.error}`)
    if (r.reached) reached.push(r.reached)
  }
  return { errors, reached }
}

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
