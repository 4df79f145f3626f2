/**
 * The README and docs/ link only files of this repository and headings those files have, and the behaviour IDs they use
 * are described in docs/BEHAVIOURS.md.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join, relative, resolve, sep } from 'node:path'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = [
  'README.md',
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

t.test('docs/BEHAVIOURS.md describes every ID the README table lists, F1 to M3', (t) => {
  const behaviours = readFileSync(join(root, 'docs', 'BEHAVIOURS.md'), 'utf8')
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
  for (const id of ids) t.match(behaviours, new RegExp(`\\n- \\*\\*${id}\\b`), id)
  t.match(readFileSync(join(root, 'README.md'), 'utf8'), /\]\(docs\/BEHAVIOURS\.md\)/)
  t.end()
})
