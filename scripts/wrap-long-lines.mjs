#!/usr/bin/env node
// Shortens the lines over 140 characters that Prettier leaves as they are: comments, string literals and regular
// expressions. Run Prettier again afterwards (`npm run format` does both), which lays out the split strings.
//
//   node scripts/wrap-long-lines.mjs [--check] [file or folder ...]   (default: agent broker cli common bench test scripts)
//
// Everything is found by the TypeScript parser, so comment-like text inside strings is never touched.
// A string or template literal on a long line is split at spaces (or after a \n) into pieces joined with +:
//   'a long text'  -> 'a long ' + 'text'       `a ${x} text` -> `a ${x} ` + `text`   (never inside ${...})
// A long regular expression literal becomes new RegExp(String.raw`...` + String.raw`...`, 'flags'), split outside
// [...] classes and escapes, so its source is the same. Literals that must stay literals (types, imports, property
// names, tagged templates) are left alone.
// Only whole-line comments are rewrapped, at word boundaries and with the same prefix:
//   // text                       -> more `//` lines at the same indentation (a list item's continuation is indented)
//   /** text */ on one line        -> a `/**`, ` * text` ..., ` */` block
//    * text  inside a block         -> more ` * ` lines
// Directives (c8/v8 ignore, eslint-disable, @ts-..., prettier-ignore) are never wrapped: `c8 ignore next N` counts
// lines. A long line the script cannot wrap (a directive, a comment after code, one long word) is listed for a hand
// fix. Lines of 140 characters or fewer are left alone, so running it again changes nothing.
// --check changes no file and exits 1 if a line could be wrapped.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

const WIDTH = 140
const DIRECTIVE = /^\s*(?:\/\/|\/\*+|\*)\s*(?:c8|v8|istanbul|node:coverage|eslint|@ts-|prettier-ignore|global\b|#)/

const args = process.argv.slice(2)
const check = args.includes('--check')
const roots = args.filter((a) => a !== '--check')

const filesUnder = (path) => {
  if (statSync(path).isFile()) return [path]
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => e.name !== 'node_modules' && e.name !== 'dist' && !e.name.startsWith('.'))
    .flatMap((e) => filesUnder(join(path, e.name)))
}
const sourceFile = (path) => /\.(?:ts|mts|cts|js|mjs|cjs)$/.test(path) && !path.endsWith('.d.ts')

/** Every comment's [start, end) in the file, as the parser sees them. */
const commentRanges = (path, text) => {
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false)
  const seen = new Map()
  const add = (ranges) => {
    for (const r of ranges ?? []) seen.set(r.pos, r)
  }
  const visit = (node) => {
    add(ts.getLeadingCommentRanges(text, node.getFullStart()))
    add(ts.getTrailingCommentRanges(text, node.getEnd()))
    node.forEachChild(visit)
  }
  visit(sf)
  add(ts.getLeadingCommentRanges(text, sf.endOfFileToken.getFullStart()))
  return [...seen.values()]
}

/** Greedy word wrap of `text` into lines of at most `room` characters (a longer word gets a line of its own). */
const wrap = (text, room) => {
  const lines = []
  let line = ''
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') lines.push(line)
  return lines
}

/**
 * The lines that replace one long comment line, or null if it cannot be wrapped. `lead` is the line's first
 * prefix (`  // `, `   * `); `next` is the prefix of the lines after it (indented further under a list item).
 */
const rewrap = (lead, next, text) => {
  const first = wrap(text, WIDTH - lead.length)
  if (first.length < 2) return null
  const rest = wrap(first.slice(1).join(' '), WIDTH - next.length)
  const out = [lead + first[0], ...rest.map((l) => next + l)]
  return out.every((l) => l.length <= WIDTH) ? out : null
}

/** Rewraps `body` after `prefix`; a ` - ` or ` 1. ` list item's continuation lines line up with the item's text. */
const rewrapBody = (prefix, body) => {
  const marker = /^\s*(?:[-*+]|\d+[.)])\s+/.exec(body)?.[0] ?? /^\s*/.exec(body)[0]
  return rewrap(prefix + marker, prefix + ' '.repeat(marker.length), body.slice(marker.length))
}

const fixLine = (line, kind) => {
  if (DIRECTIVE.test(line)) return null
  if (kind === 'single') {
    const m = /^(\s*\/\/+ ?)(.*)$/.exec(line)
    return rewrapBody(m[1], m[2])
  }
  if (kind === 'oneLineBlock') {
    const m = /^(\s*)(\/\*\*?)\s*(.*?)\s*\*\/$/.exec(line)
    if (!m) return null
    const inner = wrap(m[3], WIDTH - m[1].length - 3).map((l) => `${m[1]} * ${l}`)
    const out = [`${m[1]}${m[2]}`, ...inner, `${m[1]} */`]
    return out.every((l) => l.length <= WIDTH) ? out : null
  }
  // A middle line of a block comment: ` * text` (or bare text inside /* */).
  const m = /^(\s*\*? ?)(.*)$/.exec(line)
  if (m[2].endsWith('*/')) return null
  return rewrapBody(m[1], m[2])
}

/** Split points in a literal's raw text (between the quotes): after a space or a \n escape, outside ${...}. */
const stringCuts = (raw, template) => {
  const cuts = []
  const good = []
  let depth = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    if (c === '\\') {
      if (raw[i + 1] === 'n' && depth === 0 && i + 2 < raw.length) {
        cuts.push(i + 2)
        good.push(i + 2)
      }
      i++
      continue
    }
    if (template && c === '$' && raw[i + 1] === '{') {
      depth++
      i++
    } else if (depth > 0 && c === '{') depth++
    else if (depth > 0 && c === '}') depth--
    else if (depth === 0 && c === ' ' && raw[i + 1] !== ' ' && i + 1 < raw.length) cuts.push(i + 1)
  }
  return { any: cuts, good }
}

/**
 * Split points in a regular expression's source: not inside [...] nor inside an escape, nor before a quantifier.
 * `good` holds the ones after a \n or a space, which read best.
 */
const regexCuts = (src) => {
  const any = []
  const good = []
  let inClass = false
  for (let i = 0; i < src.length; i++) {
    const c = src[i]
    const at = c === '\\' ? i + 2 : i + 1
    const cuttable = !inClass && at < src.length && !/[*+?{]/.test(src[at])
    if (c === '\\') {
      if (cuttable) (src[i + 1] === 'n' ? good : any).push(at)
      i++
      continue
    }
    if (c === '[') inClass = true
    else if (c === ']') inClass = false
    else if (cuttable) (c === ' ' ? good : any).push(at)
  }
  return { any: [...any, ...good].sort((a, b) => a - b), good }
}

/**
 * Cuts `raw` into pieces of at most `room` characters at the given split points: the last `good` one that keeps a
 * piece at least half full, else the last one that fits.
 */
const pieces = (raw, cuts, room, good = []) => {
  const out = []
  let from = 0
  while (raw.length - from > room) {
    const fits = cuts.filter((c) => c > from && c - from <= room)
    if (fits.length === 0) break
    const nice = good.filter((c) => c - from > room / 2 && c - from <= room)
    const at = nice.length > 0 ? nice[nice.length - 1] : fits[fits.length - 1]
    out.push(raw.slice(from, at))
    from = at
  }
  out.push(raw.slice(from))
  return out
}

/** Parents where a literal must stay a literal. */
const mustStayLiteral = (node) => {
  const p = node.parent
  return (
    ts.isLiteralTypeNode(p) ||
    ts.isImportDeclaration(p) ||
    ts.isExportDeclaration(p) ||
    ts.isExternalModuleReference(p) ||
    ts.isTaggedTemplateExpression(p) ||
    ts.isEnumMember(p) ||
    ts.isModuleDeclaration(p) ||
    (ts.isPropertyAssignment(p) && p.name === node) ||
    (ts.isPropertySignature(p) && p.name === node) ||
    (ts.isMethodDeclaration(p) && p.name === node) ||
    (ts.isPropertyDeclaration(p) && p.name === node) ||
    ts.isImportTypeNode(p) ||
    ts.isExpressionStatement(p) // 'use strict' and other directives
  )
}

/** Parents under which `a + b` can stand without parentheses. */
const safeForPlus = (node) => {
  const p = node.parent
  if (ts.isCallExpression(p) || ts.isNewExpression(p)) return p.expression !== node
  return (
    ts.isVariableDeclaration(p) ||
    ts.isPropertyAssignment(p) ||
    ts.isArrayLiteralExpression(p) ||
    ts.isReturnStatement(p) ||
    ts.isParenthesizedExpression(p) ||
    ts.isConditionalExpression(p) ||
    ts.isArrowFunction(p) ||
    ts.isThrowStatement(p) ||
    ts.isTemplateSpan(p) ||
    ts.isBinaryExpression(p)
  )
}

/** Splits the longest string, template or regex literal on each line over WIDTH characters. */
const splitLiterals = (path, text) => {
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true)
  const lines = text.split('\n')
  const longest = new Map() // line index -> the literal to split
  const visit = (node) => {
    const kind = node.kind
    if (
      kind === ts.SyntaxKind.StringLiteral ||
      kind === ts.SyntaxKind.NoSubstitutionTemplateLiteral ||
      kind === ts.SyntaxKind.TemplateExpression ||
      kind === ts.SyntaxKind.RegularExpressionLiteral
    ) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf))
      const end = sf.getLineAndCharacterOfPosition(node.getEnd())
      const width = node.getEnd() - node.getStart(sf)
      if (start.line === end.line && lines[start.line].length > WIDTH && !mustStayLiteral(node)) {
        const best = longest.get(start.line)
        if (!best || best.getEnd() - best.getStart(sf) < width) longest.set(start.line, node)
      }
      if (kind !== ts.SyntaxKind.TemplateExpression) return
    }
    node.forEachChild(visit)
  }
  visit(sf)
  const edits = []
  const splitLines = new Set()
  for (const [line, node] of longest) {
    const indent = /^\s*/.exec(lines[line])[0].length
    const room = WIDTH - indent - 12
    const literal = node.getText(sf)
    if (node.kind === ts.SyntaxKind.RegularExpressionLiteral) {
      const close = literal.lastIndexOf('/')
      const src = literal.slice(1, close)
      const flags = literal.slice(close + 1)
      if (src.includes('`') || src.includes('${')) continue
      const cuts = regexCuts(src)
      const chunks = pieces(src, cuts.any, room - 'String.raw``'.length, cuts.good)
      if (chunks.length < 2 || chunks.some((c) => c.length > room)) continue // it would still be too long: by hand
      const joined = chunks.map((c) => `String.raw\`${c}\``).join(' + ')
      edits.push([node.getStart(sf), node.getEnd(), `new RegExp(${joined}${flags ? `, '${flags}'` : ''})`])
      splitLines.add(line)
      continue
    }
    const quote = literal[0]
    const raw = literal.slice(1, -1)
    const cuts = stringCuts(raw, quote === '`')
    const chunks = pieces(raw, cuts.any, room, cuts.good)
    if (chunks.length < 2 || chunks.some((c) => c.length > room)) continue // it would still be too long: by hand
    const joined = chunks.map((c) => quote + c + quote).join(' + ')
    edits.push([node.getStart(sf), node.getEnd(), safeForPlus(node) ? joined : `(${joined})`])
    splitLines.add(line)
  }
  edits.sort((a, b) => b[0] - a[0])
  let out = text
  for (const [from, to, by] of edits) out = out.slice(0, from) + by + out.slice(to)
  return { text: out, count: edits.length, splitLines }
}

let splitCount = 0
let changedFiles = 0
const leftovers = []
for (const path of (roots.length > 0 ? roots : ['agent', 'broker', 'cli', 'common', 'bench', 'test', 'scripts']).flatMap(filesUnder)) {
  if (!sourceFile(path)) continue
  const original = readFileSync(path, 'utf8')
  if (!original.split('\n').some((l) => l.length > WIDTH)) continue
  const split = splitLiterals(path, original)
  splitCount += split.count
  const text = split.text
  const lines = text.split('\n')
  const lineStarts = [0]
  for (const l of lines) lineStarts.push(lineStarts[lineStarts.length - 1] + l.length + 1)
  const lineOf = (pos) => {
    let lo = 0
    let hi = lines.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (lineStarts[mid] <= pos) lo = mid
      else hi = mid - 1
    }
    return lo
  }
  // For each line: how its comment covers it ('single', 'oneLineBlock', 'blockMiddle'), when it is all comment.
  const kinds = new Map()
  for (const r of commentRanges(path, text)) {
    const first = lineOf(r.pos)
    const last = lineOf(r.end - 1)
    const onlyCommentBefore = text.slice(lineStarts[first], r.pos).trim() === ''
    const onlyCommentAfter = text.slice(r.end, lineStarts[last + 1] - 1).trim() === ''
    if (r.kind === ts.SyntaxKind.SingleLineCommentTrivia) {
      if (onlyCommentBefore) kinds.set(first, 'single')
    } else if (first === last) {
      if (onlyCommentBefore && onlyCommentAfter) kinds.set(first, 'oneLineBlock')
    } else {
      for (let i = first + 1; i < last; i++) kinds.set(i, 'blockMiddle')
    }
  }
  const out = []
  let changed = false
  lines.forEach((line, i) => {
    const kind = kinds.get(i)
    const fixed = line.length > WIDTH && kind !== undefined ? fixLine(line, kind) : null
    if (fixed) {
      out.push(...fixed)
      changed = true
    } else {
      if (line.length > WIDTH && !split.splitLines.has(i))
        leftovers.push(`${path}:${i + 1}: ${line.length} characters${kind ? ' (a comment it cannot wrap)' : ''}`)
      out.push(line)
    }
  })
  if (changed || split.count > 0) {
    changedFiles++
    if (check) console.log(`${path}: lines over ${WIDTH} characters that can be shortened`)
    else writeFileSync(path, out.join('\n'))
  }
}
if (!check && changedFiles > 0) {
  console.log(
    `wrap-long-lines: shortened lines in ${changedFiles} file(s), ${splitCount} literal(s) split; run Prettier again to lay them ` + `out`,
  )
}
if (leftovers.length > 0) {
  console.log(`wrap-long-lines: ${leftovers.length} line(s) over ${WIDTH} characters left for a hand fix:`)
  for (const l of leftovers) console.log(`  ${l}`)
}
process.exitCode = check && changedFiles > 0 ? 1 : 0
