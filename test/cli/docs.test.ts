/**
 * The README, CONTRIBUTING.md and docs/ link only files of this repository and headings those files have, the behaviour
 * IDs they use are described in docs/BEHAVIOURS.md, and each ID can be found by grep in the code and the tests.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join, relative, resolve, sep } from 'node:path'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
]

t.test('every relative link in the README and docs/ points at a file inside the repository', (t) => {
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      const file = resolve(dirname(join(root, doc)), target as string)
      const inside = !relative(root, file).startsWith('..') && !relative(root, file).startsWith(sep)
      t.ok(inside && existsSync(file), `${doc} links ${target as string}, a file of the repository`)
    }
  }
  t.end()
})

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens, a repeat numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const slug = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    anchors.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return anchors
}

t.test('every link to a heading in the README and docs/ names a heading the file has', (t) => {
  let checked = 0
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8')
    for (const [, target, anchor] of text.matchAll(/\]\(([^)\s#]*)#([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      const file = target === '' ? join(root, doc) : resolve(dirname(join(root, doc)), target as string)
      if (!file.endsWith('.md')) continue
      t.ok(
        headingAnchors(readFileSync(file, 'utf8')).has(anchor as string),
        `${doc} links ${target as string}#${anchor as string}, a heading of that file`,
      )
      checked++
    }
  }
  t.ok(checked > 0, 'the docs link headings')
  t.end()
})

/** Every behaviour ID of docs/BEHAVIOURS.md. */
const ids = [
  'F1',
  'F2',
  'F3',
  'F4',
  'S1',
  'S2',
  'S3',
  'S4',
  'R1',
  'R2',
  'R3',
  'B1',
  'B2',
  'B3',
  'B4',
  'D1',
  'D2',
  'D3',
  'D4',
  'D5',
  'X1',
  'X2',
  'X3',
  'A1',
  'A2',
  'A3',
  'M1',
  'M2',
  'M3',
]

t.test('docs/BEHAVIOURS.md describes every ID the README table lists, F1 to M3', (t) => {
  const behaviours = readFileSync(join(root, 'docs', 'BEHAVIOURS.md'), 'utf8')
  for (const id of ids) t.match(behaviours, new RegExp(`\\n- \\*\\*${id}\\b`), id)
  t.match(readFileSync(join(root, 'README.md'), 'utf8'), /\]\(docs\/BEHAVIOURS\.md\)/)
  t.end()
})

/** The files below `dir` (relative to the root) whose names end with one of `endings`. */
function filesUnder(dir: string, endings: readonly string[]): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => endings.some((e) => f.endsWith(e)))
    .map((f) => join(dir, f))
}

t.test('every behaviour ID is named in a module doc comment and in a test title, so grep finds its code and its tests', (t) => {
  const named = (text: string, id: string): boolean => new RegExp(`\\b${id}\\b`).test(text)
  // A module's doc comment: the comment it starts with (after a #! line).
  const docComments = ['agent', 'broker', 'common', 'cli', 'fleet']
    .flatMap((dir) => filesUnder(dir, ['.ts']))
    .map((f) => /^(?:#![^\n]*\n)?\s*(\/\*[\s\S]*?\*\/|(?:\/\/[^\n]*\n)+)/.exec(readFileSync(join(root, f), 'utf8'))?.[1] ?? '')
  // A test's title: the string `t.test(` starts with (quoted with ', " or `).
  const titles = filesUnder('test', ['.test.ts']).flatMap((f) =>
    [...readFileSync(join(root, f), 'utf8').matchAll(/\bt\.test\(\s*(['"`])((?:\\.|(?!\1)[\s\S])*)\1/g)].map((m) => m[2] as string),
  )
  t.ok(docComments.length > 100 && titles.length > 500, 'the modules and the tests were read')
  for (const id of ids) {
    t.ok(
      docComments.some((c) => named(c, id)),
      `${id} is in a module doc comment`,
    )
    t.ok(
      titles.some((title) => named(title, id)),
      `${id} is in a test title`,
    )
  }
  t.end()
})
